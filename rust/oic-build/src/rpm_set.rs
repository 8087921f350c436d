//! The ordered RPM set of a root, ready for `oic_chroot::install_rpm_root`: resolved packages
//! in install order, paired with their paths in the package cache, and the settings rpm needs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oic_chroot::{RpmChrootPackage, RpmInstall};
use oic_config::{CheckedTemplate, Config};
use oic_rpm::RpmCandidate;
use oic_signature::Keyring;

use crate::error::BuildError;
use crate::packages::{PackageSet, PackagesOptions, PackagesOutcome};
use crate::rpm_order::install_order;
use crate::rpm_packages::{file_name_of, resolve_rpm_set};

/// A resolved RPM set in install order.
#[derive(Debug)]
pub struct RpmSet {
    /// The outcome of the packages stage; fetch its packages with
    /// [`crate::fetch::fetch_packages`] before installing, because `packages` names the cache
    /// paths that the fetch fills.
    pub outcome: PackagesOutcome,
    /// The packages in install order, each with its path in `{cache_dir}/pkgCache/{provider}/`.
    pub packages: Vec<RpmChrootPackage>,
    /// The repositories' public keys, written as armored files to
    /// `{work_dir}/{provider}/rpm-keys/`, and whether rpm checks signatures.
    pub install: RpmInstall,
}

/// Resolves `set` for an RPM provider and returns it in install order (see
/// [`crate::rpm_order`]) with the files it will have in the package cache. It writes the
/// repositories' keys for `rpm --import` and fetches nothing.
///
/// [`PackageSet::Image`] is the template's packages and kernel plus the essential set, and
/// [`PackageSet::BuildTools`] the provider's build tools plus the essential set.
pub fn rpm_set(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
    set: PackageSet,
) -> Result<RpmSet, BuildError> {
    let resolved = resolve_rpm_set(checked, config, options, set)?;
    let pool = config
        .cache_dir
        .value
        .join("pkgCache")
        .join(&checked.provider.id);
    let order = install_order(resolved.packages.len(), &resolved.edges);
    let packages = order
        .into_iter()
        .map(|position| chroot_package(&resolved.packages[position], &pool))
        .collect::<Result<Vec<_>, _>>()?;

    let key_dir = config
        .work_dir
        .value
        .join(&checked.provider.id)
        .join("rpm-keys");
    let install = install_settings(&resolved.packages, &resolved.keyrings, &key_dir)?;
    Ok(RpmSet {
        outcome: resolved.outcome,
        packages,
        install,
    })
}

/// Converts a candidate to the package that `install_rpm_root` takes.
fn chroot_package(candidate: &RpmCandidate, pool: &Path) -> Result<RpmChrootPackage, BuildError> {
    let package = &candidate.package;
    // primary.xml writes epoch 0 for a package without one, as rpm compares them equal.
    let epoch = match package.evr.epoch.as_deref() {
        None => None,
        Some(text) if text.bytes().all(|digit| digit == b'0') => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| BuildError::Unsupported {
            message: format!(
                "Package `{}` of repository `{}` has the epoch `{text}`, which is not a \
                 number: fix the repository's primary.xml",
                package.nevra(),
                candidate.repository
            ),
        })?),
    };
    Ok(RpmChrootPackage {
        name: package.name.clone(),
        epoch,
        version: package.evr.version.clone(),
        release: package.evr.release.clone().unwrap_or_default(),
        arch: package.arch.clone(),
        file: pool.join(file_name_of(&package.location)),
        checksum_type: package.checksum.algorithm.name().to_owned(),
        checksum: package.checksum.value.clone(),
    })
}

/// Writes the keys of the repositories that `packages` come from and turns signature checks
/// off when any of them has `gpgCheck: false`, because rpm's `--nosignature` applies to the
/// whole transaction. The package cache has already checked the signatures of every package
/// from the other repositories.
fn install_settings(
    packages: &[RpmCandidate],
    keyrings: &HashMap<String, Option<Keyring>>,
    key_dir: &Path,
) -> Result<RpmInstall, BuildError> {
    let mut unchecked: Vec<&str> = packages
        .iter()
        .filter(|candidate| matches!(keyrings.get(&candidate.repository), Some(None)))
        .map(|candidate| candidate.repository.as_str())
        .collect();
    unchecked.sort_unstable();
    unchecked.dedup();
    if !unchecked.is_empty() {
        tracing::warn!(
            repositories = ?unchecked,
            "rpm checks no package signature in this transaction, because these repositories \
             have gpgCheck off"
        );
    }

    let mut keys = Vec::new();
    let mut ids: Vec<&String> = keyrings.keys().collect();
    ids.sort_unstable();
    for id in ids {
        if let Some(Some(keyring)) = keyrings.get(id) {
            keys.extend(write_keys(id, keyring, key_dir)?);
        }
    }
    Ok(RpmInstall {
        keys,
        check_signatures: unchecked.is_empty(),
    })
}

/// Writes each key of `keyring` armored to `{key_dir}/{repository}-{n}.asc`.
fn write_keys(
    repository: &str,
    keyring: &Keyring,
    key_dir: &Path,
) -> Result<Vec<PathBuf>, BuildError> {
    let armored = keyring
        .armored_keys()
        .map_err(|error| BuildError::Unsupported {
            message: format!("Failed to export the keys of repository `{repository}`: {error}"),
        })?;
    let safe: String = repository
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    armored
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let path = key_dir.join(format!("{safe}-{index}.asc"));
            oic_chroot::manifest::write_atomic(&path, text.as_bytes())?;
            Ok(path)
        })
        .collect()
}
