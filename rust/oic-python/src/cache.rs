//! The package cache and the fetch step as seen from Python.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oic_build::PackagesOptions;
use oic_config::PackageFormat;
use oic_pkgcache::{
    CleanOptions, CleanScope, FetchReport, NoReporter, PkgCacheError, PruneOptions, Reporter,
    TextReporter, VerifyIndex, VerifyReport,
};
use pyo3::prelude::*;

use crate::errors::{python_error_with, template_error};
use crate::packages::build_error;
use crate::{config_args, ConfigArgs};

fn cache_error(py: Python<'_>, error: &PkgCacheError) -> PyErr {
    python_error_with(py, "CacheError", &error.to_string(), &[])
}

fn load(
    py: Python<'_>,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
) -> PyResult<oic_config::Config> {
    let args: ConfigArgs = config_args(config_file, cache_dir, work_dir, None, None, None, None);
    args.load(py)
}

/// Calls a Python callable with `(event, name, number)` for each progress event.
struct CallbackReporter {
    callback: Py<PyAny>,
}

impl CallbackReporter {
    fn call(&self, event: &str, name: &str, number: u64) {
        Python::attach(|py| {
            // A failing callback must not stop the downloads; its error is dropped.
            drop(self.callback.call1(py, (event, name, number)));
        });
    }
}

impl Reporter for CallbackReporter {
    fn start(&self, total_files: usize, total_bytes: u64) {
        self.call("start", &total_files.to_string(), total_bytes);
    }

    fn file_started(&self, file_name: &str, size: u64) {
        self.call("file_started", file_name, size);
    }

    fn bytes(&self, count: u64) {
        self.call("bytes", "", count);
    }

    fn file_done(&self, file_name: &str, succeeded: bool) {
        self.call("file_done", file_name, u64::from(succeeded));
    }

    fn finish(&self, outcome: Result<&FetchReport, &PkgCacheError>) {
        self.call("finish", "", u64::from(outcome.is_ok()));
    }
}

/// Returns the reporter for a `progress` argument: `None` or `False` for none, `True` or
/// `"text"` for a terminal display, any other value is called as `(event, name, number)`.
pub(crate) fn reporter_of(progress: Option<Bound<'_, PyAny>>) -> PyResult<Arc<dyn Reporter>> {
    let Some(value) = progress else {
        return Ok(Arc::new(NoReporter));
    };
    if let Ok(flag) = value.cast::<pyo3::types::PyBool>() {
        return Ok(if flag.is_true() {
            Arc::new(TextReporter::new())
        } else {
            Arc::new(NoReporter)
        });
    }
    if value.extract::<String>().is_ok_and(|text| text == "text") {
        return Ok(Arc::new(TextReporter::new()));
    }
    if !value.is_callable() {
        let message = "progress must be a callable, \"text\", a bool or None";
        return Err(pyo3::exceptions::PyTypeError::new_err(message));
    }
    Ok(Arc::new(CallbackReporter {
        callback: value.unbind(),
    }))
}

/// Resolves a template's packages and fetches them into the package cache. `progress` is
/// `"text"` for a terminal display, a callable for callbacks, or `None`. Returns JSON with the
/// resolution and the fetch report.
#[pyfunction]
#[pyo3(signature = (
    path, offline=false, with_recommends=false, dotfile=None, progress=None, config_file=None,
    cache_dir=None, work_dir=None, workers=None
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn fetch_template(
    py: Python<'_>,
    path: PathBuf,
    offline: bool,
    with_recommends: bool,
    dotfile: Option<PathBuf>,
    progress: Option<Bound<'_, PyAny>>,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    workers: Option<u32>,
) -> PyResult<String> {
    let args: ConfigArgs = config_args(config_file, cache_dir, work_dir, None, workers, None, None);
    let config = args.load(py)?;
    let checked = oic_config::check_template_file(&path, &config)
        .map_err(|error| template_error(py, &error))?;
    let reporter = reporter_of(progress)?;

    let options = PackagesOptions {
        offline,
        with_recommends,
    };
    let work = || {
        let outcome = oic_build::resolve_packages(&checked, &config, options)?;
        let report = oic_build::fetch_packages(&outcome, &config, reporter)?;
        Ok::<_, oic_build::BuildError>((outcome, report))
    };
    let (outcome, report) =
        crate::cancel::run(py, None, work, |py, error| build_error(py, &error))?;
    if let Some(dotfile) = dotfile {
        crate::packages::write_dotfile(py, &dotfile, &outcome.dot)?;
    }
    let json = serde_json::json!({
        "resolution": outcome,
        "fetch": report,
        "summary": report.summary_line(),
    });
    Ok(json.to_string())
}

/// Returns sizes and counts per provider as JSON.
#[pyfunction]
#[pyo3(signature = (config_file=None, cache_dir=None, work_dir=None))]
pub(crate) fn cache_info(
    py: Python<'_>,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
) -> PyResult<String> {
    let config = load(py, config_file, cache_dir, work_dir)?;
    let info = oic_pkgcache::cache_info(&config.cache_dir.value, &config.work_dir.value)
        .map_err(|error| cache_error(py, &error))?;
    Ok(serde_json::to_string(&info).expect("cache info serializes"))
}

