//! Checks of a merged template as a whole, reporting every problem with its position.

mod disk;
mod system;

use std::sync::Arc;

use crate::diag::{Diagnostics, Loc};
use crate::provider::{self, Provider};
use crate::read::{child, item, Spanned};
use crate::template::{Artifact, ImageTemplate, PackageRepository};

pub use disk::{check_disk, DiskLayout, PartitionLayout, TableType, ALIGNMENT, GPT_BACKUP_BYTES};

const IMAGE_TYPES: &[&str] = &["raw"];
const ARTIFACT_TYPES: &[&str] = &["raw", "qcow2", "vhd", "vhdx", "vmdk", "vdi"];
const COMPRESSIONS: &[&str] = &["none", "gz", "xz", "zst"];
const ARCHITECTURES: &[&str] = &["x86_64", "aarch64"];

/// Checks a merged template. Returns the disk layout when the disk section is valid.
pub fn validate(template: &ImageTemplate, diagnostics: &mut Diagnostics) -> Option<DiskLayout> {
    let fallback = Loc::new(&Arc::from("<template>"), 1, 1);
    let top = template.loc.clone().unwrap_or(fallback);

    let layout = match &template.disk {
        Some(disk) => check_disk(disk, diagnostics),
        None => {
            diagnostics.push(
                &top,
                "disk",
                "Missing required key: a raw image needs a disk",
            );
            None
        }
    };
    if let Some(disk) = &template.disk {
        check_artifacts(&disk.artifacts, diagnostics);
    }

    check_image(template, &top, diagnostics);
    let provider = check_target(template, &top, diagnostics);
    system::check_system_config(
        template,
        provider.as_ref(),
        layout.as_ref(),
        &top,
        diagnostics,
    );
    check_repositories(&template.package_repositories, diagnostics);
    layout
}

fn required<'a>(
    value: Option<&'a Spanned<String>>,
    loc: &Loc,
    path: &str,
    diagnostics: &mut Diagnostics,
) -> Option<&'a Spanned<String>> {
    if value.is_none() {
        diagnostics.push(loc, path, "Missing required key");
    }
    value
}

/// Reports a value that is not one of `allowed`.
fn one_of(
    value: &Spanned<String>,
    allowed: &[&str],
    path: &str,
    what: &str,
    diagnostics: &mut Diagnostics,
) -> bool {
    if allowed.contains(&value.value.as_str()) {
        return true;
    }
    let message = format!(
        "Unknown {what} `{}`: use one of {}",
        value.value,
        allowed.join(", ")
    );
    diagnostics.push(&value.loc, path, message);
    false
}

fn check_image(template: &ImageTemplate, top: &Loc, diagnostics: &mut Diagnostics) {
    let name = required(template.image.name.as_ref(), top, "image.name", diagnostics);
    let version = required(
        template.image.version.as_ref(),
        top,
        "image.version",
        diagnostics,
    );
    for (value, path) in [(name, "image.name"), (version, "image.version")] {
        let Some(value) = value else { continue };
        if !is_file_name_part(&value.value) {
            let message = format!(
                "Invalid value `{}`: it becomes part of the image file name, so use letters, \
                 digits, `.`, `_`, `+`, `~` and `-` only",
                value.value
            );
            diagnostics.push(&value.loc, path, message);
        }
    }
}

fn is_file_name_part(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && !text.starts_with(['.', '-'])
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+~-".contains(c))
}

