//! Verification of repositories signed by gpg through the project's test repository builder.

mod support;

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use oic_signature::{
    verify_cleartext, verify_cleartext_with, verify_detached, KeySource, Keyring, SignatureError,
    VerifyOptions,
};
use pgp::composed::{Deserializable, DetachedSignature};
use pgp::ser::Serialize;
use serde_json::json;
use support::{build_repo, key_id, keyring_of, signing_case};

#[test]
fn inrelease_by_subkey_verifies() {
    let repo = build_repo(&json!({}));
    assert_ne!(repo.built.fingerprint, repo.built.signing_fingerprint);

    let verified = verify_cleartext(&repo.inrelease(), &repo.keyring()).unwrap();

    assert_eq!(verified.primary.fingerprint, repo.built.fingerprint);
    let subkey = verified
        .subkey
        .as_ref()
        .expect("a subkey made the signature");
    assert_eq!(subkey.fingerprint, repo.built.signing_fingerprint);
    assert_eq!(subkey.key_id, key_id(&repo.built.signing_fingerprint));
    assert_eq!(verified.signing_key(), subkey);
    assert_eq!(verified.hash_algorithm, "SHA512");
    assert_eq!(verified.key_label, repo.built.key_gpg.display().to_string());
    let age = SystemTime::now().duration_since(verified.created).unwrap();
    assert!(age < Duration::from_secs(600), "signature age {age:?}");
    // The signed text ends before the line break that precedes the signature block.
    let release = String::from_utf8(repo.release()).unwrap();
    assert_eq!(format!("{}\n", verified.signed_text().unwrap()), release);
}

#[test]
fn release_gpg_verifies() {
    let repo = build_repo(&json!({}));

    let verified = verify_detached(&repo.release(), &repo.release_gpg(), &repo.keyring()).unwrap();

    assert_eq!(verified.signed_data, repo.release());
    assert_eq!(verified.primary.fingerprint, repo.built.fingerprint);
    assert_eq!(
        verified.signing_key().fingerprint,
        repo.built.signing_fingerprint
    );
}

#[test]
fn binary_detached_signature_verifies() {
    let repo = build_repo(&json!({}));
    let armored = repo.release_gpg();
    let (signatures, _) = DetachedSignature::from_reader_many(&armored[..]).unwrap();
    let mut binary = Vec::new();
    for signature in signatures {
        binary.extend(signature.unwrap().to_bytes().unwrap());
    }
    assert!(binary[0] & 0x80 != 0, "binary OpenPGP data");

    let verified = verify_detached(&repo.release(), &binary, &repo.keyring()).unwrap();

    assert_eq!(verified.primary.fingerprint, repo.built.fingerprint);
}

#[test]
fn armored_key_file_verifies() {
    let repo = build_repo(&json!({}));
    let keyring = keyring_of(&[&repo.built.key_asc]);

    let verified = verify_cleartext(&repo.inrelease(), &keyring).unwrap();

    assert_eq!(verified.primary.fingerprint, repo.built.fingerprint);
    assert_eq!(verified.key_label, repo.built.key_asc.display().to_string());
}

#[test]
fn binary_keyring_signer_second() {
    let first = build_repo(&json!({}));
    let second = build_repo(&json!({}));
    let mut bytes = support::read(&first.built.key_gpg);
    bytes.extend(support::read(&second.built.key_gpg));
    let keyring = Keyring::from_bytes(&bytes, "two-keys.gpg").unwrap();
    assert_eq!(keyring.len(), 2);

    let verified = verify_cleartext(&second.inrelease(), &keyring).unwrap();

    assert_eq!(verified.primary.fingerprint, second.built.fingerprint);
    assert_eq!(verified.key_label, "two-keys.gpg");
}

#[test]
fn armored_keyring_signer_second() {
    let first = build_repo(&json!({}));
    let second = build_repo(&json!({}));
    let mut text = b"Keys of two test repositories.\n\n".to_vec();
    text.extend(support::read(&first.built.key_asc));
    text.extend(b"\n");
    text.extend(support::read(&second.built.key_asc));
    let keyring = Keyring::from_bytes(&text, "two-keys.asc").unwrap();
    let fingerprints: Vec<_> = keyring
        .keys()
        .into_iter()
        .map(|info| info.primary.fingerprint)
        .collect();
    assert_eq!(
        fingerprints,
        [
            first.built.fingerprint.clone(),
            second.built.fingerprint.clone()
        ]
    );

    let verified = verify_detached(&second.release(), &second.release_gpg(), &keyring).unwrap();

    assert_eq!(verified.primary.fingerprint, second.built.fingerprint);
}

