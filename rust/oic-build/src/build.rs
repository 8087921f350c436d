//! The build: load template, init provider, validate, packages, compose and finalize, each
//! timed and logged once. The output lands in
//! `{work_dir}/{provider-id}/imagebuild/{systemConfig.name}/` only when every stage succeeded;
//! until then the build works in its own folder, and the previous output stays as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use oic_chroot::lock::FileLock;
use oic_chroot::mountinfo::remove_tree;
use oic_chroot::{ChrootPackage, RpmChrootPackage, RpmInstall};
use oic_config::{CheckedTemplate, Config, PackageFormat};
use oic_image::artifacts::{self, ArtifactKind, ArtifactOutput, ArtifactRequest, Compression};
use oic_image::bootloader::BootloaderSettings;
use oic_image::configure::{FileSettings, RootSettings, UserSettings};
use oic_image::disk::{self, DiskPlan};
use oic_image::root::{self, PreparedRoot, RootPackages, RootRequest, NO_BOOTLOADER};
use oic_image::sbom::SbomInfo;
use oic_pkgcache::Reporter;
use serde::Serialize;

use crate::chroot::{ensure_chroot, provider_inputs, with_files};
use crate::error::BuildError;
use crate::packages::{resolve_set, PackageSet, PackagesOptions, PackagesOutcome};
use crate::rpm_set::rpm_set;
use crate::tools::DiskTools;

/// Switches of a build, equal to the command-line flags.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub packages: PackagesOptions,
    /// The file for the image's dependency graph in Graphviz DOT, besides the package cache.
    pub dotfile: Option<PathBuf>,
}

/// One stage's name and duration.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub stage: String,
    pub seconds: f64,
}

/// Whether one cache was used, and why or why not.
#[derive(Debug, Clone, Serialize)]
pub struct CacheUse {
    /// `metadata`, `packages`, `chroot` or `image root`.
    pub cache: String,
    /// `hit`, `miss` or `partial`.
    pub outcome: String,
    pub detail: String,
}

/// The report of a build: what it made and how each stage and cache went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildReport {
    pub template: String,
    pub provider: String,
    pub image_name: String,
    pub image_version: String,
    pub output_dir: PathBuf,
    pub artifacts: Vec<ArtifactOutput>,
    pub sbom: Vec<PathBuf>,
    pub kernel: String,
    pub packages: usize,
    pub bytes_downloaded: u64,
    pub stages: Vec<StageTime>,
    pub caches: Vec<CacheUse>,
    pub total_seconds: f64,
}

/// Times stages and logs each once.
struct Stages {
    started: Instant,
    current: Option<(&'static str, Instant)>,
    done: Vec<StageTime>,
}

impl Stages {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            current: None,
            done: Vec::new(),
        }
    }

    fn start(&mut self, stage: &'static str) {
        self.finish();
        tracing::debug!(stage, "stage started");
        self.current = Some((stage, Instant::now()));
    }

    fn finish(&mut self) {
        if let Some((stage, started)) = self.current.take() {
            let seconds = started.elapsed().as_secs_f64();
            tracing::info!(stage, seconds = format!("{seconds:.2}"), "stage finished");
            self.done.push(StageTime {
                stage: stage.to_owned(),
                seconds,
            });
        }
    }
}

