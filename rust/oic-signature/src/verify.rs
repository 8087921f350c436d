//! Verification of clear-signed and detached-signed documents against a keyring.

use std::time::{Duration, SystemTime};

use pgp::composed::{
    CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicSubKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

use crate::error::{KeyIdentity, SignatureError, SignerKey};
use crate::keyring::{key_identity, Keyring, LoadedKey};
use crate::time::{add_seconds, system_time};
use crate::validity::{self, CheckTimes};

/// How far in the future a signature's creation time may be before it is rejected, to allow
/// for clocks that are not synchronized.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Hash algorithms rejected in data signatures: collisions are practical for MD5 and SHA-1, and
/// RIPEMD-160 has the same 160-bit digest size as SHA-1.
const WEAK_HASHES: [HashAlgorithm; 3] = [
    HashAlgorithm::Md5,
    HashAlgorithm::Sha1,
    HashAlgorithm::Ripemd160,
];

/// The verification time and the tolerance for signatures from the future.
///
/// Keys are checked at the verification time, as apt does: a key that has expired or been
/// revoked since it signed makes the signature invalid. A key must also have been valid when
/// it signed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifyOptions {
    pub now: SystemTime,
    pub max_clock_skew: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self::at(SystemTime::now())
    }
}

impl VerifyOptions {
    /// Returns options that verify at `now` with [`DEFAULT_MAX_CLOCK_SKEW`].
    pub fn at(now: SystemTime) -> Self {
        Self {
            now,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
        }
    }
}

/// A document with a valid signature by a configured key.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Verified {
    /// The bytes the signature covers. For a clear-signed document this is the text after
    /// undoing dash-escaping, with trailing spaces and tabs removed from every line and LF line
    /// endings. The line break before the signature block is part of the framing, so the text
    /// has no final line break unless the signed document ended with an empty line.
    pub signed_data: Vec<u8>,
    /// The primary key of the signer.
    pub primary: KeyIdentity,
    /// The subkey that made the signature, or `None` when the primary key made it.
    pub subkey: Option<KeyIdentity>,
    /// The source of the key, as given when it was loaded.
    pub key_label: String,
    pub created: SystemTime,
    /// The name of the signature's hash algorithm, such as `SHA512`.
    pub hash_algorithm: String,
}

impl Verified {
    /// Returns the signed data as text, or `None` when it is not valid UTF-8.
    pub fn signed_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.signed_data).ok()
    }

    /// Returns the key that made the signature: the subkey if one did, else the primary key.
    pub fn signing_key(&self) -> &KeyIdentity {
        self.subkey.as_ref().unwrap_or(&self.primary)
    }
}

/// Verifies a document in the OpenPGP cleartext signature framework, such as Debian's
/// `InRelease`, at the current time.
pub fn verify_cleartext(inrelease: &[u8], keyring: &Keyring) -> Result<Verified, SignatureError> {
    verify_cleartext_with(inrelease, keyring, &VerifyOptions::default())
}

/// Verifies a clear-signed document with explicit options.
pub fn verify_cleartext_with(
    inrelease: &[u8],
    keyring: &Keyring,
    options: &VerifyOptions,
) -> Result<Verified, SignatureError> {
    let (message, _headers) =
        CleartextSignedMessage::from_armor(inrelease).map_err(|error| invalid_data(&error))?;
    let signed_text = message.signed_text();
    let accepted = verify_any(
        message.signatures(),
        signed_text.as_bytes(),
        keyring,
        options,
    )?;
    // The signed text uses CRLF line breaks because the signature hashes that form. Every
    // CR in it belongs to a CRLF pair, so replacing the pairs returns the LF form.
    let body = signed_text.replace("\r\n", "\n");
    Ok(accepted.into_verified(body.into_bytes()))
}

/// Verifies `data`, such as Debian's `Release`, against a detached signature such as
/// `Release.gpg`, at the current time. The signature is armored or binary and may hold
/// several signature packets.
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    keyring: &Keyring,
) -> Result<Verified, SignatureError> {
    verify_detached_with(data, signature, keyring, &VerifyOptions::default())
}

/// Verifies a detached signature with explicit options.
pub fn verify_detached_with(
    data: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    options: &VerifyOptions,
) -> Result<Verified, SignatureError> {
    let signatures = parse_detached(signature)?;
    let accepted = verify_any(&signatures, data, keyring, options)?;
    Ok(accepted.into_verified(data.to_vec()))
}

