//! The global configuration: where caches and work folders live, how many workers run, logging,
//! and replacement repositories for providers.
//!
//! Lookup order: an explicit `--config FILE` (a missing file is an error), then
//! `./os-image-composer.yml`, then `$XDG_CONFIG_HOME/os-image-composer/config.yml` (or
//! `~/.config/...`), then `/etc/os-image-composer/config.yml`, then built-in defaults. Only the
//! first file found is read. Command-line flags override the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostics, Loc};
use crate::provider::{self, Provider, Repository};
use crate::read::{MapReader, Spanned};
use crate::yaml;

pub const DEFAULT_CACHE_DIR: &str = "/var/cache/os-image-composer";
pub const DEFAULT_WORK_DIR: &str = "/var/tmp/os-image-composer";
pub const DEFAULT_TEMP_DIR: &str = "/tmp";
/// Eight concurrent transfers keep a mirror's bandwidth busy without opening more connections
/// than public mirrors welcome from one client.
pub const DEFAULT_WORKERS: u32 = 8;
pub const MAX_WORKERS: u32 = 100;
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// The file name looked for in the working directory.
pub const LOCAL_FILE_NAME: &str = "os-image-composer.yml";
pub const SYSTEM_FILE: &str = "/etc/os-image-composer/config.yml";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("Configuration file `{}` not found: check its path", path.display())]
    NotFound { path: PathBuf },
    #[error("Configuration file `{}` is not a regular file: give the path of a YAML file", path.display())]
    NotAFile { path: PathBuf },
    #[error("Failed to read configuration file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error("Invalid value `{value}` for {flag}: {message}")]
    InvalidFlag {
        flag: &'static str,
        value: String,
        message: String,
    },
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(Loc),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(loc) => write!(f, "{loc}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A setting's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn default(value: T) -> Self {
        Self {
            value,
            origin: Origin::Default,
        }
    }
}

/// Repositories that replace an embedded provider's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOverride {
    pub repositories: Vec<Repository>,
    pub origin: Origin,
}

/// The effective global configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    pub cache_dir: Setting<PathBuf>,
    pub work_dir: Setting<PathBuf>,
    pub temp_dir: Setting<PathBuf>,
    pub workers: Setting<u32>,
    pub log_level: Setting<String>,
    pub log_file: Setting<Option<PathBuf>>,
    pub providers: BTreeMap<String, ProviderOverride>,
}

/// Values given on the command line or through the API, each overriding the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub cache_dir: Option<PathBuf>,
    pub work_dir: Option<PathBuf>,
    pub temp_dir: Option<PathBuf>,
    pub workers: Option<u32>,
    pub log_level: Option<String>,
    pub log_file: Option<PathBuf>,
}

/// The places a configuration file is looked for.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub explicit: Option<PathBuf>,
    pub candidates: Vec<PathBuf>,
}

impl Lookup {
    /// Builds the standard lookup from the working directory and the environment.
    pub fn standard(explicit: Option<PathBuf>) -> Self {
        let mut candidates = vec![PathBuf::from(LOCAL_FILE_NAME)];
        if let Some(dir) = user_config_dir() {
            candidates.push(dir.join("os-image-composer").join("config.yml"));
        }
        candidates.push(PathBuf::from(SYSTEM_FILE));
        Self {
            explicit,
            candidates,
        }
    }

    /// Returns the file to read: the explicit one, or the first candidate that exists.
    fn find(&self) -> Result<Option<PathBuf>, ConfigError> {
        if let Some(path) = &self.explicit {
            if !path.exists() {
                return Err(ConfigError::NotFound { path: path.clone() });
            }
            if !path.is_file() {
                return Err(ConfigError::NotAFile { path: path.clone() });
            }
            return Ok(Some(path.clone()));
        }
        Ok(self.candidates.iter().find(|path| path.is_file()).cloned())
    }
}

fn user_config_dir() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            file: None,
            cache_dir: Setting::default(PathBuf::from(DEFAULT_CACHE_DIR)),
            work_dir: Setting::default(PathBuf::from(DEFAULT_WORK_DIR)),
            temp_dir: Setting::default(PathBuf::from(DEFAULT_TEMP_DIR)),
            workers: Setting::default(DEFAULT_WORKERS),
            log_level: Setting::default("info".to_owned()),
            log_file: Setting::default(None),
            providers: BTreeMap::new(),
        }
    }
}

/// Loads the configuration: the file found by `lookup`, then `overrides` on top.
pub fn load(lookup: &Lookup, overrides: &Overrides) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    if let Some(path) = lookup.find()? {
        let bytes = yaml::read_limited(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        read_file(&mut config, &bytes, &path).map_err(ConfigError::Invalid)?;
        config.file = Some(path);
    }
    apply_overrides(&mut config, overrides)?;
    Ok(config)
}

