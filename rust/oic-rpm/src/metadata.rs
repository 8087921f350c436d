//! Loading one RPM repository's metadata: repomd.xml, its signature, and primary.xml.
//!
//! The cache shares the provider folder of [`MetadataCache`] with the Debian metadata:
//!
//! ```text
//! {cache_dir}/metadata/v1/{provider-id}/
//! ├── repos/{host_path_repodata-HASH}/
//! │   ├── repomd.xml, repomd.xml.asc   stored only after verification
//! │   └── validators.json              ETag and Last-Modified, for conditional requests
//! ├── keys/{sha256 of URL}             signing keys fetched by URL
//! └── rpm-by-repomd/{sha256 of repomd.xml}/{file name}
//!                                      repodata files as downloaded, checked against repomd.xml
//! ```
//!
//! A later build sends the cached validators with its request for repomd.xml. An unchanged file
//! costs one `304 Not Modified`. The cached repomd.xml is verified again like a fresh one, and
//! cached repodata files are checked against its checksums every time they are read.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use oic_config::Repository;
use oic_repo::cache::{sha256_hex, write_atomic};
use oic_repo::fetch::{redact, Fetched};
use oic_repo::glob::{glob_match, is_glob};
use oic_repo::{load_keyring, Fetcher, MetadataCache, MetadataSource, SignatureStatus, Validators};
use oic_signature::{verify_detached, Keyring};

use crate::checksum::{ChecksumAlgorithm, HashingReader};
use crate::compression::Compression;
use crate::error::RpmError;
use crate::package::RpmPackage;
use crate::primary::parse_primary;
use crate::repomd::{Repomd, RepomdData};

/// The largest decompressed repodata file accepted when repomd.xml gives no `open-size`.
const MAX_REPODATA_BYTES: u64 = 4 << 30;

/// When a repository with `gpgCheck` on must sign its repomd.xml.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RepomdSignature {
    /// `repodata/repomd.xml.asc` must exist and verify.
    #[default]
    Required,
    /// An existing `repomd.xml.asc` must verify, but a repository without one is accepted with
    /// a warning, as dnf does with `repo_gpgcheck=0`. Only the package signatures then protect
    /// the packages, and the package list itself is not authenticated.
    IfPublished,
}

/// The settings of the RPM metadata stage, besides the repositories.
#[derive(Debug, Clone)]
pub struct RpmMetadataOptions {
    pub cache_dir: PathBuf,
    pub provider_id: String,
    /// The package architectures kept, such as `x86_64` and `noarch`.
    pub architectures: Vec<String>,
    /// Use only the cache; fail when something is missing from it.
    pub offline: bool,
    pub repomd_signature: RepomdSignature,
}

impl RpmMetadataOptions {
    /// Returns options for an image of `architecture` that also keeps `noarch` packages.
    pub fn new(cache_dir: &Path, provider_id: &str, architecture: &str) -> Self {
        Self {
            cache_dir: cache_dir.to_owned(),
            provider_id: provider_id.to_owned(),
            architectures: vec![architecture.to_owned(), "noarch".to_owned()],
            offline: false,
            repomd_signature: RepomdSignature::Required,
        }
    }
}

/// The verified metadata of one RPM repository.
#[derive(Debug, Clone)]
pub struct RpmRepoMetadata {
    pub repository: Repository,
    /// The name for remote repositories, and for local folders the name with the digest of
    /// their repomd.xml, so that a folder is known by its content.
    pub id: String,
    /// The URL that package locations are relative to (`file://` for local folders).
    pub base_url: String,
    /// The SHA-256 of repomd.xml, which names the cached repodata files.
    pub repomd_sha256: String,
    /// The `filelists` entry of repomd.xml, read only when a file dependency needs it.
    pub filelists: Option<RepomdData>,
    /// The cache folder of this repomd.xml's repodata files, `None` for local repositories.
    pub cached_dir: Option<PathBuf>,
    pub revision: Option<String>,
    pub signature: SignatureStatus,
    pub source: MetadataSource,
    /// The repository's keys, for package signatures; `None` when `gpgCheck` is false.
    pub keyring: Option<Keyring>,
    pub packages: Vec<RpmPackage>,
}

impl RpmRepoMetadata {
    /// Returns the URL of a package's file.
    pub fn package_url(&self, package: &RpmPackage) -> String {
        let base = package.location_base.as_deref().unwrap_or(&self.base_url);
        format!("{}/{}", base.trim_end_matches('/'), package.location)
    }
}

