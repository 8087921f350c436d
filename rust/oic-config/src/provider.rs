//! Providers: the distributions images are built from, embedded in the product.
//!
//! A provider's id is `{os}-{dist}-{arch}`. Each definition lives in `providers/{id}/` beside this
//! crate as `provider.yml` (repositories, keys, package format, essential set, build tools) and
//! `default-template.yml` (the template user templates are merged over). Public keys that
//! definitions name as `embedded:FILE` live in `providers/keys/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::diag::{Diagnostics, Loc};
use crate::read::{MapReader, Spanned};
use crate::yaml::{self, Node};

/// The package format of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    Deb,
    Rpm,
}

/// The source of a repository's signing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum KeyRef {
    /// A key file shipped with the product.
    Embedded(String),
    /// A key file on this machine, absolute after loading.
    Path(PathBuf),
    /// A key fetched over HTTP(S).
    Url(String),
}

impl From<KeyRef> for String {
    fn from(key: KeyRef) -> String {
        match key {
            KeyRef::Embedded(name) => format!("embedded:{name}"),
            KeyRef::Path(path) => path.display().to_string(),
            KeyRef::Url(url) => url,
        }
    }
}

/// A package repository of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The Debian suite or codename; unused for RPM repositories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    pub keys: Vec<KeyRef>,
    /// apt's pin priority: the highest wins, then the newest version.
    pub priority: i64,
    /// False only when the user opted out of signature checks for this repository.
    pub gpg_check: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_packages: Vec<String>,
}

/// The packages every root of a provider starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EssentialSet {
    /// Include every package marked `Essential: yes`.
    pub essential_field: bool,
    /// Include every package of these priorities.
    pub priorities: Vec<String>,
    pub packages: Vec<String>,
}

/// A distribution images are built from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    pub id: String,
    pub os: String,
    pub dist: String,
    pub arch: String,
    pub package_format: PackageFormat,
    /// The architecture name the package format uses, such as `amd64` for Debian on `x86_64`.
    pub package_arch: String,
    pub repositories: Vec<Repository>,
    pub essential: EssentialSet,
    pub build_tools: Vec<String>,
    #[serde(skip)]
    pub default_template: &'static str,
}

struct Embedded {
    id: &'static str,
    definition: &'static str,
    default_template: &'static str,
}

macro_rules! embedded {
    ($id:literal) => {
        Embedded {
            id: $id,
            definition: include_str!(concat!("../providers/", $id, "/provider.yml")),
            default_template: include_str!(concat!("../providers/", $id, "/default-template.yml")),
        }
    };
}

const EMBEDDED: &[Embedded] = &[
    embedded!("debian-debian12-x86_64"),
    embedded!("debian-debian12-aarch64"),
    embedded!("azure-linux-azl3-x86_64"),
];

const EMBEDDED_KEYS: &[(&str, &[u8])] = &[
    (
        "debian-archive-bookworm-automatic.gpg",
        include_bytes!("../providers/keys/debian-archive-bookworm-automatic.gpg"),
    ),
    (
        "debian-archive-bookworm-security-automatic.gpg",
        include_bytes!("../providers/keys/debian-archive-bookworm-security-automatic.gpg"),
    ),
    (
        "debian-archive-bookworm-stable.gpg",
        include_bytes!("../providers/keys/debian-archive-bookworm-stable.gpg"),
    ),
    (
        "debian-archive-trixie-automatic.gpg",
        include_bytes!("../providers/keys/debian-archive-trixie-automatic.gpg"),
    ),
];

/// Returns the ids of all embedded providers.
pub fn provider_ids() -> Vec<&'static str> {
    EMBEDDED.iter().map(|embedded| embedded.id).collect()
}

/// Returns the bytes of an embedded key file.
pub fn embedded_key(name: &str) -> Option<&'static [u8]> {
    EMBEDDED_KEYS
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, bytes)| *bytes)
}

/// Loads an embedded provider by id. Returns `None` for an unknown id.
pub fn load_provider(id: &str) -> Option<Provider> {
    let embedded = EMBEDDED.iter().find(|embedded| embedded.id == id)?;
    let source: Arc<str> = Arc::from(format!("<provider {id}>"));
    let provider = read_provider(embedded, &source)
        .unwrap_or_else(|diagnostics| panic!("embedded provider {id} is invalid:\n{diagnostics}"));
    Some(provider)
}

/// Returns the label that messages use for a provider's default template.
pub fn default_template_source(id: &str) -> Arc<str> {
    Arc::from(format!("<default template of {id}>"))
}

