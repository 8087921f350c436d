//! The image root: the resolved set installed into a fresh folder, configured, given its
//! bootloader, fstab and SBOM, and split into one tree per partition. It is kept in
//! `{work_dir}/{provider-id}/imageroot/{systemConfig.name}/current/` with a manifest of every
//! input, and an identical rebuild reuses it instead of installing again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use oic_chroot::manifest::{write_atomic, Manifest, PackageRecord, ProviderInputs};
use oic_chroot::mountinfo::{release_stale_mounts, remove_tree};
use oic_chroot::mounts::ChrootMounts;
use oic_chroot::{ChrootPackage, RpmChrootPackage, RpmInstall};
use serde::{Deserialize, Serialize};

use crate::bootloader::{self, BootloaderSettings, Kernel};
use crate::configure::{self, RootSettings};
use crate::disk::{self, DiskPlan};
use crate::error::ImageError;
use crate::paths;
use crate::rpm_sbom::{self, RpmSbomRequest};
use crate::sbom::{self, SbomInfo};

/// Version of the manifest layout.
const FORMAT: u32 = 1;

/// The `systemConfig.bootloader.provider` of an image without a boot loader and kernel.
pub const NO_BOOTLOADER: &str = "none";

/// The resolved set of an image root, and the package manager that installs it.
#[derive(Debug, Clone, Copy)]
pub enum RootPackages<'a> {
    /// Debian packages, installed with dpkg. The SBOM comes from dpkg's status file.
    Deb(&'a [ChrootPackage]),
    /// RPM packages in install order, installed with the host's `rpm --root`. The SBOM comes
    /// from the rpm database.
    Rpm {
        packages: &'a [RpmChrootPackage],
        install: &'a RpmInstall,
        /// The namespace of the SBOM's package URLs: the template's `target.os`.
        purl_namespace: &'a str,
    },
}

impl RootPackages<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Deb(packages) => packages.len(),
            Self::Rpm { packages, .. } => packages.len(),
        }
    }

    /// Returns the manifest records of the set, sorted by name and then architecture.
    fn records(&self, provider: &ProviderInputs) -> Vec<PackageRecord> {
        let packages = match self {
            Self::Deb(packages) => return Manifest::new(provider, packages).packages,
            Self::Rpm { packages, .. } => packages,
        };
        let mut records: Vec<PackageRecord> = packages.iter().map(PackageRecord::for_rpm).collect();
        records.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
        records
    }
}

/// Everything an image root is made from.
#[derive(Debug, Clone)]
pub struct RootRequest<'a> {
    /// `{work_dir}/{provider-id}/imageroot/{systemConfig.name}`.
    pub dir: PathBuf,
    pub provider: ProviderInputs,
    pub packages: RootPackages<'a>,
    /// Names of the resolved packages that may install a kernel.
    pub kernel_packages: Vec<String>,
    pub settings: RootSettings,
    pub plan: DiskPlan,
    pub bootloader: BootloaderSettings,
    pub sbom: SbomInfo,
}

/// The inputs of an image root as recorded next to it, and what the build found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RootManifest {
    format: u32,
    product_version: String,
    provider: ProviderInputs,
    packages: Vec<PackageRecord>,
    inputs: serde_json::Value,
    #[serde(default)]
    kernel: Option<KernelRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KernelRecord {
    package: String,
    release: String,
}

/// A ready image root.
#[derive(Debug, Clone)]
pub struct PreparedRoot {
    /// The folder with one tree per partition with content, named by partition id.
    pub trees: PathBuf,
    /// The kernel the boot loader starts, `None` for an image without a boot loader.
    pub kernel: Option<Kernel>,
    /// Whether an earlier build's root was reused.
    pub reused: bool,
    /// The reasons the root was built again, empty when it was reused or had never been built.
    pub reasons: Vec<String>,
    /// The SBOM inside the root partition's tree.
    pub sbom: PathBuf,
}

