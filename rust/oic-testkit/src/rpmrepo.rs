//! Signed RPM repositories built by the Python builder `rpmrepo.py`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::builder::{Builder, BuilderError};

/// The path of `rpmrepo.py` in this workspace.
pub const RPMREPO_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../python/os_image_composer/testing/rpmrepo.py"
);

/// A failure to build an RPM repository. `rpmrepo.py` needs `rpmbuild`, `rpmsign`
/// (Debian package `rpm`), `createrepo_c` (Debian package `createrepo-c`) and `gpg`.
pub type RpmRepoError = BuilderError;

const BUILDER: Builder = Builder {
    script: RPMREPO_SCRIPT,
    temp_prefix: "oic-rpmrepo-",
    hint: ". It needs the Debian packages rpm and createrepo-c",
};

/// An `.rpm` file of a built repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltRpm {
    pub name: String,
    pub arch: String,
    /// The path relative to the repository root, as in primary.xml's `location href`.
    pub location: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// `repo`, `other`, or `None` for an unsigned package.
    pub signed_by: Option<String>,
}

/// A built repository with the keys that sign it.
///
/// The GNUPGHOME and the key files live in a temporary directory that this value owns.
#[derive(Debug)]
pub struct BuiltRpmRepo {
    pub root: PathBuf,
    pub repomd: PathBuf,
    pub repomd_asc: Option<PathBuf>,
    /// The armored public key that signs repomd.xml and the packages with `"sign": "repo"`.
    pub key_asc: PathBuf,
    /// The armored public key of the packages with `"sign": "other"`.
    pub other_key_asc: PathBuf,
    pub fingerprint: String,
    pub other_fingerprint: String,
    pub packages: Vec<BuiltRpm>,
    pub summary: Value,
    _workdir: TempDir,
}

impl BuiltRpmRepo {
    /// Returns the package named `name`.
    pub fn package(&self, name: &str) -> Option<&BuiltRpm> {
        self.packages.iter().find(|package| package.name == name)
    }
}

/// The entry point of the RPM repository builder.
pub struct RpmRepo;

impl RpmRepo {
    /// Builds the repository described by `spec` (the SPEC.json schema in `rpmrepo.py`) under
    /// `out`, with new keys in a private GNUPGHOME.
    pub fn build(spec: &Value, out: &Path) -> Result<BuiltRpmRepo, RpmRepoError> {
        let (summary, workdir) = BUILDER.run(spec, out)?;
        parse_summary(summary, workdir)
    }
}

fn parse_summary(summary: Value, workdir: TempDir) -> Result<BuiltRpmRepo, RpmRepoError> {
    let packages = summary["packages"]
        .as_array()
        .ok_or_else(|| BUILDER.missing("packages"))?
        .iter()
        .map(parse_package)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BuiltRpmRepo {
        root: BUILDER.path_field(&summary, "root")?,
        repomd: BUILDER.path_field(&summary, "repomd")?,
        repomd_asc: summary["repomd_asc"].as_str().map(PathBuf::from),
        key_asc: BUILDER.path_field(&summary["keys"], "asc")?,
        other_key_asc: BUILDER.path_field(&summary["keys"], "other_asc")?,
        fingerprint: BUILDER.string_field(&summary, "fingerprint")?,
        other_fingerprint: BUILDER.string_field(&summary, "other_fingerprint")?,
        packages,
        summary,
        _workdir: workdir,
    })
}

fn parse_package(value: &Value) -> Result<BuiltRpm, RpmRepoError> {
    Ok(BuiltRpm {
        name: BUILDER.string_field(value, "name")?,
        arch: BUILDER.string_field(value, "arch")?,
        location: BUILDER.string_field(value, "location")?,
        path: BUILDER.path_field(value, "path")?,
        size: value["size"]
            .as_u64()
            .ok_or_else(|| BUILDER.missing("size"))?,
        sha256: BUILDER.string_field(value, "sha256")?,
        signed_by: value["signed_by"].as_str().map(str::to_owned),
    })
}
