//! Verification of the real Debian bookworm `InRelease` that apt downloaded on this host.
//!
//! The tests skip with a printed reason when apt has not fetched the file.

mod support;

use std::path::{Path, PathBuf};

use oic_signature::{verify_cleartext, Keyring, SignatureError};
use serde_json::json;
use support::{build_repo, keyring_of};

const DEBIAN_INRELEASE: &str = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease";
const SYSTEM_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

fn embedded_key_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../oic-config/providers/keys");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "gpg"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .gpg files in {}", dir.display());
    files
}

fn debian_inrelease() -> Option<Vec<u8>> {
    match std::fs::read(DEBIAN_INRELEASE) {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            println!("skipped: cannot read {DEBIAN_INRELEASE} ({error}); run apt-get update");
            None
        }
    }
}

#[test]
fn debian_inrelease_embedded_keys() {
    let Some(inrelease) = debian_inrelease() else {
        return;
    };
    let files = embedded_key_files();
    let paths: Vec<_> = files.iter().map(PathBuf::as_path).collect();
    let keyring = keyring_of(&paths);

    let verified = verify_cleartext(&inrelease, &keyring).unwrap();

    let text = verified.signed_text().unwrap();
    assert!(text.starts_with("Origin: Debian\n"), "{}", &text[..80]);
    assert!(text.contains("\nCodename: bookworm\n"));
    assert!(!text.contains("BEGIN PGP"));
    assert_eq!(verified.hash_algorithm, "SHA256");
    println!(
        "verified by {} from {}",
        verified.signing_key().fingerprint,
        verified.key_label
    );
}

#[test]
fn debian_inrelease_system_keyring() {
    let Some(inrelease) = debian_inrelease() else {
        return;
    };
    if !Path::new(SYSTEM_KEYRING).exists() {
        println!("skipped: {SYSTEM_KEYRING} is missing; install debian-archive-keyring");
        return;
    }
    let keyring = keyring_of(&[Path::new(SYSTEM_KEYRING)]);
    assert!(keyring.len() > 1, "{} keys", keyring.len());

    let verified = verify_cleartext(&inrelease, &keyring).unwrap();

    assert_eq!(verified.key_label, SYSTEM_KEYRING);
}

#[test]
fn debian_inrelease_unrelated_key_fails() {
    let Some(inrelease) = debian_inrelease() else {
        return;
    };
    let unrelated = build_repo(&json!({}));
    let keyring: Keyring = unrelated.keyring();

    let error = verify_cleartext(&inrelease, &keyring).unwrap_err();

    let SignatureError::UnknownSigner {
        issuers,
        configured,
    } = &error
    else {
        panic!("expected UnknownSigner, got {error:?}");
    };
    assert_eq!(issuers.len(), 3, "{issuers:?}");
    assert_eq!(configured.len(), 1, "{configured:?}");
    println!("{error}");
}

#[test]
fn binary_keys_export_armored() {
    for file in embedded_key_files() {
        let mut keyring = Keyring::new();
        keyring.add_file(&file).unwrap();

        let armored = keyring.armored_keys().unwrap();

        assert_eq!(armored.len(), keyring.len(), "{}", file.display());
        let mut reparsed = Keyring::new();
        for text in &armored {
            assert!(
                text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"),
                "{text}"
            );
            reparsed.add_bytes(text.as_bytes(), "armored").unwrap();
        }
        let fingerprints = |keyring: &Keyring| -> Vec<String> {
            keyring
                .keys()
                .into_iter()
                .map(|info| format!("{:?} {:?}", info.primary, info.subkeys))
                .collect()
        };
        assert_eq!(fingerprints(&reparsed), fingerprints(&keyring));
    }
}
