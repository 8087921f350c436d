//! Checks of `systemConfig` and of the partition fields that depend on it.

use crate::diag::{Diagnostics, Loc};
use crate::provider::{self, PackageFormat, Provider};
use crate::read::{child, item, Spanned};
use crate::template::{AdditionalFile, ImageTemplate, Partition, User};

use super::{one_of, required, DiskLayout, TableType};

const BOOT_TYPES: &[&str] = &["efi", "legacy"];
/// `none` builds an image without a boot loader, which needs no kernel and no ESP.
const BOOTLOADERS: &[&str] = &["grub", "systemd-boot", "none"];
const FS_TYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "fat16", "fat32", "vfat", "swap",
];
const PARTITION_TYPES: &[&str] = &[
    "esp",
    "bios-boot",
    "linux",
    "linux-root-amd64",
    "linux-root-arm64",
    "linux-swap",
    "linux-home",
    "linux-var",
    "linux-usr-amd64",
    "linux-usr-arm64",
];
const FLAGS: &[&str] = &[
    "esp",
    "boot",
    "legacy_boot",
    "bios_grub",
    "hidden",
    "read-only",
];
const HASH_ALGORITHMS: &[&str] = &["sha512", "sha256", "yescrypt"];

pub(super) fn check_system_config(
    template: &ImageTemplate,
    provider: Option<&Provider>,
    layout: Option<&DiskLayout>,
    top: &Loc,
    diagnostics: &mut Diagnostics,
) {
    let system = &template.system_config;
    if let Some(name) = required(system.name.as_ref(), top, "systemConfig.name", diagnostics) {
        if !super::is_file_name_part(&name.value) {
            let message = format!(
                "Invalid name `{}`: it names the output folder, so use letters, digits, `.`, `_`, \
                 `+`, `~` and `-` only",
                name.value
            );
            diagnostics.push(&name.loc, "systemConfig.name", message);
        }
    }
    if let Some(hostname) = &system.hostname {
        check_hostname(hostname, diagnostics);
    }

    let format = provider.map(|p| p.package_format);
    for package in &system.packages {
        check_package_pattern_for(package, "systemConfig.packages", format, diagnostics);
    }
    let no_bootloader = system
        .bootloader
        .provider
        .as_ref()
        .is_some_and(|provider| provider.value == "none");
    if system.kernel.packages.is_empty() && !no_bootloader {
        let message = "Missing required key: a bootable image needs a kernel package; set \
                       systemConfig.bootloader.provider to `none` for an image without one";
        diagnostics.push(top, "systemConfig.kernel.packages", message);
    }
    for package in &system.kernel.packages {
        check_package_pattern_for(package, "systemConfig.kernel.packages", format, diagnostics);
    }
    if let Some(cmdline) = &system.kernel.cmdline {
        if cmdline.value.contains('\0') {
            diagnostics.push(
                &cmdline.loc,
                "systemConfig.kernel.cmdline",
                "Contains a NUL byte",
            );
        }
    }

    check_boot(template, layout, top, diagnostics);
    check_partition_fields(template, diagnostics);
    check_users(&system.users, diagnostics);
    check_files(&system.additional_files, diagnostics);
    for (index, configuration) in system.configurations.iter().enumerate() {
        let path = child(&item("systemConfig.configurations", index), "cmd");
        match &configuration.cmd {
            Some(cmd) if cmd.value.trim().is_empty() => {
                diagnostics.push(&cmd.loc, &path, "Command is empty");
            }
            Some(_) => {}
            None => diagnostics.push(&configuration.loc, &path, "Missing required key"),
        }
    }
}

fn check_hostname(hostname: &Spanned<String>, diagnostics: &mut Diagnostics) {
    let text = &hostname.value;
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if text.len() > 253 || !text.split('.').all(label_ok) {
        let message = format!(
            "Invalid hostname `{text}`: use labels of 1 to 63 letters, digits and inner hyphens, \
             separated by dots"
        );
        diagnostics.push(&hostname.loc, "systemConfig.hostname", message);
    }
}

/// Checks a package name or glob such as `linux-image-*-amd64` as a Debian name.
pub(super) fn check_package_pattern(
    pattern: &Spanned<String>,
    path: &str,
    diagnostics: &mut Diagnostics,
) {
    check_package_pattern_for(pattern, path, None, diagnostics);
}

