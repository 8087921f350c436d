//! The packages stage for RPM providers: verified repomd and primary metadata of every
//! repository, filelists.xml when a file dependency needs it, the resolved set from `oic-rpm`'s
//! solver, and the check that each fetched `.rpm`
//! file must pass before the package cache keeps it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use oic_config::{CheckedTemplate, Config, Provider};
use oic_pkgcache::{
    CheckFailure, ChecksumType, FileCheck, SharedFileCheck, VerifyIndex, WantedFile,
};
use oic_rpm::{
    ChecksumAlgorithm, RpmCandidate, RpmMetadataOptions, RpmPackage, RpmRepoMetadata,
    RpmResolution, RpmSolveRequest, RpmUniverse,
};
use oic_signature::Keyring;

use crate::error::BuildError;
use crate::packages::{
    repositories_of, PackageSet, PackagesOptions, PackagesOutcome, RepositoryReport, ResolvedEdge,
    ResolvedPackage,
};
use crate::rpm_order::OrderEdge;

/// Loads the metadata of every repository, then resolves the template's packages and the
/// provider's essential set.
pub fn resolve_rpm_packages(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
) -> Result<PackagesOutcome, BuildError> {
    resolve_rpm_set(checked, config, options, PackageSet::Image).map(|resolved| resolved.outcome)
}

/// A resolved RPM set with what installing it needs besides the outcome.
#[derive(Debug)]
pub(crate) struct RpmSetResolution {
    pub outcome: PackagesOutcome,
    /// The chosen packages, in the order of `outcome.packages`, with their repository ids.
    pub packages: Vec<RpmCandidate>,
    /// The dependency edges between positions of `packages`.
    pub edges: Vec<OrderEdge>,
    /// The keys of each repository id; `None` when its `gpgCheck` is false.
    pub keyrings: HashMap<String, Option<Keyring>>,
}

/// Loads the metadata of every repository, then resolves `set`.
pub(crate) fn resolve_rpm_set(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
    set: PackageSet,
) -> Result<RpmSetResolution, BuildError> {
    let started = Instant::now();
    let metadata_options = metadata_options(checked, config, options);
    let metadata = load_all(checked, config, &metadata_options)?;
    let metadata_elapsed = started.elapsed();

    let started = Instant::now();
    let reports = metadata.iter().map(report_of).collect();
    let mut check = RpmFileCheck::new(&metadata);
    let sources: Vec<_> = metadata
        .iter()
        .map(RpmRepoMetadata::filelists_source)
        .collect();
    let request = solve_request(checked, set);
    let mut universe = universe_of(metadata);
    oic_rpm::add_file_provides_blocking(&mut universe, &request, &sources, &metadata_options)?;
    let resolution = oic_rpm::solve(&universe, &request)?;
    let mut outcome = outcome_of(checked, &resolution, &check.base_urls, reports);
    outcome.offline = options.offline;
    for candidate in &resolution.packages {
        let package = &candidate.package;
        let file_name = file_name_of(&package.location).to_owned();
        check.packages.insert(file_name, package.clone());
    }
    let packages = resolution
        .packages
        .iter()
        .map(|&candidate| candidate.clone())
        .collect();
    let edges = resolution
        .edges
        .iter()
        .map(|edge| OrderEdge {
            from: edge.from,
            to: edge.to,
            pre: edge.pre,
        })
        .collect();
    let keyrings = check.keyrings.clone();
    outcome.metadata_seconds = metadata_elapsed.as_secs_f64();
    outcome.solve_seconds = started.elapsed().as_secs_f64();
    outcome.file_check = Some(SharedFileCheck(Arc::new(check)));
    tracing::info!(
        packages = outcome.packages.len(),
        metadata_seconds = outcome.metadata_seconds,
        solve_seconds = outcome.solve_seconds,
        "packages resolved"
    );
    Ok(RpmSetResolution {
        outcome,
        packages,
        edges,
        keyrings,
    })
}

fn metadata_options(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
) -> RpmMetadataOptions {
    let provider = &checked.provider;
    let mut metadata_options = RpmMetadataOptions::new(
        &config.cache_dir.value,
        &provider.id,
        &provider.package_arch,
    );
    metadata_options.offline = options.offline;
    metadata_options
}

