//! The solver on a repository of real packages: built with rpmbuild, signed with rpmsign,
//! indexed with `createrepo_c` by `rpmrepo.py`, and read through `load_repository`.

use std::sync::OnceLock;

use oic_config::provider::KeyRef;
use oic_config::Repository;
use oic_rpm::{
    load_repository_blocking, solve, RpmCandidate, RpmError, RpmMetadataOptions, RpmSolveRequest,
    RpmUniverse,
};
use oic_testkit::RpmRepo;
use serde_json::json;

fn spec() -> serde_json::Value {
    json!({
        "packages": [
            {"name": "app", "requires": [
                "(liba or libb)", "/usr/bin/foo", "tool >= 1:0.5", "prerelease < 1.0"
            ]},
            {"name": "libb", "arch": "x86_64"},
            {"name": "foo-tools", "files": {"/usr/bin/foo": "#!/bin/sh\n"}},
            {"name": "tool", "version": "2.0"},
            {"name": "tool", "version": "1.0", "epoch": 1},
            {"name": "prerelease", "version": "1.0~rc3"},
            {"name": "prerelease", "version": "1.0"},
            {"name": "mail-user", "requires": ["mta"], "conflicts": ["sendmail"]},
            {"name": "sendmail", "provides": ["mta"]},
            {"name": "postfix", "provides": ["mta"]},
            {"name": "old-user", "requires": ["oldpkg"]},
            {"name": "oldpkg", "version": "1.0"},
            {"name": "newpkg", "version": "2.0", "obsoletes": ["oldpkg < 2"],
             "provides": ["oldpkg = 2.0"]},
            {"name": "broken", "requires": ["middle"]},
            {"name": "middle", "requires": ["/usr/bin/nowhere"]}
        ]
    })
}

/// Builds the repository once and returns its packages as one universe.
fn universe() -> &'static RpmUniverse {
    static UNIVERSE: OnceLock<RpmUniverse> = OnceLock::new();
    UNIVERSE.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let repo = RpmRepo::build(&spec(), &root.path().join("repo")).unwrap();
        let repository = Repository {
            name: "local".to_owned(),
            url: None,
            path: Some(repo.root.clone()),
            suite: None,
            components: Vec::new(),
            keys: vec![KeyRef::Path(repo.key_asc.clone())],
            priority: 500,
            gpg_check: true,
            allow_packages: Vec::new(),
        };
        let cache = root.path().join("cache");
        let options = RpmMetadataOptions::new(&cache, "azure-linux-azl3-x86_64", "x86_64");
        let metadata = load_repository_blocking(&repository, &options).unwrap();
        let candidates = metadata
            .packages
            .into_iter()
            .map(|package| RpmCandidate {
                package,
                repository: metadata.id.clone(),
                priority: 500,
            })
            .collect();
        RpmUniverse::new(candidates)
    })
}

fn solved(names: &[&str]) -> Result<Vec<String>, RpmError> {
    let request = RpmSolveRequest {
        requests: names.iter().map(|&name| name.to_owned()).collect(),
        essential: Vec::new(),
    };
    let resolution = solve(universe(), &request)?;
    Ok(resolution
        .packages
        .iter()
        .map(|candidate| candidate.label())
        .collect())
}

#[test]
fn rich_file_epoch_and_tilde() {
    let chosen = solved(&["app"]).unwrap();
    assert_eq!(
        chosen,
        [
            "app-1.0-1.noarch",
            "foo-tools-1.0-1.noarch",
            "libb-1.0-1.x86_64",
            "prerelease-1.0~rc3-1.noarch",
            "tool-1:1.0-1.noarch",
        ]
    );
}

#[test]
fn conflict_avoids_provider() {
    let chosen = solved(&["mail-user"]).unwrap();
    assert_eq!(chosen, ["mail-user-1.0-1.noarch", "postfix-1.0-1.noarch"]);
    let error = solved(&["mail-user", "sendmail"]).unwrap_err();
    assert!(matches!(error, RpmError::Unsolvable { .. }), "{error}");
}

#[test]
fn obsoleter_replaces_old() {
    let chosen = solved(&["old-user"]).unwrap();
    assert_eq!(chosen, ["newpkg-2.0-1.noarch", "old-user-1.0-1.noarch"]);
    // newpkg provides `oldpkg = 2.0`, so a request for `oldpkg` installs newpkg, as in dnf.
    assert_eq!(solved(&["oldpkg"]).unwrap(), ["newpkg-2.0-1.noarch"]);
    let error = solved(&["newpkg", "oldpkg < 2"]).unwrap_err();
    assert!(matches!(error, RpmError::Unsolvable { .. }), "{error}");
}

#[test]
fn missing_file_names_chain() {
    let error = solved(&["broken"]).unwrap_err();
    let RpmError::MissingDependency { chain, .. } = &error else {
        panic!("expected a missing dependency: {error}");
    };
    assert_eq!(
        chain,
        "broken-1.0-1.noarch -> middle-1.0-1.noarch -> /usr/bin/nowhere"
    );
}
