//! A binary package as a `Packages` index describes it.

use std::fmt;

use crate::relation::{Alternatives, Name, Relation};
use crate::version::Version;

/// The `Multi-Arch` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// A SHA-256 digest. An index gives it as 64 hexadecimal digits. It is kept as its 32 bytes,
/// because a parsed index contains one per package.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hexadecimal digits in either case. Returns `None` for any other text.
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut bytes = [0_u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
        }
        Some(Self(bytes))
    }

    /// Returns the digest as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A binary package stanza of a `Packages` index. Only the fields that the solver and the later
/// stages read are kept: `Description`, `Suggests`, `Enhances`, `Maintainer` and the other fields
/// are skipped when the index is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: Version,
    /// The architecture, `all` or a Debian architecture name. The parser shares one copy of each
    /// value, as it does for `priority`, `section` and `source`.
    pub architecture: Name,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Option<Name>,
    pub section: Option<Name>,
    /// The source package name, without the version some stanzas give in parentheses.
    pub source: Option<Name>,
    pub depends: Vec<Alternatives>,
    pub pre_depends: Vec<Alternatives>,
    pub recommends: Vec<Alternatives>,
    pub conflicts: Vec<Relation>,
    pub breaks: Vec<Relation>,
    pub provides: Vec<Relation>,
    pub replaces: Vec<Relation>,
    /// The pool path relative to the repository root.
    pub filename: String,
    pub size: u64,
    /// The digest of the file. [`Package::new`] sets all zeros.
    pub sha256: Sha256Digest,
    /// In KiB, as the index gives it.
    pub installed_size: Option<u64>,
}

impl Package {
    /// Creates a package with no relations and no file, for tests and synthetic indexes.
    pub fn new(name: &str, version: Version, architecture: &str) -> Self {
        Self::with_architecture(name, version, Name::new(architecture))
    }

    pub(crate) fn with_architecture(name: &str, version: Version, architecture: Name) -> Self {
        Self {
            name: name.to_owned(),
            version,
            architecture,
            multi_arch: MultiArch::No,
            essential: false,
            priority: None,
            section: None,
            source: None,
            depends: Vec::new(),
            pre_depends: Vec::new(),
            recommends: Vec::new(),
            conflicts: Vec::new(),
            breaks: Vec::new(),
            provides: Vec::new(),
            replaces: Vec::new(),
            filename: String::new(),
            size: 0,
            sha256: Sha256Digest::default(),
            installed_size: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "3a2118df47bf3f04285649f0455c2fc6fe2dc7f0b237073038aa00af41f0d5f2";

    #[test]
    fn digest_hex_round_trips() {
        let digest = Sha256Digest::from_hex(SHA).unwrap();
        assert_eq!(digest.as_bytes()[0], 0x3a);
        assert_eq!(digest.as_bytes()[31], 0xf2);
        assert_eq!(digest.to_hex(), SHA);
    }

    #[test]
    fn digest_accepts_upper_case() {
        let digest = Sha256Digest::from_hex(&SHA.to_uppercase()).unwrap();
        assert_eq!(digest.to_hex(), SHA);
    }

    #[test]
    fn digest_rejects_invalid_hex() {
        assert_eq!(Sha256Digest::from_hex(&SHA[1..]), None);
        assert_eq!(Sha256Digest::from_hex(&format!("{SHA}0")), None);
        assert_eq!(Sha256Digest::from_hex(&SHA.replace('a', "g")), None);
        assert_eq!(Sha256Digest::from_hex(&"\u{e9}".repeat(32)), None);
    }

    #[test]
    fn digest_serializes_as_hex() {
        let digest = Sha256Digest::from_hex(SHA).unwrap();
        assert_eq!(
            serde_json::to_string(&digest).unwrap(),
            format!("\"{SHA}\"")
        );
    }
}
