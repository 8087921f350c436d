//! Checks of a downloaded `.rpm` file: its entry in primary.xml, its header and payload digests,
//! and its OpenPGP header signature.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use oic_signature::{verify_detached, KeyIdentity, Keyring, SignatureError};

use crate::checksum::{to_hex, ChecksumAlgorithm, HashingReader};
use crate::error::RpmError;
use crate::header::{Header, RpmFile};
use crate::package::RpmPackage;

/// Signature header tags.
const TAG_DSAHEADER: u32 = 267;
const TAG_RSAHEADER: u32 = 268;
const TAG_SHA256HEADER: u32 = 273;
/// rpm 6 stores header signatures of any algorithm here, as base64 text.
const TAG_OPENPGP: u32 = 278;
const TAG_SIZE: u32 = 1000;
const TAG_LONGSIZE: u32 = 270;
/// Header tags.
const TAG_PAYLOADDIGEST: u32 = 5092;
const TAG_PAYLOADDIGESTALGO: u32 = 5093;

/// The result of a successful package check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageVerification {
    /// The key that made the accepted header signature; `None` when no keyring was given.
    pub signer: Option<KeyIdentity>,
    /// The SHA-256 of the header, checked against the signature header when it has one.
    pub header_sha256: String,
    /// The payload digest as `(algorithm, hex)`, when the header declares one.
    pub payload_digest: Option<(ChecksumAlgorithm, String)>,
}

/// Checks the package file at `path`.
///
/// - With `expected`, the file's size and checksum must match that primary.xml entry.
/// - The header's SHA-256 (`SHA256HEADER`), the payload digest (`PAYLOADDIGEST`) and the size
///   of header plus payload (`LONGSIZE` or `SIZE`) must match, when the package declares them.
/// - With `keyring`, one of the header signatures (`RSAHEADER`, `DSAHEADER` or `OPENPGP`)
///   must be valid and made by a key of the keyring. An unsigned package fails. Pass `None`
///   only for a repository with `gpgCheck: false`.
pub fn verify_package_file(
    path: &Path,
    expected: Option<&RpmPackage>,
    keyring: Option<&Keyring>,
) -> Result<PackageVerification, RpmError> {
    let read_error = |source| RpmError::Read {
        path: path.to_owned(),
        source,
    };
    let file = fs_err::File::open(path).map_err(read_error)?;
    let file_size = file.metadata().map_err(read_error)?.len();
    if let Some(package) = expected.filter(|package| package.size != file_size) {
        return Err(RpmError::Size {
            url: path.display().to_string(),
            source_name: format!("primary.xml (package {})", package.nevra()),
            expected: package.size,
            actual: file_size,
        });
    }
    let algorithm = expected.map_or(ChecksumAlgorithm::Sha256, |package| {
        package.checksum.algorithm
    });
    let mut reader = BufReader::new(HashingReader::new(file, algorithm));
    let rpm = RpmFile::read_headers(&mut reader).map_err(|message| invalid(path, message))?;
    let payload = hash_payload(&rpm.header, &mut reader, path)?;
    let (file_digest, _) = reader.into_inner().finish();

    if let Some(package) = expected.filter(|package| package.checksum.value != file_digest) {
        return Err(RpmError::Checksum {
            url: path.display().to_string(),
            source_name: format!("primary.xml (package {})", package.nevra()),
            algorithm: algorithm.name().to_owned(),
            expected: package.checksum.value.clone(),
            actual: file_digest,
        });
    }
    let header_sha256 = check_header_digest(&rpm, path)?;
    check_payload(&rpm, payload.as_ref(), path)?;
    let signer = match keyring {
        Some(keyring) => Some(check_signature(&rpm, keyring, path)?),
        None => None,
    };
    tracing::debug!(path = %path.display(), signed = signer.is_some(), "package verified");
    Ok(PackageVerification {
        signer,
        header_sha256,
        payload_digest: payload.map(|payload| (payload.algorithm, payload.actual)),
    })
}

fn invalid(path: &Path, message: String) -> RpmError {
    RpmError::InvalidRpm {
        path: path.to_owned(),
        message,
    }
}

/// The payload digest that the header declares and the one computed over the payload.
struct PayloadDigest {
    algorithm: ChecksumAlgorithm,
    expected: String,
    actual: String,
    size: u64,
}

