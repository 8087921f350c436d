//! The manifest: every input of a chroot environment, so that a later run reuses the
//! environment or its snapshot only when nothing changed, and logs what did.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ChrootError;
use crate::{ChrootPackage, RpmChrootPackage};

/// Version of the manifest layout.
const FORMAT: u32 = 1;

/// The provider configuration that shapes the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInputs {
    /// Provider id, such as `debian-debian12-x86_64`.
    pub id: String,
    pub repositories: Vec<RepositoryInputs>,
}

/// One repository of the provider, as the configuration gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryInputs {
    pub url: String,
    pub suite: String,
    pub components: Vec<String>,
    /// Fingerprints of the signing keys, as given.
    pub key_fingerprints: Vec<String>,
}

/// A package of the resolved set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The package file's hex SHA256, or `TYPE:HEX` for another checksum type, such as the
    /// `sha512:` values of an RPM repository indexed with SHA-512.
    pub sha256: String,
}

impl PackageRecord {
    /// Builds the record of an RPM, with `[epoch:]version-release` as its version.
    pub fn for_rpm(package: &RpmChrootPackage) -> Self {
        Self {
            name: package.name.clone(),
            version: package.evr(),
            architecture: package.arch.clone(),
            sha256: package.manifest_checksum(),
        }
    }
}

/// The snapshot tarball a manifest describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub size: u64,
    pub sha256: String,
}

/// Every input of a chroot environment, and for a snapshot the tarball's size and SHA256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Version of os-image-composer that built the environment.
    pub product_version: String,
    pub provider: ProviderInputs,
    /// Sorted by name.
    pub packages: Vec<PackageRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRecord>,
}

impl Manifest {
    /// Builds the manifest of an environment of `packages` for `provider`.
    pub fn new(provider: &ProviderInputs, packages: &[ChrootPackage]) -> Self {
        let records = packages
            .iter()
            .map(|entry| PackageRecord {
                name: entry.package.name.clone(),
                version: entry.package.version.to_string(),
                architecture: entry.package.architecture.to_string(),
                sha256: entry.package.sha256.to_hex(),
            })
            .collect();
        Self::from_records(provider, records)
    }

    /// Builds the manifest of an environment of the RPM `packages` for `provider`. The version
    /// recorded is `[epoch:]version-release`.
    pub fn for_rpm(provider: &ProviderInputs, packages: &[RpmChrootPackage]) -> Self {
        let records = packages.iter().map(PackageRecord::for_rpm).collect();
        Self::from_records(provider, records)
    }

    fn from_records(provider: &ProviderInputs, mut records: Vec<PackageRecord>) -> Self {
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            format: FORMAT,
            product_version: env!("CARGO_PKG_VERSION").to_owned(),
            provider: provider.clone(),
            packages: records,
            snapshot: None,
        }
    }

    /// Reads the manifest at `path`, or returns `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, ChrootError> {
        let bytes = match fs_err::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| ChrootError::Manifest {
                path: path.to_path_buf(),
                message: error.to_string(),
            })
    }

    /// Writes the manifest to `path` through a temporary file and a rename.
    pub fn write(&self, path: &Path) -> Result<(), ChrootError> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        bytes.push(b'\n');
        write_atomic(path, &bytes)
    }

    /// Describes every input that differs between `self`, the recorded manifest, and `expected`.
    /// An empty list means the inputs match; the snapshot record is not compared.
    pub fn differences(&self, expected: &Self) -> Vec<String> {
        let mut changes = Vec::new();
        if self.format != expected.format {
            changes.push(format!(
                "manifest format changed: {} -> {}",
                self.format, expected.format
            ));
        }
        if self.product_version != expected.product_version {
            changes.push(format!(
                "product version changed: {} -> {}",
                self.product_version, expected.product_version
            ));
        }
        provider_differences(&self.provider, &expected.provider, &mut changes);
        package_differences(&self.packages, &expected.packages, &mut changes);
        changes
    }
}

