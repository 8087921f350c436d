//! Conversion of RPM and package cache failures into the exception classes of
//! `os_image_composer.errors`, with the failing values as attributes.

use std::path::Path;

use oic_pkgcache::PkgCacheError;
use oic_rpm::RpmError;
use pyo3::prelude::*;

use crate::errors::python_error_with;
use crate::packages::metadata_error;

/// The package file and repository that a package check failed on.
#[derive(Clone, Copy)]
pub(crate) struct PackageContext<'a> {
    pub(crate) repository: &'a str,
    pub(crate) file_name: &'a str,
}

/// Maps a package cache failure. A digest mismatch becomes `ChecksumError`, and a rejected
/// `.rpm` file takes the class of its RPM error. `message` is the text of the whole error.
pub(crate) fn cache_error(py: Python<'_>, error: &PkgCacheError, message: &str) -> PyErr {
    match error {
        PkgCacheError::Checksum {
            url,
            checksum_type,
            expected,
            expected_size,
            actual,
            actual_size,
        } => python_error_with(
            py,
            "ChecksumError",
            message,
            &[
                ("url", Some(url.clone())),
                ("algorithm", Some(checksum_type.to_string())),
                ("expected", Some(expected.clone())),
                ("actual", Some(actual.clone())),
                ("expected_size", Some(expected_size.to_string())),
                ("actual_size", Some(actual_size.to_string())),
            ],
        ),
        PkgCacheError::Rejected {
            file_name,
            repository,
            source,
        } => match source.downcast_ref::<RpmError>() {
            Some(rpm) => {
                let context = PackageContext {
                    repository,
                    file_name,
                };
                rpm_error(py, rpm, message, Some(context))
            }
            None => python_error_with(py, "CacheError", message, &[]),
        },
        // The message lists every failure, and the class and attributes follow the first.
        PkgCacheError::Several(errors) => match errors.first() {
            Some(first) => cache_error(py, first, message),
            None => python_error_with(py, "CacheError", message, &[]),
        },
        PkgCacheError::Repo(repo) => metadata_error(py, repo, message),
        _ => python_error_with(py, "CacheError", message, &[]),
    }
}

/// Maps an RPM metadata, package or resolution failure. `context` names the package file when
/// the failure comes from the check of a fetched `.rpm` file.
pub(crate) fn rpm_error(
    py: Python<'_>,
    error: &RpmError,
    message: &str,
    context: Option<PackageContext<'_>>,
) -> PyErr {
    if let RpmError::Repo(repo) = error {
        return metadata_error(py, repo, message);
    }
    let mapped = signature_error(py, error, message, context)
        .or_else(|| checksum_error(py, error, message))
        .or_else(|| resolution_error(py, error, message));
    mapped.unwrap_or_else(|| {
        let repository = repository_of(error).or(context.map(|c| c.repository.to_owned()));
        python_error_with(py, "MetadataError", message, &[("repository", repository)])
    })
}

/// Maps an unsigned or wrongly signed repomd.xml or package to `SignatureError`.
fn signature_error(
    py: Python<'_>,
    error: &RpmError,
    message: &str,
    context: Option<PackageContext<'_>>,
) -> Option<PyErr> {
    let attributes = match error {
        RpmError::MissingRepomdSignature { repository, .. }
        | RpmError::Signature { repository, .. } => {
            [("repository", Some(repository.clone())), ("package", None)]
        }
        RpmError::Unsigned { path } | RpmError::PackageSignature { path, .. } => [
            ("repository", context.map(|c| c.repository.to_owned())),
            ("package", Some(package_name(path, context))),
        ],
        _ => return None,
    };
    Some(python_error_with(
        py,
        "SignatureError",
        message,
        &attributes,
    ))
}

/// Maps a size or digest mismatch against repomd.xml, primary.xml or the package's own header
/// to `ChecksumError`.
fn checksum_error(py: Python<'_>, error: &RpmError, message: &str) -> Option<PyErr> {
    let attributes = match error {
        RpmError::Checksum {
            url,
            algorithm,
            expected,
            actual,
            ..
        } => vec![
            ("url", Some(url.clone())),
            ("algorithm", Some(algorithm.clone())),
            ("expected", Some(expected.clone())),
            ("actual", Some(actual.clone())),
        ],
        RpmError::Size {
            url,
            expected,
            actual,
            ..
        } => vec![
            ("url", Some(url.clone())),
            ("expected_size", Some(expected.to_string())),
            ("actual_size", Some(actual.to_string())),
        ],
        RpmError::PackageDigest {
            path,
            what,
            expected,
            actual,
        } => vec![
            ("url", Some(path.display().to_string())),
            ("algorithm", Some(what.clone())),
            ("expected", Some(expected.clone())),
            ("actual", Some(actual.clone())),
        ],
        _ => return None,
    };
    Some(python_error_with(py, "ChecksumError", message, &attributes))
}

/// Maps a failed resolution to `ResolutionError`, with the dependency that nothing provides.
fn resolution_error(py: Python<'_>, error: &RpmError, message: &str) -> Option<PyErr> {
    let attributes = match error {
        RpmError::MissingDependency {
            package,
            dependency,
            chain,
            ..
        } => vec![
            ("package", Some(package.clone())),
            ("dependency", Some(dependency.clone())),
            ("chain", Some(chain.clone())),
        ],
        RpmError::RichDependency {
            package,
            expression,
            ..
        } => vec![
            ("package", Some(package.clone())),
            ("dependency", Some(expression.clone())),
        ],
        RpmError::Unsolvable { .. } | RpmError::NotFound { .. } => Vec::new(),
        _ => return None,
    };
    Some(python_error_with(
        py,
        "ResolutionError",
        message,
        &attributes,
    ))
}

/// Returns the repository an RPM metadata error names, if any.
fn repository_of(error: &RpmError) -> Option<String> {
    match error {
        RpmError::NoRepomd { repository, .. }
        | RpmError::PrimaryNotListed { repository, .. }
        | RpmError::OfflineMiss { repository, .. }
        | RpmError::NoLocation { repository } => Some(repository.clone()),
        _ => None,
    }
}

/// Returns the package file name: the cache's name when known, else the file name of `path`.
fn package_name(path: &Path, context: Option<PackageContext<'_>>) -> String {
    match context {
        Some(context) => context.file_name.to_owned(),
        None => path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        ),
    }
}
