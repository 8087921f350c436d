//! The mounts a chroot environment needs while commands run in it: proc, sys, a private minimal
//! /dev, devpts and run. Each mount is held by a guard, and [`ChrootMounts`] releases them in
//! reverse order when dropped, on return, error or panic. The signal thread releases them on
//! SIGINT and SIGTERM (see [`crate::signals`]).

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::error::ChrootError;
use crate::mountinfo;
use crate::signals::{self, MountRegistration};

/// One mount, unmounted when dropped.
#[derive(Debug)]
struct MountGuard {
    target: PathBuf,
    _registration: MountRegistration,
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(error) = mountinfo::unmount(&self.target) {
            tracing::error!(%error, "failed to release a mount");
        }
    }
}

/// The mounts of one chroot environment, released in reverse order when dropped.
#[derive(Debug)]
pub struct ChrootMounts {
    root: PathBuf,
    guards: Vec<MountGuard>,
}

impl ChrootMounts {
    /// Mounts proc, sys, /dev, /dev/pts and /run inside `root`. A failure releases what was
    /// already mounted.
    pub fn mount(root: &Path) -> Result<Self, ChrootError> {
        signals::install();
        let mut mounts = Self {
            root: root.to_path_buf(),
            guards: Vec::new(),
        };
        let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mounts.add("proc", "proc", hardened, None)?;
        mounts.add("sys", "sysfs", hardened | MsFlags::MS_RDONLY, None)?;
        mounts.add(
            "dev",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("mode=0755,size=1m"),
        )?;
        populate_dev(&root.join("dev"))?;
        mounts.add(
            "dev/pts",
            "devpts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        )?;
        mounts.add(
            "run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        )?;
        Ok(mounts)
    }

    /// Bind-mounts the host folder `source` at `relative` inside the root (created as a folder
    /// when missing), read-only when `read_only` is set. It is released with the other mounts.
    pub fn bind(
        &mut self,
        source: &Path,
        relative: &str,
        read_only: bool,
    ) -> Result<(), ChrootError> {
        let target = real_dir(&self.root, relative)?;
        let failed = |action: &'static str, target: &Path| {
            let target = target.to_path_buf();
            move |source| ChrootError::Mount {
                action,
                target,
                source,
            }
        };
        mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(failed("bind-mount", &target))?;
        let guard = MountGuard {
            _registration: signals::register_mount(target.clone()),
            target,
        };
        let private = MsFlags::MS_PRIVATE;
        mount(
            None::<&str>,
            &guard.target,
            None::<&str>,
            private,
            None::<&str>,
        )
        .map_err(failed("make private", &guard.target))?;
        if read_only {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(
                None::<&str>,
                &guard.target,
                None::<&str>,
                flags,
                None::<&str>,
            )
            .map_err(failed("make read-only", &guard.target))?;
        }
        self.guards.push(guard);
        Ok(())
    }

    /// Returns the chroot directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Mounts a new `fstype` file system at `relative` inside the root, as a private mount.
    fn add(
        &mut self,
        relative: &str,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), ChrootError> {
        let target = real_dir(&self.root, relative)?;
        mount(Some(fstype), &target, Some(fstype), flags, data).map_err(|source| {
            ChrootError::Mount {
                action: "mount",
                target: target.clone(),
                source,
            }
        })?;
        let guard = MountGuard {
            _registration: signals::register_mount(target.clone()),
            target,
        };
        // Keeps unmount events from reaching other mount namespaces and their peers.
        mount(
            None::<&str>,
            &guard.target,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|source| ChrootError::Mount {
            action: "make private",
            target: guard.target.clone(),
            source,
        })?;
        self.guards.push(guard);
        Ok(())
    }

    /// Unmounts everything in reverse order.
    pub fn release(mut self) {
        self.release_all();
    }

    fn release_all(&mut self) {
        while let Some(guard) = self.guards.pop() {
            drop(guard);
        }
    }
}

impl Drop for ChrootMounts {
    fn drop(&mut self) {
        self.release_all();
    }
}

/// Creates `relative` below `root` as a real directory and returns its path. It rejects a
/// symlink on the way, because mount(2) follows symlinks in its target and could then cover a
/// host directory.
fn real_dir(root: &Path, relative: &str) -> Result<PathBuf, ChrootError> {
    let mut path = root.to_path_buf();
    for component in relative.split('/') {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(ChrootError::Check {
                    root: root.to_path_buf(),
                    message: format!("mount point `{}` is not a directory", path.display()),
                })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                fs_err::create_dir(&path)?;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(path)
}

/// The character devices of the private /dev: name, major, minor, permissions.
const DEVICES: [(&str, u64, u64, u32); 7] = [
    ("null", 1, 3, 0o666),
    ("zero", 1, 5, 0o666),
    ("full", 1, 7, 0o666),
    ("random", 1, 8, 0o666),
    ("urandom", 1, 9, 0o666),
    ("tty", 5, 0, 0o666),
    ("console", 5, 1, 0o600),
];

/// Fills the fresh tmpfs at `dev` with the devices and links programs expect.
fn populate_dev(dev: &Path) -> Result<(), ChrootError> {
    use std::os::unix::fs::PermissionsExt as _;
    for (name, major, minor, mode) in DEVICES {
        let path = dev.join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            makedev(major, minor),
        )
        .map_err(|source| ChrootError::Mount {
            action: "create the device",
            target: path.clone(),
            source,
        })?;
        // mknod applies the umask, so the mode is set again.
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        fs_err::os::unix::fs::symlink(target, dev.join(name))?;
    }
    fs_err::create_dir(dev.join("pts"))?;
    let shm = dev.join("shm");
    fs_err::create_dir(&shm)?;
    fs_err::set_permissions(&shm, std::fs::Permissions::from_mode(0o1777))?;
    Ok(())
}