#[test]
fn unknown_key_names_issuer() {
    let configured = build_repo(&json!({}));
    let other = build_repo(&json!({}));

    let error = verify_cleartext(&other.inrelease(), &configured.keyring()).unwrap_err();

    let SignatureError::UnknownSigner {
        issuers,
        configured: listed,
    } = &error
    else {
        panic!("expected UnknownSigner, got {error:?}");
    };
    assert_eq!(issuers.len(), 1);
    assert!(issuers[0].contains(&other.built.signing_fingerprint));
    assert_eq!(listed.len(), 1);
    assert!(listed[0].contains(&configured.built.fingerprint));
    let message = error.to_string();
    assert!(
        message.contains(key_id(&other.built.signing_fingerprint)),
        "{message}"
    );
    assert!(message.contains(&configured.built.fingerprint), "{message}");
}

#[test]
fn sha1_signature_rejected() {
    let repo = build_repo(&json!({"digest_algo": "SHA1"}));

    let inrelease = verify_cleartext(&repo.inrelease(), &repo.keyring()).unwrap_err();
    let detached = verify_detached(&repo.release(), &repo.release_gpg(), &repo.keyring());

    let SignatureError::WeakHash { key, hash } = &inrelease else {
        panic!("expected WeakHash, got {inrelease:?}");
    };
    assert_eq!(hash, "SHA1");
    assert_eq!(
        key.subkey.as_ref().unwrap().fingerprint,
        repo.built.signing_fingerprint
    );
    assert!(inrelease.to_string().contains("SHA1"), "{inrelease}");
    assert!(
        matches!(detached, Err(SignatureError::WeakHash { .. })),
        "{detached:?}"
    );
}

#[test]
fn expired_key_rejected() {
    let case = signing_case("expired");

    let error = verify_cleartext(&case.read("InRelease"), &case.keyring()).unwrap_err();

    let SignatureError::KeyExpired { key, expired } = &error else {
        panic!("expected KeyExpired, got {error:?}");
    };
    assert_eq!(key.primary.fingerprint, case.fingerprint);
    assert!(*expired < SystemTime::now());
    assert!(error.to_string().contains(&case.fingerprint), "{error}");
}

#[test]
fn expired_key_valid_before_expiry() {
    let case = signing_case("expired");
    // The key was created 730 days ago, expired 365 days later and signed 700 days ago.
    let before_expiry = SystemTime::now() - Duration::from_secs(500 * 86_400);

    let options = VerifyOptions::at(before_expiry);
    let verified = verify_cleartext_with(&case.read("InRelease"), &case.keyring(), &options);

    assert!(verified.is_ok(), "{verified:?}");
}

#[test]
fn expired_subkey_rejected() {
    let case = signing_case("expired-subkey");

    let error = verify_detached(
        &case.read("Release"),
        &case.read("Release.gpg"),
        &case.keyring(),
    )
    .unwrap_err();

    let SignatureError::KeyExpired { key, .. } = &error else {
        panic!("expected KeyExpired, got {error:?}");
    };
    let subkey = key.subkey.as_ref().expect("the error names the subkey");
    assert_eq!(subkey.fingerprint, case.signing_fingerprint);
}

#[test]
fn revoked_key_rejected() {
    let case = signing_case("revoked");

    let error = verify_cleartext(&case.read("InRelease"), &case.keyring()).unwrap_err();

    let SignatureError::KeyRevoked { key, .. } = &error else {
        panic!("expected KeyRevoked, got {error:?}");
    };
    assert_eq!(key.primary.fingerprint, case.fingerprint);
    assert!(error.to_string().contains("revoked"), "{error}");
}

#[test]
fn future_signature_rejected() {
    let case = signing_case("future");

    let error = verify_cleartext(&case.read("InRelease"), &case.keyring()).unwrap_err();
    let two_days_later = SystemTime::now() + Duration::from_secs(2 * 86_400);
    let later = verify_cleartext_with(
        &case.read("InRelease"),
        &case.keyring(),
        &VerifyOptions::at(two_days_later),
    );

    assert!(
        matches!(error, SignatureError::SignatureInFuture { .. }),
        "{error:?}"
    );
    assert!(later.is_ok(), "{later:?}");
}