enum Location {
    Remote(String),
    Local(PathBuf),
}

impl Location {
    fn of(repository: &Repository) -> Result<Self, RpmError> {
        match (&repository.url, &repository.path) {
            (Some(url), _) if url.starts_with("file://") => {
                Ok(Self::Local(PathBuf::from(&url["file://".len()..])))
            }
            (Some(url), _) => Ok(Self::Remote(url.trim_end_matches('/').to_owned())),
            (None, Some(path)) => Ok(Self::Local(path.clone())),
            (None, None) => Err(RpmError::NoLocation {
                repository: repository.name.clone(),
            }),
        }
    }

    fn base_url(&self) -> String {
        match self {
            Self::Remote(url) => url.clone(),
            Self::Local(path) => format!("file://{}", path.display()),
        }
    }
}

/// Loads the metadata of one repository on a runtime of its own.
pub fn load_repository_blocking(
    repository: &Repository,
    options: &RpmMetadataOptions,
) -> Result<RpmRepoMetadata, RpmError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| RpmError::Read {
            path: PathBuf::from("tokio runtime"),
            source,
        })?;
    let fetcher = Fetcher::new()?;
    let cache = MetadataCache::new(&options.cache_dir, &options.provider_id);
    runtime.block_on(oic_cancel::or_cancelled(load_repository(
        repository, &fetcher, &cache, options,
    )))
}

/// Loads, verifies and parses the metadata of one repository.
pub async fn load_repository(
    repository: &Repository,
    fetcher: &Fetcher,
    cache: &MetadataCache,
    options: &RpmMetadataOptions,
) -> Result<RpmRepoMetadata, RpmError> {
    let location = Location::of(repository)?;
    let base_url = location.base_url();
    let repo_dir = match &location {
        Location::Remote(url) => Some(cache.repository_dir(url, "repodata")),
        Location::Local(_) => None,
    };
    let keyring = if repository.gpg_check {
        Some(load_keyring(repository, fetcher, cache, options.offline).await?)
    } else {
        tracing::warn!(repository = %repository.name, "signature check skipped: gpgCheck is false");
        None
    };

    let files = repomd_files(repository, &base_url, repo_dir.as_deref(), fetcher, options).await?;
    let signature = authenticate(repository, &files, keyring.as_ref(), options)?;
    if let (Some(dir), MetadataSource::Network) = (&repo_dir, files.source) {
        store_repomd(dir, &files)?;
    }

    let repomd_sha256 = sha256_hex(&files.repomd);
    let repomd = Repomd::parse(&files.repomd, &files.url)?;
    let primary = repomd
        .find("primary")
        .ok_or_else(|| RpmError::PrimaryNotListed {
            repository: repository.name.clone(),
            url: files.url.clone(),
        })?;
    let cached_dir = repo_dir
        .is_some()
        .then(|| cache.root().join("rpm-by-repomd").join(&repomd_sha256));
    let request = RepodataRequest {
        repository,
        base_url: &base_url,
        data: primary,
        cached_dir: cached_dir.as_deref(),
    };
    let bytes = repodata_bytes(&request, fetcher, options).await?;
    let url = format!("{}/{}", redact(&base_url), primary.location);
    let data = primary.clone();
    let packages = tokio::task::spawn_blocking(move || {
        read_checked(&bytes, &data, &url, |reader| parse_primary(reader, &url))
    })
    .await
    .expect("the primary parser does not panic")?;
    let packages = filter_packages(repository, options, packages);

    let id = match &location {
        Location::Remote(_) => repository.name.clone(),
        Location::Local(_) => format!("{}@sha256:{}", repository.name, &repomd_sha256[..16]),
    };
    tracing::debug!(repository = %id, packages = packages.len(), source = ?files.source, "metadata loaded");
    Ok(RpmRepoMetadata {
        repository: repository.clone(),
        id,
        base_url,
        repomd_sha256,
        filelists: repomd.find("filelists").cloned(),
        cached_dir,
        revision: repomd.revision,
        signature,
        source: files.source,
        keyring,
        packages,
    })
}

/// repomd.xml and its signature as read, before verification.
struct RepomdFiles {
    repomd: Vec<u8>,
    signature: Option<Vec<u8>>,
    validators: Validators,
    source: MetadataSource,
    /// The URL of repomd.xml, without credentials.
    url: String,
}

