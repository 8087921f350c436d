//! Loading repository signing keys from files, URLs and embedded bytes.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;

use crate::error::{KeyIdentity, SignatureError};

const PUBLIC_KEY_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const PUBLIC_KEY_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";
const SECRET_KEY_BEGIN: &str = "-----BEGIN PGP PRIVATE KEY BLOCK-----";

/// The source of a key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A local file, given as a path or a `file://` URL.
    File(PathBuf),
    /// An `http://` or `https://` URL, fetched by the caller's fetch function.
    Url(String),
    /// Key bytes compiled into the program, with a name for messages.
    Embedded {
        name: String,
        bytes: Cow<'static, [u8]>,
    },
}

impl KeySource {
    /// Parses a key reference: an `http://` or `https://` URL, a `file://` URL, or a path.
    pub fn parse(reference: &str) -> Self {
        if let Some(path) = reference.strip_prefix("file://") {
            Self::File(PathBuf::from(path))
        } else if reference.starts_with("http://") || reference.starts_with("https://") {
            Self::Url(reference.to_owned())
        } else {
            Self::File(PathBuf::from(reference))
        }
    }

    /// Returns the text that names this source in messages.
    pub fn label(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(url) => url.clone(),
            Self::Embedded { name, .. } => format!("embedded:{name}"),
        }
    }
}

/// A public key of the keyring and the source it was loaded from.
#[derive(Clone, Debug)]
pub(crate) struct LoadedKey {
    pub(crate) key: SignedPublicKey,
    pub(crate) label: String,
}

/// A description of one configured key, for listings and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub primary: KeyIdentity,
    pub subkeys: Vec<KeyIdentity>,
    pub label: String,
}

/// The public keys that repository metadata may be signed with.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: Vec<LoadedKey>,
}

impl Keyring {
    /// Creates an empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a keyring from the keys in `bytes`; see [`Keyring::add_bytes`].
    pub fn from_bytes(bytes: &[u8], label: &str) -> Result<Self, SignatureError> {
        let mut keyring = Self::new();
        keyring.add_bytes(bytes, label)?;
        Ok(keyring)
    }

    /// Adds every public key in `bytes` and returns how many it added.
    ///
    /// `bytes` is binary (one or several concatenated keys, as in
    /// `/usr/share/keyrings/debian-archive-keyring.gpg`) or armored (one or several
    /// `PUBLIC KEY BLOCK`s, with any text between them). `label` names the source in messages.
    /// Nothing is added when any key fails to parse.
    pub fn add_bytes(&mut self, bytes: &[u8], label: &str) -> Result<usize, SignatureError> {
        let keys = parse_keys(bytes, label)?;
        if keys.is_empty() {
            return Err(SignatureError::NoKeyFound {
                label: label.to_owned(),
            });
        }
        let count = keys.len();
        for key in keys {
            tracing::debug!(
                fingerprint = %key_identity(&key).fingerprint,
                label,
                "loaded a public key"
            );
            self.keys.push(LoadedKey {
                key,
                label: label.to_owned(),
            });
        }
        Ok(count)
    }

    /// Adds the keys of a file, labeled with its path.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, SignatureError> {
        let bytes = std::fs::read(path).map_err(|source| SignatureError::ReadKey {
            path: path.to_owned(),
            source,
        })?;
        self.add_bytes(&bytes, &path.display().to_string())
    }

    /// Adds the keys of `source`. `fetch` is called with the URL only for [`KeySource::Url`]
    /// and returns the body of the response, so this crate needs no HTTP client.
    pub fn add_source<F, E>(
        &mut self,
        source: &KeySource,
        fetch: F,
    ) -> Result<usize, SignatureError>
    where
        F: FnOnce(&str) -> Result<Vec<u8>, E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match source {
            KeySource::File(path) => self.add_file(path),
            KeySource::Url(url) => {
                let bytes = fetch(url).map_err(|error| SignatureError::FetchKey {
                    url: url.clone(),
                    source: error.into(),
                })?;
                self.add_bytes(&bytes, url)
            }
            KeySource::Embedded { bytes, .. } => self.add_bytes(bytes, &source.label()),
        }
    }

    /// Returns the number of primary keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Returns true when the keyring has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Describes the configured keys in the order they were added.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .map(|loaded| KeyInfo {
                primary: key_identity(&loaded.key),
                subkeys: loaded.key.public_subkeys.iter().map(key_identity).collect(),
                label: loaded.label.clone(),
            })
            .collect()
    }

    /// Returns every primary key with its subkeys and signatures as an ASCII-armored public
    /// key block, in the order the keys were added, for tools such as `rpm --import`.
    pub fn armored_keys(&self) -> Result<Vec<String>, SignatureError> {
        self.keys
            .iter()
            .map(|loaded| {
                loaded
                    .key
                    .to_armored_string(pgp::composed::ArmorOptions::default())
                    .map_err(|error| SignatureError::InvalidKeyData {
                        label: loaded.label.clone(),
                        message: format!("failed to armor the key: {error}"),
                    })
            })
            .collect()
    }

    pub(crate) fn loaded(&self) -> &[LoadedKey] {
        &self.keys
    }
}

