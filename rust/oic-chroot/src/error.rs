//! Errors of the chroot stage.

use std::path::PathBuf;

/// A failure to create, restore, snapshot, mount or use a chroot environment. Every variant names
/// the path, archive entry, mount point or command it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChrootError {
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error("Invalid package archive `{deb}`: {message}")]
    InvalidDeb { deb: PathBuf, message: String },

    #[error(
        "Package archive `{deb}`: entry `{entry}` is rejected: {reason} (the archive is damaged \
         or hostile; nothing outside the chroot was changed)"
    )]
    UnsafeEntry {
        deb: PathBuf,
        entry: String,
        reason: String,
    },

    #[error("Package archive `{deb}`: failed to extract entry `{entry}`: {source}")]
    Extract {
        deb: PathBuf,
        entry: String,
        #[source]
        source: std::io::Error,
    },

    #[error("Command failed ({status}): {command}\n{output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },

    #[error("Failed to {action} `{target}`: {source}")]
    Mount {
        action: &'static str,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },

    #[error(
        "Refusing to remove `{path}` because `{mount_point}` is mounted inside it: unmount it \
         first (`umount -l {mount_point}`)"
    )]
    MountedInside { path: PathBuf, mount_point: PathBuf },

    #[error("Failed to lock `{path}`: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },

    #[error("Invalid manifest `{path}`: {message}")]
    Manifest { path: PathBuf, message: String },

    #[error("Snapshot `{path}` is unusable: {message}")]
    Snapshot { path: PathBuf, message: String },

    #[error("The chroot environment `{root}` is incomplete: {message}")]
    Check { root: PathBuf, message: String },

    #[error("Invalid package set: {message}")]
    PackageSet { message: String },

    #[error(transparent)]
    Cancelled(#[from] oic_cancel::Cancelled),
}
