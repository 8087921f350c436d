//! Running the Python repository builders (`debrepo.py`, `rpmrepo.py`) and reading their JSON
//! summaries.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use serde_json::Value;
use tempfile::TempDir;

/// A failure to build a test repository with one of the Python builders.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuilderError {
    #[error("cannot create a temporary directory for the spec and GNUPGHOME: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("cannot write the repository spec to {}: {source}", path.display())]
    WriteSpec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run python3 {script}: {source}; is python3 installed?")]
    Spawn {
        script: &'static str,
        source: std::io::Error,
    },
    #[error("{script} build failed ({status}): {stderr}{hint}")]
    BuildFailed {
        script: &'static str,
        status: ExitStatus,
        stderr: String,
        /// What the builder needs on the host, for the message.
        hint: &'static str,
    },
    #[error("{script} printed an invalid summary: {message}")]
    InvalidSummary {
        script: &'static str,
        message: String,
    },
}

/// One of the Python builders: its path and what it needs on the host besides python3.
pub(crate) struct Builder {
    pub(crate) script: &'static str,
    pub(crate) temp_prefix: &'static str,
    pub(crate) hint: &'static str,
}

impl Builder {
    /// Runs `SCRIPT build SPEC OUT` with a private GNUPGHOME in a new temporary directory and
    /// returns the JSON summary with that directory, which contains the keys and must live as
    /// long as the caller uses them.
    pub(crate) fn run(&self, spec: &Value, out: &Path) -> Result<(Value, TempDir), BuilderError> {
        let workdir = tempfile::Builder::new()
            .prefix(self.temp_prefix)
            .tempdir()
            .map_err(BuilderError::TempDir)?;
        let spec_path = workdir.path().join("spec.json");
        std::fs::write(&spec_path, spec.to_string()).map_err(|source| BuilderError::WriteSpec {
            path: spec_path.clone(),
            source,
        })?;

        let output = Command::new("python3")
            .arg(self.script)
            .arg("build")
            .arg(&spec_path)
            .arg(out)
            .arg("--gnupghome")
            .arg(workdir.path().join("gnupg"))
            .arg("--key-out")
            .arg(workdir.path().join("keys"))
            .output()
            .map_err(|source| BuilderError::Spawn {
                script: self.script,
                source,
            })?;
        if !output.status.success() {
            return Err(BuilderError::BuildFailed {
                script: self.script,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                hint: self.hint,
            });
        }

        let summary: Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| self.invalid(error.to_string()))?;
        Ok((summary, workdir))
    }

    pub(crate) fn invalid(&self, message: String) -> BuilderError {
        BuilderError::InvalidSummary {
            script: self.script,
            message,
        }
    }

    pub(crate) fn missing(&self, name: &str) -> BuilderError {
        self.invalid(format!("field {name:?} is missing or has the wrong type"))
    }

    pub(crate) fn string_field(&self, value: &Value, name: &str) -> Result<String, BuilderError> {
        value[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.missing(name))
    }

    pub(crate) fn path_field(&self, value: &Value, name: &str) -> Result<PathBuf, BuilderError> {
        self.string_field(value, name).map(PathBuf::from)
    }
}

pub(crate) fn optional_path(value: &Value, name: &str) -> Option<PathBuf> {
    value[name].as_str().map(PathBuf::from)
}
