//! The error type of key loading and signature verification.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::time::format_time;

/// The fingerprint and key ID of one OpenPGP key or subkey, in uppercase hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyIdentity {
    pub fingerprint: String,
    /// The last 16 hex digits of a v4 fingerprint, as `gpg --keyid-format long` prints it.
    pub key_id: String,
}

impl fmt::Display for KeyIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.fingerprint)
    }
}

/// The key that made a signature, as named in errors: the primary key, the signing subkey if
/// a subkey made the signature, and where the key was loaded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerKey {
    pub primary: KeyIdentity,
    pub subkey: Option<KeyIdentity>,
    /// The source of the key: a path, a URL or the name of an embedded key.
    pub label: String,
}

impl fmt::Display for SignerKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subkey {
            Some(subkey) => write!(
                formatter,
                "subkey {} of key {} (from {})",
                subkey.fingerprint, self.primary.fingerprint, self.label
            ),
            None => write!(
                formatter,
                "key {} (from {})",
                self.primary.fingerprint, self.label
            ),
        }
    }
}

/// A failure to load a key or to verify a signed document.
///
/// When a document carries several signatures and none is valid, the error describes the first
/// signature that was made by a configured key, or [`SignatureError::UnknownSigner`] when no
/// signature was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("cannot read the key file {}: {source}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot fetch the key {url}: {source}")]
    FetchKey {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error(
        "invalid OpenPGP key data in {label}: {message}. The file must contain OpenPGP public \
         keys, armored (gpg --armor --export) or binary (gpg --export)"
    )]
    InvalidKeyData { label: String, message: String },

    #[error(
        "{label} contains a secret key. Configure only the public key, exported with \
         gpg --export"
    )]
    SecretKey { label: String },

    #[error("{label} contains no OpenPGP public key. Check that the file is a key file")]
    NoKeyFound { label: String },

    #[error("invalid OpenPGP signature data: {message}")]
    InvalidSignatureData { message: String },

    #[error("the document carries no OpenPGP signature")]
    NoSignature,

    #[error(
        "no signature is by a configured key: the document is signed by {}, and none of them \
         is in the configured keys ({}). Add the repository's public key to the configuration",
        issuers.join(", "),
        if configured.is_empty() { "none".to_owned() } else { configured.join("; ") }
    )]
    UnknownSigner {
        /// The issuer fingerprints, or key IDs when a signature names no fingerprint.
        issuers: Vec<String>,
        /// The configured primary keys, each with its subkey IDs and source.
        configured: Vec<String>,
    },

    #[error(
        "the signature by {key} uses the hash algorithm {hash}, which is rejected because it \
         is broken. The repository must be signed again with SHA-256 or stronger"
    )]
    WeakHash { key: Box<SignerKey>, hash: String },

    #[error(
        "the signature by {key} has type {signature_type}, but repository metadata needs a \
         binary or text signature"
    )]
    UnsupportedSignatureType {
        key: Box<SignerKey>,
        signature_type: String,
    },

    #[error(
        "the signature by {key} does not match the signed data ({message}). The file was \
         modified or damaged in transfer, so fetch it again or check the mirror"
    )]
    BadSignature {
        key: Box<SignerKey>,
        message: String,
    },

    #[error("the signature by {key} has no creation time, so it cannot be checked for expiry")]
    MissingCreationTime { key: Box<SignerKey> },

    #[error(
        "the signature by {key} was made at {}, in the future of the verification time {}. \
         Check the system clock",
        format_time(*created), format_time(*now)
    )]
    SignatureInFuture {
        key: Box<SignerKey>,
        created: SystemTime,
        now: SystemTime,
    },

    #[error(
        "the signature by {key} expired at {}. The repository must be signed again",
        format_time(*expired)
    )]
    SignatureExpired {
        key: Box<SignerKey>,
        expired: SystemTime,
    },

    #[error(
        "the signature by {key} was made at {}, before the key was created at {}, so the \
         signature or the key is invalid",
        format_time(*created), format_time(*key_created)
    )]
    SignatureBeforeKey {
        key: Box<SignerKey>,
        created: SystemTime,
        key_created: SystemTime,
    },

    #[error(
        "{key} expired at {}. Install the publisher's current key (for Debian, an up to date \
         debian-archive-keyring) or ask the publisher to extend the key",
        format_time(*expired)
    )]
    KeyExpired {
        key: Box<SignerKey>,
        expired: SystemTime,
    },

    #[error(
        "{key} is revoked ({reason}). Its owner no longer vouches for it, so remove it from \
         the configuration and install the publisher's replacement key"
    )]
    KeyRevoked { key: Box<SignerKey>, reason: String },

    #[error("{key} cannot make signatures: {reason}. Configure the publisher's signing key")]
    KeyNotForSigning { key: Box<SignerKey>, reason: String },
}