const CONFIG_KEYS: &[&str] = &[
    "cache_dir",
    "work_dir",
    "temp_dir",
    "workers",
    "logging",
    "providers",
];

/// Reads a configuration file's settings into `config`.
pub fn read_file(config: &mut Config, bytes: &[u8], path: &Path) -> Result<(), Diagnostics> {
    let source: Arc<str> = Arc::from(path.display().to_string());
    let base_dir = absolute_parent(path);
    let Some(root) = yaml::parse_bytes(bytes, &source)? else {
        return Ok(());
    };

    let mut diagnostics = Diagnostics::default();
    let Some(map) = MapReader::open(&root, "", CONFIG_KEYS, &mut diagnostics) else {
        return Err(diagnostics);
    };

    for (key, setting) in [
        ("cache_dir", &mut config.cache_dir),
        ("work_dir", &mut config.work_dir),
        ("temp_dir", &mut config.temp_dir),
    ] {
        if let Some(value) = map.string(key, &mut diagnostics) {
            *setting = path_setting(&value, &base_dir);
        }
    }
    if let Some(workers) = map.integer("workers", &mut diagnostics) {
        read_workers(config, &workers, &mut diagnostics);
    }
    if let Some(node) = map.get("logging") {
        read_logging(config, node, &base_dir, &mut diagnostics);
    }
    if let Some(node) = map.get("providers") {
        read_providers(config, node, &base_dir, &mut diagnostics);
    }

    if diagnostics.is_empty() {
        Ok(())
    } else {
        diagnostics.sort();
        Err(diagnostics)
    }
}

fn absolute_parent(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf())
}

fn path_setting(value: &Spanned<String>, base_dir: &Path) -> Setting<PathBuf> {
    Setting {
        value: provider::resolve(Some(base_dir), &value.value),
        origin: Origin::File(value.loc.clone()),
    }
}

fn read_workers(config: &mut Config, workers: &Spanned<i64>, diagnostics: &mut Diagnostics) {
    match u32::try_from(workers.value) {
        Ok(value @ 1..=MAX_WORKERS) => {
            config.workers = Setting {
                value,
                origin: Origin::File(workers.loc.clone()),
            };
        }
        _ => {
            let message = format!(
                "Invalid value {}: workers must be 1 to {MAX_WORKERS}",
                workers.value
            );
            diagnostics.push(&workers.loc, "workers", message);
        }
    }
}

fn read_logging(
    config: &mut Config,
    node: &yaml::Node,
    base_dir: &Path,
    diagnostics: &mut Diagnostics,
) {
    let Some(map) = MapReader::open(node, "logging", &["level", "file"], diagnostics) else {
        return;
    };
    if let Some(level) = map.string("level", diagnostics) {
        match check_log_level(&level.value) {
            Ok(value) => {
                config.log_level = Setting {
                    value,
                    origin: Origin::File(level.loc),
                }
            }
            Err(message) => diagnostics.push(&level.loc, "logging.level", message),
        }
    }
    if let Some(file) = map.string("file", diagnostics) {
        let setting = path_setting(&file, base_dir);
        config.log_file = Setting {
            value: Some(setting.value),
            origin: setting.origin,
        };
    }
}

fn read_providers(
    config: &mut Config,
    node: &yaml::Node,
    base_dir: &Path,
    diagnostics: &mut Diagnostics,
) {
    let ids = provider::provider_ids();
    let Some(map) = MapReader::open(node, "providers", &ids, diagnostics) else {
        return;
    };
    for id in ids {
        let Some(provider_node) = map.get(id) else {
            continue;
        };
        let path = map.path_of(id);
        let Some(entry) = MapReader::open(provider_node, &path, &["repositories"], diagnostics)
        else {
            continue;
        };
        let repositories = entry.list("repositories", diagnostics, |node, path, d| {
            provider::read_repository(node, path, Some(base_dir), d)
        });
        if entry.get("repositories").is_none() {
            diagnostics.push(
                &provider_node.loc,
                &entry.path_of("repositories"),
                "Missing required key",
            );
        } else if repositories.is_empty() {
            let message = "A provider needs at least one repository: list it, or remove this \
                           entry to keep the provider's own";
            diagnostics.push(&provider_node.loc, &entry.path_of("repositories"), message);
        }
        let origin = Origin::File(provider_node.loc.clone());
        config.providers.insert(
            id.to_owned(),
            ProviderOverride {
                repositories,
                origin,
            },
        );
    }
}

