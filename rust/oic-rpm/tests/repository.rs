//! End-to-end checks on RPM repositories built by `rpmrepo.py` (rpmbuild, rpmsign, `createrepo_c`
//! and gpg) and served on 127.0.0.1.

use std::path::{Path, PathBuf};

use oic_config::provider::KeyRef;
use oic_config::Repository;
use oic_repo::{MetadataSource, SignatureStatus};
use oic_rpm::{
    load_repository_blocking, verify_package_file, Evr, Expression, RpmError, RpmMetadataOptions,
    RpmPackage, RpmRepoMetadata,
};
use oic_testkit::{BuiltRpmRepo, Fault, HttpServer, RpmRepo};
use serde_json::{json, Value};

/// Returns a repository spec with the cases of this file: rich and file dependencies, epochs, an unsigned
/// package and one signed by a key that the repository does not configure.
fn spec(algorithm: &str) -> Value {
    json!({
        "key": {"algorithm": algorithm},
        "packages": [
            {"name": "app", "requires": ["(liba or libb)", "/usr/bin/helper", "tool >= 1:0.5"]},
            {"name": "libb", "arch": "x86_64", "provides": ["libb-virtual = 2"]},
            {"name": "helper-pkg", "files": {"/usr/bin/helper": "#!/bin/sh\n"}},
            {"name": "tool", "version": "1.0", "epoch": 1},
            {"name": "tool", "version": "2.0", "conflicts": ["app < 0.5"], "obsoletes": ["tool-old"]},
            {"name": "unsigned", "sign": null},
            {"name": "foreign", "sign": "other"}
        ]
    })
}

struct Fixture {
    repo: BuiltRpmRepo,
    server: HttpServer,
    cache: tempfile::TempDir,
    _root: tempfile::TempDir,
}

impl Fixture {
    fn new(algorithm: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let repo = RpmRepo::build(&spec(algorithm), &root.path().join("repo")).unwrap();
        let server = HttpServer::serve(&repo.root);
        Self {
            repo,
            server,
            cache: tempfile::tempdir().unwrap(),
            _root: root,
        }
    }

    fn repository(&self, key: &Path) -> Repository {
        Repository {
            name: "azl-test".to_owned(),
            url: Some(self.server.url()),
            path: None,
            suite: None,
            components: Vec::new(),
            keys: vec![KeyRef::Path(key.to_owned())],
            priority: 500,
            gpg_check: true,
            allow_packages: Vec::new(),
        }
    }

    fn options(&self) -> RpmMetadataOptions {
        RpmMetadataOptions::new(self.cache.path(), "azure-linux-azl3-x86_64", "x86_64")
    }

    fn load(&self) -> Result<RpmRepoMetadata, RpmError> {
        load_repository_blocking(&self.repository(&self.repo.key_asc), &self.options())
    }
}

fn find<'a>(metadata: &'a RpmRepoMetadata, name: &str) -> &'a RpmPackage {
    metadata
        .packages
        .iter()
        .find(|package| package.name == name)
        .unwrap_or_else(|| panic!("{name} is in primary.xml"))
}

/// Returns whether some package of the repository satisfies `expression`.
fn is_satisfiable(expression: &Expression, packages: &[RpmPackage]) -> bool {
    match expression {
        Expression::Atom(dependency) => {
            packages.iter().any(|package| package.satisfies(dependency))
        }
        Expression::And(operands) => operands
            .iter()
            .all(|operand| is_satisfiable(operand, packages)),
        Expression::Or(operands) => operands
            .iter()
            .any(|operand| is_satisfiable(operand, packages)),
        Expression::Unsupported { .. } => false,
    }
}

fn local_copy(fixture: &Fixture, name: &str) -> PathBuf {
    fixture.repo.package(name).unwrap().path.clone()
}

#[test]
fn repository_loads_and_verifies() {
    let fixture = Fixture::new("rsa3072");
    let metadata = fixture.load().unwrap();
    assert_eq!(metadata.source, MetadataSource::Network);
    match &metadata.signature {
        SignatureStatus::Verified { fingerprint, .. } => {
            assert_eq!(fingerprint, &fixture.repo.fingerprint);
        }
        SignatureStatus::Skipped => panic!("repomd.xml was not verified"),
    }
    assert_eq!(metadata.packages.len(), 7);
    let libb = find(&metadata, "libb");
    assert_eq!(libb.arch, "x86_64");
    let tool = metadata
        .packages
        .iter()
        .find(|package| package.name == "tool" && package.evr.version == "2.0")
        .unwrap();
    assert_eq!(tool.conflicts[0].to_string(), "app < 0:0.5");
    assert_eq!(tool.obsoletes[0].name, "tool-old");
    assert!(libb
        .provides
        .iter()
        .any(|provide| provide.name == "libb-virtual"));
    for package in &metadata.packages {
        package.check_dependencies().unwrap();
    }
}

