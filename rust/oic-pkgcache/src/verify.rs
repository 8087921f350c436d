//! `cache verify`: check every cached package file against repository metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oic_config::Repository;
use oic_repo::{MetadataOptions, RepoMetadata};
use rayon::prelude::*;

use crate::check::{check_file, remove_if_same, CacheState, RedownloadReason};
use crate::checksum::ChecksumType;
use crate::error::PkgCacheError;
use crate::layout::{check_provider_id, is_package_name, list_subdirs, pkg_cache_root};
use crate::lock::CacheLock;

/// The size and checksum an index gives for a file name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpectedFile {
    pub size: u64,
    #[serde(default)]
    pub checksum_type: ChecksumType,
    /// The lowercase hexadecimal digest in `checksum_type`.
    pub checksum: String,
}

/// Expected contents by file name. One name may have several entries when repositories
/// publish different files under it; a cached file is valid if it matches any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyIndex {
    files: HashMap<String, Vec<ExpectedFile>>,
}

impl VerifyIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file with a SHA256 digest, as Debian indexes give it.
    pub fn insert(&mut self, file_name: &str, size: u64, sha256: &str) {
        self.insert_checksum(file_name, size, ChecksumType::Sha256, sha256);
    }

    /// Adds a file with a digest of `checksum_type`, as RPM primary metadata gives it.
    pub fn insert_checksum(
        &mut self,
        file_name: &str,
        size: u64,
        checksum_type: ChecksumType,
        checksum: &str,
    ) {
        let expected = ExpectedFile {
            size,
            checksum_type,
            checksum: checksum.to_ascii_lowercase(),
        };
        let entries = self.files.entry(file_name.to_owned()).or_default();
        if !entries.contains(&expected) {
            entries.push(expected);
        }
    }

    /// Indexes the packages of loaded repository metadata by the basename of `Filename`.
    pub fn from_metadata(metadata: &[RepoMetadata]) -> Self {
        let mut index = Self::new();
        for package in metadata.iter().flat_map(|repository| &repository.packages) {
            let file_name = package.filename.rsplit('/').next().unwrap_or_default();
            index.insert(file_name, package.size, &package.sha256.to_hex());
        }
        index
    }

    pub fn get(&self, file_name: &str) -> Option<&[ExpectedFile]> {
        self.files.get(file_name).map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Builds the index of a Debian provider from the metadata cache only, with no network access:
/// `options.offline` is forced on.
pub fn load_verify_index(
    repositories: &[Repository],
    options: &MetadataOptions,
) -> Result<VerifyIndex, PkgCacheError> {
    let options = MetadataOptions {
        offline: true,
        ..options.clone()
    };
    let metadata = oic_repo::load_repositories_blocking(repositories, &options)?;
    Ok(VerifyIndex::from_metadata(&metadata))
}

/// The verdict on one cached file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum VerifyStatus {
    Ok,
    /// The index lists the name, but the file has another size or checksum.
    Mismatched {
        reason: RedownloadReason,
    },
    /// The index does not list the name, for example a package of an older build.
    Unknown,
}

/// One cached file and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedFile {
    pub provider_id: String,
    pub file_name: String,
    pub path: PathBuf,
    #[serde(flatten)]
    pub status: VerifyStatus,
    pub deleted: bool,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub ok: usize,
    pub mismatched: Vec<VerifiedFile>,
    pub unknown: Vec<VerifiedFile>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.mismatched.is_empty()
    }
}

/// Hashes every package file of one provider, or of all, in parallel and compares it with
/// `index`. With `delete`, mismatched files are deleted, so the next build downloads them
/// again; unknown files are only listed. Takes a shared cache lock.
pub fn verify(
    cache_dir: &Path,
    provider: Option<&str>,
    delete: bool,
    index: &VerifyIndex,
) -> Result<VerifyReport, PkgCacheError> {
    if let Some(provider) = provider {
        check_provider_id(provider)?;
    }
    let _lock = CacheLock::shared(cache_dir)?;
    let root = pkg_cache_root(cache_dir);
    let providers = match provider {
        Some(id) => vec![id.to_owned()],
        None => list_subdirs(&root)?,
    };
    let mut files = Vec::new();
    for id in providers {
        for name in package_names(&root.join(&id))? {
            files.push((id.clone(), name));
        }
    }

    let verdicts = files
        .into_par_iter()
        .map(|(provider_id, file_name)| {
            let path = root.join(&provider_id).join(&file_name);
            let status = judge(&path, index.get(&file_name), delete)?;
            Ok(VerifiedFile {
                deleted: delete && matches!(status, VerifyStatus::Mismatched { .. }),
                provider_id,
                file_name,
                path,
                status,
            })
        })
        .collect::<Result<Vec<_>, PkgCacheError>>()?;

    let mut report = VerifyReport {
        ok: 0,
        mismatched: Vec::new(),
        unknown: Vec::new(),
    };
    for verdict in verdicts {
        match verdict.status {
            VerifyStatus::Ok => report.ok += 1,
            VerifyStatus::Mismatched { .. } => report.mismatched.push(verdict),
            VerifyStatus::Unknown => report.unknown.push(verdict),
        }
    }
    Ok(report)
}

fn judge(
    path: &Path,
    expected: Option<&[ExpectedFile]>,
    delete: bool,
) -> Result<VerifyStatus, PkgCacheError> {
    let Some(expected) = expected else {
        return Ok(VerifyStatus::Unknown);
    };
    let mut first_mismatch = None;
    for candidate in expected {
        let state = check_file(
            path,
            candidate.size,
            candidate.checksum_type,
            &candidate.checksum,
        )
        .map_err(|error| PkgCacheError::io(path, error))?;
        match state {
            CacheState::Valid => return Ok(VerifyStatus::Ok),
            // Deleted by a concurrent build or verify since the folder was listed.
            CacheState::Missing => return Ok(VerifyStatus::Unknown),
            CacheState::Invalid {
                reason, identity, ..
            } => {
                first_mismatch.get_or_insert((reason, identity));
            }
        }
    }
    let (reason, identity) = first_mismatch.expect("an index entry has at least one candidate");
    tracing::warn!(path = %path.display(), %reason, "cached file does not match the metadata");
    if delete {
        remove_if_same(path, identity).map_err(|error| PkgCacheError::io(path, error))?;
    }
    Ok(VerifyStatus::Mismatched { reason })
}

fn package_names(dir: &Path) -> Result<Vec<String>, PkgCacheError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(PkgCacheError::io(dir, error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| PkgCacheError::io(dir, error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        if is_file && is_package_name(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
