//! Errors of the build stages.

/// A failure in a build stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error(transparent)]
    Metadata(#[from] oic_repo::RepoError),

    #[error(transparent)]
    Resolution(#[from] oic_solve::SolveError),

    #[error(transparent)]
    Cache(#[from] oic_pkgcache::PkgCacheError),

    #[error(transparent)]
    Chroot(#[from] oic_chroot::ChrootError),

    #[error("Provider `{provider}` uses {format} packages, which this version cannot install yet")]
    UnsupportedFormat { provider: String, format: String },
}
