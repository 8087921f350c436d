//! Whether a key or subkey may have made a data signature: revocation, expiry, binding and
//! signing capability, evaluated from the self-signatures in the keyring.
//!
//! Only self-signatures count. Revocations issued by a designated revoker (a third-party key)
//! are not evaluated.

use std::time::SystemTime;

use pgp::composed::{SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType, SubpacketData};
use pgp::types::{KeyDetails, Tag};

use crate::error::{SignatureError, SignerKey};
use crate::time::{add_seconds, format_time, system_time};

/// The times a validity check compares against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CheckTimes {
    /// The creation time of the data signature.
    pub(crate) signed: SystemTime,
    /// The verification time.
    pub(crate) now: SystemTime,
    /// The latest creation time accepted for a self-signature: `now` plus the clock skew.
    pub(crate) latest: SystemTime,
}

/// Checks that the primary key of `key` may have made a data signature at `times.signed`.
pub(crate) fn check_primary(
    key: &SignedPublicKey,
    signer: &SignerKey,
    times: CheckTimes,
) -> Result<(), SignatureError> {
    let self_signature = check_primary_state(key, signer, times)?;
    check_created_before(system_time(key.primary_key.created_at()), signer, times)?;
    if has_key_flags(self_signature) && !self_signature.key_flags().sign() {
        return Err(not_for_signing(
            signer,
            "the key flags of the primary key do not allow signing",
        ));
    }
    Ok(())
}

/// Checks that `subkey` of `key` may have made a data signature at `times.signed`.
///
/// The primary key must be valid too: it must not be revoked or expired.
pub(crate) fn check_subkey(
    key: &SignedPublicKey,
    subkey: &SignedPublicSubKey,
    signer: &SignerKey,
    times: CheckTimes,
) -> Result<(), SignatureError> {
    check_primary_state(key, signer, times)?;
    if let Some(revocation) = subkey_revocation(key, subkey) {
        return Err(revoked(signer, revocation));
    }
    let binding = newest_subkey_binding(key, subkey, times)
        .ok_or_else(|| not_for_signing(signer, "the subkey has no valid binding signature"))?;
    if !binding.key_flags().sign() {
        return Err(not_for_signing(
            signer,
            "the key flags of the subkey do not allow signing",
        ));
    }
    check_back_signature(key, subkey, binding, signer)?;
    let created = system_time(subkey.key.created_at());
    check_created_before(created, signer, times)?;
    check_expiry(created, binding.key_expiration_time(), None, signer, times)
}

/// Checks that the primary key is neither revoked nor expired and returns its newest valid
/// self-signature. Errors name the primary key even when a subkey made the signature.
fn check_primary_state<'a>(
    key: &'a SignedPublicKey,
    signer: &SignerKey,
    times: CheckTimes,
) -> Result<&'a Signature, SignatureError> {
    let primary_signer = SignerKey {
        subkey: None,
        ..signer.clone()
    };
    if let Some(revocation) = key_revocation(key) {
        return Err(revoked(&primary_signer, revocation));
    }
    let self_signature = newest_self_signature(key, times)
        .ok_or_else(|| not_for_signing(&primary_signer, "the key has no valid self-signature"))?;
    check_expiry(
        system_time(key.primary_key.created_at()),
        self_signature.key_expiration_time(),
        key.primary_key.legacy_v3_expiration_days(),
        &primary_signer,
        times,
    )?;
    Ok(self_signature)
}

/// Rejects a data signature made before the key that made it.
fn check_created_before(
    key_created: SystemTime,
    signer: &SignerKey,
    times: CheckTimes,
) -> Result<(), SignatureError> {
    if times.signed < key_created {
        return Err(SignatureError::SignatureBeforeKey {
            key: Box::new(signer.clone()),
            created: times.signed,
            key_created,
        });
    }
    Ok(())
}

/// Rejects a key that is expired at the verification time or was expired when it signed.
///
/// `expiration` counts from `created`. Zero or absent means that the key does not expire.
fn check_expiry(
    created: SystemTime,
    expiration: Option<pgp::types::Duration>,
    legacy_days: Option<u16>,
    signer: &SignerKey,
    times: CheckTimes,
) -> Result<(), SignatureError> {
    let seconds = match (expiration, legacy_days) {
        (Some(duration), _) if duration.as_secs() > 0 => duration.as_secs(),
        (_, Some(days)) if days > 0 => u32::from(days) * 86_400,
        _ => return Ok(()),
    };
    let expired = add_seconds(created, seconds);
    if expired <= times.now || expired <= times.signed {
        return Err(SignatureError::KeyExpired {
            key: Box::new(signer.clone()),
            expired,
        });
    }
    Ok(())
}