fn check_package_pattern_for(
    pattern: &Spanned<String>,
    path: &str,
    format: Option<PackageFormat>,
    diagnostics: &mut Diagnostics,
) {
    let text = pattern.value.as_str();
    if text.trim().is_empty() {
        diagnostics.push(&pattern.loc, path, "Package name is empty");
        return;
    }
    let glob = |c: char| "*?[]".contains(c);
    let valid = match format {
        Some(PackageFormat::Rpm) => {
            !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._+-/".contains(c) || glob(c))
        }
        _ => {
            text.len() >= 2
                && text
                    .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || glob(c))
                && text.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-:".contains(c) || glob(c)
                })
        }
    };
    if !valid {
        let message = format!(
            "Invalid package name `{text}`: Debian names use lowercase letters, digits and `+.-`; \
             `*`, `?` and `[...]` make a glob"
        );
        diagnostics.push(&pattern.loc, path, message);
    }
}

fn check_boot(
    template: &ImageTemplate,
    layout: Option<&DiskLayout>,
    top: &Loc,
    diagnostics: &mut Diagnostics,
) {
    let bootloader = &template.system_config.bootloader;
    let boot_type = required(
        bootloader.boot_type.as_ref(),
        top,
        "systemConfig.bootloader.bootType",
        diagnostics,
    )
    .filter(|value| {
        one_of(
            value,
            BOOT_TYPES,
            "systemConfig.bootloader.bootType",
            "boot type",
            diagnostics,
        )
    });
    let loader = required(
        bootloader.provider.as_ref(),
        top,
        "systemConfig.bootloader.provider",
        diagnostics,
    )
    .filter(|value| {
        one_of(
            value,
            BOOTLOADERS,
            "systemConfig.bootloader.provider",
            "bootloader",
            diagnostics,
        )
    });

    let (Some(boot_type), Some(loader)) = (boot_type, loader) else {
        return;
    };
    if boot_type.value == "legacy" && loader.value == "systemd-boot" {
        let message = "systemd-boot boots only with EFI: use bootType: efi or provider: grub";
        diagnostics.push(&loader.loc, "systemConfig.bootloader.provider", message);
    }

    let (Some(disk), Some(layout)) = (&template.disk, layout) else {
        return;
    };
    if loader.value == "none" {
        check_root_partition(disk, layout, diagnostics);
        return;
    }
    let has_esp = disk.partitions.iter().any(is_esp);
    if boot_type.value == "efi" && !has_esp {
        let message = "EFI boot needs an EFI system partition: add a partition with type: esp \
                       and fsType: fat32";
        diagnostics.push(&disk.loc, "disk.partitions", message);
    }
    let has_bios_boot = disk.partitions.iter().any(|p| {
        p.kind.as_ref().is_some_and(|k| k.value == "bios-boot")
            || p.flags.iter().any(|f| f.value == "bios_grub")
    });
    if boot_type.value == "legacy" && layout.table == TableType::Gpt && !has_bios_boot {
        let message =
            "Legacy boot from a GPT disk needs a BIOS boot partition: add one with type: bios-boot";
        diagnostics.push(&disk.loc, "disk.partitions", message);
    }
    check_root_partition(disk, layout, diagnostics);
}

fn check_root_partition(
    disk: &crate::template::Disk,
    layout: &DiskLayout,
    diagnostics: &mut Diagnostics,
) {
    if !layout
        .partitions
        .iter()
        .any(|p| p.mount_point.as_deref() == Some("/"))
    {
        diagnostics.push(
            &disk.loc,
            "disk.partitions",
            "No partition is mounted at `/`: add a root partition",
        );
    }
}

fn is_esp(partition: &Partition) -> bool {
    partition.kind.as_ref().is_some_and(|k| k.value == "esp")
        || partition.flags.iter().any(|f| f.value == "esp")
}

