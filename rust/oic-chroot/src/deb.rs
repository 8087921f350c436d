//! The `ar` container of a `.deb` and the decompressed stream of its `data.tar` member.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::ChrootError;

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER_LEN: usize = 60;

/// The decompressed `data.tar` stream of a package archive.
pub type DataTar = Box<dyn Read + Send>;

/// Opens `deb` and returns a reader of its decompressed `data.tar` member. It supports
/// `data.tar` uncompressed and with xz, zstd or gzip, the compressions that Debian's dpkg-deb
/// writes.
pub fn open_data_tar(deb: &Path) -> Result<DataTar, ChrootError> {
    let invalid = |message: String| ChrootError::InvalidDeb {
        deb: deb.to_path_buf(),
        message,
    };
    let mut reader = BufReader::new(fs_err::File::open(deb)?);
    let mut magic = [0_u8; 8];
    reader
        .read_exact(&mut magic)
        .map_err(|error| invalid(format!("failed to read the ar magic: {error}")))?;
    if &magic != AR_MAGIC {
        return Err(invalid("not an ar archive".to_owned()));
    }
    loop {
        let Some((name, size)) = read_member_header(&mut reader, deb)? else {
            return Err(invalid("no data.tar member".to_owned()));
        };
        if let Some(compression) = name.strip_prefix("data.tar") {
            let member = reader.take(size);
            return decoder(member, compression).map_err(invalid);
        }
        // Members start at even offsets.
        let skip = size + (size & 1);
        let skip =
            i64::try_from(skip).map_err(|_| invalid(format!("member `{name}` too large")))?;
        reader.seek(SeekFrom::Current(skip))?;
    }
}

/// Reads the next member header: name and size, or `None` at the end of the archive.
fn read_member_header(
    reader: &mut impl Read,
    deb: &Path,
) -> Result<Option<(String, u64)>, ChrootError> {
    let invalid = |message: String| ChrootError::InvalidDeb {
        deb: deb.to_path_buf(),
        message,
    };
    let mut header = [0_u8; AR_HEADER_LEN];
    let mut filled = 0;
    while filled < AR_HEADER_LEN {
        let count = reader.read(&mut header[filled..])?;
        if count == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(invalid("truncated ar member header".to_owned()))
            };
        }
        filled += count;
    }
    if &header[58..60] != b"`\n" {
        return Err(invalid("invalid ar member header".to_owned()));
    }
    let name = String::from_utf8_lossy(&header[0..16])
        .trim_end()
        .trim_end_matches('/')
        .to_owned();
    let size = std::str::from_utf8(&header[48..58])
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .ok_or_else(|| invalid(format!("invalid size of member `{name}`")))?;
    Ok(Some((name, size)))
}

/// Wraps `member` in the decoder that the suffix after `data.tar` names.
fn decoder<R: Read + Send + 'static>(member: R, compression: &str) -> Result<DataTar, String> {
    match compression {
        "" => Ok(Box::new(member)),
        ".xz" => Ok(Box::new(liblzma::read::XzDecoder::new(member))),
        ".gz" => Ok(Box::new(flate2::read::GzDecoder::new(member))),
        ".zst" => zstd::stream::read::Decoder::new(member)
            .map(|decoder| Box::new(decoder) as DataTar)
            .map_err(|error| format!("failed to start the zstd decoder: {error}")),
        other => Err(format!("unsupported compression `data.tar{other}`")),
    }
}
