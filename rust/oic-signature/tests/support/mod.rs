//! Test fixtures: signed repositories from `oic_testkit::DebRepo` and special keys from
//! `signing_cases.py`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use oic_signature::Keyring;
use oic_testkit::{BuiltRepo, DebRepo, DEBREPO_SCRIPT};
use serde_json::{json, Value};
use tempfile::TempDir;

const SIGNING_CASES_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/signing_cases.py"
);

/// A built repository and the directory it lives in.
pub struct Repo {
    pub built: BuiltRepo,
    _dir: TempDir,
}

impl Repo {
    pub fn inrelease(&self) -> Vec<u8> {
        read(
            self.built
                .inrelease
                .as_ref()
                .expect("the spec enables InRelease"),
        )
    }

    pub fn release(&self) -> Vec<u8> {
        read(&self.built.release)
    }

    pub fn release_gpg(&self) -> Vec<u8> {
        read(
            self.built
                .release_gpg
                .as_ref()
                .expect("the spec enables Release.gpg"),
        )
    }

    /// Returns a keyring with the repository's binary public key.
    pub fn keyring(&self) -> Keyring {
        keyring_of(&[&self.built.key_gpg])
    }
}

/// Returns a repository spec with one package, extended by the fields of `extra`.
pub fn spec(extra: &Value) -> Value {
    let mut spec = json!({
        "codename": "bookworm",
        "compressions": [""],
        "components": {
            "main": [{"name": "hello", "version": "1.0-1", "architecture": "amd64"}]
        }
    });
    if let (Some(target), Some(fields)) = (spec.as_object_mut(), extra.as_object()) {
        for (name, value) in fields {
            target.insert(name.clone(), value.clone());
        }
    }
    spec
}

/// Builds and signs a repository with a new key.
pub fn build_repo(extra: &Value) -> Repo {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let built = DebRepo::build(&spec(extra), &dir.path().join("repo")).expect("build a repo");
    Repo { built, _dir: dir }
}

/// A signed `Release` made by `signing_cases.py`, with the key that signed it.
pub struct SigningCase {
    pub dir: TempDir,
    pub fingerprint: String,
    pub signing_fingerprint: String,
}

impl SigningCase {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        read(&self.path(name))
    }

    pub fn keyring(&self) -> Keyring {
        keyring_of(&[&self.path("key.gpg")])
    }
}

/// Runs one case of `signing_cases.py` (see its docstring).
pub fn signing_case(case: &str) -> SigningCase {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let output = Command::new("python3")
        .arg(SIGNING_CASES_SCRIPT)
        .arg(case)
        .arg(dir.path())
        .env("DEBREPO_SCRIPT", DEBREPO_SCRIPT)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "signing_cases.py {case} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    SigningCase {
        dir,
        fingerprint: summary["fingerprint"].as_str().unwrap().to_owned(),
        signing_fingerprint: summary["signing_fingerprint"].as_str().unwrap().to_owned(),
    }
}

/// Returns a keyring with the keys of every file in `paths`.
pub fn keyring_of(paths: &[&Path]) -> Keyring {
    let mut keyring = Keyring::new();
    for path in paths {
        keyring.add_file(path).expect("load a key file");
    }
    keyring
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

/// Returns the key ID (the last 16 hex digits) of a v4 fingerprint.
pub fn key_id(fingerprint: &str) -> &str {
    &fingerprint[fingerprint.len() - 16..]
}