fn provider_differences(old: &ProviderInputs, new: &ProviderInputs, changes: &mut Vec<String>) {
    if old.id != new.id {
        changes.push(format!("provider id changed: {} -> {}", old.id, new.id));
    }
    let by_url = |inputs: &ProviderInputs| -> BTreeMap<String, RepositoryInputs> {
        inputs
            .repositories
            .iter()
            .map(|repository| (repository.url.clone(), repository.clone()))
            .collect()
    };
    let (old_repos, new_repos) = (by_url(old), by_url(new));
    for (url, repository) in &new_repos {
        match old_repos.get(url) {
            None => changes.push(format!("repository {url} added")),
            Some(previous) => {
                if previous.key_fingerprints != repository.key_fingerprints {
                    changes.push(format!("key set changed for repository {url}"));
                }
                if previous.suite != repository.suite
                    || previous.components != repository.components
                {
                    changes.push(format!("suite or components changed for repository {url}"));
                }
            }
        }
    }
    for url in old_repos.keys().filter(|url| !new_repos.contains_key(*url)) {
        changes.push(format!("repository {url} removed"));
    }
}

fn package_differences(old: &[PackageRecord], new: &[PackageRecord], changes: &mut Vec<String>) {
    let by_name = |records: &[PackageRecord]| -> BTreeMap<String, PackageRecord> {
        records
            .iter()
            .map(|record| (record.name.clone(), record.clone()))
            .collect()
    };
    let (old_set, new_set) = (by_name(old), by_name(new));
    for (name, record) in &new_set {
        match old_set.get(name) {
            None => changes.push(format!("package {name} added: {}", record.version)),
            Some(previous) if previous.version != record.version => changes.push(format!(
                "package {name} changed: {} -> {}",
                previous.version, record.version
            )),
            Some(previous) if previous.sha256 != record.sha256 => {
                changes.push(content_change(name, previous, record));
            }
            Some(previous) if previous.architecture != record.architecture => {
                changes.push(format!(
                    "package {name} changed architecture: {} -> {}",
                    previous.architecture, record.architecture
                ));
            }
            Some(_) => {}
        }
    }
    for (name, record) in &old_set {
        if !new_set.contains_key(name) {
            changes.push(format!("package {name} removed: {}", record.version));
        }
    }
}

/// Describes a package whose version stayed and whose recorded checksum changed.
fn content_change(name: &str, old: &PackageRecord, new: &PackageRecord) -> String {
    let (old_type, new_type) = (checksum_type(&old.sha256), checksum_type(&new.sha256));
    if old_type != new_type {
        return format!(
            "package {name} {}: its checksum type changed ({old_type} -> {new_type}); the file \
             is installed again",
            new.version
        );
    }
    format!(
        "package {name} {} changed content: checksum {} -> {}",
        new.version, old.sha256, new.sha256
    )
}

/// Returns the checksum type of a recorded checksum: the part before `:`, or `sha256`.
fn checksum_type(recorded: &str) -> &str {
    recorded
        .split_once(':')
        .map_or("sha256", |(checksum_type, _)| checksum_type)
}