#[test]
fn tampered_inrelease_rejected() {
    let repo = build_repo(&json!({}));
    let mut inrelease = repo.inrelease();
    let position = find(&inrelease, b"Codename: bookworm") + b"Codename: ".len();
    inrelease[position] = b'B';

    let error = verify_cleartext(&inrelease, &repo.keyring()).unwrap_err();

    assert!(
        matches!(error, SignatureError::BadSignature { .. }),
        "{error:?}"
    );
}

#[test]
fn tampered_release_rejected() {
    let repo = build_repo(&json!({}));
    let mut release = repo.release();
    let last = release.len() - 2;
    release[last] ^= 0x01;

    let error = verify_detached(&release, &repo.release_gpg(), &repo.keyring()).unwrap_err();

    let SignatureError::BadSignature { key, .. } = &error else {
        panic!("expected BadSignature, got {error:?}");
    };
    assert_eq!(key.primary.fingerprint, repo.built.fingerprint);
}

#[test]
fn dash_escaped_lines_round_trip() {
    let case = signing_case("dash");
    let inrelease = String::from_utf8(case.read("InRelease")).unwrap();
    assert!(inrelease.contains("\n- --double dash\n"), "{inrelease}");

    let verified = verify_cleartext(inrelease.as_bytes(), &case.keyring()).unwrap();

    // Trailing spaces are not signed and the final line break belongs to the framing.
    let release = String::from_utf8(case.read("Release")).unwrap();
    let expected = release.replace("trailing spaces   \n", "trailing spaces\n");
    assert_eq!(format!("{}\n", verified.signed_text().unwrap()), expected);
    let detached = verify_detached(
        &case.read("Release"),
        &case.read("Release.gpg"),
        &case.keyring(),
    );
    assert!(detached.is_ok(), "{detached:?}");
}

#[test]
fn key_sources_load() {
    let repo = build_repo(&json!({}));
    let asc = support::read(&repo.built.key_asc);
    let file_url = format!("file://{}", repo.built.key_gpg.display());
    let mut keyring = Keyring::new();

    let from_file = keyring.add_source(
        &KeySource::parse(&file_url),
        |_: &str| -> Result<Vec<u8>, Infallible> { panic!("a file source must not be fetched") },
    );
    let from_url = keyring.add_source(
        &KeySource::parse("http://127.0.0.1:9/repo-key.asc"),
        |url: &str| -> Result<Vec<u8>, Infallible> {
            assert_eq!(url, "http://127.0.0.1:9/repo-key.asc");
            Ok(asc.clone())
        },
    );
    let embedded = KeySource::Embedded {
        name: "repo-key.gpg".to_owned(),
        bytes: support::read(&repo.built.key_gpg).into(),
    };
    let from_embedded = keyring.add_source(&embedded, |_: &str| -> Result<Vec<u8>, Infallible> {
        panic!("embedded bytes must not be fetched")
    });

    assert_eq!(from_file.unwrap(), 1);
    assert_eq!(from_url.unwrap(), 1);
    assert_eq!(from_embedded.unwrap(), 1);
    let labels: Vec<_> = keyring.keys().into_iter().map(|info| info.label).collect();
    assert_eq!(
        labels,
        [
            repo.built.key_gpg.display().to_string(),
            "http://127.0.0.1:9/repo-key.asc".to_owned(),
            "embedded:repo-key.gpg".to_owned(),
        ]
    );
    assert!(verify_cleartext(&repo.inrelease(), &keyring).is_ok());
}

#[test]
fn failed_fetch_names_url() {
    let mut keyring = Keyring::new();
    let source = KeySource::parse("https://127.0.0.1:9/missing.asc");

    let error = keyring
        .add_source(&source, |_: &str| {
            Err(std::io::Error::other("connection refused"))
        })
        .unwrap_err();

    assert!(
        matches!(error, SignatureError::FetchKey { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("https://127.0.0.1:9/missing.asc"),
        "{error}"
    );
}

#[test]
fn missing_key_file_names_path() {
    let mut keyring = Keyring::new();

    let error = keyring
        .add_file(std::path::Path::new("/nonexistent/oic/key.gpg"))
        .unwrap_err();

    assert!(matches!(error, SignatureError::ReadKey { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/oic/key.gpg"),
        "{error}"
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the needle is in the file")
}