async fn repomd_files(
    repository: &Repository,
    base_url: &str,
    repo_dir: Option<&Path>,
    fetcher: &Fetcher,
    options: &RpmMetadataOptions,
) -> Result<RepomdFiles, RpmError> {
    let url = format!("{base_url}/repodata/repomd.xml");
    match repo_dir {
        Some(dir) if options.offline => cached_repomd(repository, dir, &url),
        Some(dir) => fetch_repomd(repository, dir, &url, fetcher).await,
        None => {
            let mut files = fetch_repomd_plain(repository, &url, fetcher, None).await?;
            files.source = MetadataSource::Local;
            Ok(files)
        }
    }
}

fn cached_repomd(repository: &Repository, dir: &Path, url: &str) -> Result<RepomdFiles, RpmError> {
    let repomd =
        MetadataCache::read(&dir.join("repomd.xml")).ok_or_else(|| RpmError::OfflineMiss {
            repository: repository.name.clone(),
            what: redact(url),
        })?;
    tracing::info!(repository = %repository.name, "using cached metadata");
    Ok(RepomdFiles {
        repomd,
        signature: MetadataCache::read(&dir.join("repomd.xml.asc")),
        validators: MetadataCache::read_validators(dir),
        source: MetadataSource::Cache,
        url: redact(url),
    })
}

/// Fetches repomd.xml with the cached validators, so that an unchanged file costs one 304.
async fn fetch_repomd(
    repository: &Repository,
    dir: &Path,
    url: &str,
    fetcher: &Fetcher,
) -> Result<RepomdFiles, RpmError> {
    let cached = MetadataCache::read(&dir.join("repomd.xml"));
    let validators = MetadataCache::read_validators(dir);
    let conditional = cached.as_ref().map(|_| &validators);
    let response = match fetcher.get(url, conditional).await {
        Ok(response) => response,
        Err(error @ oic_repo::RepoError::Fetch { .. }) if cached.is_some() => {
            // The cached copy is verified again like a fresh one, so an unreachable server
            // does not stop a build that has everything cached.
            tracing::warn!(repository = %repository.name, %error, "using cached metadata");
            return cached_repomd(repository, dir, url);
        }
        Err(error) => return Err(error.into()),
    };
    match (response, cached) {
        (Fetched::NotModified, Some(repomd)) => {
            tracing::debug!(repository = %repository.name, "repomd.xml unchanged (HTTP 304)");
            Ok(RepomdFiles {
                repomd,
                signature: MetadataCache::read(&dir.join("repomd.xml.asc")),
                validators,
                source: MetadataSource::Revalidated,
                url: redact(url),
            })
        }
        (Fetched::Body { bytes, validators }, _) => {
            fetch_repomd_plain(repository, url, fetcher, Some((bytes, validators))).await
        }
        (Fetched::NotModified | Fetched::NotFound, _) => Err(RpmError::NoRepomd {
            repository: repository.name.clone(),
            url: redact(url),
        }),
    }
}

/// Fetches repomd.xml (unless `downloaded` already contains it) and its signature.
async fn fetch_repomd_plain(
    repository: &Repository,
    url: &str,
    fetcher: &Fetcher,
    downloaded: Option<(Vec<u8>, Validators)>,
) -> Result<RepomdFiles, RpmError> {
    let (repomd, validators) = match downloaded {
        Some(downloaded) => downloaded,
        None => match fetcher.get(url, None).await? {
            Fetched::Body { bytes, validators } => (bytes, validators),
            Fetched::NotFound | Fetched::NotModified => {
                return Err(RpmError::NoRepomd {
                    repository: repository.name.clone(),
                    url: redact(url),
                })
            }
        },
    };
    let signature = match fetcher.get(&format!("{url}.asc"), None).await? {
        Fetched::Body { bytes, .. } => Some(bytes),
        Fetched::NotFound | Fetched::NotModified => None,
    };
    Ok(RepomdFiles {
        repomd,
        signature,
        validators,
        source: MetadataSource::Network,
        url: redact(url),
    })
}

fn authenticate(
    repository: &Repository,
    files: &RepomdFiles,
    keyring: Option<&Keyring>,
    options: &RpmMetadataOptions,
) -> Result<SignatureStatus, RpmError> {
    let Some(keyring) = keyring else {
        return Ok(SignatureStatus::Skipped);
    };
    let Some(signature) = &files.signature else {
        if options.repomd_signature == RepomdSignature::IfPublished {
            tracing::warn!(repository = %repository.name, "repomd.xml is not signed");
            return Ok(SignatureStatus::Skipped);
        }
        return Err(RpmError::MissingRepomdSignature {
            repository: repository.name.clone(),
            url: format!("{}.asc", files.url),
        });
    };
    let verified = verify_detached(&files.repomd, signature, keyring).map_err(|source| {
        RpmError::Signature {
            repository: repository.name.clone(),
            source: Box::new(source),
        }
    })?;
    let key = verified.signing_key();
    tracing::debug!(repository = %repository.name, key = %key.fingerprint, "repomd.xml verified");
    Ok(SignatureStatus::Verified {
        fingerprint: key.fingerprint.clone(),
        key: verified.key_label.clone(),
    })
}