fn check_partition_fields(template: &ImageTemplate, diagnostics: &mut Diagnostics) {
    let Some(disk) = &template.disk else { return };
    let mut ids: Vec<&str> = Vec::new();
    let mut mount_points: Vec<&str> = Vec::new();
    for (index, partition) in disk.partitions.iter().enumerate() {
        let path = item("disk.partitions", index);
        if let Some(id) = required(
            partition.id.as_ref(),
            &partition.loc,
            &child(&path, "id"),
            diagnostics,
        ) {
            if ids.contains(&id.value.as_str()) {
                let message = format!("Partition id `{}` is used twice", id.value);
                diagnostics.push(&id.loc, &child(&path, "id"), message);
            }
            ids.push(&id.value);
        }
        check_partition_type(partition, &path, diagnostics);
        for flag in &partition.flags {
            one_of(
                flag,
                FLAGS,
                &child(&path, "flags"),
                "partition flag",
                diagnostics,
            );
        }
        let fs_type = partition.fs_type.as_ref();
        if let Some(fs_type) = fs_type {
            one_of(
                fs_type,
                FS_TYPES,
                &child(&path, "fsType"),
                "filesystem type",
                diagnostics,
            );
        }
        if is_esp(partition)
            && fs_type.is_some_and(|f| !f.value.starts_with("fat") && f.value != "vfat")
        {
            let message = "An EFI system partition must be FAT: use fsType: fat32";
            diagnostics.push(&partition.loc, &child(&path, "fsType"), message);
        }
        if let Some(mount_point) = &partition.mount_point {
            check_mount_point(
                partition,
                mount_point,
                &path,
                &mut mount_points,
                diagnostics,
            );
        }
        if let (Some(label), Some(fs_type)) = (&partition.fs_label, fs_type) {
            check_label(label, &fs_type.value, &child(&path, "fsLabel"), diagnostics);
        }
    }
}

fn check_partition_type(partition: &Partition, path: &str, diagnostics: &mut Diagnostics) {
    if let Some(uuid) = &partition.type_uuid {
        if !is_uuid(&uuid.value) {
            let message = format!(
                "Invalid type UUID `{}`: write it as 8-4-4-4-12 hex digits",
                uuid.value
            );
            diagnostics.push(&uuid.loc, &child(path, "typeUUID"), message);
        }
        return;
    }
    match &partition.kind {
        Some(kind) => {
            one_of(
                kind,
                PARTITION_TYPES,
                &child(path, "type"),
                "partition type",
                diagnostics,
            );
        }
        None => {
            let message = "Missing `type` or `typeUUID`";
            diagnostics.push(&partition.loc, &child(path, "type"), message);
        }
    }
}

fn check_mount_point<'a>(
    partition: &Partition,
    mount_point: &'a Spanned<String>,
    path: &str,
    seen: &mut Vec<&'a str>,
    diagnostics: &mut Diagnostics,
) {
    let key = child(path, "mountPoint");
    let is_swap = partition
        .fs_type
        .as_ref()
        .is_some_and(|f| f.value == "swap");
    if is_swap {
        if mount_point.value != "none" {
            diagnostics.push(
                &mount_point.loc,
                &key,
                "A swap partition has no mount point: remove it",
            );
        }
        return;
    }
    if !is_normal_mount_point(&mount_point.value) {
        let message = format!(
            "Invalid mount point `{}`: use an absolute path without `.`, `..`, `//` or a \
             trailing `/`, such as /boot/efi",
            mount_point.value
        );
        diagnostics.push(&mount_point.loc, &key, message);
    } else if seen.contains(&mount_point.value.as_str()) {
        let message = format!("Mount point `{}` is used twice", mount_point.value);
        diagnostics.push(&mount_point.loc, &key, message);
    }
    seen.push(&mount_point.value);
}

