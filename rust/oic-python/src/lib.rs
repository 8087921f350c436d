//! The `os_image_composer._native` module: the Rust core as seen from Python.
//!
//! Functions take plain arguments and return JSON text that the typed wrappers in
//! `python/os_image_composer/` turn into objects. Errors are raised as the exception classes
//! defined in `os_image_composer.errors`, so Python code catches one hierarchy whether a problem
//! was found in Rust or in Python.

// PyO3 converts arguments into owned values, so functions take `PathBuf` and `String` even where a
// borrow would do.
#![allow(clippy::needless_pass_by_value)]

use std::path::PathBuf;
use std::sync::Arc;

mod build;
mod cache;
mod cancel;
mod errors;
mod logging;
mod packages;
mod repository;
mod rpm_errors;
mod rpm_repository;

use oic_config::{Config, Lookup, Overrides};
use pyo3::prelude::*;
use serde_json::json;

use errors::{config_error, template_error};

/// The configuration arguments every entry point accepts, equal to the CLI's flags.
#[derive(Default, Clone)]
pub(crate) struct ConfigArgs {
    config_file: Option<PathBuf>,
    overrides: Overrides,
}

impl ConfigArgs {
    pub(crate) fn load(&self, py: Python<'_>) -> PyResult<Config> {
        let lookup = Lookup::standard(self.config_file.clone());
        oic_config::config::load(&lookup, &self.overrides).map_err(|error| config_error(py, &error))
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn config_args(
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    workers: Option<u32>,
    log_level: Option<String>,
    log_file: Option<PathBuf>,
) -> ConfigArgs {
    let overrides = Overrides {
        cache_dir,
        work_dir,
        temp_dir,
        workers,
        log_level,
        log_file,
    };
    ConfigArgs {
        config_file,
        overrides,
    }
}

fn config_json(config: &Config) -> serde_json::Value {
    let settings: Vec<_> = config
        .entries()
        .into_iter()
        .map(|(key, value, origin)| json!({"key": key, "value": value, "origin": origin}))
        .collect();
    let providers: serde_json::Map<_, _> = config
        .providers
        .iter()
        .map(|(id, replacement)| (id.clone(), json!(replacement.repositories)))
        .collect();
    json!({
        "file": config.file.as_ref().map(|p| p.display().to_string()),
        "cache_dir": config.cache_dir.value,
        "work_dir": config.work_dir.value,
        "temp_dir": config.temp_dir.value,
        "workers": config.workers.value,
        "log_level": config.log_level.value,
        "log_file": config.log_file.value,
        "providers": providers,
        "settings": settings,
    })
}

/// Loads the configuration with the CLI's lookup and returns it as JSON.
#[pyfunction]
#[pyo3(signature = (
    config_file=None, cache_dir=None, work_dir=None, temp_dir=None, workers=None, log_level=None,
    log_file=None
))]
#[allow(clippy::too_many_arguments)]
fn load_config(
    py: Python<'_>,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    workers: Option<u32>,
    log_level: Option<String>,
    log_file: Option<PathBuf>,
) -> PyResult<String> {
    let args = config_args(
        config_file,
        cache_dir,
        work_dir,
        temp_dir,
        workers,
        log_level,
        log_file,
    );
    let config = args.load(py)?;
    Ok(config_json(&config).to_string())
}

/// Returns the text of a commented configuration file holding the defaults.
#[pyfunction]
fn default_config_text() -> String {
    oic_config::config::default_file_text()
}

fn checked_json(checked: &oic_config::CheckedTemplate) -> String {
    json!({
        "provider_id": checked.provider.id,
        "template": serde_json::to_value(&checked.user).expect("templates serialize"),
        "merged": serde_json::to_value(&checked.merged).expect("templates serialize"),
        "merged_yaml": oic_config::template_to_yaml(&checked.merged),
        "layout": checked.layout,
    })
    .to_string()
}

/// Reads, merges and checks a template file; returns the result as JSON.
#[pyfunction]
#[pyo3(signature = (
    path, config_file=None, cache_dir=None, work_dir=None, temp_dir=None, workers=None,
    log_level=None, log_file=None
))]
#[allow(clippy::too_many_arguments)]
fn check_template_file(
    py: Python<'_>,
    path: PathBuf,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    workers: Option<u32>,
    log_level: Option<String>,
    log_file: Option<PathBuf>,
) -> PyResult<String> {
    let args = config_args(
        config_file,
        cache_dir,
        work_dir,
        temp_dir,
        workers,
        log_level,
        log_file,
    );
    let config = args.load(py)?;
    let result = py.detach(move || oic_config::check_template_file(&path, &config));
    result
        .map(|checked| checked_json(&checked))
        .map_err(|error| template_error(py, &error))
}

/// Reads, merges and checks a template given as text (YAML or JSON); `source` labels it in
/// messages and `base_dir` is where its relative paths point.
#[pyfunction]
#[pyo3(signature = (text, source, base_dir=None, config_file=None))]
fn check_template_text(
    py: Python<'_>,
    text: &str,
    source: &str,
    base_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
) -> PyResult<String> {
    let args = ConfigArgs {
        config_file,
        overrides: Overrides::default(),
    };
    let config = args.load(py)?;
    let source: Arc<str> = Arc::from(source);
    let result = oic_config::check_template_bytes(text.as_bytes(), &source, base_dir, &config);
    result
        .map(|checked| checked_json(&checked))
        .map_err(|error| template_error(py, &error))
}

/// Returns the embedded providers, with a configuration's replacement repositories applied.
#[pyfunction]
#[pyo3(signature = (config_file=None))]
fn providers(py: Python<'_>, config_file: Option<PathBuf>) -> PyResult<String> {
    let config = ConfigArgs {
        config_file,
        overrides: Overrides::default(),
    }
    .load(py)?;
    let providers: Vec<_> = oic_config::provider::provider_ids()
        .into_iter()
        .filter_map(|id| config.provider(id))
        .collect();
    Ok(serde_json::to_string(&providers).expect("providers serialize"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(load_config, m)?)?;
    m.add_function(wrap_pyfunction!(default_config_text, m)?)?;
    m.add_function(wrap_pyfunction!(check_template_file, m)?)?;
    m.add_function(wrap_pyfunction!(check_template_text, m)?)?;
    m.add_function(wrap_pyfunction!(providers, m)?)?;
    m.add_function(wrap_pyfunction!(packages::resolve_template, m)?)?;
    m.add_function(wrap_pyfunction!(logging::set_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(cache::fetch_template, m)?)?;
    m.add_function(wrap_pyfunction!(cache::cache_info, m)?)?;
    m.add_function(wrap_pyfunction!(cache::cache_clean, m)?)?;
    m.add_function(wrap_pyfunction!(cache::cache_prune, m)?)?;
    m.add_function(wrap_pyfunction!(cache::cache_verify, m)?)?;
    m.add_function(wrap_pyfunction!(cache::prepare_chroot, m)?)?;
    m.add_function(wrap_pyfunction!(build::build_template, m)?)?;
    m.add_function(wrap_pyfunction!(repository::provider_default_template, m)?)?;
    m.add_function(wrap_pyfunction!(repository::repository_packages, m)?)?;
    m.add_class::<cancel::CancelToken>()?;
    // SIGINT stays with Python, which raises KeyboardInterrupt; `cancel::run` turns that into a
    // cancellation. The core still handles SIGTERM by releasing mounts and exiting.
    oic_chroot::signals::leave_interrupt_to_caller();
    logging::install();
    Ok(())
}
