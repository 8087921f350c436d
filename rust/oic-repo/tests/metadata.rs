//! Metadata of signed repositories built by the tests and served on 127.0.0.1.
//! Needs python3, dpkg-deb and gpg, which build and sign the repositories.

use std::path::{Path, PathBuf};

use oic_config::provider::KeyRef;
use oic_config::Repository;
use oic_repo::{
    load_repositories_blocking, MetadataOptions, MetadataSource, RepoError, SignatureStatus,
};
use oic_testkit::{BuiltRepo, DebRepo, Fault, HttpServer};
use serde_json::{json, Value};

fn spec() -> Value {
    json!({
        "codename": "oic",
        "compressions": ["", "xz"],
        "components": {"main": [
            {"name": "vim", "version": "2:9.0-1"},
            {"name": "vim-tiny", "version": "2:9.0-1"},
            {"name": "docs", "version": "1.0", "architecture": "all"}
        ]}
    })
}

fn build(spec: &Value, dir: &Path) -> BuiltRepo {
    DebRepo::build(spec, &dir.join("repo")).expect("build the test repository")
}

fn repository(url: &str, repo: &BuiltRepo) -> Repository {
    Repository {
        name: "test".to_owned(),
        url: Some(url.trim_end_matches('/').to_owned()),
        path: None,
        suite: Some(repo.codename.clone()),
        components: vec!["main".to_owned()],
        keys: vec![KeyRef::Path(repo.key_gpg.clone())],
        priority: 500,
        gpg_check: true,
        allow_packages: Vec::new(),
    }
}

fn options(cache: &Path, offline: bool) -> MetadataOptions {
    MetadataOptions {
        cache_dir: cache.to_path_buf(),
        provider_id: "debian-debian12-x86_64".to_owned(),
        architecture: "amd64".to_owned(),
        offline,
    }
}

fn names(metadata: &oic_repo::RepoMetadata) -> Vec<&str> {
    let mut names: Vec<_> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names
}

#[test]
fn signed_repository_loads_and_revalidates() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    let repositories = [repository(&server.url(), &repo)];

    let first = load_repositories_blocking(&repositories, &options(&dir.path().join("c"), false))
        .unwrap()
        .remove(0);
    assert_eq!(names(&first), ["docs", "vim", "vim-tiny"]);
    assert_eq!(first.source, MetadataSource::Network);
    let SignatureStatus::Verified { fingerprint, .. } = &first.signature else {
        panic!("the signature was not verified: {:?}", first.signature);
    };
    assert_eq!(fingerprint, &repo.signing_fingerprint);
    let fetched: Vec<_> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        fetched.contains(&"/dists/oic/main/binary-amd64/Packages.xz".to_owned()),
        "{fetched:?}"
    );

    server.clear_requests();
    let second = load_repositories_blocking(&repositories, &options(&dir.path().join("c"), false))
        .unwrap()
        .remove(0);
    assert_eq!(second.source, MetadataSource::Revalidated);
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].status, 304);
}

#[test]
fn cached_metadata_serves_without_network() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    let repositories = [repository(&server.url(), &repo)];
    let cache = dir.path().join("c");
    load_repositories_blocking(&repositories, &options(&cache, false)).unwrap();
    drop(server);

    let offline = load_repositories_blocking(&repositories, &options(&cache, true)).unwrap();
    assert_eq!(offline[0].source, MetadataSource::Cache);
    assert_eq!(names(&offline[0]), ["docs", "vim", "vim-tiny"]);

    let unreachable = load_repositories_blocking(&repositories, &options(&cache, false)).unwrap();
    assert_eq!(unreachable[0].source, MetadataSource::Cache);
}

#[test]
fn offline_without_cache_fails() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let repositories = [repository("http://127.0.0.1:9", &repo)];
    let error = load_repositories_blocking(&repositories, &options(&dir.path().join("c"), true))
        .unwrap_err();
    assert!(matches!(error, RepoError::OfflineMiss { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("run one build with the network first"),
        "{error}"
    );
}

#[test]
fn inrelease_only_repository_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec();
    spec["release_gpg"] = json!(false);
    let repo = build(&spec, dir.path());
    std::fs::remove_file(&repo.release).unwrap();
    let server = HttpServer::serve(&repo.root);
    let metadata = load_repositories_blocking(
        &[repository(&server.url(), &repo)],
        &options(&dir.path().join("c"), false),
    )
    .unwrap();
    assert_eq!(metadata[0].packages.len(), 3);
}

