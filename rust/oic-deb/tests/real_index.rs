//! Parses the real bookworm indexes that apt downloaded on this machine.

mod common;

use std::fmt::Write;

use oic_deb::{parse_packages, Release};
use sha2::{Digest, Sha256};

#[test]
fn bookworm_packages_parse() {
    let Some(text) = common::read_list(common::BOOKWORM_PACKAGES) else {
        return;
    };

    let packages = parse_packages(&text).unwrap();
    let stanzas = text.matches("\nPackage: ").count() + usize::from(text.starts_with("Package: "));
    assert!(packages.len() > 60_000, "only {} packages", packages.len());
    assert_eq!(packages.len(), stanzas);

    for package in &packages {
        assert!(
            package.filename.starts_with("pool/main/"),
            "{}",
            package.name
        );
        assert_eq!(package.sha256.to_hex().len(), 64, "{}", package.name);
        assert!(package.size > 0, "{}", package.name);
    }

    let bash = packages
        .iter()
        .find(|package| package.name == "bash")
        .unwrap();
    assert!(bash.essential);
    assert_eq!(bash.priority.as_deref(), Some("required"));
    assert!(!bash.pre_depends.is_empty());
}

#[test]
fn security_and_updates_packages_parse() {
    for name in common::UPDATE_PACKAGES {
        let Some(text) = common::read_list(name) else {
            continue;
        };
        let packages = parse_packages(&text).unwrap();
        assert!(!packages.is_empty(), "{name}");
    }
}

#[test]
fn bookworm_release_lists_packages_index() {
    let Some(armored) = common::read_list(common::BOOKWORM_IN_RELEASE) else {
        return;
    };
    let Some(packages) = common::read_list(common::BOOKWORM_PACKAGES) else {
        return;
    };

    let release = Release::parse(&common::in_release_body(&armored)).unwrap();
    assert_eq!(release.codename.as_deref(), Some("bookworm"));
    assert_eq!(release.origin.as_deref(), Some("Debian"));
    assert!(release.architectures.iter().any(|arch| arch == "amd64"));
    assert!(release
        .components
        .iter()
        .any(|component| component == "main"));
    assert!(release.acquire_by_hash);
    assert!(release.date.is_some());

    let entry = release.file("main/binary-amd64/Packages").unwrap();
    assert_eq!(entry.size, packages.len() as u64);
    let digest = Sha256::digest(packages.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        write!(hex, "{byte:02x}").unwrap();
    }
    assert_eq!(entry.hash, hex);
    assert!(release.md5sum.contains_key("main/binary-amd64/Packages"));
    assert!(release.sha256.len() > 100);
}

#[test]
fn suite_releases_parse() {
    for name in [
        "deb.debian.org_debian_dists_bookworm-updates_InRelease",
        "deb.debian.org_debian-security_dists_bookworm-security_InRelease",
    ] {
        let Some(armored) = common::read_list(name) else {
            continue;
        };
        let release = Release::parse(&common::in_release_body(&armored)).unwrap();
        assert!(release.date.is_some(), "{name}");
        assert!(!release.sha256.is_empty(), "{name}");
    }
}

#[test]
fn security_release_expires() {
    let name = "deb.debian.org_debian-security_dists_bookworm-security_InRelease";
    let Some(armored) = common::read_list(name) else {
        return;
    };

    let release = Release::parse(&common::in_release_body(&armored)).unwrap();
    let date = release.date.unwrap();
    let valid_until = release.valid_until.unwrap();
    assert!(valid_until > date);
    assert!(!release.is_expired(date));
    assert!(release.is_expired(valid_until + 1));
}
