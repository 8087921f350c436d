//! Providers and single repositories as seen from Python.

use std::path::PathBuf;

use oic_config::{Config, PackageFormat, Provider};
use oic_repo::{MetadataOptions, RepoMetadata};
use oic_rpm::RpmMetadataOptions;
use pyo3::prelude::*;
use serde_json::{json, Value};

use crate::errors::python_error_with;
use crate::packages::build_error;
use crate::{config_args, ConfigArgs};

fn find_provider(py: Python<'_>, config: &Config, id: &str) -> PyResult<Provider> {
    config.provider(id).ok_or_else(|| unknown_provider(py, id))
}

fn unknown_provider(py: Python<'_>, id: &str) -> PyErr {
    let known = oic_config::provider::provider_ids().join(", ");
    let message = format!("Unknown provider `{id}`: use one of {known}");
    python_error_with(py, "ConfigError", &message, &[])
}

/// Returns the default template of the provider `id`, as embedded in the program.
#[pyfunction]
pub(crate) fn provider_default_template(py: Python<'_>, id: &str) -> PyResult<String> {
    match oic_config::provider::load_provider(id) {
        Some(provider) => Ok(provider.default_template.to_owned()),
        None => Err(unknown_provider(py, id)),
    }
}

/// Loads the verified metadata of one repository of a provider and returns it with every
/// package of its indexes (Debian) or of its primary.xml (RPM) as JSON, with `format` set to
/// `deb` or `rpm`. Uses and fills the metadata cache like a build does.
#[pyfunction]
#[pyo3(signature = (provider, repository, offline=false, config_file=None, cache_dir=None))]
pub(crate) fn repository_packages(
    py: Python<'_>,
    provider: &str,
    repository: &str,
    offline: bool,
    config_file: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
) -> PyResult<String> {
    let args: ConfigArgs = config_args(config_file, cache_dir, None, None, None, None, None);
    let config = args.load(py)?;
    let definition = find_provider(py, &config, provider)?;
    let Some(selected) = definition
        .repositories
        .iter()
        .find(|candidate| candidate.name == repository)
    else {
        let names: Vec<&str> = definition
            .repositories
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        let message = format!(
            "Provider `{provider}` has no repository `{repository}`: use one of {}",
            names.join(", ")
        );
        return Err(python_error_with(
            py,
            "MetadataError",
            &message,
            &[("repository", Some(repository.to_owned()))],
        ));
    };
    if definition.package_format == PackageFormat::Rpm {
        let mut options =
            RpmMetadataOptions::new(&config.cache_dir.value, provider, &definition.package_arch);
        options.offline = offline;
        let metadata = py
            .detach(|| oic_rpm::load_repository_blocking(selected, &options))
            .map_err(|error| build_error(py, &oic_build::BuildError::Rpm(error)))?;
        return Ok(crate::rpm_repository::metadata_json(&metadata).to_string());
    }
    let options = MetadataOptions {
        cache_dir: config.cache_dir.value.clone(),
        provider_id: provider.to_owned(),
        architecture: definition.package_arch.clone(),
        offline,
    };
    let repositories = [selected.clone()];
    let mut loaded = crate::cancel::run(
        py,
        None,
        || oic_repo::load_repositories_blocking(&repositories, &options),
        |py, error| build_error(py, &oic_build::BuildError::Metadata(error)),
    )?;
    let metadata = loaded.pop().expect("one repository was loaded");
    Ok(metadata_json(&metadata).to_string())
}

/// The relation groups of a field as text, alternatives joined with ` | `.
macro_rules! relation_groups {
    ($groups:expr) => {
        $groups
            .iter()
            .map(|group| {
                let names: Vec<String> = group.iter().map(ToString::to_string).collect();
                names.join(" | ")
            })
            .collect::<Vec<String>>()
    };
}

fn metadata_json(metadata: &RepoMetadata) -> Value {
    let release = &metadata.release;
    let packages: Vec<Value> = metadata
        .packages
        .iter()
        .map(|package| {
            let provides: Vec<String> = package.provides.iter().map(ToString::to_string).collect();
            json!({
                "name": package.name,
                "version": package.version.to_string(),
                "architecture": package.architecture,
                "essential": package.essential,
                "priority": package.priority,
                "section": package.section,
                "source": package.source,
                "depends": relation_groups!(package.depends),
                "pre_depends": relation_groups!(package.pre_depends),
                "recommends": relation_groups!(package.recommends),
                "provides": provides,
                "filename": package.filename,
                "size": package.size,
                "sha256": package.sha256,
                "installed_size": package.installed_size,
            })
        })
        .collect();
    json!({
        "format": "deb",
        "id": metadata.id,
        "name": metadata.repository.name,
        "url": metadata.base_url,
        "source": metadata.source,
        "signature": metadata.signature,
        "release": {
            "origin": release.origin,
            "label": release.label,
            "suite": release.suite,
            "codename": release.codename,
            "version": release.version,
            "date": release.date,
            "valid_until": release.valid_until,
            "architectures": release.architectures,
            "components": release.components,
        },
        "packages": packages,
    })
}