impl RootRequest<'_> {
    fn manifest(&self) -> RootManifest {
        let inputs = serde_json::json!({
            "settings": settings_without_secrets(&self.settings),
            "plan": self.plan,
            "bootloader": self.bootloader,
            "kernelPackages": self.kernel_packages,
            "image": {"name": self.sbom.image_name, "version": self.sbom.image_version},
        });
        RootManifest {
            format: FORMAT,
            product_version: env!("CARGO_PKG_VERSION").to_owned(),
            provider: self.provider.clone(),
            packages: self.packages.records(&self.provider),
            inputs,
            kernel: None,
        }
    }

    fn current(&self) -> PathBuf {
        self.dir.join("current")
    }

    fn partial(&self) -> PathBuf {
        self.dir.join("partial")
    }

    fn has_bootloader(&self) -> bool {
        self.bootloader.provider != NO_BOOTLOADER
    }

    fn sbom_name(&self) -> String {
        format!(
            "{}-{}.spdx.json",
            self.sbom.image_name, self.sbom.image_version
        )
    }
}

/// Returns the image root for `request`: the recorded one when every input matches, else a
/// new one. The caller holds the lock of this image name.
pub fn ensure_root(request: &RootRequest<'_>) -> Result<PreparedRoot, ImageError> {
    fs_err::create_dir_all(&request.dir)?;
    let expected = request.manifest();
    let manifest_path = request.current().join("manifest.json");
    let recorded = read_manifest(&manifest_path);
    let reasons = match &recorded {
        Some(recorded) => differences(recorded, &expected),
        None if request.current().exists() => vec!["its manifest is missing".to_owned()],
        None => Vec::new(),
    };
    if let (Some(recorded), true) = (&recorded, reasons.is_empty()) {
        // The manifest is written last, so a recorded one belongs to a finished root. Only a
        // root without a boot loader has no kernel.
        if recorded.kernel.is_some() || !request.has_bootloader() {
            tracing::info!(root = %request.current().display(), "reusing the image root");
            return Ok(prepared(
                request,
                recorded.kernel.as_ref(),
                true,
                Vec::new(),
            ));
        }
    }
    if !reasons.is_empty() {
        tracing::info!("building the image root again: {}", reasons.join("; "));
    }

    let started = Instant::now();
    release_stale_mounts(&request.dir)?;
    remove_tree(&request.partial())?;
    check_free_space(request)?;
    let kernel = match build(request) {
        Ok(kernel) => kernel,
        Err(error) => {
            // The mounts of the failed root are released by now, so the folder can go.
            if let Err(cleanup) = remove_tree(&request.partial()) {
                tracing::warn!(%cleanup, "failed to remove the partial image root");
            }
            return Err(error);
        }
    };
    let mut manifest = expected;
    manifest.kernel = kernel.map(|kernel| KernelRecord {
        package: kernel.package,
        release: kernel.release,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    write_atomic(&request.partial().join("manifest.json"), &bytes)?;
    remove_tree(&request.current())?;
    fs_err::rename(request.partial(), request.current())?;
    tracing::info!(elapsed = ?started.elapsed(), "built the image root");
    Ok(prepared(request, manifest.kernel.as_ref(), false, reasons))
}

/// Returns a copy of `settings` with each password replaced by its SHA256. The manifest is
/// readable by other users, so it changes with a password without revealing it.
fn settings_without_secrets(settings: &RootSettings) -> RootSettings {
    use sha2::Digest as _;
    let mut settings = settings.clone();
    for user in &mut settings.users {
        if let Some(password) = &user.password {
            let digest = sha2::Sha256::digest(password.as_bytes());
            user.password = Some(format!("sha256:{}", crate::hex(&digest)));
        }
    }
    settings
}

fn prepared(
    request: &RootRequest<'_>,
    kernel: Option<&KernelRecord>,
    reused: bool,
    reasons: Vec<String>,
) -> PreparedRoot {
    let trees = request.current().join("trees");
    let root_id = request
        .plan
        .root()
        .map(|partition| partition.id.clone())
        .unwrap_or_default();
    PreparedRoot {
        sbom: trees
            .join(root_id)
            .join("usr/share/sbom")
            .join(request.sbom_name()),
        trees,
        kernel: kernel.map(|kernel| Kernel {
            package: kernel.package.clone(),
            release: kernel.release.clone(),
        }),
        reused,
        reasons,
    }
}

fn read_manifest(path: &Path) -> Option<RootManifest> {
    let bytes = fs_err::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Describes what differs between the recorded and the expected manifest.
fn differences(recorded: &RootManifest, expected: &RootManifest) -> Vec<String> {
    let mut changes = Vec::new();
    if recorded.format != expected.format || recorded.product_version != expected.product_version {
        changes.push(format!(
            "os-image-composer changed: {} -> {}",
            recorded.product_version, expected.product_version
        ));
    }
    let as_chroot = |manifest: &RootManifest| Manifest {
        format: 1,
        product_version: String::new(),
        provider: manifest.provider.clone(),
        packages: manifest.packages.clone(),
        snapshot: None,
    };
    changes.extend(as_chroot(recorded).differences(&as_chroot(expected)));
    changes.extend(input_differences(&recorded.inputs, &expected.inputs));
    changes
}

/// A value under the manifest's `inputs`, and the template path that sets it.
struct InputField {
    /// JSON pointer into `inputs`.
    pointer: &'static str,
    template_path: &'static str,
    /// Whether a change prints the old and new value. Only short values that contain no
    /// secret are printed: never users, commands, files or the kernel command line.
    show_values: bool,
}

const fn field(
    pointer: &'static str,
    template_path: &'static str,
    show_values: bool,
) -> InputField {
    InputField {
        pointer,
        template_path,
        show_values,
    }
}

/// Every value of [`RootRequest::manifest`]'s `inputs`. Two fields that the same template
/// value sets, such as the kernel command line, give one reason.
const INPUT_FIELDS: &[InputField] = &[
    field("/settings/hostname", "systemConfig.hostname", true),
    field("/settings/users", "systemConfig.users", false),
    field("/settings/files", "systemConfig.additionalFiles", false),
    field(
        "/settings/configurations",
        "systemConfig.configurations",
        false,
    ),
    field("/settings/cmdline", "systemConfig.kernel.cmdline", false),
    field(
        "/bootloader/provider",
        "systemConfig.bootloader.provider",
        true,
    ),
    field(
        "/bootloader/boot_type",
        "systemConfig.bootloader.bootType",
        true,
    ),
    field("/bootloader/arch", "target.arch", true),
    field("/bootloader/cmdline", "systemConfig.kernel.cmdline", false),
    field("/bootloader/entry_name", "image.name", true),
    field("/plan", "disk", false),
    field("/kernelPackages", "systemConfig.kernel.packages", false),
    field("/image/name", "image.name", true),
    field("/image/version", "image.version", true),
];

/// Maximum length in bytes of a value that a reason prints.
const MAX_SHOWN_VALUE: usize = 64;

/// Describes each changed template setting by its template path. A change that no entry of
/// [`INPUT_FIELDS`] covers, such as in a manifest of another layout, gives one general reason.
fn input_differences(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let mut changes: Vec<String> = Vec::new();
    for input in INPUT_FIELDS {
        let (before, after) = (old.pointer(input.pointer), new.pointer(input.pointer));
        if before == after {
            continue;
        }
        let reason = input_change(input, before, after);
        if !changes.contains(&reason) {
            changes.push(reason);
        }
    }

    if uncovered_inputs(old) != uncovered_inputs(new) {
        changes.push("the template changed".to_owned());
    }
    changes
}

/// Returns `inputs` with every value of [`INPUT_FIELDS`] set to null.
fn uncovered_inputs(inputs: &serde_json::Value) -> serde_json::Value {
    let mut rest = inputs.clone();
    for input in INPUT_FIELDS {
        if let Some(value) = rest.pointer_mut(input.pointer) {
            *value = serde_json::Value::Null;
        }
    }
    rest
}

fn input_change(
    input: &InputField,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> String {
    let path = input.template_path;
    match (input.show_values, shown_value(before), shown_value(after)) {
        (true, Some(before), Some(after)) => format!("{path} changed: {before} -> {after}"),
        _ => format!("{path} changed"),
    }
}

/// Returns a short string value for a reason, `unset` for a missing value, or `None` when the
/// value is not a short single-line string.
fn shown_value(value: Option<&serde_json::Value>) -> Option<String> {
    match value {
        None | Some(serde_json::Value::Null) => Some("unset".to_owned()),
        Some(serde_json::Value::String(text))
            if text.len() <= MAX_SHOWN_VALUE && !text.chars().any(char::is_control) =>
        {
            Some(text.clone())
        }
        Some(_) => None,
    }
}

/// Fails before installing when the folder lacks room for the installed packages plus a tenth.
/// RPM sets are checked only against the root partition, in the packages stage, because
/// [`RpmChrootPackage`] has no installed size.
fn check_free_space(request: &RootRequest<'_>) -> Result<(), ImageError> {
    let RootPackages::Deb(packages) = request.packages else {
        return Ok(());
    };
    let installed: u64 = packages
        .iter()
        .filter_map(|entry| entry.package.installed_size)
        .sum::<u64>()
        * 1024;
    let needed = installed + installed / 10;
    let stat = nix::sys::statvfs::statvfs(&request.dir).map_err(std::io::Error::from)?;
    let free = stat.blocks_available() * stat.fragment_size();
    if needed > free {
        return Err(ImageError::NoSpace {
            path: request.dir.clone(),
            needed,
            free,
        });
    }
    Ok(())
}

/// Installs, configures and splits a new root in `partial/`. Returns the kernel it boots, or
/// `None` without a boot loader.
fn build(request: &RootRequest<'_>) -> Result<Option<Kernel>, ImageError> {
    let partial = request.partial();
    let root = partial.join("root");
    fs_err::create_dir_all(&root)?;

    let step = Instant::now();
    install(request, &root)?;
    tracing::info!(packages = request.packages.len(), elapsed = ?step.elapsed(), "installed the image's packages");

    let (kernel, esp) = {
        let mounts = ChrootMounts::mount(&root)?;
        let result = configure_mounted(request, &partial, &root)?;
        mounts.release();
        result
    };
    configure::clear_identity(&root)?;

    let sbom_dir = paths::create_dir(&root, "usr/share/sbom")?;
    write_sbom(request, &root, &sbom_dir.join(request.sbom_name()))?;

    split(&request.plan, &partial, &root, &esp)?;
    Ok(kernel)
}

fn install(request: &RootRequest<'_>, root: &Path) -> Result<(), ImageError> {
    match request.packages {
        RootPackages::Deb(packages) => oic_chroot::install_root(root, packages, true)?,
        RootPackages::Rpm {
            packages, install, ..
        } => oic_chroot::install_rpm_root(root, packages, install)?,
    }
    Ok(())
}

/// Writes the SBOM from the database of the package manager that installed the root.
fn write_sbom(request: &RootRequest<'_>, root: &Path, output: &Path) -> Result<(), ImageError> {
    match request.packages {
        RootPackages::Deb(_) => {
            sbom::write_sbom(root, &request.sbom, output)?;
        }
        RootPackages::Rpm {
            packages,
            purl_namespace,
            ..
        } => {
            let sbom_request = RpmSbomRequest {
                purl_namespace: purl_namespace.to_owned(),
                file_checksums: packages
                    .iter()
                    .map(|package| {
                        let checksum = (package.checksum_type.clone(), package.checksum.clone());
                        (package.nevra(), checksum)
                    })
                    .collect(),
            };
            rpm_sbom::write_rpm_sbom(root, &request.sbom, &sbom_request, output)?;
        }
    }
    Ok(())
}

/// Runs the steps that need commands inside the root. Returns the kernel, `None` without a
/// boot loader, and the folder with the EFI system partition's files.
fn configure_mounted(
    request: &RootRequest<'_>,
    partial: &Path,
    root: &Path,
) -> Result<(Option<Kernel>, PathBuf), ImageError> {
    let step = Instant::now();
    configure::configure(root, &request.settings)?;
    paths::write_file(
        root,
        "etc/fstab",
        disk::fstab(&request.plan).as_bytes(),
        0o644,
    )?;
    tracing::info!(elapsed = ?step.elapsed(), "configured the image root");

    let step = Instant::now();
    oic_chroot::dpkg::finish_initramfs(root)?;
    tracing::debug!(elapsed = ?step.elapsed(), "initramfs step finished");

    // Configuration scripts have run by now, so the mount point cannot change any more.
    let esp = esp_dir(request, partial, root)?;
    if !request.has_bootloader() {
        tracing::info!("the template sets no boot loader, so no kernel is looked for");
        return Ok((None, esp));
    }
    if let RootPackages::Rpm { .. } = request.packages {
        return Err(ImageError::Unsupported {
            message: format!(
                "systemConfig.bootloader.provider `{}` cannot be installed into RPM images \
                 yet: use `none`",
                request.bootloader.provider
            ),
        });
    }
    let kernel = bootloader::find_kernel(root, &request.kernel_packages)?;
    bootloader::install(root, &esp, &request.plan, &request.bootloader, &kernel)?;
    Ok((Some(kernel), esp))
}

/// Returns the folder that gathers the EFI system partition's files: its mount point inside the
/// root, or a folder beside the root when it has none.
fn esp_dir(request: &RootRequest<'_>, partial: &Path, root: &Path) -> Result<PathBuf, ImageError> {
    let dir = match request.plan.esp().and_then(|esp| esp.mount_point.clone()) {
        Some(mount_point) if mount_point.starts_with('/') && mount_point != "/" => {
            mount_dir(root, &mount_point)?
        }
        _ => partial.join("esp"),
    };
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}

/// Returns the host path of the mount point `mount_point` inside the image. A mount point
/// reached through a symbolic link is an error, because a partition mounted there would cover
/// the link's target, and its content would be taken from there.
fn mount_dir(root: &Path, mount_point: &str) -> Result<PathBuf, ImageError> {
    let relative = mount_point.trim_start_matches('/');
    let resolved = paths::resolve(root, Path::new(relative))?;
    if resolved != root.join(relative) {
        return Err(ImageError::Invalid {
            path: PathBuf::from(mount_point),
            message: "the mount point is a symbolic link inside the image; a package or a \
                      configuration script made it one, and it must stay a folder"
                .to_owned(),
        });
    }
    Ok(resolved)
}

/// Moves the content of every partition's mount point out of the root into
/// `trees/{partition id}`, deepest mount point first, and the rest of the root into the root
/// partition's tree. Mount points stay as empty folders.
fn split(plan: &DiskPlan, partial: &Path, root: &Path, esp: &Path) -> Result<(), ImageError> {
    let trees = partial.join("trees");
    fs_err::create_dir_all(&trees)?;
    let mut mounted: Vec<_> = plan
        .partitions
        .iter()
        .filter(|partition| partition.fs_type.is_some() && !partition.is_swap())
        .collect();
    mounted.sort_by_key(|partition| {
        std::cmp::Reverse(
            partition
                .mount_point
                .as_deref()
                .map_or(0, disk::mount_depth),
        )
    });
    for partition in mounted {
        let tree = trees.join(&partition.id);
        match partition.mount_point.as_deref() {
            Some("/") => fs_err::rename(root, &tree)?,
            Some(mount_point) if mount_point.starts_with('/') => {
                move_children(&mount_dir(root, mount_point)?, &tree)?;
            }
            _ if plan
                .esp()
                .is_some_and(|esp_plan| esp_plan.id == partition.id) =>
            {
                fs_err::rename(esp, &tree)?;
            }
            _ => fs_err::create_dir_all(&tree)?,
        }
    }
    Ok(())
}

/// Moves every entry of `source` into the new folder `target`, leaving `source` empty.
fn move_children(source: &Path, target: &Path) -> Result<(), ImageError> {
    fs_err::create_dir_all(target)?;
    if !source.is_dir() {
        fs_err::create_dir_all(source)?;
        return Ok(());
    }
    for entry in fs_err::read_dir(source)? {
        let entry = entry?;
        fs_err::rename(entry.path(), target.join(entry.file_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use oic_config::validate::TableType;

    use super::*;
    use crate::configure::{FileSettings, UserSettings};
    use crate::disk::PartitionPlan;

    fn partition(id: &str, mount_point: &str, fs_type: &str) -> PartitionPlan {
        PartitionPlan {
            id: id.to_owned(),
            number: 1,
            start: 0,
            end: 1,
            type_code: String::new(),
            attributes: Vec::new(),
            fs_type: Some(fs_type.to_owned()),
            label: None,
            mount_point: Some(mount_point.to_owned()),
            mount_options: None,
            fs_uuid: String::new(),
            part_uuid: String::new(),
        }
    }

    fn write(path: &Path) {
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, "x").unwrap();
    }

    fn request(settings: RootSettings) -> RootRequest<'static> {
        RootRequest {
            dir: PathBuf::from("/nonexistent"),
            provider: ProviderInputs {
                id: "debian-debian12-x86_64".to_owned(),
                repositories: Vec::new(),
            },
            packages: RootPackages::Deb(&[]),
            kernel_packages: vec!["linux-image-amd64".to_owned()],
            settings,
            plan: DiskPlan {
                size: 1 << 30,
                table: TableType::Gpt,
                disk_id: String::new(),
                partitions: vec![partition("rootfs", "/", "ext4")],
            },
            bootloader: BootloaderSettings {
                provider: "grub".to_owned(),
                boot_type: "efi".to_owned(),
                arch: "x86_64".to_owned(),
                cmdline: "console=ttyS0".to_owned(),
                entry_name: "edge".to_owned(),
            },
            sbom: SbomInfo {
                image_name: "edge".to_owned(),
                image_version: "1.0.0".to_owned(),
                tool_version: String::new(),
                created: String::new(),
            },
        }
    }

    fn user(password: &str) -> UserSettings {
        UserSettings {
            name: "alice".to_owned(),
            uid: None,
            password: Some(password.to_owned()),
            hash_algo: Some("sha512".to_owned()),
            groups: Vec::new(),
            sudo: false,
            shell: None,
            home: None,
        }
    }

    fn settings() -> RootSettings {
        RootSettings {
            hostname: Some("edge".to_owned()),
            users: vec![user("first-secret")],
            files: Vec::new(),
            configurations: vec!["echo one".to_owned()],
            cmdline: "console=ttyS0".to_owned(),
        }
    }

    /// Returns the reasons to rebuild a root of `settings()` as a root of `changed`.
    fn reasons(changed: &RootRequest<'_>) -> Vec<String> {
        let recorded = request(settings()).manifest();
        differences(&recorded, &changed.manifest())
    }

    #[test]
    fn differences_empty_for_same_request() {
        assert!(reasons(&request(settings())).is_empty());
    }

    #[test]
    fn differences_name_hostname_with_values() {
        let mut changed = settings();
        changed.hostname = Some("edge-2".to_owned());
        assert_eq!(
            reasons(&request(changed)),
            ["systemConfig.hostname changed: edge -> edge-2"]
        );
    }

    #[test]
    fn differences_name_removed_hostname() {
        let mut changed = settings();
        changed.hostname = None;
        assert_eq!(
            reasons(&request(changed)),
            ["systemConfig.hostname changed: edge -> unset"]
        );
    }

    #[test]
    fn differences_name_configurations() {
        let mut changed = settings();
        changed.configurations.push("echo two".to_owned());
        assert_eq!(
            reasons(&request(changed)),
            ["systemConfig.configurations changed"]
        );
    }

    #[test]
    fn differences_hide_user_values() {
        let mut changed = settings();
        changed.users = vec![user("second-secret")];
        let found = reasons(&request(changed));
        assert_eq!(found, ["systemConfig.users changed"]);
        assert!(!found[0].contains("secret"));
    }

    #[test]
    fn differences_name_files() {
        let mut changed = settings();
        changed.files.push(FileSettings {
            source: PathBuf::from("/srv/motd"),
            sha256: "aa".to_owned(),
            destination: "/etc/motd".to_owned(),
            mode: None,
        });
        assert_eq!(
            reasons(&request(changed)),
            ["systemConfig.additionalFiles changed"]
        );
    }

    #[test]
    fn differences_name_cmdline_once() {
        let mut changed = request(RootSettings {
            cmdline: "console=tty0".to_owned(),
            ..settings()
        });
        changed.bootloader.cmdline = "console=tty0".to_owned();
        assert_eq!(reasons(&changed), ["systemConfig.kernel.cmdline changed"]);
    }

    #[test]
    fn differences_name_image_and_disk() {
        let mut changed = request(settings());
        changed.sbom.image_version = "1.0.1".to_owned();
        changed.plan.size *= 2;
        changed.kernel_packages.clear();
        assert_eq!(
            reasons(&changed),
            [
                "disk changed",
                "systemConfig.kernel.packages changed",
                "image.version changed: 1.0.0 -> 1.0.1",
            ]
        );
    }

    /// Fails when a value of the manifest's `inputs` has no entry in [`INPUT_FIELDS`], whose
    /// changes would then be reported only as "the template changed".
    #[test]
    fn input_fields_cover_every_input() {
        fn leaves(value: &serde_json::Value, path: &str, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, child) in map {
                        leaves(child, &format!("{path}/{key}"), found);
                    }
                }
                serde_json::Value::Null => {}
                _ => found.push(path.to_owned()),
            }
        }
        let mut uncovered = Vec::new();
        leaves(
            &uncovered_inputs(&request(settings()).manifest().inputs),
            "",
            &mut uncovered,
        );
        assert!(
            uncovered.is_empty(),
            "inputs without a template path: {uncovered:?}"
        );
    }

    #[test]
    fn differences_name_checksum_type_change() {
        let record = |checksum: &str| PackageRecord {
            name: "app".to_owned(),
            version: "1.0-1".to_owned(),
            architecture: "x86_64".to_owned(),
            sha256: checksum.to_owned(),
        };
        let mut recorded = request(settings()).manifest();
        recorded.packages = vec![record("aa")];
        let mut changed = recorded.clone();
        changed.packages = vec![record("sha512:bb")];
        assert_eq!(
            differences(&recorded, &changed),
            [
                "package app 1.0-1: its checksum type changed (sha256 -> sha512); the file is \
                 installed again"
            ]
        );
    }

    #[test]
    fn differences_name_unknown_input() {
        let recorded = request(settings()).manifest();
        let mut changed = recorded.clone();
        changed.inputs["future"] = serde_json::json!(1);
        assert_eq!(differences(&recorded, &changed), ["the template changed"]);
    }

    #[test]
    fn split_moves_mount_points_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for file in [
            "etc/hostname",
            "srv/data/file",
            "boot/efi/EFI/BOOT/BOOTX64.EFI",
            "boot/vmlinuz",
        ] {
            write(&root.join(file));
        }
        let plan = DiskPlan {
            size: 0,
            table: TableType::Gpt,
            disk_id: String::new(),
            partitions: vec![
                partition("esp", "/boot/efi", "fat32"),
                partition("rootfs", "/", "ext4"),
                partition("srv", "/srv", "xfs"),
                partition("swap", "none", "swap"),
            ],
        };

        split(&plan, dir.path(), &root, &root.join("boot/efi")).unwrap();

        let trees = dir.path().join("trees");
        assert!(trees.join("srv/data/file").is_file());
        assert!(trees.join("esp/EFI/BOOT/BOOTX64.EFI").is_file());
        assert!(trees.join("rootfs/etc/hostname").is_file());
        assert!(trees.join("rootfs/boot/vmlinuz").is_file());
        assert!(trees.join("rootfs/srv").is_dir());
        assert!(!trees.join("rootfs/srv/data").exists());
        assert!(trees.join("rootfs/boot/efi").is_dir());
        assert!(!trees.join("rootfs/boot/efi/EFI").exists());
        assert!(!trees.join("swap").exists());
    }
}
