//! Signed Debian repositories built by the Python builder `debrepo.py`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;

use crate::builder::{optional_path, Builder, BuilderError};

/// The path of `debrepo.py` in this workspace.
pub const DEBREPO_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../python/os_image_composer/testing/debrepo.py"
);

/// A failure to build a Debian repository; the same type as for RPM repositories.
pub type DebRepoError = BuilderError;

const BUILDER: Builder = Builder {
    script: DEBREPO_SCRIPT,
    temp_prefix: "oic-debrepo-",
    hint: "",
};

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
        let (summary, workdir) = BUILDER.run(spec, out)?;
        parse_summary(summary, workdir)
    }
}

fn parse_summary(summary: Value, workdir: TempDir) -> Result<BuiltRepo, DebRepoError> {
    let packages = summary["packages"]
        .as_array()
        .ok_or_else(|| BUILDER.missing("packages"))?
        .iter()
        .map(parse_package)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BuiltRepo {
        root: BUILDER.path_field(&summary, "root")?,
        codename: BUILDER.string_field(&summary, "codename")?,
        release: BUILDER.path_field(&summary, "release")?,
        inrelease: optional_path(&summary, "inrelease"),
        release_gpg: optional_path(&summary, "release_gpg"),
        key_asc: BUILDER.path_field(&summary["keys"], "asc")?,
        key_gpg: BUILDER.path_field(&summary["keys"], "gpg")?,
        fingerprint: BUILDER.string_field(&summary, "fingerprint")?,
        signing_fingerprint: BUILDER.string_field(&summary, "signing_fingerprint")?,
        packages,
        summary,
        _workdir: workdir,
    })
}

fn parse_package(value: &Value) -> Result<BuiltPackage, DebRepoError> {
    Ok(BuiltPackage {
        name: BUILDER.string_field(value, "name")?,
        version: BUILDER.string_field(value, "version")?,
        architecture: BUILDER.string_field(value, "architecture")?,
        component: BUILDER.string_field(value, "component")?,
        filename: BUILDER.string_field(value, "filename")?,
        path: BUILDER.path_field(value, "path")?,
        size: value["size"]
            .as_u64()
            .ok_or_else(|| BUILDER.missing("size"))?,
        sha256: BUILDER.string_field(value, "sha256")?,
    })
}
