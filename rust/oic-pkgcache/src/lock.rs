//! Open file description (OFD) locks on `{cache_dir}/pkgCache/.lock` and on temporary files.
//!
//! OFD locks belong to an open file, not to a process, so two threads of one process conflict
//! like two processes do, and the kernel drops them when the file is closed, also when the
//! holder is killed. Linux forwards them to the server on NFS.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

use crate::error::PkgCacheError;
use crate::layout::lock_path;

/// The pause between attempts to take a lock another process holds.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Whether a lock may be shared with other holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// A held lock on the package cache. Dropping it releases the lock.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
    kind: LockKind,
}

impl CacheLock {
    /// Takes a shared lock, as a build does while it uses the cache. Waits while `clean` or
    /// `prune` holds the exclusive lock.
    pub fn shared(cache_dir: &Path) -> Result<Self, PkgCacheError> {
        Self::acquire(cache_dir, LockKind::Shared)
    }

    /// Takes the exclusive lock, as `clean` and `prune` do. When builds hold the cache, logs
    /// how many and waits for them.
    pub fn exclusive(cache_dir: &Path) -> Result<Self, PkgCacheError> {
        Self::acquire(cache_dir, LockKind::Exclusive)
    }

    pub fn kind(&self) -> LockKind {
        self.kind
    }

    fn acquire(cache_dir: &Path, kind: LockKind) -> Result<Self, PkgCacheError> {
        let path = lock_path(cache_dir);
        let parent = path.parent().expect("the lock file has a parent");
        fs_err::create_dir_all(parent).map_err(|error| PkgCacheError::io(parent, error))?;
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| PkgCacheError::io(&path, error))?;

        if !try_lock(&file, kind).map_err(|source| lock_error(&path, source))? {
            announce_wait(&file, &path, kind);
            wait_for_lock(&file, &path, kind)?;
        }
        tracing::debug!(path = %path.display(), ?kind, "package cache locked");
        Ok(Self { _file: file, kind })
    }
}

fn lock_error(path: &Path, source: Errno) -> PkgCacheError {
    PkgCacheError::Lock {
        path: path.to_path_buf(),
        source,
    }
}

fn announce_wait(file: &File, path: &Path, kind: LockKind) {
    let holders = count_holders(file).unwrap_or(0);
    match (kind, holders) {
        (LockKind::Exclusive, 0) => tracing::warn!(
            path = %path.display(),
            "waiting for running builds to release the cache"
        ),
        (LockKind::Exclusive, count) => tracing::warn!(
            path = %path.display(),
            "waiting for {count} running builds to release the cache"
        ),
        (LockKind::Shared, _) => tracing::warn!(
            path = %path.display(),
            "waiting for a running clean or prune to release the cache"
        ),
    }
}

fn flock(kind: LockKind) -> nix::libc::flock {
    let lock_type = match kind {
        LockKind::Shared => nix::libc::F_RDLCK,
        LockKind::Exclusive => nix::libc::F_WRLCK,
    };
    // A zero start and length cover the whole file, and OFD locks require a zero l_pid.
    nix::libc::flock {
        l_type: i16::try_from(lock_type).expect("lock types fit in i16"),
        l_whence: i16::try_from(nix::libc::SEEK_SET).expect("SEEK_SET fits in i16"),
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Tries to lock `file` without waiting. Returns `false` when another holder conflicts.
pub(crate) fn try_lock(file: &impl AsFd, kind: LockKind) -> Result<bool, Errno> {
    match fcntl(file, FcntlArg::F_OFD_SETLK(&flock(kind))) {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Retries the lock until it is free. It polls rather than blocking in the kernel, so that a
/// cancelled build stops waiting.
fn wait_for_lock(file: &File, path: &Path, kind: LockKind) -> Result<(), PkgCacheError> {
    loop {
        oic_cancel::sleep(LOCK_RETRY)?;
        if try_lock(file, kind).map_err(|source| lock_error(path, source))? {
            return Ok(());
        }
    }
}

/// Counts the shared OFD locks on `file` that `/proc/locks` lists. Locks that other NFS
/// clients hold are not listed there, so the count can be low.
fn count_holders(file: &File) -> Option<usize> {
    let metadata = file.metadata().ok()?;
    let device = metadata.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(device),
        nix::sys::stat::minor(device),
        metadata.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    Some(count_read_locks(&locks, &id))
}

/// Counts the granted OFD read locks on the file `id` (`major:minor:inode`) in a `/proc/locks`
/// text. Lines with `->` are requests still waiting.
fn count_read_locks(locks: &str, id: &str) -> usize {
    locks
        .lines()
        .filter(|line| !line.contains("->"))
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"OFDLCK")
                && fields.get(3) == Some(&"READ")
                && fields.get(5) == Some(&id)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_locks_are_counted_per_file() {
        let locks = "1: OFDLCK ADVISORY  READ  -1 00:2e:42 0 EOF\n\
                     2: OFDLCK ADVISORY  READ  -1 00:2e:42 0 EOF\n\
                     3: OFDLCK ADVISORY  WRITE -1 00:2e:43 0 EOF\n\
                     4: POSIX  ADVISORY  READ  99 00:2e:42 0 EOF\n\
                     4: -> OFDLCK ADVISORY  WRITE -1 00:2e:42 0 EOF\n";
        assert_eq!(count_read_locks(locks, "00:2e:42"), 2);
        assert_eq!(count_read_locks(locks, "00:2e:43"), 0);
    }

    #[test]
    fn shared_locks_coexist_and_block_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let first = CacheLock::shared(dir.path()).unwrap();
        let second = CacheLock::shared(dir.path()).unwrap();
        assert_eq!(second.kind(), LockKind::Shared);

        let file = File::options()
            .read(true)
            .write(true)
            .open(lock_path(dir.path()))
            .unwrap();
        assert!(!try_lock(&file, LockKind::Exclusive).unwrap());
        assert_eq!(count_holders(&file), Some(2));
        drop((first, second));
        assert!(try_lock(&file, LockKind::Exclusive).unwrap());
    }
}
