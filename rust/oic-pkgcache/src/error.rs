//! Errors of the package cache.

use std::path::PathBuf;

use crate::checksum::ChecksumType;

/// A failure to download, check or manage cached packages. URLs never carry credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkgCacheError {
    #[error("I/O error at `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("Failed to download `{url}`: {message}")]
    Download { url: String, message: String },

    #[error(
        "Checksum mismatch for `{url}`: the index promises {checksum_type} {expected} and \
         {expected_size} bytes, the server sent {checksum_type} {actual} and {actual_size} bytes; \
         the mirror may be changing or corrupt, so update the metadata or try another mirror"
    )]
    Checksum {
        url: String,
        checksum_type: ChecksumType,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },

    #[error("Package file `{file_name}` from repository `{repository}` is rejected: {source}")]
    Rejected {
        file_name: String,
        repository: String,
        /// The failure of the [`crate::FileCheck`], such as an `oic_rpm::RpmError`.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{} downloads failed:{}", .0.len(), list(.0))]
    Several(Vec<PkgCacheError>),

    #[error("Invalid package file name `{file_name}`: {reason}")]
    InvalidFileName {
        file_name: String,
        reason: &'static str,
    },

    #[error("Invalid provider id `{provider_id}`: expected a folder name without `/`")]
    InvalidProviderId { provider_id: String },

    #[error(
        "Invalid {checksum_type} checksum `{checksum}` for `{file_name}`: expected {} \
         hexadecimal digits",
        checksum_type.hex_len()
    )]
    InvalidChecksum {
        file_name: String,
        checksum_type: ChecksumType,
        checksum: String,
    },

    #[error(
        "Two wanted files share the name `{file_name}` but differ in size or checksum: `{first}` \
         and `{second}`; the cache folder is flat, so one provider cannot hold both"
    )]
    ConflictingFiles {
        file_name: String,
        first: String,
        second: String,
    },

    #[error("Package `{package}` comes from repository `{repository}`, which has no base URL")]
    UnknownRepository { package: String, repository: String },

    #[error("Invalid number of workers {workers}: expected 1 to 100")]
    InvalidWorkers { workers: usize },

    #[error("Failed to create the HTTP client: {message}")]
    Client { message: String },

    #[error("Failed to lock `{}`: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },

    #[error(
        "Cannot delete `{}`: `{}` is mounted inside it, so a build may still be running; \
         unmount it first",
        path.display(),
        mount_point.display()
    )]
    MountedTree { path: PathBuf, mount_point: PathBuf },

    #[error(transparent)]
    Repo(#[from] oic_repo::RepoError),

    #[error(
        "Offline, and {count} package files are missing from the package cache or fail their \
         checks ({files}): run once without --offline to download them"
    )]
    OfflineMissing { count: usize, files: String },

    #[error(transparent)]
    Cancelled(#[from] oic_cancel::Cancelled),
}

impl PkgCacheError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

fn list(errors: &[PkgCacheError]) -> String {
    use std::fmt::Write as _;
    errors.iter().fold(String::new(), |mut text, error| {
        let _ = write!(text, "\n  - {error}");
        text
    })
}
