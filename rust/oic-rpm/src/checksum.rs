//! Checksums of repodata files and packages.
//!
//! Repository metadata declares its checksum type per file. SHA-224, SHA-256, SHA-384 and
//! SHA-512 are accepted. MD5 and SHA-1 (`md5`, `sha1`, `sha`) are rejected, because collisions
//! are practical for both and a checksum here is what binds a file to the signed repomd.xml.
//! `createrepo_c` writes SHA-256 by default.

use std::fmt;

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use crate::error::RpmError;

/// A checksum type accepted for data integrity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl ChecksumAlgorithm {
    /// Parses the `type` attribute of a `<checksum>` element. `url` names the file in errors.
    pub fn parse(name: &str, url: &str) -> Result<Self, RpmError> {
        match name.to_ascii_lowercase().as_str() {
            "sha224" => Ok(Self::Sha224),
            "sha256" => Ok(Self::Sha256),
            "sha384" => Ok(Self::Sha384),
            "sha512" => Ok(Self::Sha512),
            "md5" | "sha" | "sha1" => Err(RpmError::WeakChecksum {
                url: url.to_owned(),
                algorithm: name.to_owned(),
            }),
            _ => Err(RpmError::UnsupportedChecksum {
                url: url.to_owned(),
                algorithm: name.to_owned(),
            }),
        }
    }

    /// Returns the algorithm of an rpm `PAYLOADDIGESTALGO` value (OpenPGP hash algorithm ids).
    pub fn from_openpgp_id(id: u32) -> Option<Self> {
        match id {
            8 => Some(Self::Sha256),
            9 => Some(Self::Sha384),
            10 => Some(Self::Sha512),
            11 => Some(Self::Sha224),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Starts an incremental hash.
    pub fn hasher(self) -> Hasher {
        match self {
            Self::Sha224 => Hasher::Sha224(Sha224::new()),
            Self::Sha256 => Hasher::Sha256(Sha256::new()),
            Self::Sha384 => Hasher::Sha384(Sha384::new()),
            Self::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Returns the lowercase hexadecimal digest of `bytes`.
    pub fn digest_hex(self, bytes: &[u8]) -> String {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish_hex()
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// An expected checksum: the algorithm and the lowercase hexadecimal value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
}

/// An incremental hash of one of the accepted algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha224(Sha224),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha224(hasher) => hasher.update(bytes),
            Self::Sha256(hasher) => hasher.update(bytes),
            Self::Sha384(hasher) => hasher.update(bytes),
            Self::Sha512(hasher) => hasher.update(bytes),
        }
    }

    /// Returns the lowercase hexadecimal digest.
    pub fn finish_hex(self) -> String {
        let digest = match self {
            Self::Sha224(hasher) => hasher.finalize().to_vec(),
            Self::Sha256(hasher) => hasher.finalize().to_vec(),
            Self::Sha384(hasher) => hasher.finalize().to_vec(),
            Self::Sha512(hasher) => hasher.finalize().to_vec(),
        };
        to_hex(&digest)
    }
}

/// Returns the lowercase hexadecimal form of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// A reader that hashes everything read through it and counts the bytes.
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R, algorithm: ChecksumAlgorithm) -> Self {
        Self {
            inner,
            hasher: algorithm.hasher(),
            count: 0,
        }
    }

    /// Returns the digest and the number of bytes read.
    pub fn finish(self) -> (String, u64) {
        (self.hasher.finish_hex(), self.count)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.count += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_checksums_are_rejected() {
        for name in ["md5", "sha", "SHA1"] {
            let error = ChecksumAlgorithm::parse(name, "u").unwrap_err();
            assert!(matches!(error, RpmError::WeakChecksum { .. }), "{name}");
        }
        assert_eq!(
            ChecksumAlgorithm::parse("SHA256", "u").unwrap(),
            ChecksumAlgorithm::Sha256
        );
    }

    #[test]
    fn sha256_digest_is_hex() {
        assert_eq!(
            ChecksumAlgorithm::Sha256.digest_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
