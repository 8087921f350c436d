//! Builds a repository with `debrepo.py` and serves it. Needs python3, dpkg-deb and gpg.

mod common;

use std::fs;
use std::process::Command;

use common::{get, Client};
use oic_testkit::{DebRepo, HttpServer};
use serde_json::json;

fn spec() -> serde_json::Value {
    json!({
        "codename": "oic",
        "components": {
            "main": [
                {
                    "name": "hello",
                    "version": "1:2.10-3",
                    "depends": "libgreet1 (>= 1.0) | libgreet-compat",
                    "files": {"/usr/bin/hello": {"content": "#!/bin/sh\necho hi\n", "mode": "0755"}},
                    "scripts": {"postinst": "#!/bin/sh\nexit 0\n"}
                },
                {"name": "libgreet1", "version": "1.4-1", "multi_arch": "same"}
            ]
        }
    })
}

#[test]
fn build_serve_and_fetch_inrelease() {
    let out = tempfile::tempdir().unwrap();
    let repo = DebRepo::build(&spec(), out.path()).expect("build the repository");
    let inrelease = repo.inrelease.clone().expect("InRelease was written");
    assert_eq!(repo.codename, "oic");
    assert_ne!(repo.fingerprint, repo.signing_fingerprint);

    let server = HttpServer::serve(&repo.root);
    let mut client = Client::connect(server.address());
    let response = client.get("/dists/oic/InRelease");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, fs::read(&inrelease).unwrap());

    let hello = repo
        .packages
        .iter()
        .find(|package| package.name == "hello")
        .unwrap();
    assert_eq!(hello.filename, "pool/main/h/hello/hello_2.10-3_amd64.deb");
    let deb = client.get(&format!("/{}", hello.filename));
    assert_eq!(deb.body.len() as u64, hello.size);
    assert_eq!(deb.body, fs::read(&hello.path).unwrap());
    let libgreet = repo
        .packages
        .iter()
        .find(|package| package.name == "libgreet1")
        .unwrap();
    assert_eq!(
        libgreet.filename,
        "pool/main/libg/libgreet1/libgreet1_1.4-1_amd64.deb"
    );
    assert_eq!(
        get(server.address(), "/dists/oic/main/binary-amd64/Packages.xz").status,
        200
    );
}

#[test]
fn inrelease_verifies_with_gpgv() {
    let out = tempfile::tempdir().unwrap();
    let repo = DebRepo::build(&spec(), out.path()).expect("build the repository");
    let output = Command::new("gpgv")
        .arg("--status-fd")
        .arg("1")
        .arg("--keyring")
        .arg(&repo.key_gpg)
        .arg(repo.inrelease.as_ref().unwrap())
        .output()
        .expect("run gpgv");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.contains(&format!("VALIDSIG {} ", repo.signing_fingerprint)),
        "{status}"
    );
}

#[test]
fn invalid_spec_reports_builder_error() {
    let out = tempfile::tempdir().unwrap();
    let error = DebRepo::build(
        &json!({"components": {"main": [{"name": "Bad_Name", "version": "1"}]}}),
        out.path(),
    )
    .expect_err("the package name is invalid");
    assert!(
        error.to_string().contains("invalid package name"),
        "{error}"
    );
}