fn check_log_level(level: &str) -> Result<String, String> {
    let lower = level.to_ascii_lowercase();
    if LOG_LEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "Invalid log level `{level}`: use one of {}",
            LOG_LEVELS.join(", ")
        ))
    }
}

fn apply_overrides(config: &mut Config, overrides: &Overrides) -> Result<(), ConfigError> {
    let flag_path = |value: &Option<PathBuf>, flag| {
        value.as_ref().map(|path| Setting {
            value: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            origin: Origin::Flag(flag),
        })
    };
    if let Some(setting) = flag_path(&overrides.cache_dir, "--cache-dir") {
        config.cache_dir = setting;
    }
    if let Some(setting) = flag_path(&overrides.work_dir, "--work-dir") {
        config.work_dir = setting;
    }
    if let Some(setting) = flag_path(&overrides.temp_dir, "--temp-dir") {
        config.temp_dir = setting;
    }
    if let Some(setting) = flag_path(&overrides.log_file, "--log-file") {
        config.log_file = Setting {
            value: Some(setting.value),
            origin: setting.origin,
        };
    }
    if let Some(workers) = overrides.workers {
        if !(1..=MAX_WORKERS).contains(&workers) {
            let message = format!("workers must be 1 to {MAX_WORKERS}");
            let value = workers.to_string();
            return Err(ConfigError::InvalidFlag {
                flag: "--workers",
                value,
                message,
            });
        }
        config.workers = Setting {
            value: workers,
            origin: Origin::Flag("--workers"),
        };
    }
    if let Some(level) = &overrides.log_level {
        let value = check_log_level(level).map_err(|message| ConfigError::InvalidFlag {
            flag: "--log-level",
            value: level.clone(),
            message,
        })?;
        config.log_level = Setting {
            value,
            origin: Origin::Flag("--log-level"),
        };
    }
    Ok(())
}

impl Config {
    /// Returns the provider with this configuration's replacement repositories applied.
    pub fn provider(&self, id: &str) -> Option<Provider> {
        let mut provider = provider::load_provider(id)?;
        if let Some(replacement) = self.providers.get(id) {
            provider.repositories.clone_from(&replacement.repositories);
        }
        Some(provider)
    }

    /// Lists each setting as (key, value, origin) for `config show`.
    pub fn entries(&self) -> Vec<(String, String, String)> {
        let path = |setting: &Setting<PathBuf>| setting.value.display().to_string();
        let mut entries = vec![
            (
                "cache_dir".to_owned(),
                path(&self.cache_dir),
                self.cache_dir.origin.to_string(),
            ),
            (
                "work_dir".to_owned(),
                path(&self.work_dir),
                self.work_dir.origin.to_string(),
            ),
            (
                "temp_dir".to_owned(),
                path(&self.temp_dir),
                self.temp_dir.origin.to_string(),
            ),
            (
                "workers".to_owned(),
                self.workers.value.to_string(),
                self.workers.origin.to_string(),
            ),
            (
                "logging.level".to_owned(),
                self.log_level.value.clone(),
                self.log_level.origin.to_string(),
            ),
            (
                "logging.file".to_owned(),
                self.log_file
                    .value
                    .as_ref()
                    .map_or("none".to_owned(), |p| p.display().to_string()),
                self.log_file.origin.to_string(),
            ),
        ];
        for (id, replacement) in &self.providers {
            let names: Vec<_> = replacement
                .repositories
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            let key = format!("providers.{id}.repositories");
            entries.push((key, names.join(", "), replacement.origin.to_string()));
        }
        entries
    }
}