/// Returns a valid revocation signature of the primary key, if there is one.
fn key_revocation(key: &SignedPublicKey) -> Option<&Signature> {
    key.details.revocation_signatures.iter().find(|signature| {
        signature.typ() == Some(SignatureType::KeyRevocation)
            && signature.verify_key(&key.primary_key).is_ok()
    })
}

/// Returns a valid revocation signature of `subkey`, if there is one.
fn subkey_revocation<'a>(
    key: &SignedPublicKey,
    subkey: &'a SignedPublicSubKey,
) -> Option<&'a Signature> {
    subkey.signatures.iter().find(|signature| {
        signature.typ() == Some(SignatureType::SubkeyRevocation)
            && signature
                .verify_subkey_binding(&key.primary_key, &subkey.key)
                .is_ok()
    })
}

/// Returns the newest valid certification of a user ID or direct key signature by the
/// primary key itself. Its key expiration time and key flags apply to the primary key.
///
/// NOTE: self-signatures with SHA-1 are accepted, because the hash rule applies only to data
/// signatures, and signature expiration times of self-signatures are not checked.
fn newest_self_signature(key: &SignedPublicKey, times: CheckTimes) -> Option<&Signature> {
    let certifications = key.details.users.iter().flat_map(|user| {
        user.signatures.iter().filter(move |signature| {
            signature.is_certification()
                && signature.typ() != Some(SignatureType::CertRevocation)
                && signature
                    .verify_certification(&key.primary_key, Tag::UserId, &user.id)
                    .is_ok()
        })
    });
    let direct = key.details.direct_signatures.iter().filter(|signature| {
        signature.typ() == Some(SignatureType::Key)
            && signature.verify_key(&key.primary_key).is_ok()
    });
    newest(certifications.chain(direct), times)
}

/// Returns the newest valid binding signature of `subkey`.
fn newest_subkey_binding<'a>(
    key: &SignedPublicKey,
    subkey: &'a SignedPublicSubKey,
    times: CheckTimes,
) -> Option<&'a Signature> {
    let bindings = subkey.signatures.iter().filter(|signature| {
        signature.typ() == Some(SignatureType::SubkeyBinding)
            && signature
                .verify_subkey_binding(&key.primary_key, &subkey.key)
                .is_ok()
    });
    newest(bindings, times)
}

/// Returns the signature with the latest creation time that is not in the future.
fn newest<'a>(
    signatures: impl Iterator<Item = &'a Signature>,
    times: CheckTimes,
) -> Option<&'a Signature> {
    signatures
        .filter_map(|signature| Some((system_time(signature.created()?), signature)))
        .filter(|(created, _)| *created <= times.latest)
        .max_by_key(|(created, _)| *created)
        .map(|(_, signature)| signature)
}

/// Checks the primary key binding signature that a signing subkey embeds in its binding. It
/// proves that the subkey's owner agreed, so a primary key cannot adopt another key's subkey.
fn check_back_signature(
    key: &SignedPublicKey,
    subkey: &SignedPublicSubKey,
    binding: &Signature,
    signer: &SignerKey,
) -> Result<(), SignatureError> {
    let Some(back_signature) = binding.embedded_signature() else {
        return Err(not_for_signing(
            signer,
            "the subkey binding has no primary key binding (back) signature",
        ));
    };
    back_signature
        .verify_primary_key_binding(&subkey.key, &key.primary_key)
        .map_err(|error| {
            not_for_signing(
                signer,
                &format!("the primary key binding (back) signature is invalid: {error}"),
            )
        })
}

fn has_key_flags(signature: &Signature) -> bool {
    signature.config().is_some_and(|config| {
        config
            .hashed_subpackets()
            .any(|subpacket| matches!(subpacket.data, SubpacketData::KeyFlags(_)))
    })
}

fn revoked(signer: &SignerKey, revocation: &Signature) -> SignatureError {
    SignatureError::KeyRevoked {
        key: Box::new(signer.clone()),
        reason: revocation_reason(revocation),
    }
}

/// Describes a revocation: its reason code, the text its issuer gave and its date.
fn revocation_reason(revocation: &Signature) -> String {
    let code = revocation
        .revocation_reason_code()
        .map_or_else(|| "no reason code".to_owned(), |code| format!("{code:?}"));
    let text = revocation
        .revocation_reason_string()
        .map(|text| String::from_utf8_lossy(text).trim().to_owned())
        .filter(|text| !text.is_empty());
    let date = revocation
        .created()
        .map(|created| format!(", revoked at {}", format_time(system_time(created))))
        .unwrap_or_default();
    match text {
        Some(text) => format!("{code}: {text}{date}"),
        None => format!("{code}{date}"),
    }
}

fn not_for_signing(signer: &SignerKey, reason: &str) -> SignatureError {
    SignatureError::KeyNotForSigning {
        key: Box::new(signer.clone()),
        reason: reason.to_owned(),
    }
}
