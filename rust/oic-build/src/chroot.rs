//! The chroot environment of a provider: its essential set and build tools, resolved, fetched
//! into the package cache, then created, restored or reused by `oic-chroot`.

use std::sync::Arc;

use oic_chroot::{ChrootOptions, ChrootPackage, ProviderInputs, RepositoryInputs};
use oic_config::{CheckedTemplate, Config, PackageFormat};
use oic_pkgcache::{FetchReport, Reporter};
use serde::Serialize;

use crate::error::BuildError;
use crate::packages::{repositories_of, resolve_set, PackageSet, PackagesOptions};
use crate::rpm_set::rpm_set;

/// The result of preparing the chroot environment.
#[derive(Debug, Clone, Serialize)]
pub struct ChrootReport {
    pub root: String,
    /// `created`, `restored` or `reused`.
    pub outcome: String,
    pub packages: usize,
    pub fetch: FetchReport,
}

/// Resolves, fetches and creates (or reuses) the provider's chroot environment.
pub fn prepare_chroot(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<ChrootReport, BuildError> {
    ensure_chroot(checked, config, options, reporter).map(|(_, report)| report)
}

/// Like [`prepare_chroot`], and returns the environment, which holds the provider's shared lock
/// while it lives. Debian providers get their environment from dpkg, RPM providers from the
/// host's `rpm --root`.
pub fn ensure_chroot(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<(oic_chroot::ChrootEnv, ChrootReport), BuildError> {
    let chroot_options = ChrootOptions {
        work_dir: config.work_dir.value.clone(),
        provider: provider_inputs(checked, config),
        snapshot: true,
    };
    // Held until the environment is installed from the cached files, so `cache clean` and
    // `cache prune` wait instead of deleting them.
    let _cache_lock = oic_pkgcache::CacheLock::shared(&config.cache_dir.value)?;
    let (environment, packages, fetch) = match checked.provider.package_format {
        PackageFormat::Deb => {
            let (outcome, packages) =
                resolve_set(checked, config, options, PackageSet::BuildTools)?;
            let fetch = crate::fetch::fetch_packages(&outcome, config, reporter)?;
            let chroot_packages = with_files(checked, config, packages);
            let environment = oic_chroot::ensure(&chroot_options, &chroot_packages)?;
            (environment, chroot_packages.len(), fetch)
        }
        PackageFormat::Rpm => {
            let set = rpm_set(checked, config, options, PackageSet::BuildTools)?;
            let fetch = crate::fetch::fetch_packages(&set.outcome, config, reporter)?;
            let environment = oic_chroot::ensure_rpm(&chroot_options, &set.packages, &set.install)?;
            (environment, set.packages.len(), fetch)
        }
    };
    let report = ChrootReport {
        root: environment.root().display().to_string(),
        outcome: environment.outcome().as_str().to_owned(),
        packages,
        fetch,
    };
    Ok((environment, report))
}

/// Pairs each package with the path of its file in the package cache.
pub(crate) fn with_files(
    checked: &CheckedTemplate,
    config: &Config,
    packages: Vec<oic_deb::Package>,
) -> Vec<ChrootPackage> {
    let pool = config
        .cache_dir
        .value
        .join("pkgCache")
        .join(&checked.provider.id);
    packages
        .into_iter()
        .map(|package| {
            let file_name = package
                .filename
                .rsplit('/')
                .next()
                .unwrap_or(&package.filename);
            ChrootPackage {
                deb: pool.join(file_name),
                package,
            }
        })
        .collect()
}

/// Collects the provider inputs the chroot manifest records: repository locations and keys.
pub(crate) fn provider_inputs(checked: &CheckedTemplate, config: &Config) -> ProviderInputs {
    let repositories = repositories_of(checked, config)
        .into_iter()
        .map(|repository| RepositoryInputs {
            url: repository.url.clone().unwrap_or_else(|| {
                repository
                    .path
                    .as_ref()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default()
            }),
            suite: repository.suite.clone().unwrap_or_default(),
            components: repository.components.clone(),
            key_fingerprints: repository
                .keys
                .iter()
                .map(|key| String::from(key.clone()))
                .collect(),
        })
        .collect();
    ProviderInputs {
        id: checked.provider.id.clone(),
        repositories,
    }
}
