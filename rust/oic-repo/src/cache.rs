//! The verified metadata cache.
//!
//! ```text
//! {cache_dir}/metadata/v1/{provider-id}/
//! ├── repos/{host_path_suite-HASH}/
//! │   ├── InRelease            as fetched, stored only after its signature verified
//! │   ├── Release, Release.gpg when the repository publishes no InRelease
//! │   └── validators.json      ETag and Last-Modified, for conditional requests
//! ├── keys/{sha256 of URL}     signing keys fetched by URL
//! └── by-hash/sha256/{digest}  decompressed Packages indexes, named by their SHA256
//! ```
//!
//! Every file is written to a temporary name in its folder, synced and renamed, so a final name
//! never holds a partial file. Indexes are named by the digest the signed Release lists, and
//! their content is hashed again whenever it is read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::RepoError;
use crate::fetch::{redact, Validators};

/// The cache format version, part of the folder name so a future layout never reads this one.
const FORMAT: &str = "v1";

/// The metadata cache of one provider.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    root: PathBuf,
}

impl MetadataCache {
    pub fn new(cache_dir: &Path, provider_id: &str) -> Self {
        Self {
            root: cache_dir.join("metadata").join(FORMAT).join(provider_id),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the folder of a remote repository, named after its URL and suite.
    pub fn repository_dir(&self, url: &str, suite: &str) -> PathBuf {
        let redacted = redact(url);
        let readable: String = redacted
            .split_once("://")
            .map_or(redacted.as_str(), |(_, rest)| rest)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        let digest = sha256_hex(format!("{url}\n{suite}").as_bytes());
        self.root
            .join("repos")
            .join(format!("{readable}_{suite}-{}", &digest[..12]))
    }

    pub fn key_path(&self, url: &str) -> PathBuf {
        self.root.join("keys").join(sha256_hex(url.as_bytes()))
    }

    pub fn index_path(&self, sha256: &str) -> PathBuf {
        self.root.join("by-hash").join("sha256").join(sha256)
    }

    /// Reads a cached file, or `None` when it is absent or unreadable.
    pub fn read(path: &Path) -> Option<Vec<u8>> {
        fs_err::read(path).ok()
    }

    /// Reads a cached index and returns it only when its SHA256 and size still match.
    pub fn read_index(&self, sha256: &str, size: u64) -> Option<Vec<u8>> {
        let bytes = Self::read(&self.index_path(sha256))?;
        let matches = bytes.len() as u64 == size && sha256_hex(&bytes) == sha256;
        if !matches {
            tracing::warn!(
                sha256,
                "cached index does not match its digest: fetching it again"
            );
        }
        matches.then_some(bytes)
    }

    /// Passes a cached index to `parse` as a reader and returns the result only when the whole
    /// file's SHA256 and size match. The file is hashed while `parse` reads it, so the text is
    /// never in memory at once. `None` means the file is absent, unreadable or changed.
    pub fn parse_index<T>(
        &self,
        sha256: &str,
        size: u64,
        parse: impl FnOnce(&mut dyn Read) -> T,
    ) -> Option<T> {
        let file = fs_err::File::open(self.index_path(sha256)).ok()?;
        let mut reader = DigestReader::new(file);
        let parsed = parse(&mut reader);
        let (actual, actual_size) = reader.finish().ok()?;
        let matches = actual_size == size && actual == sha256;
        if !matches {
            tracing::warn!(
                sha256,
                "cached index does not match its digest: fetching it again"
            );
        }
        matches.then_some(parsed)
    }

    pub fn read_validators(dir: &Path) -> Validators {
        Self::read(&dir.join("validators.json"))
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn write_validators(dir: &Path, validators: &Validators) -> Result<(), RepoError> {
        let bytes = serde_json::to_vec(validators).expect("validators serialize");
        write_atomic(&dir.join("validators.json"), &bytes)
    }
}

/// Numbers the temporary files of [`write_atomic`] within this process.
static TEMP_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Writes `bytes` to `path` through a synced temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let cache_error = |source| RepoError::Cache {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().expect("cache paths have a parent");
    fs_err::create_dir_all(dir).map_err(cache_error)?;

    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("file");
    // The counter keeps two threads of one process that write the same file apart.
    let sequence = TEMP_SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.tmp-{}-{sequence}", std::process::id()));
    let result = (|| {
        let mut file = fs_err::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs_err::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&temp);
    }
    result.map_err(cache_error)
}

/// A reader that computes the SHA256 and length of everything read through it.
struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
    length: u64,
}

impl<R: Read> DigestReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            length: 0,
        }
    }

    /// Reads what the consumer left unread and returns the hexadecimal digest and length.
    fn finish(mut self) -> std::io::Result<(String, u64)> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok((to_hex(&self.hasher.finalize()), self.length))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.hasher.update(&buffer[..read]);
        self.length += read as u64;
        Ok(read)
    }
}

/// Returns the lowercase hexadecimal SHA256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

fn to_hex(digest: &[u8]) -> String {
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_from_threads_of_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chrootpkgs.dot");
        std::thread::scope(|threads| {
            for thread in 0..8_u8 {
                let path = &path;
                threads.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(path, &[thread; 4096]).unwrap();
                    }
                });
            }
        });

        let written = fs_err::read(&path).unwrap();
        assert_eq!(written.len(), 4096);
        assert!(written.iter().all(|&byte| byte == written[0]));
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn repository_dirs_differ_by_suite_and_hide_credentials() {
        let cache = MetadataCache::new(Path::new("/c"), "p");
        let a = cache.repository_dir("https://user:pw@host/debian", "bookworm");
        let b = cache.repository_dir("https://user:pw@host/debian", "bookworm-updates");
        assert_ne!(a, b);
        assert!(!a.display().to_string().contains("pw"), "{}", a.display());
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x/InRelease");
        write_atomic(&path, b"data").unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), b"data");
        let names: Vec<_> = fs_err::read_dir(dir.path().join("x")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn changed_index_is_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MetadataCache::new(dir.path(), "p");
        let digest = sha256_hex(b"Package: a\n");
        write_atomic(&cache.index_path(&digest), b"Package: b\n").unwrap();
        assert!(cache.read_index(&digest, 11).is_none());
        write_atomic(&cache.index_path(&digest), b"Package: a\n").unwrap();
        assert!(cache.read_index(&digest, 11).is_some());
    }

    #[test]
    fn changed_index_is_not_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = MetadataCache::new(dir.path(), "p");
        let digest = sha256_hex(b"Package: a\n");
        let read_all = |reader: &mut dyn Read| {
            let mut text = String::new();
            reader.read_to_string(&mut text).map(|_| text).unwrap()
        };
        assert!(cache.parse_index(&digest, 11, read_all).is_none());
        write_atomic(&cache.index_path(&digest), b"Package: b\n").unwrap();
        assert!(cache.parse_index(&digest, 11, read_all).is_none());
        write_atomic(&cache.index_path(&digest), b"Package: a\n").unwrap();
        assert_eq!(
            cache.parse_index(&digest, 11, read_all).as_deref(),
            Some("Package: a\n")
        );
        let read_nothing = |_: &mut dyn Read| ();
        assert_eq!(cache.parse_index(&digest, 11, read_nothing), Some(()));
        assert!(cache.parse_index(&digest, 12, read_nothing).is_none());
    }
}
