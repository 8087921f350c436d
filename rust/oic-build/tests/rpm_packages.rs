//! The packages stage of an RPM provider against repositories of real packages (rpmbuild,
//! rpmsign, `createrepo_c`) served on 127.0.0.1. Needs python3, rpm, createrepo-c and gpg.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use oic_build::{resolve_packages, BuildError, PackagesOptions, PackagesOutcome};
use oic_config::config::{Origin, ProviderOverride};
use oic_config::provider::KeyRef;
use oic_config::{CheckedTemplate, Config, Repository};
use oic_pkgcache::{FetchReport, NoReporter, PkgCacheError};
use oic_testkit::{BuiltRpmRepo, HttpServer, RpmRepo};
use serde_json::json;

const PROVIDER: &str = "azure-linux-azl3-x86_64";

/// Returns the repository spec: the names that the provider's default template requests, as
/// empty packages, and the cases of this file.
fn spec() -> serde_json::Value {
    let base = [
        "filesystem",
        "azurelinux-release",
        "systemd",
        "shadow-utils",
        "dracut",
        "kernel",
    ];
    let mut packages: Vec<serde_json::Value> =
        base.iter().map(|name| json!({"name": name})).collect();
    packages.extend([
        json!({"name": "app", "arch": "x86_64",
               "requires": ["(liba or libb)", "/usr/bin/foo", "tool >= 1:0.5"]}),
        json!({"name": "libb", "arch": "x86_64"}),
        json!({"name": "foo-tools", "files": {"/usr/bin/foo": "#!/bin/sh\n"}}),
        json!({"name": "tool", "version": "1.0", "epoch": 1}),
        json!({"name": "unsigned", "sign": null}),
        json!({"name": "foreign", "sign": "other"}),
    ]);
    json!({"packages": packages})
}

/// Builds the repository once; each test serves its own copy.
fn built() -> &'static (tempfile::TempDir, BuiltRpmRepo) {
    static BUILT: OnceLock<(tempfile::TempDir, BuiltRpmRepo)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let repo = RpmRepo::build(&spec(), &root.path().join("repo")).unwrap();
        (root, repo)
    })
}

