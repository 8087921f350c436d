//! `cache clean`: delete the package cache, the work folder, or both.

use std::path::{Path, PathBuf};

use crate::error::PkgCacheError;
use crate::info::metadata_provider_root;
use crate::layout::{check_provider_id, list_subdirs, pkg_cache_root};
use crate::lock::CacheLock;
use crate::mounts::mount_under;
use crate::usage::usage;

/// What `clean` deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanScope {
    /// `{cache_dir}/pkgCache/{id}`.
    #[default]
    Packages,
    /// `{work_dir}/{id}`: chroot environments, snapshots and image builds.
    Workspace,
    /// Both, and the metadata cache `{cache_dir}/metadata`.
    All,
}

/// The arguments of [`clean`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CleanOptions {
    pub scope: CleanScope,
    /// One provider, or all when `None`.
    pub provider: Option<String>,
    /// List what would be deleted and delete nothing.
    pub dry_run: bool,
}

/// A deleted folder or symbolic link.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemovedTree {
    pub path: PathBuf,
    pub bytes: u64,
    pub files: u64,
}

/// The result of [`clean`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CleanReport {
    pub removed: Vec<RemovedTree>,
    pub freed_bytes: u64,
    pub dry_run: bool,
}

/// Deletes the trees that `options.scope` selects.
///
/// Takes the exclusive cache lock, so it waits for running builds. Checks every tree before
/// deleting any: a tree with a mount point inside (such as a chroot's `/proc`) is an error that
/// names the mount point. A symbolic link is deleted as a link, and deletion never follows
/// links out of the tree.
pub fn clean(
    cache_dir: &Path,
    work_dir: &Path,
    options: &CleanOptions,
) -> Result<CleanReport, PkgCacheError> {
    if let Some(provider) = &options.provider {
        check_provider_id(provider)?;
    }
    let _lock = if options.dry_run {
        None
    } else {
        Some(CacheLock::exclusive(cache_dir)?)
    };
    let targets = targets(cache_dir, work_dir, options)?;
    for target in &targets {
        reject_mounts(target)?;
    }

    let mut report = CleanReport {
        removed: Vec::new(),
        freed_bytes: 0,
        dry_run: options.dry_run,
    };
    for target in targets {
        let measured = usage(&target);
        if !options.dry_run {
            remove_tree(&target)?;
            tracing::info!(path = %target.display(), bytes = measured.bytes, "deleted");
        }
        report.freed_bytes += measured.bytes;
        report.removed.push(RemovedTree {
            path: target,
            bytes: measured.bytes,
            files: measured.files,
        });
    }
    Ok(report)
}

/// Lists the existing trees to delete.
fn targets(
    cache_dir: &Path,
    work_dir: &Path,
    options: &CleanOptions,
) -> Result<Vec<PathBuf>, PkgCacheError> {
    let packages = matches!(options.scope, CleanScope::Packages | CleanScope::All);
    let workspace = matches!(options.scope, CleanScope::Workspace | CleanScope::All);
    let metadata = options.scope == CleanScope::All;

    let mut targets = Vec::new();
    if packages {
        targets.extend(per_provider(
            &pkg_cache_root(cache_dir),
            options.provider.as_deref(),
        )?);
    }
    if workspace {
        targets.extend(per_provider(work_dir, options.provider.as_deref())?);
    }
    if metadata {
        match &options.provider {
            Some(id) => targets.push(metadata_provider_root(cache_dir).join(id)),
            None => targets.push(cache_dir.join("metadata")),
        }
    }
    targets.retain(|path| path.symlink_metadata().is_ok());
    Ok(targets)
}

fn per_provider(root: &Path, provider: Option<&str>) -> Result<Vec<PathBuf>, PkgCacheError> {
    Ok(match provider {
        Some(id) => vec![root.join(id)],
        None => list_subdirs(root)?
            .into_iter()
            .map(|id| root.join(id))
            .collect(),
    })
}

fn reject_mounts(target: &Path) -> Result<(), PkgCacheError> {
    let metadata = target
        .symlink_metadata()
        .map_err(|error| PkgCacheError::io(target, error))?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    let canonical = target
        .canonicalize()
        .map_err(|error| PkgCacheError::io(target, error))?;
    let mount = mount_under(&canonical)
        .map_err(|error| PkgCacheError::io("/proc/self/mountinfo", error))?;
    match mount {
        Some(mount_point) => Err(PkgCacheError::MountedTree {
            path: target.to_path_buf(),
            mount_point,
        }),
        None => Ok(()),
    }
}

fn remove_tree(target: &Path) -> Result<(), PkgCacheError> {
    let metadata = target
        .symlink_metadata()
        .map_err(|error| PkgCacheError::io(target, error))?;
    // std's remove_dir_all removes symbolic links inside the tree without following them.
    let result = if metadata.is_dir() {
        std::fs::remove_dir_all(target)
    } else {
        std::fs::remove_file(target)
    };
    result.map_err(|error| PkgCacheError::io(target, error))
}