fn store_repomd(dir: &Path, files: &RepomdFiles) -> Result<(), RpmError> {
    write_atomic(&dir.join("repomd.xml"), &files.repomd)?;
    let signature_path = dir.join("repomd.xml.asc");
    match &files.signature {
        Some(signature) => write_atomic(&signature_path, signature)?,
        None => {
            let _ = fs_err::remove_file(&signature_path);
        }
    }
    MetadataCache::write_validators(dir, &files.validators)?;
    Ok(())
}

/// One repodata file that repomd.xml lists, such as primary.xml or filelists.xml.
pub(crate) struct RepodataRequest<'a> {
    pub(crate) repository: &'a Repository,
    pub(crate) base_url: &'a str,
    pub(crate) data: &'a RepomdData,
    /// The cache folder of this repomd.xml, `None` for local repositories.
    pub(crate) cached_dir: Option<&'a Path>,
}

/// Returns a repodata file as stored (compressed), checked against repomd.xml. A cached copy
/// is checked the same way and fetched again when it does not match.
pub(crate) async fn repodata_bytes(
    request: &RepodataRequest<'_>,
    fetcher: &Fetcher,
    options: &RpmMetadataOptions,
) -> Result<Vec<u8>, RpmError> {
    let url = format!("{}/{}", request.base_url, request.data.location);
    let kind = &request.data.kind;
    let file_name = request.data.location.rsplit('/').next().unwrap_or(kind);
    let cached_path = request.cached_dir.map(|dir| dir.join(file_name));
    if let Some(bytes) = cached_path.as_deref().and_then(MetadataCache::read) {
        match check_stored(&bytes, request.data, &redact(&url)) {
            Ok(()) => {
                tracing::debug!(url = %redact(&url), kind, "using cached repodata file");
                return Ok(bytes);
            }
            Err(error) => {
                tracing::warn!(%error, kind, "cached repodata file is damaged: fetching it again");
            }
        }
    }
    if options.offline && cached_path.is_some() {
        return Err(RpmError::OfflineMiss {
            repository: request.repository.name.clone(),
            what: redact(&url),
        });
    }
    let bytes = match fetcher.get(&url, None).await? {
        Fetched::Body { bytes, .. } => bytes,
        Fetched::NotFound | Fetched::NotModified => {
            let message = "not found (HTTP 404), but repomd.xml lists it".to_owned();
            return Err(oic_repo::RepoError::Fetch {
                url: redact(&url),
                message,
            }
            .into());
        }
    };
    check_stored(&bytes, request.data, &redact(&url))?;
    if let Some(path) = cached_path {
        write_atomic(&path, &bytes)?;
    }
    Ok(bytes)
}

/// Checks a repodata file as stored against the size and checksum that repomd.xml gives.
fn check_stored(bytes: &[u8], data: &RepomdData, url: &str) -> Result<(), RpmError> {
    let actual_size = bytes.len() as u64;
    if let Some(expected) = data.size.filter(|&size| size != actual_size) {
        return Err(size_error(url, expected, actual_size));
    }
    let checksum = data.stored_checksum(url)?;
    let actual = checksum.algorithm.digest_hex(bytes);
    if actual != checksum.value {
        return Err(checksum_error(
            url,
            checksum.algorithm,
            checksum.value,
            actual,
        ));
    }
    Ok(())
}

