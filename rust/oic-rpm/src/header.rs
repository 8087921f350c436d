//! A reader of the `.rpm` file format: lead, signature header and header.
//!
//! A package file is, in order:
//!
//! 1. the lead, 96 bytes starting with `ed ab ee db`, kept for old tools and otherwise unused;
//! 2. the signature header, padded with zeros to a multiple of 8 bytes;
//! 3. the header, which the OpenPGP header signature and the SHA-256 header digest cover;
//! 4. the payload, a compressed cpio archive, covered by the payload digest of the header.
//!
//! Both headers have the same layout. They start with the magic `8e ad e8 01`, 4 reserved bytes,
//! and the number of index entries and the size of the data store (32-bit big-endian each).
//! The index entries follow (tag, type, offset, count: 16 bytes each), then the data store.

use std::io::Read;

/// The size of the lead.
const LEAD_SIZE: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
/// rpm's own limits on the number of index entries and the size of the data store.
const MAX_ENTRIES: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

/// Data types of header entries.
const TYPE_INT32: u32 = 4;
const TYPE_INT64: u32 = 5;
const TYPE_STRING: u32 = 6;
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18N_STRING: u32 = 9;

/// One index entry.
#[derive(Clone, Copy, Debug)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

/// A signature header or header, with the bytes as read so that digests and signatures can be
/// checked over them.
#[derive(Clone, Debug)]
pub struct Header {
    raw: Vec<u8>,
    entries: Vec<Entry>,
    /// The offset of the data store in `raw`.
    store_start: usize,
}

impl Header {
    /// Reads one header structure. `what` names it in errors.
    fn read<R: Read>(reader: &mut R, what: &str) -> Result<Self, String> {
        let mut intro = [0_u8; 16];
        read_exact(reader, &mut intro, what)?;
        if intro[..4] != HEADER_MAGIC {
            return Err(format!("the {what} has no header magic (8e ad e8 01)"));
        }
        let count = be32(&intro[8..12]);
        let data_size = be32(&intro[12..16]);
        if count == 0 || count > MAX_ENTRIES || data_size > MAX_DATA {
            return Err(format!(
                "the {what} declares {count} entries and {data_size} data bytes, beyond rpm's limits"
            ));
        }
        let store_start = 16 + 16 * count as usize;
        let mut raw = intro.to_vec();
        raw.resize(store_start + data_size as usize, 0);
        read_exact(reader, &mut raw[16..], what)?;
        let entries = raw[16..store_start]
            .chunks_exact(16)
            .map(|chunk| Entry {
                tag: be32(&chunk[0..4]),
                kind: be32(&chunk[4..8]),
                offset: be32(&chunk[8..12]),
                count: be32(&chunk[12..16]),
            })
            .collect::<Vec<_>>();
        if let Some(entry) = entries.iter().find(|entry| entry.offset > data_size) {
            return Err(format!(
                "the {what} entry of tag {} points past the data store",
                entry.tag
            ));
        }
        Ok(Self {
            raw,
            entries,
            store_start,
        })
    }

    /// Returns the header as it is stored in the file, magic included: the bytes the header
    /// signature and the header digest cover.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Returns the tags of the entries, in index order.
    pub fn tags(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|entry| entry.tag)
    }

    fn entry(&self, tag: u32, kinds: &[u32]) -> Option<(Entry, &[u8])> {
        let entry = *self.entries.iter().find(|entry| entry.tag == tag)?;
        if !kinds.contains(&entry.kind) {
            return None;
        }
        let data = &self.raw[self.store_start + entry.offset as usize..];
        Some((entry, data))
    }

    /// Returns the bytes of a `BIN` entry.
    pub fn binary(&self, tag: u32) -> Option<&[u8]> {
        let (entry, data) = self.entry(tag, &[TYPE_BIN])?;
        data.get(..entry.count as usize)
    }

    /// Returns the first string of a `STRING`, `STRING_ARRAY` or `I18NSTRING` entry.
    pub fn string(&self, tag: u32) -> Option<&str> {
        self.strings(tag)?.into_iter().next()
    }

    /// Returns the strings of a string entry. Strings that are not UTF-8 are left out.
    pub fn strings(&self, tag: u32) -> Option<Vec<&str>> {
        let kinds = [TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18N_STRING];
        let (entry, data) = self.entry(tag, &kinds)?;
        let count = if entry.kind == TYPE_STRING {
            1
        } else {
            entry.count as usize
        };
        let strings = data
            .split(|&byte| byte == 0)
            .take(count)
            .filter_map(|bytes| std::str::from_utf8(bytes).ok())
            .collect::<Vec<_>>();
        Some(strings)
    }

    /// Returns the first number of an `INT32` or `INT64` entry.
    pub fn number(&self, tag: u32) -> Option<u64> {
        let (entry, data) = self.entry(tag, &[TYPE_INT32, TYPE_INT64])?;
        if entry.count == 0 {
            return None;
        }
        match entry.kind {
            TYPE_INT32 => data.get(..4).map(|bytes| u64::from(be32(bytes))),
            _ => data
                .get(..8)
                .map(|bytes| u64::from_be_bytes(bytes.try_into().expect("8 bytes"))),
        }
    }
}