fn read_provider(embedded: &Embedded, source: &Arc<str>) -> Result<Provider, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let root = yaml::parse_str(embedded.definition, source)?.expect("definition is not empty");
    let keys = [
        "id",
        "os",
        "dist",
        "arch",
        "packageFormat",
        "packageArch",
        "repositories",
        "essential",
        "buildTools",
    ];
    let map = MapReader::open(&root, "", &keys, &mut diagnostics).expect("definition is a mapping");
    let text = |key: &str, diagnostics: &mut Diagnostics| {
        map.string(key, diagnostics)
            .map(|s| s.value)
            .unwrap_or_default()
    };
    let package_format = match text("packageFormat", &mut diagnostics).as_str() {
        "rpm" => PackageFormat::Rpm,
        _ => PackageFormat::Deb,
    };
    let provider = Provider {
        id: text("id", &mut diagnostics),
        os: text("os", &mut diagnostics),
        dist: text("dist", &mut diagnostics),
        arch: text("arch", &mut diagnostics),
        package_format,
        package_arch: text("packageArch", &mut diagnostics),
        repositories: map.list("repositories", &mut diagnostics, |node, path, d| {
            read_repository(node, path, None, d)
        }),
        essential: map.get("essential").map_or_else(
            || EssentialSet {
                essential_field: false,
                priorities: Vec::new(),
                packages: Vec::new(),
            },
            |node| read_essential(node, &mut diagnostics),
        ),
        build_tools: values(map.strings("buildTools", &mut diagnostics)),
        default_template: embedded.default_template,
    };
    if diagnostics.is_empty() {
        Ok(provider)
    } else {
        Err(diagnostics)
    }
}

fn read_essential(node: &Node, diagnostics: &mut Diagnostics) -> EssentialSet {
    let keys = ["essentialField", "priorities", "packages"];
    let map =
        MapReader::open(node, "essential", &keys, diagnostics).expect("essential is a mapping");
    EssentialSet {
        essential_field: map
            .boolean("essentialField", diagnostics)
            .is_some_and(|b| b.value),
        priorities: values(map.strings("priorities", diagnostics)),
        packages: values(map.strings("packages", diagnostics)),
    }
}

fn values(items: Vec<Spanned<String>>) -> Vec<String> {
    items.into_iter().map(|item| item.value).collect()
}

/// The keys a repository definition may hold, in provider files and in configuration files.
pub const REPOSITORY_KEYS: &[&str] = &[
    "name",
    "url",
    "path",
    "suite",
    "components",
    "keys",
    "priority",
    "gpgCheck",
    "allowPackages",
];

/// Reads one repository definition. Relative paths are resolved against `base_dir`, the folder of
/// the file the definition is in.
pub fn read_repository(
    node: &Node,
    path: &str,
    base_dir: Option<&Path>,
    diagnostics: &mut Diagnostics,
) -> Option<Repository> {
    let map = MapReader::open(node, path, REPOSITORY_KEYS, diagnostics)?;
    let name = map.require("name", map.string("name", diagnostics), diagnostics);
    let url = map.string("url", diagnostics);
    let local = map.string("path", diagnostics);
    check_location(&map, url.as_ref(), local.as_ref(), diagnostics);

    let keys = map.strings("keys", diagnostics);
    let gpg_check = map.boolean("gpgCheck", diagnostics).is_none_or(|b| b.value);
    if gpg_check && keys.is_empty() {
        let message = "Repository has no `keys`: name its signing keys, or set `gpgCheck: false` \
                       to skip signature checks for it";
        diagnostics.push(&map.loc, &map.path_of("keys"), message);
    }

    let priority = map.integer("priority", diagnostics);
    if let Some(priority) = priority
        .as_ref()
        .filter(|p| !(-32768..=32767).contains(&p.value))
    {
        let message = format!(
            "Priority {} is out of range: use -32768 to 32767",
            priority.value
        );
        diagnostics.push(&priority.loc, &map.path_of("priority"), message);
    }
    let keys = keys
        .iter()
        .filter_map(|key| read_key_ref(key, base_dir, &map.path_of("keys"), diagnostics))
        .collect();
    Some(Repository {
        name: name.map(|name| name.value).unwrap_or_default(),
        url: url.map(|url| url.value.trim_end_matches('/').to_owned()),
        path: local.map(|local| resolve(base_dir, &local.value)),
        suite: map.string("suite", diagnostics).map(|s| s.value),
        components: values(map.strings("components", diagnostics)),
        keys,
        priority: priority.map_or(500, |p| p.value),
        gpg_check,
        allow_packages: values(map.strings("allowPackages", diagnostics)),
    })
}

fn check_location(
    map: &MapReader<'_>,
    url: Option<&Spanned<String>>,
    local: Option<&Spanned<String>>,
    diagnostics: &mut Diagnostics,
) {
    match (url, local) {
        (Some(_), Some(local)) => {
            let message = "Set either `url` or `path`, not both";
            diagnostics.push(&local.loc, &map.path_of("path"), message);
        }
        (None, None) => {
            let message = "Missing `url` or `path`: a repository needs one of them";
            diagnostics.push(&map.loc, &map.path, message);
        }
        (Some(url), None) => {
            if let Err(message) = check_url(&url.value) {
                diagnostics.push(&url.loc, &map.path_of("url"), message);
            }
        }
        (None, Some(_)) => {}
    }
}