/// Decompresses a repodata file and parses it with `parse` in one pass, and checks the
/// decompressed size and checksum against repomd.xml. A mismatch wins over a parse error,
/// because it explains it.
pub(crate) fn read_checked<T>(
    bytes: &[u8],
    data: &RepomdData,
    url: &str,
    parse: impl FnOnce(&mut dyn std::io::BufRead) -> Result<T, RpmError>,
) -> Result<T, RpmError> {
    let open_checksum = data.open_checksum(url)?;
    let algorithm = open_checksum
        .as_ref()
        .map_or(ChecksumAlgorithm::Sha256, |checksum| checksum.algorithm);
    let limit = data.open_size.map_or(MAX_REPODATA_BYTES, |size| size + 1);
    let decompressed = Compression::of(&data.location, url)?
        .reader(bytes, url)?
        .take(limit);
    let mut hashing = HashingReader::new(decompressed, algorithm);
    let parsed = parse(&mut BufReader::new(&mut hashing));
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|error| RpmError::Decompress {
        url: url.to_owned(),
        message: error.to_string(),
    })?;
    let (actual, actual_size) = hashing.finish();
    if let Some(expected) = data.open_size.filter(|&size| size != actual_size) {
        return Err(size_error(
            &format!("{url} (decompressed)"),
            expected,
            actual_size,
        ));
    }
    if let Some(expected) = open_checksum.filter(|checksum| checksum.value != actual) {
        let url = format!("{url} (decompressed)");
        return Err(checksum_error(&url, algorithm, expected.value, actual));
    }
    parsed
}

fn size_error(url: &str, expected: u64, actual: u64) -> RpmError {
    RpmError::Size {
        url: url.to_owned(),
        source_name: "repomd.xml".to_owned(),
        expected,
        actual,
    }
}

fn checksum_error(
    url: &str,
    algorithm: ChecksumAlgorithm,
    expected: String,
    actual: String,
) -> RpmError {
    RpmError::Checksum {
        url: url.to_owned(),
        source_name: "repomd.xml".to_owned(),
        algorithm: algorithm.name().to_owned(),
        expected,
        actual,
    }
}

/// Keeps the packages of the wanted architectures that the repository's `allowPackages`
/// admits: exact names, or globs when an entry contains `*`, `?` or `[`.
fn filter_packages(
    repository: &Repository,
    options: &RpmMetadataOptions,
    packages: Vec<RpmPackage>,
) -> Vec<RpmPackage> {
    let admits = |name: &str| {
        repository.allow_packages.is_empty()
            || repository.allow_packages.iter().any(|pattern| {
                if is_glob(pattern) {
                    glob_match(pattern, name)
                } else {
                    pattern == name
                }
            })
    };
    packages
        .into_iter()
        .filter(|package| options.architectures.contains(&package.arch))
        .filter(|package| admits(&package.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_checked(
        bytes: &[u8],
        data: &RepomdData,
        url: &str,
    ) -> Result<Vec<RpmPackage>, RpmError> {
        read_checked(bytes, data, url, |reader| parse_primary(reader, url))
    }

    const PRIMARY: &str = r#"<metadata packages="1"><package type="rpm"><name>a</name>
<arch>noarch</arch><version epoch="0" ver="1" rel="1"/><checksum type="sha256">00</checksum>
<location href="a.rpm"/></package></metadata>"#;

    fn entry(location: &str, bytes: &[u8]) -> RepomdData {
        RepomdData {
            kind: "primary".to_owned(),
            location: location.to_owned(),
            checksum_type: "sha256".to_owned(),
            checksum: sha256_hex(bytes),
            open_checksum_type: Some("sha256".to_owned()),
            open_checksum: Some(sha256_hex(PRIMARY.as_bytes())),
            size: Some(bytes.len() as u64),
            open_size: Some(PRIMARY.len() as u64),
        }
    }

    #[test]
    fn zstd_primary_is_read() {
        let compressed = zstd::encode_all(PRIMARY.as_bytes(), 3).unwrap();
        let data = entry("repodata/x-primary.xml.zst", &compressed);
        check_stored(&compressed, &data, "u").unwrap();
        let packages = parse_checked(&compressed, &data, "u").unwrap();
        assert_eq!(packages[0].name, "a");
    }

    #[test]
    fn open_checksum_mismatch_wins_over_parse() {
        let compressed = zstd::encode_all(PRIMARY.as_bytes(), 3).unwrap();
        let mut data = entry("repodata/x-primary.xml.zst", &compressed);
        data.open_checksum = Some("0".repeat(64));
        let error = parse_checked(&compressed, &data, "u").unwrap_err();
        assert!(matches!(error, RpmError::Checksum { .. }), "{error}");
        assert!(error.to_string().contains("(decompressed)"), "{error}");
    }

    #[test]
    fn oversized_decompressed_primary_is_rejected() {
        let compressed = zstd::encode_all(PRIMARY.as_bytes(), 3).unwrap();
        let mut data = entry("repodata/x-primary.xml.zst", &compressed);
        data.open_size = Some(10);
        let error = parse_checked(&compressed, &data, "u").unwrap_err();
        assert!(matches!(error, RpmError::Size { .. }), "{error}");
    }
}
