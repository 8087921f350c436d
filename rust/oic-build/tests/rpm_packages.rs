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
/// empty packages, and the cases of this file. `checksum` is the type `createrepo_c` writes.
fn spec(checksum: &str) -> serde_json::Value {
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
        json!({"name": "data-user", "requires": ["/usr/share/foo/data.txt"]}),
        json!({"name": "foo-data", "files": {"/usr/share/foo/data.txt": "data\n"}}),
        json!({"name": "data-orphan", "requires": ["/usr/share/none/gone.txt"]}),
    ]);
    json!({"packages": packages, "checksum": checksum})
}

/// Builds the repository with SHA-256 checksums once. Each test serves its own copy.
fn built() -> &'static (tempfile::TempDir, BuiltRpmRepo) {
    static BUILT: OnceLock<(tempfile::TempDir, BuiltRpmRepo)> = OnceLock::new();
    BUILT.get_or_init(|| build("sha256"))
}

/// Builds the repository with `createrepo_c --checksum sha512` once.
fn built_sha512() -> &'static (tempfile::TempDir, BuiltRpmRepo) {
    static BUILT: OnceLock<(tempfile::TempDir, BuiltRpmRepo)> = OnceLock::new();
    BUILT.get_or_init(|| build("sha512"))
}

fn build(checksum: &str) -> (tempfile::TempDir, BuiltRpmRepo) {
    let root = tempfile::tempdir().unwrap();
    let repo = RpmRepo::build(&spec(checksum), &root.path().join("repo")).unwrap();
    (root, repo)
}

struct Fixture {
    dir: tempfile::TempDir,
    repo: &'static BuiltRpmRepo,
    /// The served copy of the repository.
    root: PathBuf,
    server: HttpServer,
}

impl Fixture {
    fn new() -> Self {
        Self::serve(&built().1)
    }

    fn serve(repo: &'static BuiltRpmRepo) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&repo.root)
            .arg(&root)
            .status()
            .unwrap();
        assert!(status.success());
        let server = HttpServer::serve(&root);
        Self {
            dir,
            repo,
            root,
            server,
        }
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
            keys: vec![KeyRef::Path(self.repo.key_asc.clone())],
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
        self.resolve_with(packages, gpg_check, PackagesOptions::default())
    }

    fn resolve_with(
        &self,
        packages: &str,
        gpg_check: bool,
        options: PackagesOptions,
    ) -> Result<PackagesOutcome, BuildError> {
        let config = self.config(gpg_check);
        let checked = self.template(packages, &config);
        resolve_packages(&checked, &config, options)
    }

