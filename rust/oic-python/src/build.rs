//! The build as seen from Python.

use std::path::PathBuf;
use std::sync::Arc;

use oic_build::{BuildOptions, PackagesOptions};
use oic_pkgcache::{NoReporter, Reporter, TextReporter};
use pyo3::prelude::*;

use crate::packages::build_error;
use crate::{config_args, ConfigArgs};

/// Builds the image of the template at `path` and returns the build report as JSON.
#[pyfunction]
#[pyo3(signature = (
    path, offline=false, with_recommends=false, dotfile=None, progress=false, config_file=None,
    cache_dir=None, work_dir=None, workers=None
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_template(
    py: Python<'_>,
    path: PathBuf,
    offline: bool,
    with_recommends: bool,
    dotfile: Option<PathBuf>,
    progress: bool,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    work_dir: Option<PathBuf>,
    workers: Option<u32>,
) -> PyResult<String> {
    let args: ConfigArgs = config_args(config_file, cache_dir, work_dir, None, workers, None, None);
    let config = args.load(py)?;
    let reporter: Arc<dyn Reporter> = if progress {
        Arc::new(TextReporter::new())
    } else {
        Arc::new(NoReporter)
    };
    let options = BuildOptions {
        packages: PackagesOptions {
            offline,
            with_recommends,
        },
        dotfile,
    };
    let report = py
        .detach(|| oic_build::build_file(&path, &config, &options, &reporter))
        .map_err(|error| build_error(py, &error))?;
    Ok(serde_json::to_string(&report).expect("build reports serialize"))
}
