//! Repository signing keys and OpenPGP verification of repository metadata.
//!
//! A [`Keyring`] loads public keys from files, `file://` and `http(s)://` references (the
//! caller fetches URLs) and embedded bytes, armored or binary, one or several keys per source.
//! [`verify_cleartext`] checks a clear-signed document such as Debian's `InRelease` and returns
//! the signed text, which is the only part to parse. [`verify_detached`] checks data against a
//! detached signature such as `Release` with `Release.gpg`. Nothing here is specific to Debian,
//! so RPM's `repomd.xml.asc` uses [`verify_detached`] too.
//!
//! A document is valid when at least one of its signatures is valid and made by a configured
//! key. Signatures by other keys are ignored. A signature is rejected when it uses MD5, SHA-1 or
//! RIPEMD-160, or when it was made more than [`DEFAULT_MAX_CLOCK_SKEW`] in the future. It is also
//! rejected when its key or subkey is revoked, is expired at the verification time, was expired
//! when it signed, or lacks a valid binding for signing.

mod error;
mod keyring;
mod time;
mod validity;
mod verify;

pub use error::{KeyIdentity, SignatureError, SignerKey};
pub use keyring::{KeyInfo, KeySource, Keyring};
pub use verify::{
    verify_cleartext, verify_cleartext_with, verify_detached, verify_detached_with, Verified,
    VerifyOptions, DEFAULT_MAX_CLOCK_SKEW,
};