/// Reads the payload to its end, hashing it with the header's payload digest algorithm.
fn hash_payload<R: Read>(
    header: &Header,
    reader: &mut R,
    path: &Path,
) -> Result<Option<PayloadDigest>, RpmError> {
    let expected = header
        .string(TAG_PAYLOADDIGEST)
        .map(str::to_ascii_lowercase);
    let id = header.number(TAG_PAYLOADDIGESTALGO).unwrap_or(8);
    let algorithm = u32::try_from(id)
        .ok()
        .and_then(ChecksumAlgorithm::from_openpgp_id);
    let (Some(expected), Some(algorithm)) = (expected, algorithm) else {
        // Packages built before rpm 4.14 have no payload digest. The header signature then
        // covers only the header, so the primary.xml checksum is what protects the payload.
        tracing::debug!(path = %path.display(), "package declares no payload digest");
        std::io::copy(reader, &mut std::io::sink()).map_err(|source| RpmError::Read {
            path: path.to_owned(),
            source,
        })?;
        return Ok(None);
    };
    let mut hashing = HashingReader::new(reader, algorithm);
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|source| RpmError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (actual, size) = hashing.finish();
    Ok(Some(PayloadDigest {
        algorithm,
        expected,
        actual,
        size,
    }))
}

fn check_header_digest(rpm: &RpmFile, path: &Path) -> Result<String, RpmError> {
    let actual = ChecksumAlgorithm::Sha256.digest_hex(rpm.header.raw());
    if let Some(expected) = rpm.signature.string(TAG_SHA256HEADER) {
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(RpmError::PackageDigest {
                path: path.to_owned(),
                what: "header SHA-256".to_owned(),
                expected: expected.to_ascii_lowercase(),
                actual,
            });
        }
    }
    Ok(actual)
}

fn check_payload(
    rpm: &RpmFile,
    payload: Option<&PayloadDigest>,
    path: &Path,
) -> Result<(), RpmError> {
    let Some(payload) = payload else {
        return Ok(());
    };
    if payload.expected != payload.actual {
        return Err(RpmError::PackageDigest {
            path: path.to_owned(),
            what: format!("payload {}", payload.algorithm),
            expected: payload.expected.clone(),
            actual: payload.actual.clone(),
        });
    }
    let declared = rpm
        .signature
        .number(TAG_LONGSIZE)
        .or_else(|| rpm.signature.number(TAG_SIZE));
    let actual = rpm.header.raw().len() as u64 + payload.size;
    match declared {
        Some(declared) if declared != actual => Err(invalid(
            path,
            format!("the signature header gives {declared} bytes of header and payload, the file has {actual}"),
        )),
        _ => Ok(()),
    }
}

/// Verifies the header signatures and returns the key of the first accepted one.
fn check_signature(rpm: &RpmFile, keyring: &Keyring, path: &Path) -> Result<KeyIdentity, RpmError> {
    let signatures = header_signatures(&rpm.signature);
    if signatures.is_empty() {
        return Err(RpmError::Unsigned {
            path: path.to_owned(),
        });
    }
    let mut first_failure: Option<(String, SignatureError)> = None;
    for signature in &signatures {
        match verify_detached(rpm.header.raw(), signature, keyring) {
            Ok(verified) => return Ok(verified.signing_key().clone()),
            Err(error) => {
                let issuer =
                    issuer_key_id(signature).unwrap_or_else(|| "an unnamed key".to_owned());
                tracing::debug!(path = %path.display(), %issuer, %error, "rejected a header signature");
                first_failure.get_or_insert((issuer, error));
            }
        }
    }
    let (signer, source) = first_failure.expect("at least one signature was tried");
    Err(RpmError::PackageSignature {
        path: PathBuf::from(path),
        signer: format!("key ID {signer}"),
        source: Box::new(source),
    })
}

/// Returns the OpenPGP signatures of the signature header, as binary or armored packets.
fn header_signatures(signature_header: &Header) -> Vec<Vec<u8>> {
    let mut signatures = Vec::new();
    for tag in [TAG_RSAHEADER, TAG_DSAHEADER] {
        if let Some(bytes) = signature_header.binary(tag) {
            signatures.push(bytes.to_vec());
        }
    }
    // NOTE: the OPENPGP tag layout (base64 of binary packets, or armored text) follows rpm 6's
    // description; rpm 4.18, which the tests use, never writes it.
    for text in signature_header.strings(TAG_OPENPGP).unwrap_or_default() {
        if text.trim_start().starts_with("-----BEGIN") {
            signatures.push(text.as_bytes().to_vec());
        } else if let Some(bytes) = decode_base64(text) {
            signatures.push(bytes);
        }
    }
    signatures
}