    /// Returns the names of the cached repodata files whose name contains `kind`.
    fn cached_repodata(&self, kind: &str) -> Vec<String> {
        let root = self
            .dir
            .path()
            .join("cache/metadata/v1")
            .join(PROVIDER)
            .join("rpm-by-repomd");
        let Ok(folders) = fs_err::read_dir(&root) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for folder in folders {
            for entry in fs_err::read_dir(folder.unwrap().path()).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.contains(kind) {
                    names.push(name);
                }
            }
        }
        names
    }

    /// Returns the served repodata file whose name ends with `suffix`.
    fn served_repodata(&self, suffix: &str) -> PathBuf {
        fs_err::read_dir(self.root.join("repodata"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| file_name(path).ends_with(suffix))
            .unwrap()
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
        let package = self.repo.package(name).unwrap();
        self.root.join(&package.location)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Returns the message of the `Rejected` error among the fetch errors.
fn rejection(error: &BuildError) -> String {
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
            PkgCacheError::Rejected { source, .. } => Some(source.to_string()),
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
    assert_eq!(tool.checksum_type, oic_pkgcache::ChecksumType::Sha256);
    assert_eq!(tool.sha256.as_deref(), Some(tool.checksum.as_str()));
    assert_eq!(tool.checksum.len(), 64);

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
    let fingerprint = &fixture.repo.other_fingerprint;
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

#[test]
fn sha512_repository_fetches_and_rechecks() {
    let fixture = Fixture::serve(&built_sha512().1);
    let repomd = fs_err::read_to_string(fixture.root.join("repodata/repomd.xml")).unwrap();
    assert!(repomd.contains(r#"<checksum type="sha512">"#), "{repomd}");

    let outcome = fixture.resolve("tool", true).unwrap();
    let tool = outcome
        .packages
        .iter()
        .find(|package| package.name == "tool")
        .unwrap();
    assert_eq!(tool.checksum_type, oic_pkgcache::ChecksumType::Sha512);
    assert_eq!(tool.checksum.len(), 128);
    assert_eq!(tool.sha256, None);

    let cold = fixture.fetch("tool", true).unwrap();
    assert!(cold.downloaded_count >= 1, "{cold:?}");
    let cached = fixture.pool().join(file_name(&fixture.location("tool")));
    assert!(cached.is_file());

    // A damaged cached copy of the same size fails the SHA-512 check on reuse and is replaced.
    let mut bytes = fs_err::read(&cached).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs_err::write(&cached, &bytes).unwrap();
    let warm = fixture.fetch("tool", true).unwrap();
    let again = warm.files.iter().find(|file| file.path == cached).unwrap();
    assert!(!again.from_cache);
    assert_eq!(
        again.redownload_reason,
        Some(oic_pkgcache::RedownloadReason::UpstreamChanged)
    );
    assert_eq!(
        fs_err::read(&cached).unwrap(),
        fs_err::read(fixture.location("tool")).unwrap()
    );
}

#[test]
fn sha512_corrupted_package_leaves_nothing() {
    let fixture = Fixture::serve(&built_sha512().1);
    let served = fixture.location("tool");
    let mut bytes = fs_err::read(&served).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs_err::write(&served, &bytes).unwrap();

    let error = fixture.fetch("tool", true).unwrap_err();
    let BuildError::Cache(PkgCacheError::Checksum {
        checksum_type,
        expected,
        actual,
        ..
    }) = &error
    else {
        panic!("expected a checksum error: {error}");
    };
    assert_eq!(*checksum_type, oic_pkgcache::ChecksumType::Sha512);
    assert_eq!(expected.len(), 128);
    assert_eq!(actual.len(), 128);
    assert_ne!(expected, actual);
    assert!(error.to_string().contains("sha512"), "{error}");
    let leftovers: Vec<String> = fs_err::read_dir(fixture.pool())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("tool") || name.starts_with(".tool"))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}

#[test]
fn file_dependency_resolves_from_filelists() {
    let fixture = Fixture::new();
    fixture.resolve("tool", true).unwrap();
    assert_eq!(fixture.cached_repodata("filelists"), Vec::<String>::new());

    let outcome = fixture.resolve("data-user", true).unwrap();
    let edge = outcome
        .edges
        .iter()
        .find(|edge| edge.from == "data-user")
        .unwrap();
    assert_eq!(edge.to, "foo-data");
    assert_eq!(edge.provided.as_deref(), Some("/usr/share/foo/data.txt"));
    assert_eq!(fixture.cached_repodata("filelists").len(), 1);

    // The verified copy in the cache serves an offline resolve.
    fs_err::remove_file(fixture.served_repodata("filelists.xml.gz")).unwrap();
    let offline = PackagesOptions {
        offline: true,
        ..PackagesOptions::default()
    };
    let outcome = fixture.resolve_with("data-user", true, offline).unwrap();
    assert!(outcome
        .packages
        .iter()
        .any(|package| package.name == "foo-data"));
}

#[test]
fn file_missing_from_filelists_names_chain() {
    let fixture = Fixture::new();
    let error = fixture.resolve("data-orphan", true).unwrap_err();
    assert!(
        matches!(
            error,
            BuildError::Rpm(oic_rpm::RpmError::MissingDependency { .. })
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("data-orphan-1.0-1.noarch -> /usr/share/none/gone.txt"),
        "{message}"
    );
    assert!(message.contains("filelists.xml"), "{message}");
}

#[test]
fn filelists_checksum_mismatch_fails() {
    let fixture = Fixture::new();
    let filelists = fixture.served_repodata("filelists.xml.gz");
    let mut bytes = fs_err::read(&filelists).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&filelists, bytes).unwrap();

    let error = fixture.resolve("data-user", true).unwrap_err();
    assert!(
        matches!(error, BuildError::Rpm(oic_rpm::RpmError::Checksum { .. })),
        "{error}"
    );
    assert!(error.to_string().contains("filelists.xml.gz"), "{error}");
    assert_eq!(fixture.cached_repodata("filelists"), Vec::<String>::new());
}