fn load_all(
    checked: &CheckedTemplate,
    config: &Config,
    metadata_options: &RpmMetadataOptions,
) -> Result<Vec<RpmRepoMetadata>, BuildError> {
    repositories_of(checked, config)
        .iter()
        .map(|repository| oic_rpm::load_repository_blocking(repository, metadata_options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BuildError::from)
}

/// Builds the `cache verify` index of an RPM provider from its cached, verified repomd and
/// primary metadata, with no network access. Each `.rpm` file name maps to the size and
/// checksum of its primary entry, in that entry's checksum type.
pub fn load_rpm_verify_index(
    provider: &Provider,
    cache_dir: &Path,
) -> Result<VerifyIndex, BuildError> {
    let mut options = RpmMetadataOptions::new(cache_dir, &provider.id, &provider.package_arch);
    options.offline = true;

    let mut index = VerifyIndex::new();
    for repository in &provider.repositories {
        let metadata = oic_rpm::load_repository_blocking(repository, &options)?;
        for package in &metadata.packages {
            let checksum_type = checksum_type_of(package.checksum.algorithm);
            let file_name = file_name_of(&package.location);
            index.insert_checksum(
                file_name,
                package.size,
                checksum_type,
                &package.checksum.value,
            );
        }
    }
    Ok(index)
}

fn report_of(metadata: &RpmRepoMetadata) -> RepositoryReport {
    RepositoryReport {
        id: metadata.id.clone(),
        name: metadata.repository.name.clone(),
        url: oic_repo::fetch::redact(&metadata.base_url),
        source: metadata.source,
        signature: metadata.signature.clone(),
        packages: metadata.packages.len(),
    }
}

fn universe_of(metadata: Vec<RpmRepoMetadata>) -> RpmUniverse {
    let mut candidates = Vec::new();
    for repository in metadata {
        let priority = i32::try_from(repository.repository.priority).unwrap_or(i32::MAX);
        let id = repository.id;
        candidates.extend(repository.packages.into_iter().map(|package| RpmCandidate {
            package,
            repository: id.clone(),
            priority,
        }));
    }
    RpmUniverse::new(candidates)
}

/// Requests the names of `set`, plus the provider's essential names.
fn solve_request(checked: &CheckedTemplate, set: PackageSet) -> RpmSolveRequest {
    let system = &checked.merged.system_config;
    let requests = match set {
        PackageSet::Image => system
            .packages
            .iter()
            .chain(&system.kernel.packages)
            .map(|package| package.value.clone())
            .collect(),
        PackageSet::BuildTools => checked.provider.build_tools.clone(),
    };
    RpmSolveRequest {
        requests,
        essential: checked.provider.essential.packages.clone(),
    }
}

fn outcome_of(
    checked: &CheckedTemplate,
    resolution: &RpmResolution<'_>,
    base_urls: &HashMap<String, String>,
    repositories: Vec<RepositoryReport>,
) -> PackagesOutcome {
    let packages: Vec<ResolvedPackage> = resolution
        .packages
        .iter()
        .map(|candidate| resolved(candidate, base_urls))
        .collect();
    let edges = resolution
        .edges
        .iter()
        .map(|edge| ResolvedEdge {
            from: packages[edge.from].name.clone(),
            to: packages[edge.to].name.clone(),
            field: if edge.pre {
                "Requires(pre)"
            } else {
                "Requires"
            }
            .to_owned(),
            relation: edge.requirement.clone(),
            provided: edge.provided.clone(),
        })
        .collect();
    PackagesOutcome {
        provider_id: checked.provider.id.clone(),
        repositories,
        packages,
        edges,
        dot: resolution.to_dot(),
        metadata_seconds: 0.0,
        solve_seconds: 0.0,
        file_check: None,
        offline: false,
    }
}

fn resolved(candidate: &RpmCandidate, base_urls: &HashMap<String, String>) -> ResolvedPackage {
    let package = &candidate.package;
    let checksum_type = checksum_type_of(package.checksum.algorithm);
    let base = package
        .location_base
        .as_deref()
        .or_else(|| base_urls.get(&candidate.repository).map(String::as_str))
        .unwrap_or_default();
    ResolvedPackage {
        name: package.name.clone(),
        version: package.evr.to_string(),
        architecture: package.arch.clone(),
        repository: candidate.repository.clone(),
        filename: package.location.clone(),
        url: format!("{}/{}", base.trim_end_matches('/'), package.location),
        size: package.size,
        checksum_type,
        checksum: package.checksum.value.clone(),
        sha256: (checksum_type == ChecksumType::Sha256).then(|| package.checksum.value.clone()),
        installed_size: Some(package.installed_size.div_ceil(1024)),
        essential: false,
    }
}

/// Returns the package cache's name for a checksum type of primary.xml.
fn checksum_type_of(algorithm: ChecksumAlgorithm) -> ChecksumType {
    match algorithm {
        ChecksumAlgorithm::Sha224 => ChecksumType::Sha224,
        ChecksumAlgorithm::Sha256 => ChecksumType::Sha256,
        ChecksumAlgorithm::Sha384 => ChecksumType::Sha384,
        ChecksumAlgorithm::Sha512 => ChecksumType::Sha512,
    }
}

/// The check of every fetched `.rpm` file: size and checksum against its primary.xml entry,
/// header and payload digests, and the OpenPGP header signature against the keys of its
/// repository, unless that repository has `gpgCheck: false`.
#[derive(Debug)]
pub struct RpmFileCheck {
    /// The primary.xml entries by cache file name.
    packages: HashMap<String, RpmPackage>,
    /// The keys of each repository id; `None` when `gpgCheck` is false.
    keyrings: HashMap<String, Option<Keyring>>,
    base_urls: HashMap<String, String>,
}

impl RpmFileCheck {
    fn new(metadata: &[RpmRepoMetadata]) -> Self {
        Self {
            packages: HashMap::new(),
            keyrings: metadata
                .iter()
                .map(|repository| (repository.id.clone(), repository.keyring.clone()))
                .collect(),
            base_urls: metadata
                .iter()
                .map(|repository| (repository.id.clone(), repository.base_url.clone()))
                .collect(),
        }
    }
}

impl FileCheck for RpmFileCheck {
    fn check(&self, path: &Path, wanted: &WantedFile) -> Result<(), CheckFailure> {
        let package = self
            .packages
            .get(&wanted.file_name)
            .ok_or("the file belongs to no resolved package")?;
        let keyring = self
            .keyrings
            .get(&wanted.repository)
            .ok_or_else(|| format!("the repository `{}` is unknown", wanted.repository))?;
        oic_rpm::verify_package_file(path, Some(package), keyring.as_ref())?;
        Ok(())
    }
}

/// Returns the cache file name of a package: the last part of its location.
pub(crate) fn file_name_of(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}
