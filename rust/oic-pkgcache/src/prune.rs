//! `cache prune`: delete the least recently used package files.
//!
//! A file's last use is the later of its access time and its modification time. The
//! modification time is when it was downloaded, and every fetch that reuses a file sets its
//! access time explicitly, so the order holds on file systems mounted with `noatime` too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::PkgCacheError;
use crate::layout::{check_provider_id, is_package_name, list_subdirs, pkg_cache_root};
use crate::lock::CacheLock;
use crate::partial::remove_stale;

/// The arguments of [`prune`]. With both limits, a file goes if either selects it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PruneOptions {
    /// Delete files last used more than this many days ago.
    pub older_than_days: Option<u64>,
    /// Then delete the least recently used files until the package files take at most this
    /// many bytes.
    pub max_size: Option<u64>,
    /// One provider, or all when `None`. `max_size` applies to the files of the selection.
    pub provider: Option<String>,
    pub dry_run: bool,
}

/// A deleted package file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrunedFile {
    pub path: PathBuf,
    pub bytes: u64,
    /// Last use, in seconds since the Unix epoch.
    pub last_used: i64,
}

/// The result of [`prune`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub removed: Vec<PrunedFile>,
    pub freed_bytes: u64,
    pub kept_files: usize,
    pub kept_bytes: u64,
    pub dry_run: bool,
}

/// Deletes least recently used package files, oldest first. Takes the exclusive cache lock.
pub fn prune(cache_dir: &Path, options: &PruneOptions) -> Result<PruneReport, PkgCacheError> {
    if let Some(provider) = &options.provider {
        check_provider_id(provider)?;
    }
    let _lock = if options.dry_run {
        None
    } else {
        Some(CacheLock::exclusive(cache_dir)?)
    };
    let dirs = provider_dirs(cache_dir, options.provider.as_deref())?;
    let mut files = Vec::new();
    for dir in &dirs {
        if !options.dry_run {
            remove_stale(dir).map_err(|error| PkgCacheError::io(dir, error))?;
        }
        files.extend(package_files(dir)?);
    }
    files.sort_by_key(|file| (file.last_used, file.path.clone()));

    let selected = select(&files, options, SystemTime::now());
    let mut report = PruneReport {
        removed: Vec::new(),
        freed_bytes: 0,
        kept_files: files.len() - selected,
        kept_bytes: files[selected..].iter().map(|file| file.bytes).sum(),
        dry_run: options.dry_run,
    };
    for file in files.into_iter().take(selected) {
        if !options.dry_run {
            match std::fs::remove_file(&file.path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(PkgCacheError::io(&file.path, error)),
            }
        }
        tracing::debug!(path = %file.path.display(), last_used = file.last_used, "pruned");
        report.freed_bytes += file.bytes;
        report.removed.push(file);
    }
    Ok(report)
}

/// Returns how many of the oldest `files` (sorted by last use) to delete.
fn select(files: &[PrunedFile], options: &PruneOptions, now: SystemTime) -> usize {
    let mut count = 0;
    if let Some(days) = options.older_than_days {
        let cutoff = now
            .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
            .and_then(|cutoff| cutoff.duration_since(UNIX_EPOCH).ok())
            .map_or(i64::MIN, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        count = files
            .iter()
            .take_while(|file| file.last_used < cutoff)
            .count();
    }
    if let Some(max_size) = options.max_size {
        let mut total: u64 = files[count..].iter().map(|file| file.bytes).sum();
        while total > max_size && count < files.len() {
            total -= files[count].bytes;
            count += 1;
        }
    }
    count
}

fn provider_dirs(cache_dir: &Path, provider: Option<&str>) -> Result<Vec<PathBuf>, PkgCacheError> {
    let root = pkg_cache_root(cache_dir);
    Ok(match provider {
        Some(id) => vec![root.join(id)],
        None => list_subdirs(&root)?
            .into_iter()
            .map(|id| root.join(id))
            .collect(),
    })
}

fn package_files(dir: &Path) -> Result<Vec<PrunedFile>, PkgCacheError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(PkgCacheError::io(dir, error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| PkgCacheError::io(dir, error))?;
        if !is_package_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let metadata = path
            .symlink_metadata()
            .map_err(|error| PkgCacheError::io(&path, error))?;
        if metadata.is_file() {
            files.push(PrunedFile {
                path,
                bytes: metadata.len(),
                last_used: metadata.atime().max(metadata.mtime()),
            });
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: u64, last_used: i64) -> PrunedFile {
        PrunedFile {
            path: PathBuf::from(name),
            bytes,
            last_used,
        }
    }

    #[test]
    fn selection_takes_old_files_then_trims_to_size() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 86_400);
        let files = [
            file("a", 10, 10 * 86_400),
            file("b", 10, 95 * 86_400),
            file("c", 10, 99 * 86_400),
        ];
        let by_age = PruneOptions {
            older_than_days: Some(30),
            ..PruneOptions::default()
        };
        assert_eq!(select(&files, &by_age, now), 1);
        let by_size = PruneOptions {
            max_size: Some(15),
            ..PruneOptions::default()
        };
        assert_eq!(select(&files, &by_size, now), 2);
        assert_eq!(select(&files, &PruneOptions::default(), now), 0);
    }
}
