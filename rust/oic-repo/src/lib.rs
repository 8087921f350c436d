//! Repository metadata for the packages stage.
//!
//! For each repository, fetch `InRelease` (or `Release` with `Release.gpg`), verify its OpenPGP
//! signature against the repository's keys and honour `Valid-Until`. Then fetch the `Packages`
//! indexes the Release file lists (`.xz`, `.gz` or plain, in that order) and check their size and
//! SHA256 against it before parsing. Everything verified is kept in [`cache::MetadataCache`], so
//! later builds revalidate with one conditional request and `--offline` builds need none.

pub mod cache;
mod error;
pub mod fetch;
mod metadata;

/// Package-name globs, shared with the solver; kept here for the crates that import them from
/// this path.
pub use oic_deb::glob;

pub use cache::MetadataCache;
pub use error::RepoError;
pub use fetch::{Fetcher, Validators};
pub use metadata::{load_keyring, MetadataOptions, MetadataSource, RepoMetadata, SignatureStatus};

use oic_config::Repository;

/// Loads the metadata of every repository, concurrently.
pub async fn load_repositories(
    repositories: &[Repository],
    options: &MetadataOptions,
) -> Result<Vec<RepoMetadata>, RepoError> {
    let fetcher = Fetcher::new()?;
    let cache = MetadataCache::new(&options.cache_dir, &options.provider_id);
    let loads = repositories
        .iter()
        .map(|repository| metadata::load_repository(repository, &fetcher, &cache, options));
    futures_util::future::try_join_all(loads).await
}

/// Loads the metadata of every repository on a runtime of its own.
pub fn load_repositories_blocking(
    repositories: &[Repository],
    options: &MetadataOptions,
) -> Result<Vec<RepoMetadata>, RepoError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| RepoError::Cache {
            path: "tokio runtime".to_owned(),
            source,
        })?;
    runtime.block_on(oic_cancel::or_cancelled(load_repositories(
        repositories,
        options,
    )))
}