fn parse_detached(signature: &[u8]) -> Result<Vec<Signature>, SignatureError> {
    if signature.iter().all(u8::is_ascii_whitespace) {
        return Err(SignatureError::NoSignature);
    }
    let (parsed, _headers) =
        DetachedSignature::from_reader_many(signature).map_err(|error| invalid_data(&error))?;
    parsed
        .map(|detached| {
            detached
                .map(|detached| detached.signature)
                .map_err(|error| invalid_data(&error))
        })
        .collect()
}

/// A signature that passed every check, before the signed data is attached.
struct Accepted {
    signer: SignerKey,
    created: SystemTime,
    hash: HashAlgorithm,
}

impl Accepted {
    fn into_verified(self, signed_data: Vec<u8>) -> Verified {
        Verified {
            signed_data,
            primary: self.signer.primary,
            subkey: self.signer.subkey,
            key_label: self.signer.label,
            created: self.created,
            hash_algorithm: self.hash.to_string(),
        }
    }
}

/// A key of the keyring that a signature names as its issuer.
struct Candidate<'a> {
    loaded: &'a LoadedKey,
    subkey: Option<&'a SignedPublicSubKey>,
}

impl Candidate<'_> {
    fn signer_key(&self) -> SignerKey {
        SignerKey {
            primary: key_identity(&self.loaded.key),
            subkey: self.subkey.map(key_identity),
            label: self.loaded.label.clone(),
        }
    }
}

/// Accepts the first signature that is valid and made by a configured key.
///
/// Signatures by keys outside the keyring are skipped. When no signature is accepted, the
/// error is that of the first signature by a configured key, or [`SignatureError::UnknownSigner`].
fn verify_any(
    signatures: &[Signature],
    data: &[u8],
    keyring: &Keyring,
    options: &VerifyOptions,
) -> Result<Accepted, SignatureError> {
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let mut first_failure = None;
    let mut unknown_issuers = Vec::new();
    for signature in signatures {
        let candidates = find_candidates(keyring, signature);
        if candidates.is_empty() {
            let issuer = issuer_name(signature);
            tracing::debug!(%issuer, "skipped a signature by a key that is not configured");
            unknown_issuers.push(issuer);
            continue;
        }
        for candidate in candidates {
            match check_signature(signature, &candidate, data, options) {
                Ok(accepted) => {
                    tracing::debug!(
                        key = %accepted.signer,
                        hash = %accepted.hash,
                        "accepted a signature"
                    );
                    return Ok(accepted);
                }
                Err(error) => {
                    tracing::debug!(%error, "rejected a signature");
                    first_failure.get_or_insert(error);
                }
            }
        }
    }
    Err(
        first_failure.unwrap_or_else(|| SignatureError::UnknownSigner {
            issuers: unknown_issuers,
            configured: configured_keys(keyring),
        }),
    )
}

/// Returns the primary keys and subkeys that match the signature's issuer fingerprints, or
/// its issuer key IDs when it names no fingerprint.
fn find_candidates<'a>(keyring: &'a Keyring, signature: &Signature) -> Vec<Candidate<'a>> {
    let fingerprints = signature.issuer_fingerprint();
    let key_ids = signature.issuer_key_id();
    let matches = |key: &dyn KeyDetails| {
        if fingerprints.is_empty() {
            key_ids.contains(&&key.legacy_key_id())
        } else {
            fingerprints.contains(&&key.fingerprint())
        }
    };
    let mut candidates = Vec::new();
    for loaded in keyring.loaded() {
        if matches(&loaded.key.primary_key) {
            candidates.push(Candidate {
                loaded,
                subkey: None,
            });
        }
        for subkey in &loaded.key.public_subkeys {
            if matches(&subkey.key) {
                candidates.push(Candidate {
                    loaded,
                    subkey: Some(subkey),
                });
            }
        }
    }
    candidates
}

/// Returns the reason of a failed verification for a message. The OpenPGP library reports a
/// hash that differs from the signature's hash prefix as a failed internal assertion with both
/// byte pairs, which means nothing to a reader. Other reasons keep their first line.
fn mismatch_reason(library_text: &str) -> String {
    if library_text.contains("assertion failed") {
        return "the hash of the data differs from the hash the signature covers".to_owned();
    }
    library_text.lines().next().unwrap_or_default().to_owned()
}