/// The two headers of a package file. Reading them leaves the reader at the payload.
#[derive(Clone, Debug)]
pub struct RpmFile {
    pub signature: Header,
    pub header: Header,
}

impl RpmFile {
    /// Reads the lead, the signature header with its padding, and the header.
    pub fn read_headers<R: Read>(reader: &mut R) -> Result<Self, String> {
        let mut lead = [0_u8; LEAD_SIZE];
        read_exact(reader, &mut lead, "lead")?;
        if lead[..4] != LEAD_MAGIC {
            return Err("the file does not start with the RPM lead magic (ed ab ee db)".to_owned());
        }
        let signature = Header::read(reader, "signature header")?;
        let padding = (8 - signature.raw.len() % 8) % 8;
        let mut skipped = [0_u8; 8];
        read_exact(reader, &mut skipped[..padding], "signature header padding")?;
        let header = Header::read(reader, "header")?;
        Ok(Self { signature, header })
    }
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"))
}

fn read_exact<R: Read>(reader: &mut R, buffer: &mut [u8], what: &str) -> Result<(), String> {
    reader.read_exact(buffer).map_err(|error| {
        if error.kind() == std::io::ErrorKind::UnexpectedEof {
            format!("the file ends inside the {what}")
        } else {
            format!("cannot read the {what}: {error}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a header with one entry per `(tag, type, count, data)`.
    fn header_bytes(entries: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut store = Vec::new();
        for (tag, kind, count, data) in entries {
            for value in [*tag, *kind, u32::try_from(store.len()).unwrap(), *count] {
                index.extend_from_slice(&value.to_be_bytes());
            }
            store.extend_from_slice(data);
        }
        let mut bytes = HEADER_MAGIC.to_vec();
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&u32::try_from(entries.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(&u32::try_from(store.len()).unwrap().to_be_bytes());
        bytes.extend(index);
        bytes.extend(store);
        bytes
    }

    #[test]
    fn entries_are_read() {
        let bytes = header_bytes(&[
            (1000, TYPE_STRING, 1, b"name\0"),
            (1001, TYPE_STRING_ARRAY, 2, b"a\0b\0"),
            (1002, TYPE_INT32, 1, &7_u32.to_be_bytes()),
            (1003, TYPE_BIN, 3, b"xyz"),
        ]);
        let header = Header::read(&mut bytes.as_slice(), "header").unwrap();
        assert_eq!(header.string(1000), Some("name"));
        assert_eq!(header.strings(1001).unwrap(), ["a", "b"]);
        assert_eq!(header.number(1002), Some(7));
        assert_eq!(header.binary(1003), Some(&b"xyz"[..]));
        assert_eq!(header.binary(1000), None);
        assert_eq!(header.raw(), bytes.as_slice());
    }

    #[test]
    fn truncated_header_is_an_error() {
        let bytes = header_bytes(&[(1000, TYPE_STRING, 1, b"name\0")]);
        let error = Header::read(&mut &bytes[..bytes.len() - 2], "header").unwrap_err();
        assert!(error.contains("ends inside the header"), "{error}");
    }

    #[test]
    fn oversized_header_is_rejected() {
        let mut bytes = header_bytes(&[(1000, TYPE_STRING, 1, b"name\0")]);
        bytes[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        let error = Header::read(&mut bytes.as_slice(), "header").unwrap_err();
        assert!(error.contains("limits"), "{error}");
    }
}
