//! The JSON form of one RPM repository's verified metadata, for `Repository` in Python.

use oic_rpm::{Dependency, RpmPackage, RpmRepoMetadata};
use serde_json::{json, Value};

/// Returns the repository with every package of its primary.xml that the provider's
/// architectures keep.
pub(crate) fn metadata_json(metadata: &RpmRepoMetadata) -> Value {
    let packages: Vec<Value> = metadata
        .packages
        .iter()
        .map(|package| package_json(metadata, package))
        .collect();
    json!({
        "format": "rpm",
        "id": metadata.id,
        "name": metadata.repository.name,
        "url": oic_repo::fetch::redact(&metadata.base_url),
        "source": metadata.source,
        "signature": metadata.signature,
        "revision": metadata.revision,
        "packages": packages,
    })
}

fn package_json(metadata: &RpmRepoMetadata, package: &RpmPackage) -> Value {
    let epoch = package.evr.epoch_or_zero().parse::<u64>().unwrap_or(0);
    let requires: Vec<String> = package
        .requires
        .iter()
        .map(|requirement| requirement.expression.to_string())
        .collect();
    json!({
        "name": package.name,
        "epoch": epoch,
        "version": package.evr.version,
        "release": package.evr.release,
        "evr": evr_text(package),
        "architecture": package.arch,
        "requires": requires,
        "provides": texts(&package.provides),
        "conflicts": texts(&package.conflicts),
        "obsoletes": texts(&package.obsoletes),
        "files": package.files,
        "location": package.location,
        "url": oic_repo::fetch::redact(&metadata.package_url(package)),
        "size": package.size,
        "installed_size": package.installed_size,
        "checksum_type": package.checksum.algorithm.name(),
        "checksum": package.checksum.value,
        "source_rpm": package.source_rpm,
    })
}

/// Returns `[epoch:]version[-release]` with the epoch only when it is not 0, as rpm prints it.
fn evr_text(package: &RpmPackage) -> String {
    let nevra = package.nevra();
    let without_name = &nevra[package.name.len() + 1..];
    without_name
        .strip_suffix(&format!(".{}", package.arch))
        .unwrap_or(without_name)
        .to_owned()
}

fn texts(dependencies: &[Dependency]) -> Vec<String> {
    dependencies.iter().map(ToString::to_string).collect()
}
