//! The packages stage: repository metadata, then the resolved set of packages.

use std::time::{Duration, Instant};

use oic_config::{CheckedTemplate, Config, PackageFormat, Repository};
use oic_repo::{MetadataOptions, MetadataSource, RepoMetadata, SignatureStatus};
use oic_solve::{Request, SolveOptions, SolveRequest, Universe, UniversePackage};
use serde::Serialize;

use crate::error::BuildError;

/// Switches of the packages stage, equal to the command-line flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackagesOptions {
    /// Use only cached metadata.
    pub offline: bool,
    /// Install `Recommends` too.
    pub with_recommends: bool,
}

/// A package chosen for the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The id of the repository it comes from.
    pub repository: String,
    /// The pool path relative to the repository, as in the `Filename` field.
    pub filename: String,
    /// The absolute URL of the package file.
    pub url: String,
    pub size: u64,
    /// The algorithm of `checksum`: always SHA-256 for Debian, the type primary.xml gives for RPM.
    pub checksum_type: oic_pkgcache::ChecksumType,
    /// The lowercase hexadecimal digest of the package file.
    pub checksum: String,
    /// `checksum` when its type is SHA-256, `None` for another type.
    pub sha256: Option<String>,
    /// In KiB.
    pub installed_size: Option<u64>,
    pub essential: bool,
}

/// A dependency edge: `from` needs `to`, the package chosen for one dependency group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedEdge {
    pub from: String,
    pub to: String,
    /// `Depends`, `Pre-Depends` or `Recommends`.
    pub field: String,
    pub relation: String,
    /// The virtual name when `to` satisfies the dependency through its `Provides`.
    pub provided: Option<String>,
}

/// The source and signature status of one repository's metadata, for the build report.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryReport {
    pub id: String,
    pub name: String,
    pub url: String,
    pub source: MetadataSource,
    pub signature: SignatureStatus,
    pub packages: usize,
}

/// The outcome of the packages stage.
#[derive(Debug, Clone, Serialize)]
pub struct PackagesOutcome {
    pub provider_id: String,
    pub repositories: Vec<RepositoryReport>,
    pub packages: Vec<ResolvedPackage>,
    pub edges: Vec<ResolvedEdge>,
    /// The dependency graph in Graphviz DOT.
    pub dot: String,
    pub metadata_seconds: f64,
    pub solve_seconds: f64,
    /// The check that fetched files must pass besides size and checksum: for RPM providers the
    /// package signature.
    #[serde(skip)]
    pub file_check: Option<oic_pkgcache::SharedFileCheck>,
    /// Set by `--offline`: the fetch serves every file from the package cache or fails.
    #[serde(skip)]
    pub offline: bool,
}

/// Returns the repositories of a build: the provider's (or their replacement from the
/// configuration), then the template's own.
pub fn repositories_of(checked: &CheckedTemplate, config: &Config) -> Vec<Repository> {
    let mut repositories = config.provider(&checked.provider.id).map_or_else(
        || checked.provider.repositories.clone(),
        |provider| provider.repositories,
    );
    repositories.extend(
        checked
            .merged
            .package_repositories
            .iter()
            .map(oic_config::template::PackageRepository::to_repository),
    );
    repositories
}

/// Fetches and verifies metadata, then resolves the packages the template requests.
pub fn resolve_packages(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
) -> Result<PackagesOutcome, BuildError> {
    if checked.provider.package_format == PackageFormat::Rpm {
        return crate::rpm_packages::resolve_rpm_packages(checked, config, options);
    }
    resolve_set(checked, config, options, PackageSet::Image).map(|(outcome, _)| outcome)
}

/// The package set a resolution covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageSet {
    /// The template's packages and kernel, plus the essential set.
    Image,
    /// The provider's build tools, plus the essential set: the chroot environment.
    BuildTools,
}

/// Resolves a package set and returns the outcome with the chosen packages' full index entries.
pub fn resolve_set(
    checked: &CheckedTemplate,
    config: &Config,
    options: PackagesOptions,
    set: PackageSet,
) -> Result<(PackagesOutcome, Vec<oic_deb::Package>), BuildError> {
    let provider = &checked.provider;
    if provider.package_format != PackageFormat::Deb {
        return Err(BuildError::UnsupportedFormat {
            provider: provider.id.clone(),
            format: "RPM".to_owned(),
        });
    }

    let started = Instant::now();
    let metadata_options = MetadataOptions {
        cache_dir: config.cache_dir.value.clone(),
        provider_id: provider.id.clone(),
        architecture: provider.package_arch.clone(),
        offline: options.offline,
    };
    let metadata =
        oic_repo::load_repositories_blocking(&repositories_of(checked, config), &metadata_options)?;
    let metadata_elapsed = started.elapsed();

    let started = Instant::now();
    let reports = metadata.iter().map(report_of).collect();
    let universe = universe_of(metadata, &provider.package_arch);
    let request = solve_request(checked, &universe, options, set)?;
    let resolution = oic_solve::solve(&universe, &request)?;
    let chosen = resolution
        .packages
        .iter()
        .map(|candidate| (*candidate.package).clone())
        .collect();
    let mut outcome = outcome_of(
        checked,
        &resolution,
        reports,
        metadata_elapsed,
        started.elapsed(),
    );
    outcome.offline = options.offline;
    tracing::info!(
        packages = outcome.packages.len(),
        metadata_seconds = outcome.metadata_seconds,
        solve_seconds = outcome.solve_seconds,
        "packages resolved"
    );
    Ok((outcome, chosen))
}