/// Numbers the temporary files of [`write_atomic`] within this process.
static TEMP_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `bytes` to `path` through a synced temporary file in the same directory, a rename and
/// a sync of the directory, so that a crash leaves the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ChrootError> {
    let dir = path.parent().expect("manifest paths have a parent");
    fs_err::create_dir_all(dir)?;
    let name = path
        .file_name()
        .expect("manifest paths name a file")
        .to_string_lossy();
    // The counter keeps two threads of one process that write the same file apart.
    let sequence = TEMP_SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.tmp-{}-{sequence}", std::process::id()));
    let result = (|| {
        let mut file = fs_err::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs_err::rename(&temp, path)?;
        fs_err::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&temp);
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(packages: &[(&str, &str, &str)], keys: &[&str]) -> Manifest {
        Manifest {
            format: FORMAT,
            product_version: "0.1.0".to_owned(),
            provider: ProviderInputs {
                id: "debian-debian12-x86_64".to_owned(),
                repositories: vec![RepositoryInputs {
                    url: "http://127.0.0.1/debian".to_owned(),
                    suite: "bookworm".to_owned(),
                    components: vec!["main".to_owned()],
                    key_fingerprints: keys.iter().map(|&key| key.to_owned()).collect(),
                }],
            },
            packages: packages
                .iter()
                .map(|&(name, version, sha256)| PackageRecord {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    architecture: "amd64".to_owned(),
                    sha256: sha256.to_owned(),
                })
                .collect(),
            snapshot: None,
        }
    }

    #[test]
    fn equal_inputs_have_no_differences() {
        let old = manifest(&[("libc6", "2.36-9+deb12u13", "aa")], &["K1"]);
        assert!(old.differences(&old.clone()).is_empty());
    }

    #[test]
    fn package_version_change_is_named() {
        let old = manifest(&[("libc6", "2.36-9+deb12u13", "aa")], &["K1"]);
        let new = manifest(&[("libc6", "2.36-9+deb12u14", "bb")], &["K1"]);
        assert_eq!(
            old.differences(&new),
            ["package libc6 changed: 2.36-9+deb12u13 -> 2.36-9+deb12u14"]
        );
    }

    #[test]
    fn rebuilt_package_is_named() {
        let old = manifest(&[("dash", "0.5.12-2", "aa")], &["K1"]);
        let new = manifest(&[("dash", "0.5.12-2", "bb")], &["K1"]);
        assert_eq!(
            old.differences(&new),
            ["package dash 0.5.12-2 changed content: checksum aa -> bb"]
        );
    }

    #[test]
    fn rebuilt_package_keeps_checksum_type() {
        let old = manifest(&[("app", "1.0-1", "sha512:aa")], &["K1"]);
        let new = manifest(&[("app", "1.0-1", "sha512:bb")], &["K1"]);
        assert_eq!(
            old.differences(&new),
            ["package app 1.0-1 changed content: checksum sha512:aa -> sha512:bb"]
        );
    }

    #[test]
    fn checksum_type_change_is_named() {
        let old = manifest(&[("app", "1.0-1", "aa")], &["K1"]);
        let new = manifest(&[("app", "1.0-1", "sha512:bb")], &["K1"]);
        assert_eq!(
            old.differences(&new),
            [
                "package app 1.0-1: its checksum type changed (sha256 -> sha512); the file is \
                 installed again"
            ]
        );
        assert_eq!(
            new.differences(&old),
            [
                "package app 1.0-1: its checksum type changed (sha512 -> sha256); the file is \
                 installed again"
            ]
        );
    }

    #[test]
    fn added_and_removed_packages_are_named() {
        let old = manifest(&[("dash", "1", "aa")], &["K1"]);
        let new = manifest(&[("bash", "2", "bb")], &["K1"]);
        assert_eq!(
            old.differences(&new),
            ["package bash added: 2", "package dash removed: 1"]
        );
    }

    #[test]
    fn key_change_is_named() {
        let old = manifest(&[], &["K1"]);
        let new = manifest(&[], &["K2"]);
        assert_eq!(
            old.differences(&new),
            ["key set changed for repository http://127.0.0.1/debian"]
        );
    }

    #[test]
    fn product_version_change_is_named() {
        let old = manifest(&[], &["K1"]);
        let mut new = old.clone();
        new.product_version = "0.2.0".to_owned();
        assert_eq!(
            old.differences(&new),
            ["product version changed: 0.1.0 -> 0.2.0"]
        );
    }

    #[test]
    fn manifest_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        let mut written = manifest(&[("dash", "1", "aa")], &["K1"]);
        written.snapshot = Some(SnapshotRecord {
            size: 3,
            sha256: "cc".to_owned(),
        });
        written.write(&path).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), Some(written));
        assert_eq!(Manifest::read(&dir.path().join("missing")).unwrap(), None);
    }
}