#[test]
fn signed_packages_verify_with_rsa_and_eddsa() {
    for algorithm in ["rsa3072", "ed25519"] {
        let fixture = Fixture::new(algorithm);
        let metadata = fixture.load().unwrap();
        let app = find(&metadata, "app");
        let path = local_copy(&fixture, "app");
        let verified = verify_package_file(&path, Some(app), metadata.keyring.as_ref())
            .unwrap_or_else(|error| panic!("{algorithm}: {error}"));
        let signer = verified.signer.expect("a keyring was given");
        assert_eq!(signer.fingerprint, fixture.repo.fingerprint, "{algorithm}");
        assert!(verified.payload_digest.is_some(), "{algorithm}");
    }
}

#[test]
fn unsigned_package_is_rejected() {
    let fixture = Fixture::new("rsa3072");
    let metadata = fixture.load().unwrap();
    let path = local_copy(&fixture, "unsigned");
    let package = find(&metadata, "unsigned");
    let error = verify_package_file(&path, Some(package), metadata.keyring.as_ref()).unwrap_err();
    assert!(matches!(error, RpmError::Unsigned { .. }), "{error}");
    assert!(
        error.to_string().contains("unsigned-1.0-1.noarch.rpm"),
        "{error}"
    );
    // With gpgCheck off there is no keyring, and the digests alone are checked.
    verify_package_file(&path, Some(package), None).unwrap();
}

#[test]
fn package_by_unknown_key_is_rejected() {
    let fixture = Fixture::new("rsa3072");
    let metadata = fixture.load().unwrap();
    let path = local_copy(&fixture, "foreign");
    let package = find(&metadata, "foreign");
    let error = verify_package_file(&path, Some(package), metadata.keyring.as_ref()).unwrap_err();
    let key_id = &fixture.repo.other_fingerprint[24..];
    let message = error.to_string();
    assert!(
        matches!(error, RpmError::PackageSignature { .. }),
        "{message}"
    );
    assert!(message.contains(key_id), "{message} names {key_id}");
    assert!(message.contains("foreign-1.0-1.noarch.rpm"), "{message}");
}

