//! `cache info`: what the cache and the work folder hold, per provider.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::PkgCacheError;
use crate::layout::{is_package_name, list_subdirs, pkg_cache_root, provider_dir};
use crate::usage::{usage, Usage};

/// The sizes of one provider's cached and built trees.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProviderInfo {
    pub provider_id: String,
    /// Package files in `{cache_dir}/pkgCache/{id}`, without the graph and temporary files.
    pub packages: Usage,
    /// `{work_dir}/{id}/chrootenv`.
    pub chroot_env: Usage,
    /// `{work_dir}/{id}/chrootbuild/*.tar.*`.
    pub snapshots: Usage,
    /// `{work_dir}/{id}/imagebuild`.
    pub image_builds: Usage,
    /// `{cache_dir}/metadata/v1/{id}`.
    pub metadata: Usage,
}

/// The result of [`cache_info`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheInfo {
    pub cache_dir: PathBuf,
    pub work_dir: PathBuf,
    pub providers: Vec<ProviderInfo>,
    /// All of `{cache_dir}/metadata`, including formats and providers not listed above.
    pub metadata: Usage,
    pub total_bytes: u64,
}

/// Measures the cache per provider. Providers are the folders found in the package cache, the
/// metadata cache or the work folder.
pub fn cache_info(cache_dir: &Path, work_dir: &Path) -> Result<CacheInfo, PkgCacheError> {
    let metadata_root = metadata_provider_root(cache_dir);
    let mut ids: BTreeSet<String> = BTreeSet::new();
    ids.extend(list_subdirs(&pkg_cache_root(cache_dir))?);
    ids.extend(list_subdirs(&metadata_root)?);
    for id in list_subdirs(work_dir)? {
        let build = work_dir.join(&id);
        if ["chrootenv", "chrootbuild", "imagebuild"]
            .iter()
            .any(|sub| build.join(sub).is_dir())
        {
            ids.insert(id);
        }
    }

    let providers: Vec<ProviderInfo> = ids
        .into_iter()
        .map(|id| ProviderInfo {
            packages: package_usage(&provider_dir(cache_dir, &id)),
            chroot_env: usage(&work_dir.join(&id).join("chrootenv")),
            snapshots: snapshot_usage(&work_dir.join(&id).join("chrootbuild")),
            image_builds: usage(&work_dir.join(&id).join("imagebuild")),
            metadata: usage(&metadata_root.join(&id)),
            provider_id: id,
        })
        .collect();
    let metadata = usage(&cache_dir.join("metadata"));
    let total_bytes = metadata.bytes
        + providers
            .iter()
            .map(|p| {
                p.packages.bytes + p.chroot_env.bytes + p.snapshots.bytes + p.image_builds.bytes
            })
            .sum::<u64>();
    Ok(CacheInfo {
        cache_dir: cache_dir.to_path_buf(),
        work_dir: work_dir.to_path_buf(),
        providers,
        metadata,
        total_bytes,
    })
}

/// Returns `{cache_dir}/metadata/v1`, the parent of oic-repo's per-provider folders.
pub(crate) fn metadata_provider_root(cache_dir: &Path) -> PathBuf {
    let provider = oic_repo::MetadataCache::new(cache_dir, "provider");
    provider
        .root()
        .parent()
        .expect("the metadata cache has a parent")
        .to_path_buf()
}

fn package_usage(dir: &Path) -> Usage {
    files_matching(dir, is_package_name)
}

fn snapshot_usage(dir: &Path) -> Usage {
    files_matching(dir, |name| name.contains(".tar."))
}

fn files_matching(dir: &Path, keep: impl Fn(&str) -> bool) -> Usage {
    let mut total = Usage::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return total;
    };
    for entry in entries.flatten() {
        if !keep(&entry.file_name().to_string_lossy()) {
            continue;
        }
        match entry.metadata() {
            Ok(metadata) if metadata.is_file() => total.add(Usage {
                bytes: metadata.len(),
                files: 1,
                unreadable: 0,
            }),
            Ok(_) => {}
            Err(_) => total.unreadable += 1,
        }
    }
    total
}