#[test]
fn release_with_detached_signature_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec();
    spec["inrelease"] = json!(false);
    let repo = build(&spec, dir.path());
    let server = HttpServer::serve(&repo.root);
    let metadata = load_repositories_blocking(
        &[repository(&server.url(), &repo)],
        &options(&dir.path().join("c"), false),
    )
    .unwrap();
    assert!(matches!(
        metadata[0].signature,
        SignatureStatus::Verified { .. }
    ));
    let fetched: Vec<_> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        fetched.contains(&"/dists/oic/Release.gpg".to_owned()),
        "{fetched:?}"
    );
}

#[test]
fn missing_release_names_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    let mut repository = repository(&server.url(), &repo);
    repository.suite = Some("nosuch".to_owned());
    let error = load_repositories_blocking(&[repository], &options(&dir.path().join("c"), false))
        .unwrap_err();
    assert!(matches!(error, RepoError::NoRelease { .. }), "{error}");
    assert!(error.to_string().contains("/dists/nosuch"), "{error}");
}

#[test]
fn unknown_signing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let other = DebRepo::build(&spec(), &dir.path().join("other")).unwrap();
    let server = HttpServer::serve(&repo.root);
    let mut repository = repository(&server.url(), &repo);
    repository.keys = vec![KeyRef::Path(other.key_gpg.clone())];
    let error = load_repositories_blocking(&[repository], &options(&dir.path().join("c"), false))
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, RepoError::Signature { .. }), "{message}");
    assert!(message.contains("Repository `test`"), "{message}");
    let key_id = &repo.signing_fingerprint[repo.signing_fingerprint.len() - 16..];
    assert!(message.contains(key_id), "{message}");
    assert!(!dir
        .path()
        .join("c/metadata/v1/debian-debian12-x86_64/repos")
        .exists());
}

#[test]
fn tampered_index_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    let path = repo.root.join("dists/oic/main/binary-amd64/Packages");
    let mut tampered = std::fs::read(&path).unwrap();
    tampered[10] ^= 1;
    let fault = Fault {
        replace_body: Some(tampered),
        ..Fault::default()
    };
    server.add_fault("*/binary-amd64/Packages", fault);
    std::fs::remove_file(repo.root.join("dists/oic/main/binary-amd64/Packages.xz")).unwrap();

    let error = load_repositories_blocking(
        &[repository(&server.url(), &repo)],
        &options(&dir.path().join("c"), false),
    )
    .unwrap_err();
    assert!(matches!(error, RepoError::Checksum { .. }), "{error}");
    let cached_indexes = dir
        .path()
        .join("c/metadata/v1/debian-debian12-x86_64/by-hash");
    assert!(
        !cached_indexes.exists(),
        "an unverified index reached the cache"
    );
}

#[test]
fn transient_failures_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    server.add_fault(
        "*/InRelease",
        Fault {
            fail_first: 2,
            status: 503,
            ..Fault::default()
        },
    );
    let metadata = load_repositories_blocking(
        &[repository(&server.url(), &repo)],
        &options(&dir.path().join("c"), false),
    )
    .unwrap();
    assert_eq!(metadata[0].packages.len(), 3);
}

#[test]
fn expired_release_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec();
    spec["date"] = json!("2020-01-01T00:00:00Z");
    spec["valid_until"] = json!("2020-01-08T00:00:00Z");
    let repo = build(&spec, dir.path());
    let server = HttpServer::serve(&repo.root);
    let error = load_repositories_blocking(
        &[repository(&server.url(), &repo)],
        &options(&dir.path().join("c"), false),
    )
    .unwrap_err();
    assert!(matches!(error, RepoError::Expired { .. }), "{error}");
    assert!(
        error.to_string().contains("2020-01-08 00:00:00 UTC"),
        "{error}"
    );
}