/// Ends the named stage early when the build is cancelled, or when `OIC_TEST_FAIL_STAGE` names
/// it. The test suite uses the variable to check that a failure at each point leaves no mounts,
/// loop devices or partial cache entries.
fn checkpoint(stage: &str) -> Result<(), BuildError> {
    oic_cancel::check()?;
    match std::env::var("OIC_TEST_FAIL_STAGE") {
        Ok(requested) if requested == stage => Err(BuildError::Injected {
            stage: stage.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Builds the image of the template at `path`.
pub fn build_file(
    path: &Path,
    config: &Config,
    options: &BuildOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<BuildReport, BuildError> {
    let mut stages = Stages::new();
    stages.start("load template");
    let checked = oic_config::check_template_file(path, config)?;
    checkpoint("load template")?;

    stages.start("init provider");
    let layout = BuildLayout::new(&checked, config);
    checkpoint("init provider")?;

    stages.start("validate");
    check_build_host(&layout, &checked)?;
    let settings = root_settings(&checked)?;
    let bootloader = bootloader_settings(&checked)?;
    checkpoint("validate")?;

    let job = Job {
        checked: &checked,
        config,
        layout,
        settings,
        bootloader,
        path,
    };
    build_checked(&job, options, reporter, stages)
}

/// A checked template with everything the later stages need.
struct Job<'a> {
    checked: &'a CheckedTemplate,
    config: &'a Config,
    layout: BuildLayout,
    settings: RootSettings,
    bootloader: BootloaderSettings,
    path: &'a Path,
}

fn build_checked(
    job: &Job<'_>,
    options: &BuildOptions,
    reporter: &Arc<dyn Reporter>,
    mut stages: Stages,
) -> Result<BuildReport, BuildError> {
    let (checked, config, layout, path) = (job.checked, job.config, &job.layout, job.path);
    stages.start("packages");
    // Held for the whole build: the image root is installed from the cached files, so
    // `cache clean` and `cache prune` wait until the build ends.
    let _cache_lock = oic_pkgcache::CacheLock::shared(&config.cache_dir.value)?;
    let image_set = ImageSet::resolve(checked, config, options.packages)?;
    let outcome = image_set.outcome();
    check_installed_size(checked, outcome)?;
    let fetch = crate::fetch::fetch_packages(outcome, config, Arc::clone(reporter))?;
    if let Some(dotfile) = &options.dotfile {
        fs_err::write(dotfile, &outcome.dot)?;
    }
    checkpoint("packages")?;

    stages.start("compose");
    let _lock = FileLock::exclusive(
        &layout.lock(),
        "waiting for another build of this image name to finish",
    )?;
    let (chroot, chroot_report) =
        ensure_chroot(checked, config, options.packages, Arc::clone(reporter))?;
    let plan = disk_plan(checked)?;
    let purl_namespace = text(checked.merged.target.os.as_ref()).unwrap_or_default();
    let request = RootRequest {
        dir: layout.image_root(),
        provider: provider_inputs(checked, config),
        packages: image_set.root_packages(&purl_namespace),
        kernel_packages: image_set.kernel_packages(checked),
        settings: job.settings.clone(),
        plan: plan.clone(),
        bootloader: job.bootloader.clone(),
        sbom: sbom_info(checked),
    };
    let prepared = root::ensure_root(&request)?;
    remove_tree(&layout.build_dir())?;
    fs_err::create_dir_all(layout.build_dir())?;
    let result = compose_and_finalize(
        checked,
        config,
        layout,
        &chroot,
        &plan,
        &prepared,
        &mut stages,
    );
    if result.is_err() {
        let _ = remove_tree(&layout.build_dir());
    }
    let (artifacts, sbom) = result?;
    drop(chroot);
    stages.finish();

    let caches = vec![
        packages_use(&fetch),
        cache_use(
            "chroot",
            chroot_report.outcome != "created",
            &chroot_report.outcome,
        ),
        image_root_use(&prepared),
    ];
    let report = BuildReport {
        template: path.display().to_string(),
        provider: checked.provider.id.clone(),
        image_name: request.sbom.image_name.clone(),
        image_version: request.sbom.image_version.clone(),
        output_dir: layout.output_dir(),
        artifacts: artifacts
            .into_iter()
            .map(|mut artifact| {
                artifact.path = layout
                    .output_dir()
                    .join(artifact.path.file_name().unwrap_or_default());
                artifact
            })
            .collect(),
        sbom,
        kernel: prepared
            .kernel
            .as_ref()
            .map(|kernel| kernel.release.clone())
            .unwrap_or_default(),
        packages: outcome.packages.len(),
        bytes_downloaded: fetch.downloaded_bytes,
        stages: stages.done.clone(),
        caches,
        total_seconds: stages.started.elapsed().as_secs_f64(),
    };
    publish(layout, &report)?;
    Ok(report)
}

/// Creates the disk and the artifacts in the build folder. Returns the artifacts and the SBOM
/// copies outside the image.
fn compose_and_finalize(
    checked: &CheckedTemplate,
    config: &Config,
    layout: &BuildLayout,
    chroot: &oic_chroot::ChrootEnv,
    plan: &DiskPlan,
    prepared: &PreparedRoot,
    stages: &mut Stages,
) -> Result<(Vec<ArtifactOutput>, Vec<PathBuf>), BuildError> {
    let stem = image_stem(checked);
    let raw = layout.build_dir().join(format!("{stem}.raw"));
    {
        let tools = DiskTools::select(chroot, plan, &prepared.trees, &layout.build_dir())?;
        disk::write_disk(&tools, plan, &prepared.trees, &raw)?;
        checkpoint("compose")?;
    }

    stages.start("finalize");
    let requests = artifact_requests(checked)?;
    let artifacts = artifacts::produce(&raw, &requests, &layout.build_dir(), &stem)?;
    let raw_requested = requests.iter().any(|request| {
        request.kind == ArtifactKind::Raw && request.compression == Compression::None
    });
    if !raw_requested {
        fs_err::remove_file(&raw)?;
    }
    let sbom_name = prepared.sbom.file_name().unwrap_or_default();
    let beside = layout.build_dir().join(sbom_name);
    fs_err::copy(&prepared.sbom, &beside)?;
    let temp_dir = &config.temp_dir.value;
    fs_err::create_dir_all(temp_dir)?;
    let in_temp = temp_dir.join(sbom_name);
    fs_err::copy(&prepared.sbom, &in_temp)?;
    checkpoint("finalize")?;
    Ok((
        artifacts,
        vec![layout.output_dir().join(sbom_name), in_temp],
    ))
}

/// The resolved set of the image, with what its package manager needs to install it.
enum ImageSet {
    Deb {
        outcome: PackagesOutcome,
        packages: Vec<ChrootPackage>,
    },
    Rpm {
        outcome: PackagesOutcome,
        packages: Vec<RpmChrootPackage>,
        install: RpmInstall,
    },
}

impl ImageSet {
    /// Resolves the image's packages with the solver of the provider's package format.
    fn resolve(
        checked: &CheckedTemplate,
        config: &Config,
        options: PackagesOptions,
    ) -> Result<Self, BuildError> {
        if checked.provider.package_format == PackageFormat::Rpm {
            let set = rpm_set(checked, config, options, PackageSet::Image)?;
            return Ok(Self::Rpm {
                outcome: set.outcome,
                packages: set.packages,
                install: set.install,
            });
        }
        let (outcome, packages) = resolve_set(checked, config, options, PackageSet::Image)?;
        Ok(Self::Deb {
            outcome,
            packages: with_files(checked, config, packages),
        })
    }

    fn outcome(&self) -> &PackagesOutcome {
        match self {
            Self::Deb { outcome, .. } | Self::Rpm { outcome, .. } => outcome,
        }
    }

    fn root_packages<'a>(&'a self, purl_namespace: &'a str) -> RootPackages<'a> {
        match self {
            Self::Deb { packages, .. } => RootPackages::Deb(packages),
            Self::Rpm {
                packages, install, ..
            } => RootPackages::Rpm {
                packages,
                install,
                purl_namespace,
            },
        }
    }

    /// Returns the names of the resolved packages that may install a kernel: Debian's
    /// `linux-image-*` packages, or the RPM template's kernel packages.
    fn kernel_packages(&self, checked: &CheckedTemplate) -> Vec<String> {
        match self {
            Self::Deb { outcome, .. } => outcome
                .packages
                .iter()
                .filter(|package| package.name.starts_with("linux-image-"))
                .map(|package| package.name.clone())
                .collect(),
            Self::Rpm { .. } => checked
                .merged
                .system_config
                .kernel
                .packages
                .iter()
                .map(|package| package.value.clone())
                .collect(),
        }
    }
}

/// Writes the report into the build folder and moves the folder to the output folder, which
/// it replaces.
fn publish(layout: &BuildLayout, report: &BuildReport) -> Result<(), BuildError> {
    let json = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    fs_err::write(layout.build_dir().join("build-report.json"), json)?;
    let output = layout.output_dir();
    remove_tree(&output)?;
    if let Some(parent) = output.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::rename(layout.build_dir(), &output)?;
    Ok(())
}

fn cache_use(cache: &str, hit: bool, detail: &str) -> CacheUse {
    CacheUse {
        cache: cache.to_owned(),
        outcome: if hit { "hit" } else { "miss" }.to_owned(),
        detail: detail.to_owned(),
    }
}

fn packages_use(fetch: &oic_pkgcache::FetchReport) -> CacheUse {
    let outcome = match (fetch.downloaded_count, fetch.cached_count) {
        (0, _) => "hit",
        (_, 0) => "miss",
        _ => "partial",
    };
    CacheUse {
        cache: "packages".to_owned(),
        outcome: outcome.to_owned(),
        detail: fetch.summary_line(),
    }
}

fn image_root_use(prepared: &PreparedRoot) -> CacheUse {
    let detail = if prepared.reused {
        "every input matches the recorded manifest".to_owned()
    } else if prepared.reasons.is_empty() {
        "no image root was recorded for this image name".to_owned()
    } else {
        prepared.reasons.join("; ")
    };
    cache_use("image root", prepared.reused, &detail)
}

/// The folders of one build.
struct BuildLayout {
    provider_dir: PathBuf,
    name: String,
}

impl BuildLayout {
    fn new(checked: &CheckedTemplate, config: &Config) -> Self {
        let name = checked
            .merged
            .system_config
            .name
            .as_ref()
            .map_or_else(|| "default".to_owned(), |name| name.value.clone());
        Self {
            provider_dir: config.work_dir.value.join(&checked.provider.id),
            name,
        }
    }

    fn lock(&self) -> PathBuf {
        self.provider_dir
            .join(format!("imagebuild/.{}.lock", self.name))
    }

    fn image_root(&self) -> PathBuf {
        self.provider_dir.join("imageroot").join(&self.name)
    }

    fn build_dir(&self) -> PathBuf {
        self.provider_dir
            .join("imagebuild")
            .join(format!(".{}.partial", self.name))
    }

    fn output_dir(&self) -> PathBuf {
        self.provider_dir.join("imagebuild").join(&self.name)
    }
}

/// Fails before any download when the process cannot mount or chroot.
fn check_build_host(layout: &BuildLayout, checked: &CheckedTemplate) -> Result<(), BuildError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(BuildError::NotRoot);
    }
    let folder = layout.provider_dir.join("imagebuild");
    fs_err::create_dir_all(&folder)?;
    check_disk_file_size(&folder, checked.layout.size)
}

/// Fails when the work folder's file system cannot hold a (sparse) file of the disk's size,
/// such as a 64 TiB disk on ext4, whose files end at 16 TiB.
fn check_disk_file_size(folder: &Path, size: u64) -> Result<(), BuildError> {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = folder.join(format!(".size-probe-{}-{sequence}", std::process::id()));
    let result = fs_err::File::create(&probe).and_then(|file| file.set_len(size));
    let _ = fs_err::remove_file(&probe);
    result.map_err(|error| BuildError::DiskTooLarge {
        size,
        folder: folder.to_path_buf(),
        message: error.to_string(),
    })
}

fn text(value: Option<&oic_config::read::Spanned<String>>) -> Option<String> {
    value.map(|spanned| spanned.value.clone())
}

fn root_settings(checked: &CheckedTemplate) -> Result<RootSettings, BuildError> {
    let system = &checked.merged.system_config;
    let users = system
        .users
        .iter()
        .map(|user| UserSettings {
            name: text(user.name.as_ref()).unwrap_or_default(),
            uid: user.uid.as_ref().map(|uid| uid.value),
            password: text(user.password.as_ref()),
            hash_algo: text(user.hash_algo.as_ref()),
            groups: user
                .groups
                .iter()
                .map(|group| group.value.clone())
                .collect(),
            sudo: user.sudo.as_ref().is_some_and(|sudo| sudo.value),
            shell: text(user.shell.as_ref()),
            home: text(user.home.as_ref()),
        })
        .collect();
    let files = system
        .additional_files
        .iter()
        .map(file_settings)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RootSettings {
        hostname: text(system.hostname.as_ref()),
        users,
        files,
        configurations: system
            .configurations
            .iter()
            .filter_map(|configuration| text(configuration.cmd.as_ref()))
            .collect(),
        cmdline: text(system.kernel.cmdline.as_ref()).unwrap_or_default(),
    })
}

fn file_settings(file: &oic_config::template::AdditionalFile) -> Result<FileSettings, BuildError> {
    let local = text(file.local.as_ref()).unwrap_or_default();
    let source = match &file.base_dir {
        Some(base) => base.join(&local),
        None => PathBuf::from(&local),
    };
    let bytes = fs_err::read(&source).map_err(|error| BuildError::MissingFile {
        path: source.clone(),
        message: error.to_string(),
    })?;
    Ok(FileSettings {
        sha256: sha256_hex(&bytes),
        source,
        destination: text(file.destination.as_ref()).unwrap_or_default(),
        mode: text(file.permissions.as_ref()),
    })
}

fn bootloader_settings(checked: &CheckedTemplate) -> Result<BootloaderSettings, BuildError> {
    let system = &checked.merged.system_config;
    let settings = BootloaderSettings {
        provider: text(system.bootloader.provider.as_ref()).unwrap_or_else(|| "grub".to_owned()),
        boot_type: text(system.bootloader.boot_type.as_ref()).unwrap_or_else(|| "efi".to_owned()),
        arch: text(checked.merged.target.arch.as_ref()).unwrap_or_default(),
        cmdline: text(system.kernel.cmdline.as_ref()).unwrap_or_default(),
        entry_name: text(checked.merged.image.name.as_ref()).unwrap_or_else(|| "linux".to_owned()),
    };
    let rpm = checked.provider.package_format == PackageFormat::Rpm;
    if rpm && settings.provider != NO_BOOTLOADER {
        return Err(BuildError::Unsupported {
            message: format!(
                "systemConfig.bootloader.provider `{}` cannot be installed into images of RPM \
                 provider `{}` yet: set it to `none` for an image without a boot loader",
                settings.provider, checked.provider.id
            ),
        });
    }
    if settings.boot_type != "efi" && settings.provider != NO_BOOTLOADER {
        return Err(BuildError::Unsupported {
            message: format!(
                "systemConfig.bootloader.bootType `{}` cannot be built yet: use `efi`",
                settings.boot_type
            ),
        });
    }
    Ok(settings)
}

fn sbom_info(checked: &CheckedTemplate) -> SbomInfo {
    SbomInfo {
        image_name: text(checked.merged.image.name.as_ref()).unwrap_or_default(),
        image_version: text(checked.merged.image.version.as_ref()).unwrap_or_default(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created: now_rfc3339(),
    }
}

fn disk_plan(checked: &CheckedTemplate) -> Result<DiskPlan, BuildError> {
    let disk_section = checked
        .merged
        .disk
        .as_ref()
        .ok_or_else(|| BuildError::Unsupported {
            message: "the template has no disk section".to_owned(),
        })?;
    let layout_json = serde_json::to_string(&checked.layout).unwrap_or_default();
    let seed = format!(
        "{}\0{}\0{layout_json}",
        image_stem(checked),
        checked.provider.id
    );
    Ok(disk::plan(disk_section, &checked.layout, &seed)?)
}

/// `{image.name}-{image.version}`: the file name of the image and its artifacts.
fn image_stem(checked: &CheckedTemplate) -> String {
    let image = &checked.merged.image;
    let name = text(image.name.as_ref()).unwrap_or_else(|| "image".to_owned());
    match text(image.version.as_ref()) {
        Some(version) => format!("{name}-{version}"),
        None => name,
    }
}

fn artifact_requests(checked: &CheckedTemplate) -> Result<Vec<ArtifactRequest>, BuildError> {
    let listed = checked
        .merged
        .disk
        .as_ref()
        .map_or(&[][..], |disk| disk.artifacts.as_slice());
    let mut requests = Vec::new();
    for artifact in listed {
        let kind = text(artifact.kind.as_ref()).unwrap_or_else(|| "raw".to_owned());
        let compression = text(artifact.compression.as_ref()).unwrap_or_else(|| "none".to_owned());
        requests.push(ArtifactRequest {
            kind: kind.parse()?,
            compression: compression.parse()?,
        });
    }
    if requests.is_empty() {
        tracing::info!("disk.artifacts lists nothing: writing the uncompressed raw image");
        requests.push(ArtifactRequest {
            kind: ArtifactKind::Raw,
            compression: Compression::None,
        });
    }
    Ok(requests)
}

/// Fails when the root partition cannot hold the installed size of the resolved set.
fn check_installed_size(
    checked: &CheckedTemplate,
    outcome: &crate::packages::PackagesOutcome,
) -> Result<(), BuildError> {
    let installed: u64 = outcome
        .packages
        .iter()
        .filter_map(|package| package.installed_size)
        .sum::<u64>()
        * 1024;
    let Some(root) = checked
        .layout
        .partitions
        .iter()
        .find(|partition| partition.mount_point.as_deref() == Some("/"))
    else {
        return Ok(());
    };
    let size = root.end - root.start;
    if installed > size / 10 * 9 {
        return Err(BuildError::RootTooSmall {
            partition: root.id.clone(),
            installed,
            size,
        });
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    oic_image::hex(&sha2::Sha256::digest(bytes))
}

/// Returns the current time in UTC as `YYYY-MM-DDTHH:MM:SSZ`, or `SOURCE_DATE_EPOCH` when it is
/// set, so that a reproducible build can fix the SBOM's creation time.
fn now_rfc3339() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs())
        });
    format_utc(seconds)
}

/// Formats seconds since the epoch as an RFC 3339 UTC time, with the civil-from-days
/// conversion of the proleptic Gregorian calendar.
fn format_utc(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let remainder = seconds % 86_400;
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        remainder / 3600,
        remainder % 3600 / 60,
        remainder % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_format() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_796_342_400 + 3661), "2026-12-04T01:01:01Z");
    }
}
