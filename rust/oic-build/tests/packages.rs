//! The packages stage against signed repositories built by the tests and served on 127.0.0.1.
//! Needs python3, dpkg-deb and gpg, which build and sign the repositories.

use std::path::Path;
use std::sync::Arc;

use oic_build::{resolve_packages, PackagesOptions};
use oic_config::config::{Origin, ProviderOverride};
use oic_config::provider::KeyRef;
use oic_config::{CheckedTemplate, Config, Repository};
use oic_testkit::{BuiltRepo, DebRepo, HttpServer};
use serde_json::{json, Value};

const PROVIDER: &str = "debian-debian12-x86_64";

/// A base system small enough to build in a second: the names the provider's default template
/// requests and its bootloader's package, as empty packages, plus an essential one.
fn base_spec() -> Value {
    let names = [
        "systemd",
        "systemd-sysv",
        "udev",
        "dbus",
        "kmod",
        "initramfs-tools",
        "grub-efi-amd64",
    ];
    let mut packages: Vec<Value> = names
        .iter()
        .map(|name| json!({"name": name, "version": "1.0"}))
        .collect();
    packages.push(
        json!({"name": "base-files", "version": "12.4", "essential": true, "priority": "required"}),
    );
    packages.push(json!({"name": "linux-image-6.1.0-47-amd64", "version": "6.1.170-3"}));
    packages.push(json!({"name": "linux-image-6.1.0-48-amd64", "version": "6.1.172-1"}));
    packages.push(json!({
        "name": "linux-image-amd64", "version": "6.1.172-1",
        "depends": "linux-image-6.1.0-48-amd64 (= 6.1.172-1)"
    }));
    packages.push(json!({"name": "foo", "version": "1.2"}));
    packages.push(json!({"name": "app", "version": "1.0", "depends": "foo (>= 1.0)"}));
    json!({"codename": "bookworm", "components": {"main": packages}})
}

fn serve(spec: &Value, dir: &Path) -> (BuiltRepo, HttpServer) {
    let repo = DebRepo::build(spec, dir).expect("build the test repository");
    let server = HttpServer::serve(&repo.root);
    (repo, server)
}

fn config_for(cache: &Path, repo: &BuiltRepo, server: &HttpServer) -> Config {
    let mut config = Config::default();
    config.cache_dir.value = cache.to_path_buf();
    let repository = Repository {
        name: "base".to_owned(),
        url: Some(server.url().trim_end_matches('/').to_owned()),
        path: None,
        suite: Some("bookworm".to_owned()),
        components: vec!["main".to_owned()],
        keys: vec![KeyRef::Path(repo.key_gpg.clone())],
        priority: 500,
        gpg_check: true,
        allow_packages: Vec::new(),
    };
    let replacement = ProviderOverride {
        repositories: vec![repository],
        origin: Origin::Default,
    };
    config.providers.insert(PROVIDER.to_owned(), replacement);
    config
}

fn template(extra: &str, dir: &Path, config: &Config) -> CheckedTemplate {
    let text =
        format!("target: {{os: debian, dist: debian12, arch: x86_64, imageType: raw}}\n{extra}");
    oic_config::check_template_bytes(
        text.as_bytes(),
        &Arc::from("t.yml"),
        Some(dir.to_path_buf()),
        config,
    )
    .unwrap_or_else(|error| panic!("template is invalid: {error}"))
}

#[test]
fn template_resolves_against_signed_repository() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, server) = serve(&base_spec(), &dir.path().join("base"));
    let config = config_for(&dir.path().join("cache"), &repo, &server);
    let checked = template("systemConfig:\n  packages: [app]\n", dir.path(), &config);

    let outcome = resolve_packages(&checked, &config, PackagesOptions::default()).unwrap();
    let names: Vec<_> = outcome.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"base-files"), "{names:?}");
    assert!(names.contains(&"app"), "{names:?}");
    assert!(names.contains(&"linux-image-6.1.0-48-amd64"), "{names:?}");
    assert!(!names.contains(&"linux-image-6.1.0-47-amd64"), "{names:?}");
    let foo = outcome.packages.iter().find(|p| p.name == "foo").unwrap();
    assert_eq!(
        foo.url,
        format!("{}pool/main/f/foo/foo_1.2_amd64.deb", server.url())
    );
    assert!(
        outcome
            .edges
            .iter()
            .any(|e| e.from == "app" && e.to == "foo"),
        "{:?}",
        outcome.edges
    );
    assert!(outcome.dot.contains("\"app\""), "{}", outcome.dot);
}