#[test]
fn allow_packages_takes_exact_names() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    let mut repository = repository(&server.url(), &repo);
    repository.allow_packages = vec!["vim".to_owned()];
    let metadata = load_repositories_blocking(
        &[repository.clone()],
        &options(&dir.path().join("c"), false),
    )
    .unwrap();
    assert_eq!(names(&metadata[0]), ["vim"]);

    repository.allow_packages = vec!["vim*".to_owned()];
    let metadata =
        load_repositories_blocking(&[repository], &options(&dir.path().join("c"), false)).unwrap();
    assert_eq!(names(&metadata[0]), ["vim", "vim-tiny"]);
}

#[test]
fn local_folder_is_known_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let mut repository = repository("http://unused", &repo);
    repository.url = None;
    repository.path = Some(repo.root.clone());
    let first = load_repositories_blocking(
        &[repository.clone()],
        &options(&dir.path().join("c"), false),
    )
    .unwrap()
    .remove(0);
    assert_eq!(first.source, MetadataSource::Local);
    assert!(first.id.starts_with("test@sha256:"), "{}", first.id);

    let copy = dir.path().join("copy");
    copy_tree(&repo.root, &copy);
    repository.path = Some(copy);
    let second = load_repositories_blocking(&[repository], &options(&dir.path().join("c"), false))
        .unwrap()
        .remove(0);
    assert_eq!(first.id, second.id);
}

#[test]
fn unsigned_repository_needs_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    std::fs::remove_file(repo.inrelease.as_ref().unwrap()).unwrap();
    std::fs::remove_file(repo.release_gpg.as_ref().unwrap()).unwrap();
    let server = HttpServer::serve(&repo.root);
    let mut repository = repository(&server.url(), &repo);
    let error = load_repositories_blocking(
        &[repository.clone()],
        &options(&dir.path().join("c"), false),
    )
    .unwrap_err();
    assert!(
        matches!(error, RepoError::MissingSignature { .. }),
        "{error}"
    );

    repository.gpg_check = false;
    let metadata =
        load_repositories_blocking(&[repository], &options(&dir.path().join("c"), false)).unwrap();
    assert_eq!(metadata[0].signature, SignatureStatus::Skipped);
}

/// Debian's real signed index, re-served from the test mirror when it has been prepared.
#[test]
fn real_debian_mirror_verifies_with_embedded_keys() {
    let mirror = std::env::var_os("OIC_MIRROR_DIR").map_or_else(
        || PathBuf::from("/var/cache/os-image-composer-testdata/debian-bookworm"),
        PathBuf::from,
    );
    if !mirror.join("debian/dists/bookworm/InRelease").exists() {
        eprintln!("skipped: no prepared mirror at {}", mirror.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = HttpServer::serve(&mirror.join("debian"));
    let provider = oic_config::provider::load_provider("debian-debian12-x86_64").unwrap();
    let mut repository = provider.repositories[0].clone();
    repository.url = Some(server.url().trim_end_matches('/').to_owned());

    let metadata = load_repositories_blocking(&[repository], &options(dir.path(), false)).unwrap();
    assert!(
        metadata[0].packages.len() > 60_000,
        "{}",
        metadata[0].packages.len()
    );
    assert!(matches!(
        metadata[0].signature,
        SignatureStatus::Verified { .. }
    ));
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walk(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn index_missing_from_release_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    let mut repository = repository(&server.url(), &repo);
    repository.components = vec!["main".to_owned(), "contrib".to_owned()];
    let error = load_repositories_blocking(&[repository], &options(&dir.path().join("c"), false))
        .unwrap_err();
    assert!(matches!(error, RepoError::IndexNotListed { .. }), "{error}");
    assert!(
        error.to_string().contains("contrib/binary-amd64/Packages"),
        "{error}"
    );
}

#[test]
fn truncated_compressed_index_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build(&spec(), dir.path());
    let server = HttpServer::serve(&repo.root);
    server.add_fault(
        "*/Packages.xz",
        Fault {
            truncate_after: Some(20),
            ..Fault::default()
        },
    );
    std::fs::remove_file(repo.root.join("dists/oic/main/binary-amd64/Packages")).unwrap();
    let error = load_repositories_blocking(
        &[repository(&server.url(), &repo)],
        &options(&dir.path().join("c"), false),
    )
    .unwrap_err();
    assert!(
        matches!(error, RepoError::Fetch { .. } | RepoError::Checksum { .. }),
        "{error}"
    );
}
