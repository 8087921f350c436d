//! `repodata/repomd.xml`: the index of a repository's metadata files.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::error::RpmError;
use crate::xml::{attribute, text_of};

/// One `<data>` entry of repomd.xml, such as `primary`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepomdData {
    /// The `type` attribute: `primary`, `filelists`, `other`, `primary_db`, ...
    pub kind: String,
    /// The path relative to the repository root, such as `repodata/{hash}-primary.xml.gz`.
    pub location: String,
    pub checksum_type: String,
    /// The checksum of the file as stored (compressed).
    pub checksum: String,
    pub open_checksum_type: Option<String>,
    /// The checksum of the decompressed file.
    pub open_checksum: Option<String>,
    pub size: Option<u64>,
    pub open_size: Option<u64>,
}

impl RepomdData {
    /// Returns the checksum of the stored file, rejecting weak and unknown types.
    pub fn stored_checksum(&self, url: &str) -> Result<Checksum, RpmError> {
        Ok(Checksum {
            algorithm: ChecksumAlgorithm::parse(&self.checksum_type, url)?,
            value: self.checksum.to_ascii_lowercase(),
        })
    }

    /// Returns the checksum of the decompressed file, when repomd.xml gives one.
    pub fn open_checksum(&self, url: &str) -> Result<Option<Checksum>, RpmError> {
        let (Some(kind), Some(value)) = (&self.open_checksum_type, &self.open_checksum) else {
            return Ok(None);
        };
        Ok(Some(Checksum {
            algorithm: ChecksumAlgorithm::parse(kind, url)?,
            value: value.to_ascii_lowercase(),
        }))
    }
}

/// A parsed repomd.xml.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Repomd {
    pub revision: Option<String>,
    pub data: Vec<RepomdData>,
}

impl Repomd {
    /// Parses repomd.xml. `url` names the file in errors.
    pub fn parse(bytes: &[u8], url: &str) -> Result<Self, RpmError> {
        let invalid = |message: String| RpmError::InvalidRepomd {
            url: url.to_owned(),
            message,
        };
        let mut reader = Reader::from_reader(bytes);
        let mut buffer = Vec::new();
        let mut repomd = Self::default();
        let mut current: Option<RepomdData> = None;
        loop {
            let event = reader
                .read_event_into(&mut buffer)
                .map_err(|error| invalid(error.to_string()))?;
            match event {
                Event::Start(start) => {
                    let start = start.into_owned();
                    let name = start.local_name().as_ref().to_owned();
                    match (name.as_str(), current.as_mut()) {
                        ("data", _) => {
                            let kind = attribute(&start, "type").map_err(invalid)?;
                            current = Some(RepomdData {
                                kind: kind.unwrap_or_default(),
                                ..RepomdData::default()
                            });
                        }
                        ("revision", None) => {
                            repomd.revision = Some(text_of(&mut reader).map_err(invalid)?);
                        }
                        (_, Some(data)) => read_data_field(&mut reader, &start, data, url)?,
                        _ => {}
                    }
                }
                Event::Empty(start) => {
                    if let ("location", Some(data)) = (start.local_name().as_ref(), &mut current) {
                        data.location = attribute(&start, "href")
                            .map_err(invalid)?
                            .unwrap_or_default();
                    }
                }
                Event::End(end) if end.local_name().as_ref() == "data" => {
                    repomd.data.extend(current.take());
                }
                Event::Eof => break,
                _ => {}
            }
            buffer.clear();
        }
        Ok(repomd)
    }

    /// Returns the entry of type `kind`.
    pub fn find(&self, kind: &str) -> Option<&RepomdData> {
        self.data.iter().find(|data| data.kind == kind)
    }
}

fn read_data_field(
    reader: &mut Reader<&[u8]>,
    start: &BytesStart<'_>,
    data: &mut RepomdData,
    url: &str,
) -> Result<(), RpmError> {
    let invalid = |message: String| RpmError::InvalidRepomd {
        url: url.to_owned(),
        message,
    };
    let kind = attribute(start, "type").map_err(invalid)?;
    let name = start.local_name();
    let text = text_of(reader).map_err(invalid)?;
    let number = || {
        text.trim()
            .parse::<u64>()
            .map_err(|_| invalid(format!("invalid number `{text}`")))
    };
    match name.as_ref() {
        "checksum" => {
            data.checksum_type = kind.unwrap_or_default();
            text.trim().clone_into(&mut data.checksum);
        }
        "open-checksum" => {
            data.open_checksum_type = kind;
            data.open_checksum = Some(text.trim().to_owned());
        }
        "size" => data.size = Some(number()?),
        "open-size" => data.open_size = Some(number()?),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
  <data type="primary">
    <checksum type="sha256">ABCDEF</checksum>
    <open-checksum type="sha256">012345</open-checksum>
    <location href="repodata/abcdef-primary.xml.gz"/>
    <timestamp>1700000000</timestamp>
    <size>123</size>
    <open-size>456</open-size>
  </data>
  <data type="filelists">
    <checksum type="sha256">99</checksum>
    <location href="repodata/99-filelists.xml.gz"/>
  </data>
</repomd>"#;

    #[test]
    fn primary_entry_is_read() {
        let repomd = Repomd::parse(REPOMD.as_bytes(), "u").unwrap();
        assert_eq!(repomd.revision.as_deref(), Some("1700000000"));
        let primary = repomd.find("primary").unwrap();
        assert_eq!(primary.location, "repodata/abcdef-primary.xml.gz");
        assert_eq!(primary.stored_checksum("u").unwrap().value, "abcdef");
        assert_eq!(primary.size, Some(123));
        assert_eq!(primary.open_size, Some(456));
        assert_eq!(primary.open_checksum.as_deref(), Some("012345"));
        assert!(repomd.find("filelists").is_some());
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let error = Repomd::parse(b"<repomd><data type='primary'></repomd>", "u").unwrap_err();
        assert!(matches!(error, RpmError::InvalidRepomd { .. }), "{error}");
    }
}
