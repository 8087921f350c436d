//! Open file description locks (`F_OFD_SETLK`) on a provider's lock files. The kernel releases
//! them when the file is closed, including when the process is killed.

use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

use crate::error::ChrootError;

/// The pause between attempts to take a lock another process holds.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// A held lock on one file, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    file: fs_err::File,
}

impl FileLock {
    /// Takes an exclusive lock on `path`, creating the file. When another process holds it, it
    /// logs `waiting` once and retries until the lock is free or the work is cancelled.
    pub fn exclusive(path: &Path, waiting: &str) -> Result<Self, ChrootError> {
        let lock = Self::open(path)?;
        lock.acquire(libc::F_WRLCK, waiting)?;
        Ok(lock)
    }

    /// Takes a shared lock on `path`, creating the file, and waits like [`Self::exclusive`].
    pub fn shared(path: &Path, waiting: &str) -> Result<Self, ChrootError> {
        let lock = Self::open(path)?;
        lock.acquire(libc::F_RDLCK, waiting)?;
        Ok(lock)
    }

    /// Takes an exclusive lock on `path` if no one holds it, without waiting.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>, ChrootError> {
        let lock = Self::open(path)?;
        match lock.set(libc::F_WRLCK) {
            Ok(()) => Ok(Some(lock)),
            Err(Errno::EAGAIN | Errno::EACCES) => Ok(None),
            Err(source) => Err(lock.error(source)),
        }
    }

    /// Turns a shared lock into an exclusive one. It releases the lock first, because two
    /// holders that both wait to convert would block each other forever, so the caller must
    /// check the state again afterwards.
    pub fn upgrade(&self, waiting: &str) -> Result<(), ChrootError> {
        self.set(libc::F_UNLCK)
            .map_err(|source| self.error(source))?;
        self.acquire(libc::F_WRLCK, waiting)
    }

    /// Turns the exclusive lock into a shared one, atomically, so that other readers may enter
    /// while a writer still waits.
    pub fn downgrade(&self) -> Result<(), ChrootError> {
        self.set(libc::F_RDLCK).map_err(|source| self.error(source))
    }

    fn open(path: &Path) -> Result<Self, ChrootError> {
        let file = fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    fn acquire(&self, kind: i32, waiting: &str) -> Result<(), ChrootError> {
        match self.set(kind) {
            Ok(()) => return Ok(()),
            Err(Errno::EAGAIN | Errno::EACCES) => {
                tracing::info!(lock = %self.path.display(), "{waiting}");
            }
            Err(source) => return Err(self.error(source)),
        }
        loop {
            oic_cancel::sleep(LOCK_RETRY)?;
            match self.set(kind) {
                Ok(()) => return Ok(()),
                Err(Errno::EAGAIN | Errno::EACCES) => {}
                Err(source) => return Err(self.error(source)),
            }
        }
    }

    /// Sets the lock without waiting. Waits poll instead of blocking in the kernel, so that a
    /// cancellation ends them.
    fn set(&self, kind: i32) -> Result<(), Errno> {
        let request = libc::flock {
            l_type: i16::try_from(kind).expect("lock types fit in a short"),
            l_whence: i16::try_from(libc::SEEK_SET).expect("SEEK_SET fits in a short"),
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        let fd = self.file.file().as_fd();
        loop {
            match fcntl(fd, FcntlArg::F_OFD_SETLK(&request)) {
                Err(Errno::EINTR) => {}
                other => return other.map(drop),
            }
        }
    }

    fn error(&self, source: Errno) -> ChrootError {
        ChrootError::Lock {
            path: self.path.clone(),
            source,
        }
    }
}