/// Returns the text of a commented configuration file holding the defaults.
pub fn default_file_text() -> String {
    format!(
        "# os-image-composer configuration.\n\
         # Looked for in this order: --config FILE, ./{LOCAL_FILE_NAME},\n\
         # ~/.config/os-image-composer/config.yml, {SYSTEM_FILE}.\n\
         # Relative paths are relative to the folder of this file.\n\
         \n\
         # Package cache and verified repository metadata: pkgCache/{{provider-id}}/ and more.\n\
         cache_dir: {DEFAULT_CACHE_DIR}\n\
         \n\
         # Chroot environments, their snapshots and image builds: {{provider-id}}/.\n\
         work_dir: {DEFAULT_WORK_DIR}\n\
         \n\
         # Temporary files such as the SBOM before it is copied next to the image.\n\
         temp_dir: {DEFAULT_TEMP_DIR}\n\
         \n\
         # Concurrent downloads and checks, 1 to {MAX_WORKERS}.\n\
         workers: {DEFAULT_WORKERS}\n\
         \n\
         logging:\n\
         \x20 # One of {levels}.\n\
         \x20 level: info\n\
         \x20 # Also write the log to this file.\n\
         \x20 # file: /var/log/os-image-composer.log\n\
         \n\
         # Replace a provider's repositories, for example with an internal mirror:\n\
         # providers:\n\
         #   debian-debian12-x86_64:\n\
         #     repositories:\n\
         #       - name: bookworm\n\
         #         url: http://mirror.example.internal/debian\n\
         #         suite: bookworm\n\
         #         components: [main]\n\
         #         keys: [/usr/share/keyrings/debian-archive-keyring.gpg]\n",
        levels = LOG_LEVELS.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Config, Diagnostics> {
        let mut config = Config::default();
        read_file(
            &mut config,
            text.as_bytes(),
            Path::new("/etc/oic/config.yml"),
        )?;
        Ok(config)
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let config = read("cache_dir: cache\nwork_dir: /abs/work\n").unwrap();
        assert_eq!(config.cache_dir.value, PathBuf::from("/etc/oic/cache"));
        assert_eq!(config.work_dir.value, PathBuf::from("/abs/work"));
        assert_eq!(
            config.cache_dir.origin.to_string(),
            "/etc/oic/config.yml:1:12"
        );
        assert_eq!(config.temp_dir.origin, Origin::Default);
    }

    #[test]
    fn unknown_key_has_position() {
        let error = read("cache_dir: /c\nworkerz: 4\n").unwrap_err().to_string();
        assert_eq!(
            error,
            "/etc/oic/config.yml:2:1: workerz: Unknown key `workerz`: did you mean `workers`?"
        );
    }

    #[test]
    fn workers_out_of_range() {
        for text in ["workers: 0\n", "workers: 101\n", "workers: -3\n"] {
            let error = read(text).unwrap_err().to_string();
            assert!(
                error.contains("workers must be 1 to 100"),
                "{text}: {error}"
            );
        }
        assert_eq!(read("workers: 100\n").unwrap().workers.value, 100);
    }

    #[test]
    fn provider_repositories_are_replaced() {
        let text = "providers:
  debian-debian12-x86_64:
    repositories:
      - name: local
        url: http://127.0.0.1:8080/debian
        suite: bookworm
        components: [main]
        keys: [keys/debian.gpg]
";
        let config = read(text).unwrap();
        let provider = config.provider("debian-debian12-x86_64").unwrap();
        assert_eq!(provider.repositories.len(), 1);
        assert_eq!(
            provider.repositories[0].url.as_deref(),
            Some("http://127.0.0.1:8080/debian")
        );
        assert_eq!(
            provider.repositories[0].keys,
            [provider::KeyRef::Path(PathBuf::from(
                "/etc/oic/keys/debian.gpg"
            ))]
        );
    }

    #[test]
    fn unknown_provider_is_rejected() {
        let error = read("providers:\n  debian-debian13-x86_64:\n    repositories: []\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("providers.debian-debian13-x86_64: Unknown key"),
            "{error}"
        );
    }

    #[test]
    fn repository_without_keys_needs_opt_out() {
        let text = "providers:
  debian-debian12-x86_64:
    repositories:
      - name: x
        url: http://127.0.0.1/d
";
        let error = read(text).unwrap_err().to_string();
        assert!(error.contains("gpgCheck: false"), "{error}");
        let opted_out = text.replace("url:", "gpgCheck: false\n        url:");
        assert!(
            !read(&opted_out).unwrap().providers["debian-debian12-x86_64"].repositories[0]
                .gpg_check
        );
    }

    #[test]
    fn flags_override_file() {
        let mut config = read("workers: 4\n").unwrap();
        let overrides = Overrides {
            workers: Some(12),
            ..Overrides::default()
        };
        apply_overrides(&mut config, &overrides).unwrap();
        assert_eq!(config.workers.value, 12);
        assert_eq!(config.workers.origin, Origin::Flag("--workers"));
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let lookup = Lookup {
            explicit: Some(PathBuf::from("/nonexistent/x.yml")),
            candidates: vec![],
        };
        let error = load(&lookup, &Overrides::default()).unwrap_err();
        assert!(matches!(error, ConfigError::NotFound { .. }));
    }

    #[test]
    fn default_file_text_reads_back() {
        let config = read(&default_file_text()).unwrap();
        assert_eq!(config.workers.value, DEFAULT_WORKERS);
        assert_eq!(config.cache_dir.value, PathBuf::from(DEFAULT_CACHE_DIR));
    }
}
