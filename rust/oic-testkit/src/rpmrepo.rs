//! Signed RPM repositories built by the Python builder `rpmrepo.py`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use serde_json::Value;
use tempfile::TempDir;

/// The path of `rpmrepo.py` in this workspace.
pub const RPMREPO_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../python/os_image_composer/testing/rpmrepo.py"
);

/// A failure to build an RPM repository. `rpmrepo.py` needs `rpmbuild`, `rpmsign`
/// (Debian package `rpm`), `createrepo_c` (Debian package `createrepo-c`) and `gpg`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpmRepoError {
    #[error("cannot create a temporary directory for the spec and GNUPGHOME: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("cannot write the repository spec to {}: {source}", path.display())]
    WriteSpec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run python3 {RPMREPO_SCRIPT}: {0}; is python3 installed?")]
    Spawn(#[source] std::io::Error),
    #[error(
        "rpmrepo.py build failed ({status}): {stderr}. It needs the Debian packages rpm and \
         createrepo-c"
    )]
    BuildFailed { status: ExitStatus, stderr: String },
    #[error("rpmrepo.py printed an invalid summary: {0}")]
    InvalidSummary(String),
}

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
        let workdir = tempfile::Builder::new()
            .prefix("oic-rpmrepo-")
            .tempdir()
            .map_err(RpmRepoError::TempDir)?;
        let spec_path = workdir.path().join("spec.json");
        std::fs::write(&spec_path, spec.to_string()).map_err(|source| RpmRepoError::WriteSpec {
            path: spec_path.clone(),
            source,
        })?;
        let output = Command::new("python3")
            .arg(RPMREPO_SCRIPT)
            .arg("build")
            .arg(&spec_path)
            .arg(out)
            .arg("--gnupghome")
            .arg(workdir.path().join("gnupg"))
            .arg("--key-out")
            .arg(workdir.path().join("keys"))
            .output()
            .map_err(RpmRepoError::Spawn)?;
        if !output.status.success() {
            return Err(RpmRepoError::BuildFailed {
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        let summary: Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| RpmRepoError::InvalidSummary(error.to_string()))?;
        parse_summary(summary, workdir)
    }
}

fn parse_summary(summary: Value, workdir: TempDir) -> Result<BuiltRpmRepo, RpmRepoError> {
    let packages = summary["packages"]
        .as_array()
        .ok_or_else(|| missing("packages"))?
        .iter()
        .map(parse_package)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BuiltRpmRepo {
        root: path_field(&summary, "root")?,
        repomd: path_field(&summary, "repomd")?,
        repomd_asc: summary["repomd_asc"].as_str().map(PathBuf::from),
        key_asc: path_field(&summary["keys"], "asc")?,
        other_key_asc: path_field(&summary["keys"], "other_asc")?,
        fingerprint: string_field(&summary, "fingerprint")?,
        other_fingerprint: string_field(&summary, "other_fingerprint")?,
        packages,
        summary,
        _workdir: workdir,
    })
}

fn parse_package(value: &Value) -> Result<BuiltRpm, RpmRepoError> {
    Ok(BuiltRpm {
        name: string_field(value, "name")?,
        arch: string_field(value, "arch")?,
        location: string_field(value, "location")?,
        path: path_field(value, "path")?,
        size: value["size"].as_u64().ok_or_else(|| missing("size"))?,
        sha256: string_field(value, "sha256")?,
        signed_by: value["signed_by"].as_str().map(str::to_owned),
    })
}

fn missing(name: &str) -> RpmRepoError {
    RpmRepoError::InvalidSummary(format!("field {name:?} is missing or has the wrong type"))
}

fn string_field(value: &Value, name: &str) -> Result<String, RpmRepoError> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| missing(name))
}

fn path_field(value: &Value, name: &str) -> Result<PathBuf, RpmRepoError> {
    string_field(value, name).map(PathBuf::from)
}