fn check_label(label: &Spanned<String>, fs_type: &str, path: &str, diagnostics: &mut Diagnostics) {
    let max = match fs_type {
        "fat16" | "fat32" | "vfat" => 11,
        "xfs" => 12,
        "swap" | "ext2" | "ext3" | "ext4" => 16,
        _ => 255,
    };
    if label.value.len() > max {
        let message = format!(
            "Label `{}` is longer than the {max} bytes {fs_type} allows",
            label.value
        );
        diagnostics.push(&label.loc, path, message);
    }
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_normal_mount_point(path: &str) -> bool {
    path == "/"
        || (path.starts_with('/')
            && path[1..]
                .split('/')
                .all(|part| !matches!(part, "" | "." | "..")))
            && !path.contains('\0')
}

fn is_clean_absolute(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(|part| part == "..") && !path.contains('\0')
}

fn check_users(users: &[User], diagnostics: &mut Diagnostics) {
    let mut seen: Vec<&str> = Vec::new();
    for (index, user) in users.iter().enumerate() {
        let path = item("systemConfig.users", index);
        if let Some(name) = required(
            user.name.as_ref(),
            &user.loc,
            &child(&path, "name"),
            diagnostics,
        ) {
            if seen.contains(&name.value.as_str()) {
                let message = format!("User `{}` is listed twice", name.value);
                diagnostics.push(&name.loc, &child(&path, "name"), message);
            }
            seen.push(&name.value);
            if !is_user_name(&name.value) {
                let message = format!(
                    "Invalid user name `{}`: start with a lowercase letter or `_`, then lowercase \
                     letters, digits, `_` and `-`, at most 32 characters",
                    name.value
                );
                diagnostics.push(&name.loc, &child(&path, "name"), message);
            }
        }
        check_password(user, &path, diagnostics);
        for group in &user.groups {
            if !is_user_name(&group.value) {
                let message = format!("Invalid group name `{}`", group.value);
                diagnostics.push(&group.loc, &child(&path, "groups"), message);
            }
        }
        for (value, key) in [(&user.shell, "shell"), (&user.home, "home")] {
            if let Some(value) = value.as_ref().filter(|v| !is_clean_absolute(&v.value)) {
                let message = format!("Invalid path `{}`: use an absolute path", value.value);
                diagnostics.push(&value.loc, &child(&path, key), message);
            }
        }
        if let Some(uid) = user
            .uid
            .as_ref()
            .filter(|uid| !(0..=65_533).contains(&uid.value))
        {
            let message = format!("Invalid uid {}: use 0 to 65533", uid.value);
            diagnostics.push(&uid.loc, &child(&path, "uid"), message);
        }
    }
}

fn is_user_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks a password: a crypt(3) hash or a locked marker, or plain text with `hashAlgo` set.
fn check_password(user: &User, path: &str, diagnostics: &mut Diagnostics) {
    let Some(password) = &user.password else {
        return;
    };
    let key = child(path, "password");
    if let Some(algorithm) = &user.hash_algo {
        one_of(
            algorithm,
            HASH_ALGORITHMS,
            &child(path, "hashAlgo"),
            "hash algorithm",
            diagnostics,
        );
        if password.value.is_empty() {
            diagnostics.push(&password.loc, &key, "Password is empty");
        }
        return;
    }
    let text = password.value.as_str();
    let is_hash = ["$1$", "$5$", "$6$", "$y$", "$2b$", "$2y$", "$gy$"]
        .iter()
        .any(|p| text.starts_with(p));
    let is_locked = text == "!" || text == "*" || text.starts_with('!');
    if !is_hash && !is_locked {
        let message = "Password is not a crypt(3) hash: give a hash such as the output of \
                       `mkpasswd -m sha-512`, or set hashAlgo to have plain text hashed";
        diagnostics.push(&password.loc, &key, message);
    }
}

fn check_files(files: &[AdditionalFile], diagnostics: &mut Diagnostics) {
    let mut seen: Vec<&str> = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let path = item("systemConfig.additionalFiles", index);
        if let Some(local) = required(
            file.local.as_ref(),
            &file.loc,
            &child(&path, "local"),
            diagnostics,
        ) {
            let resolved = provider::resolve(file.base_dir.as_deref(), &local.value);
            let message = if !resolved.exists() {
                Some(format!("Source file `{}` not found", resolved.display()))
            } else if !resolved.is_file() {
                Some(format!(
                    "Source `{}` is not a regular file",
                    resolved.display()
                ))
            } else {
                None
            };
            if let Some(message) = message {
                diagnostics.push(&local.loc, &child(&path, "local"), message);
            }
        }
        let destination = required(
            file.destination.as_ref(),
            &file.loc,
            &child(&path, "final"),
            diagnostics,
        );
        if let Some(destination) = destination.filter(|d| seen.contains(&d.value.as_str())) {
            let message = format!("Destination `{}` is listed twice", destination.value);
            diagnostics.push(&destination.loc, &child(&path, "final"), message);
        }
        if let Some(destination) = destination {
            seen.push(&destination.value);
        }
        if let Some(destination) = destination.filter(|d| !is_clean_absolute(&d.value)) {
            let message = format!(
                "Invalid destination `{}`: use an absolute path inside the image, without `..`",
                destination.value
            );
            diagnostics.push(&destination.loc, &child(&path, "final"), message);
        }
        if let Some(mode) = &file.permissions {
            let valid = u32::from_str_radix(mode.value.trim_start_matches("0o"), 8)
                .is_ok_and(|m| m <= 0o7777);
            if !valid {
                let message = format!(
                    "Invalid permissions `{}`: write an octal mode such as \"0644\"",
                    mode.value
                );
                diagnostics.push(&mode.loc, &child(&path, "permissions"), message);
            }
        }
    }
}
