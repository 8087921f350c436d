//! Signed Debian repositories built by the Python builder `debrepo.py`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use serde_json::Value;
use tempfile::TempDir;

/// The path of `debrepo.py` in this workspace.
pub const DEBREPO_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../python/os_image_composer/testing/debrepo.py"
);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebRepoError {
    #[error("cannot create a temporary directory for the spec and GNUPGHOME: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("cannot write the repository spec to {}: {source}", path.display())]
    WriteSpec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run python3 {DEBREPO_SCRIPT}: {0}; is python3 installed?")]
    Spawn(#[source] std::io::Error),
    #[error("debrepo.py build failed ({status}): {stderr}")]
    BuildFailed { status: ExitStatus, stderr: String },
    #[error("debrepo.py printed an invalid summary: {0}")]
    InvalidSummary(String),
}

/// A `.deb` file of a built repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub component: String,
    /// The path relative to the repository root, as in the `Filename` field of `Packages`.
    pub filename: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// A built repository and the public key that signs it.
///
/// The key files and the GNUPGHOME live in a temporary directory that this value owns, so
/// they are deleted when it is dropped. The repository itself stays in the output directory.
#[derive(Debug)]
pub struct BuiltRepo {
    pub root: PathBuf,
    pub codename: String,
    pub release: PathBuf,
    pub inrelease: Option<PathBuf>,
    pub release_gpg: Option<PathBuf>,
    /// The armored public key (`.asc`).
    pub key_asc: PathBuf,
    /// The binary public key (`.gpg`), usable as a keyring for gpgv and apt's `signed-by`.
    pub key_gpg: PathBuf,
    pub fingerprint: String,
    /// The subkey that made the signatures, or the primary key when the key has no subkey.
    pub signing_fingerprint: String,
    pub packages: Vec<BuiltPackage>,
    /// The whole JSON summary that `debrepo.py build` printed.
    pub summary: Value,
    _workdir: TempDir,
}

/// The entry point of the repository builder.
pub struct DebRepo;

impl DebRepo {
    /// Builds the repository described by `spec` (the SPEC.json schema in `debrepo.py`) under
    /// `out`, with a new signing key in a private GNUPGHOME.
    pub fn build(spec: &Value, out: &Path) -> Result<BuiltRepo, DebRepoError> {
        let workdir = tempfile::Builder::new()
            .prefix("oic-debrepo-")
            .tempdir()
            .map_err(DebRepoError::TempDir)?;
        let spec_path = workdir.path().join("spec.json");
        std::fs::write(&spec_path, spec.to_string()).map_err(|source| DebRepoError::WriteSpec {
            path: spec_path.clone(),
            source,
        })?;
        let output = Command::new("python3")
            .arg(DEBREPO_SCRIPT)
            .arg("build")
            .arg(&spec_path)
            .arg(out)
            .arg("--gnupghome")
            .arg(workdir.path().join("gnupg"))
            .arg("--key-out")
            .arg(workdir.path().join("keys"))
            .output()
            .map_err(DebRepoError::Spawn)?;
        if !output.status.success() {
            return Err(DebRepoError::BuildFailed {
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        let summary: Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| DebRepoError::InvalidSummary(error.to_string()))?;
        parse_summary(summary, workdir)
    }
}

fn parse_summary(summary: Value, workdir: TempDir) -> Result<BuiltRepo, DebRepoError> {
    let packages = summary["packages"]
        .as_array()
        .ok_or_else(|| missing("packages"))?
        .iter()
        .map(parse_package)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BuiltRepo {
        root: path_field(&summary, "root")?,
        codename: string_field(&summary, "codename")?,
        release: path_field(&summary, "release")?,
        inrelease: optional_path(&summary, "inrelease"),
        release_gpg: optional_path(&summary, "release_gpg"),
        key_asc: path_field(&summary["keys"], "asc")?,
        key_gpg: path_field(&summary["keys"], "gpg")?,
        fingerprint: string_field(&summary, "fingerprint")?,
        signing_fingerprint: string_field(&summary, "signing_fingerprint")?,
        packages,
        summary,
        _workdir: workdir,
    })
}

fn parse_package(value: &Value) -> Result<BuiltPackage, DebRepoError> {
    Ok(BuiltPackage {
        name: string_field(value, "name")?,
        version: string_field(value, "version")?,
        architecture: string_field(value, "architecture")?,
        component: string_field(value, "component")?,
        filename: string_field(value, "filename")?,
        path: path_field(value, "path")?,
        size: value["size"].as_u64().ok_or_else(|| missing("size"))?,
        sha256: string_field(value, "sha256")?,
    })
}

fn missing(name: &str) -> DebRepoError {
    DebRepoError::InvalidSummary(format!("field {name:?} is missing or has the wrong type"))
}

fn string_field(value: &Value, name: &str) -> Result<String, DebRepoError> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| missing(name))
}

fn path_field(value: &Value, name: &str) -> Result<PathBuf, DebRepoError> {
    string_field(value, name).map(PathBuf::from)
}

fn optional_path(value: &Value, name: &str) -> Option<PathBuf> {
    value[name].as_str().map(PathBuf::from)
}
