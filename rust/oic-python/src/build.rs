//! The build as seen from Python.

use std::path::PathBuf;

use oic_build::{BuildOptions, PackagesOptions};
use pyo3::prelude::*;

use crate::cache::reporter_of;
use crate::cancel::CancelToken;
use crate::packages::build_error;
use crate::{config_args, ConfigArgs};

/// Builds the image of the template at `path` and returns the build report as JSON. `progress`
/// takes what `fetch_template` takes, and also a bool for the terminal display. `cancel` stops
/// the build from another thread or task.
#[pyfunction]
#[pyo3(signature = (
    path, offline=false, with_recommends=false, dotfile=None, progress=None, config_file=None,
    cache_dir=None, work_dir=None, workers=None, cancel=None
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_template(
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
    cancel: Option<PyRef<'_, CancelToken>>,
) -> PyResult<String> {
    let args: ConfigArgs = config_args(config_file, cache_dir, work_dir, None, workers, None, None);
    let config = args.load(py)?;
    let reporter = reporter_of(progress)?;
    let options = BuildOptions {
        packages: PackagesOptions {
            offline,
            with_recommends,
        },
        dotfile,
    };
    let report = crate::cancel::run(
        py,
        cancel.as_deref(),
        || oic_build::build_file(&path, &config, &options, &reporter),
        |py, error| build_error(py, &error),
    )?;
    Ok(serde_json::to_string(&report).expect("build reports serialize"))
}