fn report_of(metadata: &RepoMetadata) -> RepositoryReport {
    RepositoryReport {
        id: metadata.id.clone(),
        name: metadata.repository.name.clone(),
        url: oic_repo::fetch::redact(&metadata.base_url),
        source: metadata.source,
        signature: metadata.signature.clone(),
        packages: metadata.packages.len(),
    }
}

/// Base URLs by repository id travel with each package, so the universe keeps the id only.
fn universe_of(metadata: Vec<RepoMetadata>, architecture: &str) -> Universe {
    let mut packages = Vec::new();
    for repository in metadata {
        let priority = i32::try_from(repository.repository.priority).unwrap_or(i32::MAX);
        let id = format!("{}\u{1f}{}", repository.id, repository.base_url);
        UniversePackage::extend_from_index(&mut packages, repository.packages, &id, priority);
    }
    Universe::new(packages, architecture)
}

fn solve_request(
    checked: &CheckedTemplate,
    universe: &Universe,
    options: PackagesOptions,
    set: PackageSet,
) -> Result<SolveRequest, BuildError> {
    let system = &checked.merged.system_config;
    let names: Vec<&str> = match set {
        PackageSet::Image => system
            .packages
            .iter()
            .chain(&system.kernel.packages)
            .map(|package| package.value.as_str())
            .chain(bootloader_packages(checked).iter().copied())
            .collect(),
        PackageSet::BuildTools => checked
            .provider
            .build_tools
            .iter()
            .map(String::as_str)
            .collect(),
    };
    let requests = names
        .into_iter()
        .map(Request::parse)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SolveRequest {
        requests,
        essential: essential_names(checked, universe),
        options: SolveOptions {
            with_recommends: options.with_recommends,
            allow_multiple_kernel_flavours: false,
        },
    })
}

/// Returns the packages the template's bootloader needs in the image, so that the booted system
/// can update it: GRUB's EFI package or systemd-boot.
pub fn bootloader_packages(checked: &CheckedTemplate) -> &'static [&'static str] {
    let bootloader = &checked.merged.system_config.bootloader;
    let provider = bootloader
        .provider
        .as_ref()
        .map(|value| value.value.as_str());
    let boot_type = bootloader
        .boot_type
        .as_ref()
        .map(|value| value.value.as_str());
    match (provider, boot_type, checked.provider.package_arch.as_str()) {
        (Some("grub"), Some("efi") | None, "amd64") => &["grub-efi-amd64"],
        (Some("grub"), Some("efi") | None, "arm64") => &["grub-efi-arm64"],
        (Some("systemd-boot"), _, _) => &["systemd-boot"],
        _ => &[],
    }
}

/// The provider's essential set: packages marked `Essential: yes` when its definition sets `essentialField`, packages of its
/// priorities, and the names it lists.
fn essential_names(checked: &CheckedTemplate, universe: &Universe) -> Vec<String> {
    let essential = &checked.provider.essential;
    let mut names: Vec<String> = universe
        .packages()
        .iter()
        .map(|candidate| &candidate.package)
        .filter(|package| {
            (essential.essential_field && package.essential)
                || package
                    .priority
                    .as_deref()
                    .is_some_and(|p| essential.priorities.iter().any(|wanted| wanted == p))
        })
        .map(|package| package.name.clone())
        .chain(
            essential
                .packages
                .iter()
                .filter(|name| universe.knows(name))
                .cloned(),
        )
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn outcome_of(
    checked: &CheckedTemplate,
    resolution: &oic_solve::Resolution<'_>,
    repositories: Vec<RepositoryReport>,
    metadata_elapsed: Duration,
    solve_elapsed: Duration,
) -> PackagesOutcome {
    let packages: Vec<ResolvedPackage> = resolution
        .packages
        .iter()
        .map(|chosen| resolved(chosen))
        .collect();
    let edges = resolution
        .edges
        .iter()
        .map(|edge| ResolvedEdge {
            from: packages[edge.from].name.clone(),
            to: packages[edge.to].name.clone(),
            field: edge.kind.field().to_owned(),
            relation: edge.relation.clone(),
            provided: edge.provided.clone(),
        })
        .collect();
    PackagesOutcome {
        provider_id: checked.provider.id.clone(),
        repositories,
        packages,
        edges,
        dot: resolution.to_dot(),
        metadata_seconds: metadata_elapsed.as_secs_f64(),
        solve_seconds: solve_elapsed.as_secs_f64(),
        file_check: None,
        offline: false,
    }
}

fn resolved(chosen: &UniversePackage) -> ResolvedPackage {
    let (repository, base_url) = chosen
        .repository
        .split_once('\u{1f}')
        .unwrap_or((&*chosen.repository, ""));
    let package = &chosen.package;
    ResolvedPackage {
        name: package.name.clone(),
        version: package.version.to_string(),
        architecture: package.architecture.to_string(),
        repository: repository.to_owned(),
        filename: package.filename.clone(),
        url: format!("{base_url}/{}", package.filename),
        size: package.size,
        checksum_type: oic_pkgcache::ChecksumType::Sha256,
        checksum: package.sha256.to_hex(),
        sha256: Some(package.sha256.to_hex()),
        installed_size: package.installed_size,
        essential: package.essential,
    }
}