/// Returns the fingerprint and key ID of a key or subkey in uppercase hex.
pub(crate) fn key_identity(key: &impl KeyDetails) -> KeyIdentity {
    KeyIdentity {
        fingerprint: format!("{:X}", key.fingerprint()),
        key_id: key.legacy_key_id().to_string().to_uppercase(),
    }
}

fn parse_keys(bytes: &[u8], label: &str) -> Result<Vec<SignedPublicKey>, SignatureError> {
    // Armored data starts with ASCII text. Binary OpenPGP data starts with a packet tag, which
    // always has its high bit set.
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    match first {
        None => Ok(Vec::new()),
        Some(byte) if byte & 0x80 != 0 => parse_binary(bytes, label),
        Some(_) => parse_armored(bytes, label),
    }
}

fn parse_binary(bytes: &[u8], label: &str) -> Result<Vec<SignedPublicKey>, SignatureError> {
    let keys = SignedPublicKey::from_bytes_many(bytes).map_err(|error| invalid(label, &error))?;
    keys.map(|key| key.map_err(|error| invalid(label, &error)))
        .collect()
}

fn parse_armored(bytes: &[u8], label: &str) -> Result<Vec<SignedPublicKey>, SignatureError> {
    let text = std::str::from_utf8(bytes).map_err(|error| SignatureError::InvalidKeyData {
        label: label.to_owned(),
        message: format!("the armored text is not valid UTF-8: {error}"),
    })?;
    if text.contains(SECRET_KEY_BEGIN) {
        return Err(SignatureError::SecretKey {
            label: label.to_owned(),
        });
    }
    let mut keys = Vec::new();
    for block in armored_blocks(text, label)? {
        let (parsed, _headers) = SignedPublicKey::from_armor_many(block.as_bytes())
            .map_err(|error| invalid(label, &error))?;
        for key in parsed {
            keys.push(key.map_err(|error| invalid(label, &error))?);
        }
    }
    Ok(keys)
}

/// Splits armored text into its public key blocks and ignores the text between them.
fn armored_blocks<'a>(text: &'a str, label: &str) -> Result<Vec<&'a str>, SignatureError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(PUBLIC_KEY_BEGIN) {
        let from_start = &rest[start..];
        let Some(end) = from_start.find(PUBLIC_KEY_END) else {
            return Err(SignatureError::InvalidKeyData {
                label: label.to_owned(),
                message: format!("a key block has no {PUBLIC_KEY_END} line"),
            });
        };
        let block_len = end + PUBLIC_KEY_END.len();
        blocks.push(&from_start[..block_len]);
        rest = &from_start[block_len..];
    }
    Ok(blocks)
}

fn invalid(label: &str, error: &pgp::errors::Error) -> SignatureError {
    SignatureError::InvalidKeyData {
        label: label.to_owned(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_source_kinds() {
        assert_eq!(
            KeySource::parse("file:///etc/keys/a.gpg"),
            KeySource::File(PathBuf::from("/etc/keys/a.gpg"))
        );
        assert_eq!(
            KeySource::parse("https://example.org/key.asc"),
            KeySource::Url("https://example.org/key.asc".to_owned())
        );
        assert_eq!(
            KeySource::parse("keys/a.gpg"),
            KeySource::File(PathBuf::from("keys/a.gpg"))
        );
    }

    #[test]
    fn empty_bytes_have_no_key() {
        let error = Keyring::from_bytes(b"  \n", "empty.asc").unwrap_err();
        assert!(
            matches!(error, SignatureError::NoKeyFound { .. }),
            "{error}"
        );
    }

    #[test]
    fn unterminated_block_is_invalid() {
        let text = format!("{PUBLIC_KEY_BEGIN}\n\nabc\n");
        let error = Keyring::from_bytes(text.as_bytes(), "cut.asc").unwrap_err();
        assert!(error.to_string().contains("cut.asc"), "{error}");
        assert!(
            matches!(error, SignatureError::InvalidKeyData { .. }),
            "{error}"
        );
    }

    #[test]
    fn secret_key_block_rejected() {
        let text = format!("{SECRET_KEY_BEGIN}\n\nabc\n-----END PGP PRIVATE KEY BLOCK-----\n");
        let error = Keyring::from_bytes(text.as_bytes(), "secret.asc").unwrap_err();
        assert!(matches!(error, SignatureError::SecretKey { .. }), "{error}");
    }
}