#[test]
fn local_repository_with_high_priority_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, server) = serve(&base_spec(), &dir.path().join("base"));
    let local_spec =
        json!({"codename": "local", "components": {"main": [{"name": "foo", "version": "1.0"}]}});
    let local = DebRepo::build(&local_spec, &dir.path().join("local")).unwrap();
    let config = config_for(&dir.path().join("cache"), &repo, &server);
    let extra = format!(
        "systemConfig:\n  packages: [foo]\npackageRepositories:\n  - codename: local\n    path: {}\n    pkey: \"[trusted=yes]\"\n    priority: 1001\n",
        local.root.display()
    );
    let checked = template(&extra, dir.path(), &config);

    let outcome = resolve_packages(&checked, &config, PackagesOptions::default()).unwrap();
    let foo = outcome.packages.iter().find(|p| p.name == "foo").unwrap();
    assert_eq!(foo.version, "1.0");
    assert!(
        foo.repository.starts_with("local@sha256:"),
        "{}",
        foo.repository
    );
    let local_report = outcome
        .repositories
        .iter()
        .find(|r| r.name == "local")
        .unwrap();
    assert_eq!(local_report.signature, oic_repo::SignatureStatus::Skipped);
}

#[test]
fn same_pool_name_keeps_each_candidates_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, server) = serve(&base_spec(), &dir.path().join("base"));
    // The same name and version with other contents, in a second repository that wins on priority.
    let other_spec = json!({"codename": "other", "components": {"main": [
        {"name": "foo", "version": "1.2", "files": {"/usr/share/foo/marker": "other build"}}
    ]}});
    let (other, other_server) = serve(&other_spec, &dir.path().join("other"));
    let config = config_for(&dir.path().join("cache"), &repo, &server);
    let extra = format!(
        "systemConfig:\n  packages: [foo]\npackageRepositories:\n  - codename: other\n    url: {}\n    pkey: {}\n    priority: 600\n",
        other_server.url(),
        other.key_gpg.display()
    );
    let checked = template(&extra, dir.path(), &config);

    let outcome = resolve_packages(&checked, &config, PackagesOptions::default()).unwrap();
    let foo = outcome.packages.iter().find(|p| p.name == "foo").unwrap();
    let built = other.packages.iter().find(|p| p.name == "foo").unwrap();
    let base_foo = repo.packages.iter().find(|p| p.name == "foo").unwrap();
    assert_eq!(foo.repository, "other");
    assert_eq!(foo.sha256.as_deref(), Some(built.sha256.as_str()));
    assert_eq!(foo.checksum, built.sha256);
    assert_ne!(foo.checksum, base_foo.sha256);
    assert!(foo.url.starts_with(&other_server.url()), "{}", foo.url);
}

#[test]
fn offline_resolution_uses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, server) = serve(&base_spec(), &dir.path().join("base"));
    let config = config_for(&dir.path().join("cache"), &repo, &server);
    let checked = template("systemConfig:\n  packages: [app]\n", dir.path(), &config);
    let online = resolve_packages(&checked, &config, PackagesOptions::default()).unwrap();
    drop(server);

    let options = PackagesOptions {
        offline: true,
        ..PackagesOptions::default()
    };
    let offline = resolve_packages(&checked, &config, options).unwrap();
    assert_eq!(online.packages, offline.packages);
    assert_eq!(
        offline.repositories[0].source,
        oic_repo::MetadataSource::Cache
    );
}

#[test]
fn missing_package_is_a_resolution_error() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, server) = serve(&base_spec(), &dir.path().join("base"));
    let config = config_for(&dir.path().join("cache"), &repo, &server);
    let checked = template(
        "systemConfig:\n  packages: [nosuchpackage]\n",
        dir.path(),
        &config,
    );
    let error = resolve_packages(&checked, &config, PackagesOptions::default()).unwrap_err();
    assert!(
        matches!(error, oic_build::BuildError::Resolution(_)),
        "{error}"
    );
    assert!(error.to_string().contains("nosuchpackage"), "{error}");
}

#[test]
fn warm_cache_needs_no_network() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, server) = serve(&base_spec(), &dir.path().join("base"));
    let config = config_for(&dir.path().join("cache"), &repo, &server);
    let checked = template("systemConfig:\n  packages: [app]\n", dir.path(), &config);
    let reporter = std::sync::Arc::new(oic_pkgcache::NoReporter);

    let outcome = resolve_packages(&checked, &config, PackagesOptions::default()).unwrap();
    let cold = oic_build::fetch_packages(&outcome, &config, reporter.clone()).unwrap();
    assert_eq!(cold.downloaded_count, outcome.packages.len());
    let pool = dir.path().join("cache/pkgCache").join(PROVIDER);
    assert!(pool.join("app_1.0_amd64.deb").is_file());
    assert!(pool.join("chrootpkgs.dot").is_file());
    drop(server);

    for offline in [true, false] {
        let options = PackagesOptions {
            offline,
            ..PackagesOptions::default()
        };
        let outcome = resolve_packages(&checked, &config, options).unwrap();
        let warm = oic_build::fetch_packages(&outcome, &config, reporter.clone()).unwrap();
        assert_eq!(warm.downloaded_count, 0, "offline: {offline}");
        assert_eq!(
            warm.cached_count,
            outcome.packages.len(),
            "offline: {offline}"
        );
    }
}