/// Runs every check on one signature by one candidate key.
fn check_signature(
    signature: &Signature,
    candidate: &Candidate<'_>,
    data: &[u8],
    options: &VerifyOptions,
) -> Result<Accepted, SignatureError> {
    let signer = candidate.signer_key();
    check_type(signature, &signer)?;
    let hash = check_hash(signature, &signer)?;
    let created = signature.created().map(system_time).ok_or_else(|| {
        SignatureError::MissingCreationTime {
            key: Box::new(signer.clone()),
        }
    })?;
    let verified = match candidate.subkey {
        Some(subkey) => signature.verify(&subkey.key, data),
        None => signature.verify(&candidate.loaded.key.primary_key, data),
    };
    verified.map_err(|error| SignatureError::BadSignature {
        key: Box::new(signer.clone()),
        message: mismatch_reason(&error.to_string()),
    })?;
    check_signature_time(signature, created, &signer, options)?;
    let times = CheckTimes {
        signed: created,
        now: options.now,
        latest: options.now + options.max_clock_skew,
    };
    match candidate.subkey {
        Some(subkey) => validity::check_subkey(&candidate.loaded.key, subkey, &signer, times)?,
        None => validity::check_primary(&candidate.loaded.key, &signer, times)?,
    }
    Ok(Accepted {
        signer,
        created,
        hash,
    })
}

fn check_type(signature: &Signature, signer: &SignerKey) -> Result<(), SignatureError> {
    match signature.typ() {
        Some(SignatureType::Binary | SignatureType::Text) => Ok(()),
        other => Err(SignatureError::UnsupportedSignatureType {
            key: Box::new(signer.clone()),
            signature_type: other.map_or_else(|| "unknown".to_owned(), |typ| format!("{typ:?}")),
        }),
    }
}

fn check_hash(signature: &Signature, signer: &SignerKey) -> Result<HashAlgorithm, SignatureError> {
    let hash = signature.hash_alg().unwrap_or(HashAlgorithm::None);
    if WEAK_HASHES.contains(&hash) {
        return Err(SignatureError::WeakHash {
            key: Box::new(signer.clone()),
            hash: hash.to_string(),
        });
    }
    Ok(hash)
}

/// Rejects a signature from the future beyond the clock skew, or one that has expired.
fn check_signature_time(
    signature: &Signature,
    created: SystemTime,
    signer: &SignerKey,
    options: &VerifyOptions,
) -> Result<(), SignatureError> {
    if created > options.now + options.max_clock_skew {
        return Err(SignatureError::SignatureInFuture {
            key: Box::new(signer.clone()),
            created,
            now: options.now,
        });
    }
    let lifetime = signature
        .signature_expiration_time()
        .map_or(0, pgp::types::Duration::as_secs);
    if lifetime > 0 {
        let expired = add_seconds(created, lifetime);
        if expired <= options.now {
            return Err(SignatureError::SignatureExpired {
                key: Box::new(signer.clone()),
                expired,
            });
        }
    }
    Ok(())
}

/// Names a signature's issuer by fingerprint and key ID, as far as the signature gives them.
fn issuer_name(signature: &Signature) -> String {
    let key_id = signature
        .issuer_key_id()
        .first()
        .map(|key_id| key_id.to_string().to_uppercase());
    let fingerprint = signature
        .issuer_fingerprint()
        .first()
        .map(|fingerprint| format!("{fingerprint:X}"));
    match (fingerprint, key_id) {
        (Some(fingerprint), Some(key_id)) => format!("{fingerprint} (key ID {key_id})"),
        (Some(fingerprint), None) => fingerprint,
        (None, Some(key_id)) => format!("key ID {key_id}"),
        (None, None) => "a key that the signature does not name".to_owned(),
    }
}

/// Lists the configured primary keys with their subkey IDs and sources, for messages.
fn configured_keys(keyring: &Keyring) -> Vec<String> {
    keyring
        .keys()
        .into_iter()
        .map(|info| {
            let subkeys: Vec<_> = info
                .subkeys
                .iter()
                .map(|subkey| subkey.key_id.as_str())
                .collect();
            if subkeys.is_empty() {
                format!("{} from {}", info.primary.fingerprint, info.label)
            } else {
                format!(
                    "{} with subkeys {} from {}",
                    info.primary.fingerprint,
                    subkeys.join(", "),
                    info.label
                )
            }
        })
        .collect()
}

fn invalid_data(error: &pgp::errors::Error) -> SignatureError {
    SignatureError::InvalidSignatureData {
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_reason_hides_library_assertions() {
        let library = "assertion failed: `(left == right)`\n  left: `[161, 157]`,\n right: \
                       `[170, 105]`: signature: invalid signed hash value";
        assert_eq!(
            mismatch_reason(library),
            "the hash of the data differs from the hash the signature covers"
        );
        assert_eq!(
            mismatch_reason("invalid signature\nmore"),
            "invalid signature"
        );
    }
}
