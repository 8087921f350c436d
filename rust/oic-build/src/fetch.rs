//! The download half of the packages stage: every resolved package file, verified, in
//! `{cache_dir}/pkgCache/{provider-id}/`, with the dependency graph beside them.

use std::sync::Arc;

use oic_config::Config;
use oic_pkgcache::{FetchOptions, FetchReport, Reporter, WantedFile};

use crate::error::BuildError;
use crate::packages::PackagesOutcome;

/// Returns the files a resolution needs, named as the repositories name them.
pub fn wanted_files(outcome: &PackagesOutcome) -> Vec<WantedFile> {
    outcome
        .packages
        .iter()
        .map(|package| WantedFile {
            file_name: package
                .filename
                .rsplit('/')
                .next()
                .unwrap_or(&package.filename)
                .to_owned(),
            url: package.url.clone(),
            size: package.size,
            checksum_type: package.checksum_type,
            checksum: package.checksum.clone(),
            repository: package.repository.clone(),
        })
        .collect()
}

/// Downloads what the cache lacks, checks what it has, and writes `chrootpkgs.dot`.
pub fn fetch_packages(
    outcome: &PackagesOutcome,
    config: &Config,
    reporter: Arc<dyn Reporter>,
) -> Result<FetchReport, BuildError> {
    let cache_dir = &config.cache_dir.value;
    let options = FetchOptions {
        workers: usize::try_from(config.workers.value).unwrap_or(1),
        file_check: outcome.file_check.clone(),
        offline: outcome.offline,
        ..FetchOptions::default()
    };
    let wanted = wanted_files(outcome);
    let report = oic_pkgcache::fetch_packages_blocking(
        cache_dir,
        &outcome.provider_id,
        &wanted,
        &options,
        reporter,
    )?;
    oic_pkgcache::write_dot(cache_dir, &outcome.provider_id, &outcome.dot)?;
    tracing::info!("{}", report.summary_line());
    Ok(report)
}