/// Returns the issuer key ID of a binary OpenPGP signature packet (v3 or v4), in uppercase hex.
fn issuer_key_id(packet: &[u8]) -> Option<String> {
    let body = packet_body(packet)?;
    match *body.first()? {
        3 => body.get(7..15).map(|id| to_hex(id).to_uppercase()),
        4 => {
            let hashed_length = usize::from(u16::from_be_bytes([*body.get(4)?, *body.get(5)?]));
            let hashed = body.get(6..6 + hashed_length)?;
            let rest = body.get(6 + hashed_length..)?;
            let unhashed_length = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
            let unhashed = rest.get(2..2 + unhashed_length)?;
            find_issuer(hashed).or_else(|| find_issuer(unhashed))
        }
        _ => None,
    }
}

/// Returns the body of the first packet, for old-format and new-format packet headers.
fn packet_body(packet: &[u8]) -> Option<&[u8]> {
    let first = *packet.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    if first & 0x40 == 0 {
        let (header, length) = match first & 0x03 {
            0 => (2, usize::from(*packet.get(1)?)),
            1 => (
                3,
                usize::from(u16::from_be_bytes([*packet.get(1)?, *packet.get(2)?])),
            ),
            2 => (
                5,
                usize::try_from(u32::from_be_bytes(packet.get(1..5)?.try_into().ok()?)).ok()?,
            ),
            _ => return packet.get(1..),
        };
        return packet.get(header..header + length);
    }
    let octet = usize::from(*packet.get(1)?);
    let (header, length) = match octet {
        0..=191 => (2, octet),
        192..=223 => (3, ((octet - 192) << 8) + usize::from(*packet.get(2)?) + 192),
        255 => (
            6,
            usize::try_from(u32::from_be_bytes(packet.get(2..6)?.try_into().ok()?)).ok()?,
        ),
        _ => return None,
    };
    packet.get(header..header + length)
}

/// Finds the issuer (type 16) or issuer fingerprint (type 33) subpacket.
fn find_issuer(mut subpackets: &[u8]) -> Option<String> {
    while let Some(&first) = subpackets.first() {
        let first = usize::from(first);
        let (header, length) = match first {
            0..=191 => (1, first),
            192..=254 => (
                2,
                ((first - 192) << 8) + usize::from(*subpackets.get(1)?) + 192,
            ),
            _ => (
                5,
                usize::try_from(u32::from_be_bytes(subpackets.get(1..5)?.try_into().ok()?)).ok()?,
            ),
        };
        let body = subpackets.get(header..header + length)?;
        let kind = body.first()? & 0x7f;
        match kind {
            16 => return body.get(1..9).map(|id| to_hex(id).to_uppercase()),
            33 => {
                let fingerprint = body.get(2..)?;
                return fingerprint
                    .get(fingerprint.len().checked_sub(8)?..)
                    .map(|id| to_hex(id).to_uppercase());
            }
            _ => {}
        }
        subpackets = subpackets.get(header + length..)?;
    }
    None
}

/// Decodes standard base64, ignoring whitespace; `None` on any other invalid character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0_u32;
    let mut bit_count = 0;
    let mut output = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.bytes().filter(|byte| !byte.is_ascii_whitespace()) {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            output.push(u8::try_from((bits >> bit_count) & 0xff).expect("one byte"));
        }
    }
    Some(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVs\nbG8h").unwrap(), b"hello!");
        assert!(decode_base64("a*b").is_none());
    }

    #[test]
    fn issuer_of_v4_packet() {
        // A v4 signature packet (old format, 1-byte length) whose unhashed area contains an
        // issuer subpacket with the key ID 0102030405060708.
        let mut body = vec![4, 0, 1, 8, 0, 0, 0, 10, 9, 16, 1, 2, 3, 4, 5, 6, 7, 8];
        body.extend_from_slice(&[0xab, 0xcd]);
        let mut packet = vec![0x88, u8::try_from(body.len()).unwrap()];
        packet.extend(body);
        assert_eq!(issuer_key_id(&packet).as_deref(), Some("0102030405060708"));
    }
}
