//! Decompression of repodata files by their file name: `.gz`, `.xz`, `.zst` or plain.

use std::io::Read;

use crate::error::RpmError;

/// The compression of a repodata file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// Returns the compression that the file name's suffix names. Other compressed forms
    /// (`.bz2`, `.zck`) are rejected with an error that names the file.
    pub fn of(location: &str, url: &str) -> Result<Self, RpmError> {
        let name = location.rsplit('/').next().unwrap_or(location);
        let suffix = name.rsplit_once('.').map_or("", |(_, suffix)| suffix);
        match suffix {
            "gz" => Ok(Self::Gzip),
            "xz" => Ok(Self::Xz),
            "zst" | "zstd" => Ok(Self::Zstd),
            "xml" => Ok(Self::None),
            _ => Err(RpmError::Decompress {
                url: url.to_owned(),
                message: format!(
                    "the compression `.{suffix}` is not supported: expected .gz, .xz or .zst"
                ),
            }),
        }
    }

    /// Wraps `input` in a decompressor.
    pub fn reader<'a, R: Read + 'a>(
        self,
        input: R,
        url: &str,
    ) -> Result<Box<dyn Read + 'a>, RpmError> {
        Ok(match self {
            Self::None => Box::new(input),
            Self::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Self::Xz => Box::new(liblzma::read::XzDecoder::new(input)),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::new(input).map_err(|error| {
                RpmError::Decompress {
                    url: url.to_owned(),
                    message: error.to_string(),
                }
            })?),
        })
    }
}
