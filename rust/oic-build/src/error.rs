//! Errors of the build stages.

/// A failure in a build stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error(transparent)]
    Metadata(#[from] oic_repo::RepoError),

    #[error(transparent)]
    Resolution(#[from] oic_solve::SolveError),

    /// RPM metadata, resolution and package checks.
    #[error(transparent)]
    Rpm(#[from] oic_rpm::RpmError),

    #[error(transparent)]
    Cache(#[from] oic_pkgcache::PkgCacheError),

    #[error(transparent)]
    Chroot(#[from] oic_chroot::ChrootError),

    #[error(transparent)]
    Template(#[from] oic_config::TemplateError),

    #[error(transparent)]
    Image(#[from] oic_image::ImageError),

    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error(
        "Building an image needs root, for mounts and chroot: run the build as root (for \
         example with sudo)"
    )]
    NotRoot,

    #[error("Additional file `{path}` cannot be read: {message}; fix `local` in systemConfig.additionalFiles")]
    MissingFile {
        path: std::path::PathBuf,
        message: String,
    },

    #[error("{message}")]
    Unsupported { message: String },

    #[error(
        "Partition `{partition}`, mounted at `/`, is too small: the resolved packages install \
         {installed} bytes and the partition has {size}; make it larger in the template's disk \
         section"
    )]
    RootTooSmall {
        partition: String,
        installed: u64,
        size: u64,
    },

    #[error(
        "disk.size {size} bytes cannot be a file in `{folder}`: {message}; choose a smaller \
         disk.size or a work_dir on a file system that allows larger files"
    )]
    DiskTooLarge {
        size: u64,
        folder: std::path::PathBuf,
        message: String,
    },

    #[error("Failure injected by OIC_TEST_FAIL_STAGE in stage `{stage}`")]
    Injected { stage: String },

    #[error("Provider `{provider}` uses {format} packages, which this version cannot install yet")]
    UnsupportedFormat { provider: String, format: String },

    #[error(transparent)]
    Cancelled(#[from] oic_cancel::Cancelled),
}
