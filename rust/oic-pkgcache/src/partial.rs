//! Temporary download files: created next to their final name, locked while written, and
//! renamed into place only after their size and checksum matched.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::layout::{is_partial_name, partial_name};
use crate::lock::{try_lock, LockKind};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A temporary file that is deleted on drop unless it was renamed into place.
///
/// The writer holds an exclusive OFD lock on it, so [`remove_stale`] in another process can
/// tell a live download from one whose process died: the kernel releases the lock at exit.
#[derive(Debug)]
pub(crate) struct PartialFile {
    path: PathBuf,
    file: Option<File>,
    persisted: bool,
}

impl PartialFile {
    /// Creates and locks a new temporary file for `file_name` in `dir`.
    pub(crate) fn create(dir: &Path, file_name: &str) -> std::io::Result<Self> {
        loop {
            let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(partial_name(file_name, sequence));
            let file = match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                // A file of a killed process whose id this process now has.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            };
            // A cleaner may have opened, locked and deleted the file between create and lock.
            // Then the lock fails or the name no longer leads to this file, so take a new name.
            let locked = try_lock(&file, LockKind::Exclusive).map_err(std::io::Error::from)?;
            if locked && same_file(&file, &path)? {
                return Ok(Self {
                    path,
                    file: Some(file),
                    persisted: false,
                });
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the file handle for writing; give it back with [`PartialFile::persist`].
    pub(crate) fn take_file(&mut self) -> File {
        self.file.take().expect("the file is taken once")
    }

    /// Syncs `file` and renames it to `target`. The lock is released when `file` closes.
    pub(crate) fn persist(mut self, file: &File, target: &Path) -> std::io::Result<()> {
        file.sync_all()?;
        std::fs::rename(&self.path, target)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.persisted {
            if let Err(error) = std::fs::remove_file(&self.path) {
                tracing::debug!(path = %self.path.display(), %error, "cannot remove temporary file");
            }
        }
    }
}

fn same_file(file: &File, path: &Path) -> std::io::Result<bool> {
    let opened = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.ino() == opened.ino() && named.dev() == opened.dev()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Deletes temporary files in `dir` that no live writer holds, such as those of a killed build.
/// Returns how many were deleted.
pub(crate) fn remove_stale(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if !is_partial_name(&name.to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::options().write(true).open(&path) else {
            continue;
        };
        // Holding the lock keeps a new writer from taking this name before it is deleted.
        if try_lock(&file, LockKind::Exclusive).unwrap_or(false) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
    }
    if removed > 0 {
        tracing::debug!(dir = %dir.display(), removed, "removed stale temporary files");
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_partial_file_survives_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let live = PartialFile::create(dir.path(), "a.deb").unwrap();
        std::fs::write(dir.path().join(".b.deb.part-1-1"), b"left by a killed run").unwrap();

        assert_eq!(remove_stale(dir.path()).unwrap(), 1);
        assert!(live.path().exists());
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
    }
}
