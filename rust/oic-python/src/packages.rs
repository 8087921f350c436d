//! The packages stage as seen from Python.

use std::path::PathBuf;
use std::sync::Arc;

use oic_build::{BuildError, PackagesOptions};
use oic_repo::RepoError;
use pyo3::prelude::*;

use crate::errors::{python_error_with, template_error};
use crate::{config_args, ConfigArgs};

/// Checks a template (a file, or text labelled `source`), resolves its packages and returns the
/// outcome as JSON. Writes the dependency graph to `dotfile` when given.
#[pyfunction]
#[pyo3(signature = (
    path=None, text=None, source=None, base_dir=None, offline=false, with_recommends=false,
    dotfile=None, config_file=None, cache_dir=None, work_dir=None, workers=None
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolve_template(
    py: Python<'_>,
    path: Option<PathBuf>,
    text: Option<&str>,
    source: Option<&str>,
    base_dir: Option<PathBuf>,
    offline: bool,
    with_recommends: bool,
    dotfile: Option<PathBuf>,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    workers: Option<u32>,
) -> PyResult<String> {
    let args: ConfigArgs = config_args(config_file, cache_dir, work_dir, None, workers, None, None);
    let config = args.load(py)?;
    let checked = match (path, text) {
        (Some(path), _) => oic_config::check_template_file(&path, &config),
        (None, Some(text)) => {
            let source: Arc<str> = Arc::from(source.unwrap_or("<text>"));
            oic_config::check_template_bytes(text.as_bytes(), &source, base_dir, &config)
        }
        (None, None) => {
            let message = "resolve_template needs a path or a text";
            return Err(pyo3::exceptions::PyTypeError::new_err(message));
        }
    }
    .map_err(|error| template_error(py, &error))?;

    let options = PackagesOptions {
        offline,
        with_recommends,
    };
    let outcome = crate::cancel::run(
        py,
        None,
        || oic_build::resolve_packages(&checked, &config, options),
        |py, error| build_error(py, &error),
    )?;
    if let Some(dotfile) = dotfile {
        write_dotfile(py, &dotfile, &outcome.dot)?;
    }
    Ok(serde_json::to_string(&outcome).expect("outcomes serialize"))
}

pub(crate) fn write_dotfile(py: Python<'_>, path: &std::path::Path, dot: &str) -> PyResult<()> {
    let result = oic_repo::cache::write_atomic(path, dot.as_bytes());
    result.map_err(|error| python_error_with(py, "ComposerError", &error.to_string(), &[]))
}

/// Maps a build error to the exception class for its kind, with the failing values attached.
pub(crate) fn build_error(py: Python<'_>, error: &BuildError) -> PyErr {
    let message = error.to_string();
    match error {
        BuildError::Metadata(repo_error) => metadata_error(py, repo_error, &message),
        BuildError::Resolution(_) => python_error_with(py, "ResolutionError", &message, &[]),
        BuildError::Rpm(rpm) => crate::rpm_errors::rpm_error(py, rpm, &message, None),
        BuildError::Cache(cache) => crate::rpm_errors::cache_error(py, cache, &message),
        BuildError::Chroot(_) => python_error_with(py, "ChrootError", &message, &[]),
        BuildError::Template(template) => crate::errors::template_error(py, template),
        _ => python_error_with(py, "BuildError", &message, &[]),
    }
}

pub(crate) fn metadata_error(py: Python<'_>, error: &RepoError, message: &str) -> PyErr {
    match error {
        RepoError::Signature { repository, .. }
        | RepoError::Key { repository, .. }
        | RepoError::MissingSignature { repository, .. } => python_error_with(
            py,
            "SignatureError",
            message,
            &[("repository", Some(repository.clone()))],
        ),
        RepoError::Checksum {
            url,
            expected,
            actual,
            expected_size,
            actual_size,
        } => python_error_with(
            py,
            "ChecksumError",
            message,
            &[
                ("url", Some(url.clone())),
                ("expected", Some(expected.clone())),
                ("actual", Some(actual.clone())),
                ("expected_size", Some(expected_size.to_string())),
                ("actual_size", Some(actual_size.to_string())),
            ],
        ),
        RepoError::NoRelease { repository, .. }
        | RepoError::Expired { repository, .. }
        | RepoError::Release { repository, .. }
        | RepoError::IndexNotListed { repository, .. }
        | RepoError::OfflineMiss { repository, .. }
        | RepoError::NoLocation { repository } => python_error_with(
            py,
            "MetadataError",
            message,
            &[("repository", Some(repository.clone()))],
        ),
        _ => python_error_with(py, "MetadataError", message, &[("repository", None)]),
    }
}