/// Checks that a repository URL uses a supported scheme and has a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "Invalid URL `{url}`: expected http://, https:// or file://"
        ));
    };
    if !matches!(scheme, "http" | "https" | "file") {
        return Err(format!(
            "Unsupported URL scheme `{scheme}` in `{url}`: use http, https or file"
        ));
    }
    if scheme != "file" && rest.split('/').next().is_none_or(str::is_empty) {
        return Err(format!("Invalid URL `{url}`: the host is missing"));
    }
    Ok(())
}

fn read_key_ref(
    key: &Spanned<String>,
    base_dir: Option<&Path>,
    path: &str,
    diagnostics: &mut Diagnostics,
) -> Option<KeyRef> {
    let key_ref = key_ref(&key.value, base_dir);
    if let KeyRef::Embedded(name) = &key_ref {
        if embedded_key(name).is_none() {
            let known: Vec<_> = EMBEDDED_KEYS.iter().map(|(name, _)| *name).collect();
            let message = format!(
                "Unknown embedded key `{name}`: known keys are {}",
                known.join(", ")
            );
            diagnostics.push(&key.loc, path, message);
            return None;
        }
    }
    Some(key_ref)
}

/// Reads a key reference: `embedded:NAME`, `file://PATH`, an http(s) URL, or a path relative to
/// `base_dir`.
pub fn key_ref(text: &str, base_dir: Option<&Path>) -> KeyRef {
    if let Some(name) = text.strip_prefix("embedded:") {
        KeyRef::Embedded(name.to_owned())
    } else if let Some(path) = text.strip_prefix("file://") {
        KeyRef::Path(resolve(base_dir, path))
    } else if text.starts_with("http://") || text.starts_with("https://") {
        KeyRef::Url(text.to_owned())
    } else {
        KeyRef::Path(resolve(base_dir, text))
    }
}

/// Resolves a path written in a file against that file's folder.
pub fn resolve(base_dir: Option<&Path>, path: &str) -> PathBuf {
    let path = Path::new(path);
    let joined = match base_dir {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    };
    normalize(&joined)
}

/// Removes `.` and resolves `..` in a path by its text alone, without following symlinks, so
/// that messages show the path the user meant.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;

    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    normalized.push("..");
                }
            }
            other => normalized.push(other),
        }
    }
    normalized
}

/// Finds the provider for a target, returning the known ids in the error.
pub fn provider_for(os: &str, dist: &str, arch: &str) -> Result<Provider, String> {
    let id = format!("{os}-{dist}-{arch}");
    load_provider(&id).ok_or_else(|| {
        format!(
            "No provider `{id}`: known providers are {}",
            provider_ids().join(", ")
        )
    })
}

/// Returns the location label of an embedded provider, for messages about it.
pub fn provider_loc(id: &str) -> Loc {
    Loc::new(&Arc::from(format!("<provider {id}>")), 1, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_providers_load() {
        for id in provider_ids() {
            let provider = load_provider(id).unwrap();
            assert_eq!(provider.id, id);
            assert_eq!(
                format!("{}-{}-{}", provider.os, provider.dist, provider.arch),
                id
            );
            assert!(!provider.repositories.is_empty(), "{id}");
        }
    }

    #[test]
    fn embedded_keys_exist() {
        for id in provider_ids() {
            for repository in load_provider(id).unwrap().repositories {
                for key in repository.keys {
                    if let KeyRef::Embedded(name) = key {
                        assert!(embedded_key(&name).is_some(), "{id}: {name}");
                    }
                }
            }
        }
    }

    #[test]
    fn debian_provider_has_security_suite() {
        let provider = load_provider("debian-debian12-x86_64").unwrap();
        let suites: Vec<_> = provider
            .repositories
            .iter()
            .filter_map(|r| r.suite.as_deref())
            .collect();
        assert_eq!(
            suites,
            ["bookworm", "bookworm-updates", "bookworm-security"]
        );
        assert_eq!(provider.package_format, PackageFormat::Deb);
        assert_eq!(provider.package_arch, "amd64");
    }

    #[test]
    fn unknown_provider_lists_known_ones() {
        let error = provider_for("debian", "debian99", "x86_64").unwrap_err();
        assert!(error.contains("debian-debian12-x86_64"), "{error}");
    }

    #[test]
    fn url_schemes_are_checked() {
        assert!(check_url("http://127.0.0.1:8080/debian").is_ok());
        assert!(check_url("file:///srv/repo").is_ok());
        assert!(check_url("ftp://example.org/debian").is_err());
        assert!(check_url("http:///debian").is_err());
        assert!(check_url("deb.debian.org/debian").is_err());
    }
}
