//! The checksum types that repository metadata gives for package files.
//!
//! Debian indexes give SHA-256. RPM repositories give the type per package in primary.xml:
//! `createrepo_c` writes SHA-256 by default and SHA-224, SHA-384 or SHA-512 with `--checksum`.

use std::fmt;

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

/// A checksum algorithm of a package file.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumType {
    Sha224,
    #[default]
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumType {
    /// Returns the name as repository metadata writes it: `sha256`, `sha512`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Returns the number of hexadecimal digits of a digest.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha224 => 56,
            Self::Sha256 => 64,
            Self::Sha384 => 96,
            Self::Sha512 => 128,
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self {
            Self::Sha224 => Hasher::Sha224(Sha224::new()),
            Self::Sha256 => Hasher::Sha256(Sha256::new()),
            Self::Sha384 => Hasher::Sha384(Sha384::new()),
            Self::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
}

impl fmt::Display for ChecksumType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// An incremental hash of one [`ChecksumType`].
pub(crate) enum Hasher {
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha224(hasher) => hasher.update(bytes),
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha384(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    /// Returns the lowercase hexadecimal digest.
    pub(crate) fn finish_hex(self) -> String {
        let digest = match self {
            Self::Sha224(hasher) => hasher.finalize().to_vec(),
            Self::Sha256(hasher) => hasher.finalize().to_vec(),
            Self::Sha384(hasher) => hasher.finalize().to_vec(),
            Self::Sha512(hasher) => hasher.finalize().to_vec(),
        };
        crate::check::hex(&digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_lengths_match_names() {
        for kind in [
            ChecksumType::Sha224,
            ChecksumType::Sha256,
            ChecksumType::Sha384,
            ChecksumType::Sha512,
        ] {
            let mut hasher = kind.hasher();
            hasher.update(b"abc");
            assert_eq!(hasher.finish_hex().len(), kind.hex_len(), "{kind}");
        }
    }

    #[test]
    fn names_round_trip_through_serde() {
        let text = serde_json::to_string(&ChecksumType::Sha512).unwrap();
        assert_eq!(text, "\"sha512\"");
        let kind: ChecksumType = serde_json::from_str(&text).unwrap();
        assert_eq!(kind, ChecksumType::Sha512);
    }
}
