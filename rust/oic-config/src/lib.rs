//! Global configuration, image templates and embedded provider definitions.
//!
//! A template is read with positions for every value ([`yaml`], [`read`]), merged over its
//! provider's default template ([`merge`]) and checked as a whole ([`validate`]). Every problem is
//! reported at once as `file:line:col: key.path: message`.

pub mod config;
pub mod diag;
pub mod emit;
pub mod merge;
pub mod provider;
pub mod read;
pub mod size;
pub mod template;
pub mod validate;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use config::{Config, ConfigError, Lookup, Origin, Overrides};
pub use diag::{Diagnostic, Diagnostics, Loc};
pub use provider::{PackageFormat, Provider, Repository};
pub use template::ImageTemplate;
pub use validate::DiskLayout;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("Template `{}` not found", path.display())]
    NotFound { path: PathBuf },
    #[error("Template `{}` is not a regular file: give the path of a YAML file", path.display())]
    NotAFile { path: PathBuf },
    #[error("Failed to read template `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// A template checked against its provider: the user's file, the merged result and the layout.
#[derive(Debug, Clone)]
pub struct CheckedTemplate {
    pub user: ImageTemplate,
    pub merged: ImageTemplate,
    pub provider: Provider,
    pub layout: DiskLayout,
}

/// Reads, merges and checks a template file. `config` supplies replacement repositories.
pub fn check_template_file(path: &Path, config: &Config) -> Result<CheckedTemplate, TemplateError> {
    // A FIFO or device would block or never end, and a folder cannot be read: only regular
    // files are read.
    if path.exists() && !path.is_file() {
        return Err(TemplateError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let bytes = match yaml::read_limited(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(TemplateError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(TemplateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let source: Arc<str> = Arc::from(path.display().to_string());
    let base_dir = std::path::absolute(path)
        .ok()
        .and_then(|absolute| absolute.parent().map(Path::to_path_buf));
    check_template_bytes(&bytes, &source, base_dir, config)
}

/// Reads, merges and checks a template from bytes, labelled `source` in messages.
pub fn check_template_bytes(
    bytes: &[u8],
    source: &Arc<str>,
    base_dir: Option<PathBuf>,
    config: &Config,
) -> Result<CheckedTemplate, TemplateError> {
    let (user, mut diagnostics) = template::read_template_partial(bytes, source, base_dir);
    let Some(user) = user else {
        return Err(TemplateError::Invalid(diagnostics));
    };

    let Some(provider) = provider_of(&user, config) else {
        // Without a known provider there is no default template: check the user's file alone.
        // Values a default template would supply are not reported missing, because the unknown
        // provider is the cause.
        let mut checks = Diagnostics::default();
        validate::validate(&user, &mut checks);
        let mut kept = Diagnostics::default();
        for check in checks.into_vec() {
            let missing = check.message.starts_with("Missing required key");
            if !missing || check.path.starts_with("target") {
                kept.push(&check.loc, &check.path, check.message);
            }
        }
        diagnostics.extend(without_repeats(kept, &diagnostics));
        diagnostics.sort();
        return Err(TemplateError::Invalid(diagnostics));
    };

    let mut merged = merge::merge(default_template(&provider), user.clone());
    make_paths_absolute(&mut merged);
    let mut checks = Diagnostics::default();
    let layout = validate::validate(&merged, &mut checks);
    diagnostics.extend(without_repeats(checks, &diagnostics));
    diagnostics.sort();

    match layout {
        Some(layout) if diagnostics.is_empty() => Ok(CheckedTemplate {
            user,
            merged,
            provider,
            layout,
        }),
        _ => Err(TemplateError::Invalid(diagnostics)),
    }
}

/// Rewrites relative file and repository paths as absolute ones, so that the merged template
/// means the same wherever it is saved.
fn make_paths_absolute(template: &mut ImageTemplate) {
    for file in &mut template.system_config.additional_files {
        if let Some(local) = &mut file.local {
            local.value = provider::resolve(file.base_dir.as_deref(), &local.value)
                .display()
                .to_string();
        }
    }
    for repository in &mut template.package_repositories {
        if let Some(path) = &mut repository.path {
            path.value = provider::resolve(repository.base_dir.as_deref(), &path.value)
                .display()
                .to_string();
        }
    }
}

/// Drops checks on key paths that already have a problem from reading, such as a missing value
/// whose real cause is that it had the wrong type.
fn without_repeats(checks: Diagnostics, reading: &Diagnostics) -> Diagnostics {
    let mut kept = Diagnostics::default();
    for check in checks.into_vec() {
        let repeated = reading.iter().any(|read| {
            !read.path.is_empty()
                && (check.path == read.path || check.path.starts_with(&format!("{}.", read.path)))
        });
        if !repeated {
            kept.push(&check.loc, &check.path, check.message);
        }
    }
    kept
}

fn provider_of(template: &ImageTemplate, config: &Config) -> Option<Provider> {
    let target = &template.target;
    let id = format!(
        "{}-{}-{}",
        target.os.as_ref()?.value,
        target.dist.as_ref()?.value,
        target.arch.as_ref()?.value
    );
    config.provider(&id)
}

/// Reads a provider's default template.
pub fn default_template(provider: &Provider) -> ImageTemplate {
    let source = provider::default_template_source(&provider.id);
    template::read_template(provider.default_template.as_bytes(), &source, None).unwrap_or_else(
        |diagnostics| {
            panic!(
                "default template of {} is invalid:\n{diagnostics}",
                provider.id
            )
        },
    )
}

/// Renders a template as YAML.
pub fn template_to_yaml(template: &ImageTemplate) -> String {
    let value = serde_json::to_value(template).expect("templates serialize to JSON");
    emit::to_yaml(&value)
}