/// Deletes cached trees: `scope` is `packages`, `workspace` or `all`.
#[pyfunction]
#[pyo3(signature = (scope="packages", provider=None, dry_run=false, config_file=None, cache_dir=None, work_dir=None))]
pub(crate) fn cache_clean(
    py: Python<'_>,
    scope: &str,
    provider: Option<String>,
    dry_run: bool,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
) -> PyResult<String> {
    let config = load(py, config_file, cache_dir, work_dir)?;
    let scope = match scope {
        "packages" => CleanScope::Packages,
        "workspace" => CleanScope::Workspace,
        "all" => CleanScope::All,
        other => {
            let message = format!("Invalid scope `{other}`: use packages, workspace or all");
            return Err(pyo3::exceptions::PyValueError::new_err(message));
        }
    };
    let options = CleanOptions {
        scope,
        provider,
        dry_run,
    };
    let report = crate::cancel::run(
        py,
        None,
        || oic_pkgcache::clean(&config.cache_dir.value, &config.work_dir.value, &options),
        |py, error| cache_error(py, &error),
    )?;
    Ok(serde_json::to_string(&report).expect("clean reports serialize"))
}

/// Deletes least recently used package files by age and/or total size.
#[pyfunction]
#[pyo3(signature = (older_than_days=None, max_size=None, provider=None, dry_run=false, config_file=None, cache_dir=None))]
pub(crate) fn cache_prune(
    py: Python<'_>,
    older_than_days: Option<u64>,
    max_size: Option<u64>,
    provider: Option<String>,
    dry_run: bool,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> PyResult<String> {
    let config = load(py, config_file, cache_dir, None)?;
    let options = PruneOptions {
        older_than_days,
        max_size,
        provider,
        dry_run,
    };
    let report = crate::cancel::run(
        py,
        None,
        || oic_pkgcache::prune(&config.cache_dir.value, &options),
        |py, error| cache_error(py, &error),
    )?;
    Ok(serde_json::to_string(&report).expect("prune reports serialize"))
}

/// Checks every cached package file of a provider against its cached metadata: the Debian
/// indexes or the RPM primary metadata, by the provider's `packageFormat`. A provider with no
/// package cache folder has nothing to check and gets an empty report.
#[pyfunction]
#[pyo3(signature = (provider, delete=false, config_file=None, cache_dir=None))]
pub(crate) fn cache_verify(
    py: Python<'_>,
    provider: &str,
    delete: bool,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> PyResult<String> {
    let config = load(py, config_file, cache_dir, None)?;
    let Some(definition) = config.provider(provider) else {
        let message = format!("Unknown provider `{provider}`");
        return Err(python_error_with(py, "CacheError", &message, &[]));
    };
    let cache_dir = &config.cache_dir.value;

    let work = || {
        let report = if has_package_folder(cache_dir, provider) {
            let index = verify_index(&definition, cache_dir)?;
            oic_pkgcache::verify(cache_dir, Some(provider), delete, &index)?
        } else {
            tracing::info!(provider, "no package cache folder, nothing to verify");
            VerifyReport::default()
        };
        Ok::<_, oic_build::BuildError>(report)
    };
    let report = crate::cancel::run(py, None, work, |py, error| {
        python_error_with(py, "CacheError", &error.to_string(), &[])
    })?;
    Ok(serde_json::to_string(&report).expect("verify reports serialize"))
}

fn has_package_folder(cache_dir: &Path, provider: &str) -> bool {
    oic_pkgcache::layout::pkg_cache_root(cache_dir)
        .join(provider)
        .is_dir()
}

/// Loads the offline verify index in the provider's package format.
fn verify_index(
    definition: &oic_config::Provider,
    cache_dir: &Path,
) -> Result<VerifyIndex, oic_build::BuildError> {
    match definition.package_format {
        PackageFormat::Rpm => oic_build::rpm_packages::load_rpm_verify_index(definition, cache_dir),
        PackageFormat::Deb => {
            let options = oic_repo::MetadataOptions {
                cache_dir: cache_dir.to_owned(),
                provider_id: definition.id.clone(),
                architecture: definition.package_arch.clone(),
                offline: true,
            };
            Ok(oic_pkgcache::load_verify_index(
                &definition.repositories,
                &options,
            )?)
        }
    }
}

/// Resolves, fetches and creates or reuses the provider's chroot environment for a template.
/// Needs root. Returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (path, offline=false, progress=false, config_file=None, cache_dir=None, work_dir=None, workers=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_chroot(
    py: Python<'_>,
    path: PathBuf,
    offline: bool,
    progress: bool,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    workers: Option<u32>,
) -> PyResult<String> {
    let args: ConfigArgs = config_args(config_file, cache_dir, work_dir, None, workers, None, None);
    let config = args.load(py)?;
    let checked = oic_config::check_template_file(&path, &config)
        .map_err(|error| template_error(py, &error))?;
    let reporter: Arc<dyn Reporter> = if progress {
        Arc::new(TextReporter::new())
    } else {
        Arc::new(NoReporter)
    };
    let options = PackagesOptions {
        offline,
        with_recommends: false,
    };
    let report = crate::cancel::run(
        py,
        None,
        || oic_build::prepare_chroot(&checked, &config, options, reporter),
        |py, error| build_error(py, &error),
    )?;
    Ok(serde_json::to_string(&report).expect("chroot reports serialize"))
}