fn check_target(
    template: &ImageTemplate,
    top: &Loc,
    diagnostics: &mut Diagnostics,
) -> Option<Provider> {
    let target = &template.target;
    let os = required(target.os.as_ref(), top, "target.os", diagnostics);
    let dist = required(target.dist.as_ref(), top, "target.dist", diagnostics);
    let arch = required(target.arch.as_ref(), top, "target.arch", diagnostics);
    if let Some(image_type) = required(
        target.image_type.as_ref(),
        top,
        "target.imageType",
        diagnostics,
    ) {
        one_of(
            image_type,
            IMAGE_TYPES,
            "target.imageType",
            "image type",
            diagnostics,
        );
    }
    if let Some(arch) = arch {
        if !one_of(
            arch,
            ARCHITECTURES,
            "target.arch",
            "architecture",
            diagnostics,
        ) {
            return None;
        }
    }

    let (os, dist, arch) = (os?, dist?, arch?);
    match provider::provider_for(&os.value, &dist.value, &arch.value) {
        Ok(provider) => Some(provider),
        Err(message) => {
            diagnostics.push(&os.loc, "target", message);
            None
        }
    }
}

fn check_artifacts(artifacts: &[Artifact], diagnostics: &mut Diagnostics) {
    for (index, artifact) in artifacts.iter().enumerate() {
        let path = item("disk.artifacts", index);
        match &artifact.kind {
            Some(kind) => {
                one_of(
                    kind,
                    ARTIFACT_TYPES,
                    &child(&path, "type"),
                    "artifact type",
                    diagnostics,
                );
            }
            None => diagnostics.push(&artifact.loc, &child(&path, "type"), "Missing required key"),
        }
        if let Some(compression) = &artifact.compression {
            one_of(
                compression,
                COMPRESSIONS,
                &child(&path, "compression"),
                "compression",
                diagnostics,
            );
        }
    }
}

fn check_repositories(repositories: &[PackageRepository], diagnostics: &mut Diagnostics) {
    let mut seen: Vec<&str> = Vec::new();
    for (index, repository) in repositories.iter().enumerate() {
        let path = item("packageRepositories", index);
        let codename = required(
            repository.codename.as_ref(),
            &repository.loc,
            &child(&path, "codename"),
            diagnostics,
        );
        if let Some(codename) = codename {
            if seen.contains(&codename.value.as_str()) {
                let message = format!("Repository `{}` is listed twice", codename.value);
                diagnostics.push(&codename.loc, &child(&path, "codename"), message);
            }
            seen.push(&codename.value);
        }
        check_repository_source(repository, &path, diagnostics);
        if let Some(priority) = &repository.priority {
            if !(-32768..=32767).contains(&priority.value) {
                let message = format!(
                    "Priority {} is out of range: use -32768 to 32767",
                    priority.value
                );
                diagnostics.push(&priority.loc, &child(&path, "priority"), message);
            }
        }
        for (package_index, pattern) in repository.allow_packages.iter().enumerate() {
            let package_path = item(&child(&path, "allowPackages"), package_index);
            system::check_package_pattern(pattern, &package_path, diagnostics);
        }
    }
}

fn check_repository_source(
    repository: &PackageRepository,
    path: &str,
    diagnostics: &mut Diagnostics,
) {
    match (&repository.url, &repository.path) {
        (Some(_), Some(local)) => {
            diagnostics.push(
                &local.loc,
                &child(path, "path"),
                "Set either `url` or `path`, not both",
            );
        }
        (None, None) => {
            let message = "Missing `url` or `path`: a repository needs one of them";
            diagnostics.push(&repository.loc, path, message);
        }
        (Some(url), None) => {
            if let Err(message) = provider::check_url(&url.value) {
                diagnostics.push(&url.loc, &child(path, "url"), message);
            }
        }
        (None, Some(local)) => {
            let resolved = provider::resolve(repository.base_dir.as_deref(), &local.value);
            if !resolved.is_dir() {
                let message = format!("Repository folder `{}` not found", resolved.display());
                diagnostics.push(&local.loc, &child(path, "path"), message);
            }
        }
    }
    if repository.pkey.is_none() {
        let message = "Missing `pkey`: name the repository's signing key, or write \
                       `pkey: \"[trusted=yes]\"` to skip signature checks for it";
        diagnostics.push(&repository.loc, &child(path, "pkey"), message);
    }
}