#[test]
fn primary_checksum_mismatch_is_rejected() {
    let fixture = Fixture::new("rsa3072");
    let primary = std::fs::read_dir(fixture.repo.root.join("repodata"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with("-primary.xml.gz"))
        .unwrap();
    let mut bytes = std::fs::read(&primary).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let fault = Fault {
        replace_body: Some(bytes),
        ..Fault::default()
    };
    fixture.server.add_fault("*-primary.xml.gz", fault);
    let error = fixture.load().unwrap_err();
    assert!(matches!(error, RpmError::Checksum { .. }), "{error}");
    assert!(
        error.to_string().contains("repomd.xml promises sha256"),
        "{error}"
    );
}

#[test]
fn package_differing_from_primary_is_rejected() {
    let fixture = Fixture::new("rsa3072");
    let metadata = fixture.load().unwrap();
    let package = find(&metadata, "app");
    let path = local_copy(&fixture, "app");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let error = verify_package_file(&path, Some(package), metadata.keyring.as_ref()).unwrap_err();
    assert!(matches!(error, RpmError::Checksum { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("primary.xml (package app-1.0-1.noarch)"),
        "{error}"
    );

    // The same change is caught by the payload digest without primary.xml.
    let error = verify_package_file(&path, None, metadata.keyring.as_ref()).unwrap_err();
    assert!(matches!(error, RpmError::PackageDigest { .. }), "{error}");

    // Another package's file in its place has the wrong size for the entry.
    std::fs::copy(local_copy(&fixture, "libb"), &path).unwrap();
    let error = verify_package_file(&path, Some(package), metadata.keyring.as_ref()).unwrap_err();
    assert!(matches!(error, RpmError::Size { .. }), "{error}");
}

#[test]
fn rich_or_is_satisfied_by_second_operand() {
    let fixture = Fixture::new("rsa3072");
    let metadata = fixture.load().unwrap();
    let app = find(&metadata, "app");
    let rich = &app.requires[0].expression;
    assert_eq!(rich.to_string(), "(liba or libb)");
    let Expression::Or(operands) = rich else {
        panic!("expected an `or`: {rich:?}");
    };
    assert!(
        !is_satisfiable(&operands[0], &metadata.packages),
        "liba is absent"
    );
    assert!(
        is_satisfiable(&operands[1], &metadata.packages),
        "libb is present"
    );
    assert!(is_satisfiable(rich, &metadata.packages));
}

#[test]
fn file_dependency_uses_primary_file_list() {
    let fixture = Fixture::new("rsa3072");
    let metadata = fixture.load().unwrap();
    let app = find(&metadata, "app");
    let Expression::Atom(file) = &app.requires[1].expression else {
        panic!("expected a plain entry: {:?}", app.requires[1]);
    };
    assert_eq!(file.name, "/usr/bin/helper");
    let providers: Vec<&str> = metadata
        .packages
        .iter()
        .filter(|package| package.satisfies(file))
        .map(|package| package.name.as_str())
        .collect();
    assert_eq!(providers, ["helper-pkg"]);
}

#[test]
fn epoch_outranks_version() {
    let fixture = Fixture::new("rsa3072");
    let metadata = fixture.load().unwrap();
    let tools: Vec<&RpmPackage> = metadata
        .packages
        .iter()
        .filter(|package| package.name == "tool")
        .collect();
    assert_eq!(tools.len(), 2);
    let newest = tools.iter().max_by(|a, b| a.evr.cmp(&b.evr)).unwrap();
    assert_eq!(newest.evr, Evr::parse("1:1.0-1"));
    let app = find(&metadata, "app");
    let Expression::Atom(required) = &app.requires[2].expression else {
        panic!("expected a plain entry");
    };
    let satisfying: Vec<String> = tools
        .iter()
        .filter(|tool| tool.satisfies(required))
        .map(|tool| tool.evr.to_string())
        .collect();
    assert_eq!(satisfying, ["1:1.0-1"], "tool >= 1:0.5 needs the epoch");
}

#[test]
fn unchanged_repomd_costs_one_request() {
    let fixture = Fixture::new("rsa3072");
    fixture.load().unwrap();
    fixture.server.clear_requests();
    let again = fixture.load().unwrap();
    assert_eq!(again.source, MetadataSource::Revalidated);
    let requests = fixture.server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].status, 304);

    let mut options = fixture.options();
    options.offline = true;
    let repository = fixture.repository(&fixture.repo.key_asc);
    drop(fixture.server);
    let offline = load_repository_blocking(&repository, &options).unwrap();
    assert_eq!(offline.source, MetadataSource::Cache);
    assert_eq!(offline.packages.len(), 7);
}

#[test]
fn repomd_signature_is_required() {
    let fixture = Fixture::new("rsa3072");
    fixture.server.add_fault(
        "/repodata/repomd.xml.asc",
        Fault {
            fail_first: u32::MAX,
            status: 404,
            ..Fault::default()
        },
    );
    let error = fixture.load().unwrap_err();
    assert!(
        matches!(error, RpmError::MissingRepomdSignature { .. }),
        "{error}"
    );

    let wrong_key = fixture.repository(&fixture.repo.other_key_asc);
    fixture.server.clear_faults();
    let error = load_repository_blocking(&wrong_key, &fixture.options()).unwrap_err();
    assert!(matches!(error, RpmError::Signature { .. }), "{error}");
}

#[test]
fn local_folder_loads_with_filters() {
    for compression in ["xz", "gz"] {
        let root = tempfile::tempdir().unwrap();
        let mut spec = spec("ed25519");
        spec["compression"] = json!(compression);
        let repo = RpmRepo::build(&spec, &root.path().join("repo")).unwrap();
        let mut repository = Repository {
            name: "local".to_owned(),
            url: None,
            path: Some(repo.root.clone()),
            suite: None,
            components: Vec::new(),
            keys: vec![KeyRef::Path(repo.key_asc.clone())],
            priority: 500,
            gpg_check: true,
            allow_packages: vec!["tool".to_owned(), "lib*".to_owned()],
        };
        let cache = tempfile::tempdir().unwrap();
        let options = RpmMetadataOptions::new(cache.path(), "p", "x86_64");
        let metadata = load_repository_blocking(&repository, &options).unwrap();
        assert_eq!(metadata.source, MetadataSource::Local, "{compression}");
        assert_eq!(metadata.packages.len(), 3, "{compression}");
        assert!(metadata.id.starts_with("local@sha256:"), "{}", metadata.id);
        repository.gpg_check = false;
        let unchecked = load_repository_blocking(&repository, &options).unwrap();
        assert_eq!(unchecked.signature, SignatureStatus::Skipped);
    }
}
