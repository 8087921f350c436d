//! Checking cached files against the size and checksum a build expects.

use std::fs::{File, FileTimes};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use crate::checksum::ChecksumType;

/// Why a cached file was deleted and downloaded again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedownloadReason {
    /// The file is smaller than expected, as after an interrupted copy.
    Truncated,
    /// The file has the expected size but other bytes: a package republished under the same
    /// name and version, or a corrupted file.
    UpstreamChanged,
    /// The file is larger than expected.
    SizeDiffers,
}

impl std::fmt::Display for RedownloadReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Truncated => "truncated",
            Self::UpstreamChanged => "upstream file changed",
            Self::SizeDiffers => "size differs",
        })
    }
}

/// The state of one cached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// Present with the expected size and checksum.
    Valid,
    Missing,
    /// Present but wrong. `actual_checksum` is set when the sizes matched and the file was
    /// hashed.
    Invalid {
        reason: RedownloadReason,
        actual_size: u64,
        actual_checksum: Option<String>,
        identity: FileIdentity,
    },
}

/// The device and inode of a file, to notice when a name was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
        }
    }
}

/// Compares the file at `path` with `size` and the lowercase hexadecimal `checksum` of type
/// `checksum_type`. Hashes it only when the size matches.
pub fn check_file(
    path: &Path,
    size: u64,
    checksum_type: ChecksumType,
    checksum: &str,
) -> std::io::Result<CacheState> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(CacheState::Missing)
        }
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let actual_size = metadata.len();
    let identity = FileIdentity::of(&metadata);
    if actual_size != size {
        let reason = if actual_size < size {
            RedownloadReason::Truncated
        } else {
            RedownloadReason::SizeDiffers
        };
        return Ok(CacheState::Invalid {
            reason,
            actual_size,
            actual_checksum: None,
            identity,
        });
    }
    let actual = hash_reader(&mut file, checksum_type)?;
    if actual == checksum {
        return Ok(CacheState::Valid);
    }
    Ok(CacheState::Invalid {
        reason: RedownloadReason::UpstreamChanged,
        actual_size,
        actual_checksum: Some(actual),
        identity,
    })
}

/// Returns the lowercase hexadecimal digest of type `checksum_type` of everything `reader`
/// yields.
pub fn hash_reader(reader: &mut impl Read, checksum_type: ChecksumType) -> std::io::Result<String> {
    let mut hasher = checksum_type.hasher();
    let mut buffer = vec![0_u8; 256 * 1024];
    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..count]);
    }
    Ok(hasher.finish_hex())
}

/// Formats a digest as lowercase hexadecimal.
pub(crate) fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// Deletes a cached file found invalid, unless another process replaced it since `checked`
/// was checked: a rename by a concurrent download gives the name a new inode.
pub(crate) fn remove_if_same(path: &Path, checked: FileIdentity) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(now) if FileIdentity::of(&now) == checked => std::fs::remove_file(path),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Sets the access time of a reused file to now, so that `prune` sees it as recently used
/// also on file systems mounted with `noatime`.
pub(crate) fn touch_accessed(path: &Path) {
    let result = File::open(path)
        .and_then(|file| file.set_times(FileTimes::new().set_accessed(SystemTime::now())));
    if let Err(error) = result {
        tracing::debug!(path = %path.display(), %error, "cannot update the access time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn states_follow_size_then_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.deb");
        let check = |size| check_file(&path, size, ChecksumType::Sha256, ABC).unwrap();
        assert_eq!(check(3), CacheState::Missing);

        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(check(3), CacheState::Valid);

        std::fs::write(&path, b"ab").unwrap();
        let state = check(3);
        assert!(
            matches!(
                state,
                CacheState::Invalid {
                    reason: RedownloadReason::Truncated,
                    ..
                }
            ),
            "{state:?}"
        );

        std::fs::write(&path, b"abcd").unwrap();
        let state = check(3);
        assert!(
            matches!(
                state,
                CacheState::Invalid {
                    reason: RedownloadReason::SizeDiffers,
                    ..
                }
            ),
            "{state:?}"
        );

        std::fs::write(&path, b"abd").unwrap();
        let state = check(3);
        assert!(
            matches!(
                state,
                CacheState::Invalid {
                    reason: RedownloadReason::UpstreamChanged,
                    ..
                }
            ),
            "{state:?}"
        );
    }

    #[test]
    fn reasons_read_as_documented() {
        assert_eq!(RedownloadReason::Truncated.to_string(), "truncated");
        assert_eq!(
            RedownloadReason::UpstreamChanged.to_string(),
            "upstream file changed"
        );
        assert_eq!(RedownloadReason::SizeDiffers.to_string(), "size differs");
    }
}