struct Fixture {
    dir: tempfile::TempDir,
    /// The served copy of the repository.
    root: PathBuf,
    server: HttpServer,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&built().1.root)
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success());
        let server = HttpServer::serve(&root);
        Self { dir, root, server }
    }

    fn config(&self, gpg_check: bool) -> Config {
        let mut config = Config::default();
        config.cache_dir.value = self.dir.path().join("cache");
        let repository = Repository {
            name: "azl-test".to_owned(),
            url: Some(self.server.url().trim_end_matches('/').to_owned()),
            path: None,
            suite: None,
            components: Vec::new(),
            keys: vec![KeyRef::Path(built().1.key_asc.clone())],
            priority: 500,
            gpg_check,
            allow_packages: Vec::new(),
        };
        let replacement = ProviderOverride {
            repositories: vec![repository],
            origin: Origin::Default,
        };
        config.providers.insert(PROVIDER.to_owned(), replacement);
        config
    }

    fn template(&self, packages: &str, config: &Config) -> CheckedTemplate {
        let text = format!(
            "target: {{os: azure-linux, dist: azl3, arch: x86_64, imageType: raw}}\n\
             systemConfig:\n  packages: [{packages}]\n"
        );
        oic_config::check_template_bytes(
            text.as_bytes(),
            &Arc::from("t.yml"),
            Some(self.dir.path().to_path_buf()),
            config,
        )
        .unwrap_or_else(|error| panic!("template is invalid: {error}"))
    }

    fn resolve(&self, packages: &str, gpg_check: bool) -> Result<PackagesOutcome, BuildError> {
        let config = self.config(gpg_check);
        let checked = self.template(packages, &config);
        resolve_packages(&checked, &config, PackagesOptions::default())
    }

    fn fetch(&self, packages: &str, gpg_check: bool) -> Result<FetchReport, BuildError> {
        let outcome = self.resolve(packages, gpg_check)?;
        let config = self.config(gpg_check);
        oic_build::fetch_packages(&outcome, &config, Arc::new(NoReporter))
    }

    fn pool(&self) -> PathBuf {
        self.dir.path().join("cache/pkgCache").join(PROVIDER)
    }

    fn location(&self, name: &str) -> PathBuf {
        let package = built().1.package(name).unwrap();
        self.root.join(&package.location)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Returns the `Rejected` error among the fetch errors.
fn rejection(error: &BuildError) -> &str {
    let BuildError::Cache(cache) = error else {
        panic!("expected a cache error: {error}");
    };
    let errors = match cache {
        PkgCacheError::Several(errors) => errors.iter().collect(),
        single => vec![single],
    };
    errors
        .into_iter()
        .find_map(|error| match error {
            PkgCacheError::Rejected { message, .. } => Some(message.as_str()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("expected a rejected file: {error}"))
}

#[test]
fn resolve_follows_rpm_rules() {
    let fixture = Fixture::new();
    let outcome = fixture.resolve("app", true).unwrap();
    let names: Vec<&str> = outcome
        .packages
        .iter()
        .map(|package| package.name.as_str())
        .collect();
    assert!(names.contains(&"libb"), "{names:?}");
    assert!(names.contains(&"foo-tools"), "{names:?}");
    assert!(!names.contains(&"unsigned"), "{names:?}");
    let tool = outcome
        .packages
        .iter()
        .find(|package| package.name == "tool")
        .unwrap();
    assert_eq!(tool.version, "1:1.0-1");
    assert!(tool.url.ends_with("/tool-1.0-1.noarch.rpm"), "{}", tool.url);
    assert_eq!(tool.sha256.len(), 64);

    let edge = outcome
        .edges
        .iter()
        .find(|edge| edge.to == "foo-tools")
        .unwrap();
    assert_eq!(edge.from, "app");
    assert_eq!(edge.provided.as_deref(), Some("/usr/bin/foo"));
    assert!(
        outcome.dot.contains("\"app\" -> \"libb\""),
        "{}",
        outcome.dot
    );
}

#[test]
fn fetch_caches_verified_rpms() {
    let fixture = Fixture::new();
    let cold = fixture.fetch("app", true).unwrap();
    assert_eq!(cold.downloaded_count, cold.files.len());
    assert!(fixture
        .pool()
        .join(file_name(&fixture.location("app")))
        .is_file());
    assert!(fixture.pool().join("chrootpkgs.dot").is_file());

    let warm = fixture.fetch("app", true).unwrap();
    assert_eq!(warm.downloaded_count, 0);
    assert_eq!(warm.cached_count, cold.files.len());
}

#[test]
fn unsigned_package_is_rejected() {
    let fixture = Fixture::new();
    let error = fixture.fetch("unsigned", true).unwrap_err();
    assert!(
        rejection(&error).contains("no OpenPGP header signature"),
        "{error}"
    );
    let cached = fixture
        .pool()
        .join(file_name(&fixture.location("unsigned")));
    assert!(!cached.exists());
}

#[test]
fn unknown_signer_is_rejected() {
    let fixture = Fixture::new();
    let error = fixture.fetch("foreign", true).unwrap_err();
    let message = rejection(&error);
    assert!(message.contains("not accepted"), "{message}");
    let fingerprint = &built().1.other_fingerprint;
    let key_id = &fingerprint[fingerprint.len() - 16..];
    assert!(message.contains(key_id), "{message}");
    let cached = fixture.pool().join(file_name(&fixture.location("foreign")));
    assert!(!cached.exists());
}

#[test]
fn gpgcheck_off_accepts_unsigned() {
    let fixture = Fixture::new();
    fixture.fetch("unsigned", false).unwrap();
    let cached = fixture
        .pool()
        .join(file_name(&fixture.location("unsigned")));
    assert!(cached.is_file());

    // The same cached file fails the check once the repository's keys apply, and is deleted.
    let error = fixture.fetch("unsigned", true).unwrap_err();
    assert!(
        rejection(&error).contains("no OpenPGP header signature"),
        "{error}"
    );
    assert!(!cached.exists());
}

#[test]
fn primary_checksum_mismatch_fails() {
    let fixture = Fixture::new();
    let repodata = fixture.root.join("repodata");
    let primary = fs_err::read_dir(&repodata)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| file_name(path).ends_with("primary.xml.gz"))
        .unwrap();
    let mut bytes = fs_err::read(&primary).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&primary, bytes).unwrap();

    let error = fixture.resolve("app", true).unwrap_err();
    assert!(
        matches!(error, BuildError::Rpm(oic_rpm::RpmError::Checksum { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("primary.xml.gz"), "{error}");
}

#[test]
fn package_differing_from_primary_fails() {
    let fixture = Fixture::new();
    let other = fs_err::read(fixture.location("libb")).unwrap();
    fs_err::write(fixture.location("tool"), other).unwrap();

    let error = fixture.fetch("tool", true).unwrap_err();
    let BuildError::Cache(cache) = &error else {
        panic!("expected a cache error: {error}");
    };
    assert!(matches!(cache, PkgCacheError::Checksum { .. }), "{error}");
    let cached = fixture.pool().join(file_name(&fixture.location("tool")));
    assert!(!cached.exists());
}

#[test]
fn missing_dependency_fails_resolve() {
    let fixture = Fixture::new();
    fs_err::remove_file(fixture.location("foo-tools")).unwrap();
    let output = Command::new("createrepo_c")
        .args(["--quiet", "--no-database", "--update"])
        .arg(&fixture.root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let error = fixture.resolve("app", false).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("nothing provides `/usr/bin/foo`"),
        "{message}"
    );
    assert!(
        message.contains("app-1.0-1.x86_64 -> /usr/bin/foo"),
        "{message}"
    );
}
