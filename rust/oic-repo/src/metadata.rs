//! Loading one repository's metadata: Release, its signature, and the Packages indexes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use oic_config::provider::{embedded_key, KeyRef};
use oic_config::Repository;
use oic_deb::{IndexError, Package, Release};
use oic_signature::{verify_cleartext, verify_detached, KeySource, Keyring};

use crate::cache::{sha256_hex, write_atomic, MetadataCache};
use crate::error::RepoError;
use crate::fetch::{redact, Fetched, Fetcher, Validators};
use oic_deb::glob::{glob_match, is_glob};

/// The settings of the metadata stage besides the repositories.
#[derive(Debug, Clone)]
pub struct MetadataOptions {
    pub cache_dir: PathBuf,
    pub provider_id: String,
    /// The Debian architecture of the image, such as `amd64`.
    pub architecture: String,
    /// Use only the cache; fail when something is missing from it.
    pub offline: bool,
}

/// The authentication of a repository's Release file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum SignatureStatus {
    /// Verified by this key.
    Verified { fingerprint: String, key: String },
    /// Not checked, because the repository sets `gpgCheck: false`.
    Skipped,
}

/// The origin of a repository's metadata in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataSource {
    /// Downloaded now.
    Network,
    /// Unchanged upstream (HTTP 304): the cached copy was used.
    Revalidated,
    /// Taken from the cache without asking the server (offline).
    Cache,
    /// Read from a local folder.
    Local,
}

/// The verified metadata of one repository.
#[derive(Debug, Clone)]
pub struct RepoMetadata {
    pub repository: Repository,
    /// A stable identity: the name for remote repositories, and for local folders the name with
    /// the digest of their Release file, so that a folder is known by its content.
    pub id: String,
    /// The URL that pool paths are relative to (`file://` for local folders).
    pub base_url: String,
    pub release: Release,
    pub signature: SignatureStatus,
    pub source: MetadataSource,
    pub packages: Vec<Package>,
}

enum Location {
    Remote(String),
    Local(PathBuf),
}

impl Location {
    fn of(repository: &Repository) -> Result<Self, RepoError> {
        match (&repository.url, &repository.path) {
            (Some(url), _) if url.starts_with("file://") => {
                Ok(Self::Local(PathBuf::from(&url["file://".len()..])))
            }
            (Some(url), _) => Ok(Self::Remote(url.trim_end_matches('/').to_owned())),
            (None, Some(path)) => Ok(Self::Local(path.clone())),
            (None, None) => Err(RepoError::NoLocation {
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

/// Loads, verifies and parses the metadata of one repository.
pub(crate) async fn load_repository(
    repository: &Repository,
    fetcher: &Fetcher,
    cache: &MetadataCache,
    options: &MetadataOptions,
) -> Result<RepoMetadata, RepoError> {
    let location = Location::of(repository)?;
    let suite = repository
        .suite
        .clone()
        .unwrap_or_else(|| "stable".to_owned());
    let dists = format!("{}/dists/{suite}", location.base_url());
    let repo_dir = match &location {
        Location::Remote(url) => Some(cache.repository_dir(url, &suite)),
        Location::Local(_) => None,
    };

    let keyring = if repository.gpg_check {
        Some(load_keyring(repository, fetcher, cache, options.offline).await?)
    } else {
        tracing::warn!(repository = %repository.name, "signature check skipped: gpgCheck is false");
        None
    };
    let files = release_files(
        repository,
        &location,
        &dists,
        repo_dir.as_deref(),
        fetcher,
        options,
    )
    .await?;
    let (text, signature) = authenticate(repository, &files, keyring.as_ref())?;
    if let (Some(dir), MetadataSource::Network) = (&repo_dir, files.source) {
        store_release(dir, &files)?;
    }

    let release = Release::parse(&text).map_err(|source| RepoError::Release {
        repository: repository.name.clone(),
        source: Box::new(source),
    })?;
    check_expiry(repository, &release)?;

    let is_local = matches!(location, Location::Local(_));
    let packages = load_indexes(
        repository, &release, &dists, is_local, fetcher, cache, options,
    )
    .await?;
    let packages = filter_allowed(repository, packages);

    let id = match &location {
        Location::Remote(_) => repository.name.clone(),
        Location::Local(_) => format!(
            "{}@sha256:{}",
            repository.name,
            &sha256_hex(text.as_bytes())[..16]
        ),
    };
    tracing::debug!(repository = %id, packages = packages.len(), source = ?files.source, "metadata loaded");
    Ok(RepoMetadata {
        repository: repository.clone(),
        id,
        base_url: location.base_url(),
        release,
        signature,
        source: files.source,
        packages,
    })
}

/// Loads the signing keys of `repository`: embedded, local files, or URLs fetched once and kept in
/// `cache` for offline builds. With `offline`, URL keys come from the cache only.
pub async fn load_keyring(
    repository: &Repository,
    fetcher: &Fetcher,
    cache: &MetadataCache,
    offline: bool,
) -> Result<Keyring, RepoError> {
    let key_error = |source| RepoError::Key {
        repository: repository.name.clone(),
        source: Box::new(source),
    };
    let mut keyring = Keyring::new();
    for key in &repository.keys {
        match key {
            KeyRef::Embedded(name) => {
                let bytes = embedded_key(name).unwrap_or_default();
                let source = KeySource::Embedded {
                    name: name.clone(),
                    bytes: bytes.into(),
                };
                keyring
                    .add_source(&source, |_| Ok::<_, std::io::Error>(Vec::new()))
                    .map_err(key_error)?;
            }
            KeyRef::Path(path) => {
                keyring.add_file(path).map_err(key_error)?;
            }
            KeyRef::Url(url) => {
                let bytes = fetch_key(repository, url, fetcher, cache, offline).await?;
                keyring.add_bytes(&bytes, url).map_err(key_error)?;
            }
        }
    }
    Ok(keyring)
}

/// Fetches a key by URL, keeping a copy in the cache for offline builds.
async fn fetch_key(
    repository: &Repository,
    url: &str,
    fetcher: &Fetcher,
    cache: &MetadataCache,
    offline: bool,
) -> Result<Vec<u8>, RepoError> {
    let path = cache.key_path(url);
    if offline {
        return MetadataCache::read(&path).ok_or_else(|| RepoError::OfflineMiss {
            repository: repository.name.clone(),
            what: format!("key {}", redact(url)),
        });
    }
    match fetcher.get(url, None).await? {
        Fetched::Body { bytes, .. } => {
            write_atomic(&path, &bytes)?;
            Ok(bytes)
        }
        Fetched::NotFound | Fetched::NotModified => {
            let message = "not found (HTTP 404)".to_owned();
            Err(RepoError::Fetch {
                url: redact(url),
                message,
            })
        }
    }
}

/// The signed release files as read, before verification.
struct ReleaseFiles {
    in_release: Option<Vec<u8>>,
    release: Option<Vec<u8>>,
    release_gpg: Option<Vec<u8>>,
    validators: Validators,
    source: MetadataSource,
    url: String,
}

async fn release_files(
    repository: &Repository,
    location: &Location,
    dists: &str,
    repo_dir: Option<&Path>,
    fetcher: &Fetcher,
    options: &MetadataOptions,
) -> Result<ReleaseFiles, RepoError> {
    match (location, repo_dir) {
        (Location::Remote(_), Some(dir)) if options.offline => {
            cached_release_files(repository, dir, dists)
        }
        (Location::Remote(_), Some(dir)) => {
            fetch_release_files(repository, dir, dists, fetcher).await
        }
        _ => {
            let mut files = fetch_release_files_plain(repository, dists, fetcher).await?;
            files.source = MetadataSource::Local;
            Ok(files)
        }
    }
}

fn cached_release_files(
    repository: &Repository,
    dir: &Path,
    dists: &str,
) -> Result<ReleaseFiles, RepoError> {
    let in_release = MetadataCache::read(&dir.join("InRelease"));
    let release = MetadataCache::read(&dir.join("Release"));
    if in_release.is_none() && release.is_none() {
        let what = format!("{}/InRelease", redact(dists));
        return Err(RepoError::OfflineMiss {
            repository: repository.name.clone(),
            what,
        });
    }
    tracing::info!(repository = %repository.name, "offline: using cached metadata");
    Ok(ReleaseFiles {
        in_release,
        release,
        release_gpg: MetadataCache::read(&dir.join("Release.gpg")),
        validators: MetadataCache::read_validators(dir),
        source: MetadataSource::Cache,
        url: redact(dists),
    })
}

/// Fetches InRelease with the cached validators, so an unchanged file costs one 304.
async fn fetch_release_files(
    repository: &Repository,
    dir: &Path,
    dists: &str,
    fetcher: &Fetcher,
) -> Result<ReleaseFiles, RepoError> {
    let cached = MetadataCache::read(&dir.join("InRelease"));
    let validators = MetadataCache::read_validators(dir);
    let conditional = cached.as_ref().map(|_| &validators);
    let response = match fetcher
        .get(&format!("{dists}/InRelease"), conditional)
        .await
    {
        Ok(response) => response,
        Err(error @ RepoError::Fetch { .. }) => {
            // An unreachable server does not stop a build that has everything cached: the
            // cached copy is verified again like a fresh one, and Valid-Until still applies.
            let has_cache = cached.is_some() || dir.join("Release").exists();
            if !has_cache {
                return Err(error);
            }
            tracing::warn!(repository = %repository.name, %error, "using cached metadata");
            return cached_release_files(repository, dir, dists);
        }
        Err(error) => return Err(error),
    };
    match response {
        Fetched::NotModified if cached.is_some() => {
            tracing::debug!(repository = %repository.name, "InRelease unchanged (HTTP 304)");
            Ok(ReleaseFiles {
                in_release: cached,
                release: None,
                release_gpg: None,
                validators,
                source: MetadataSource::Revalidated,
                url: redact(dists),
            })
        }
        Fetched::Body { bytes, validators } => Ok(ReleaseFiles {
            in_release: Some(bytes),
            release: None,
            release_gpg: None,
            validators,
            source: MetadataSource::Network,
            url: redact(dists),
        }),
        Fetched::NotModified | Fetched::NotFound => {
            fetch_release_files_plain(repository, dists, fetcher).await
        }
    }
}

/// Fetches InRelease, or Release and Release.gpg, without conditional requests.
async fn fetch_release_files_plain(
    repository: &Repository,
    dists: &str,
    fetcher: &Fetcher,
) -> Result<ReleaseFiles, RepoError> {
    let body = |fetched| match fetched {
        Fetched::Body { bytes, validators } => Some((bytes, validators)),
        Fetched::NotFound | Fetched::NotModified => None,
    };
    let mut files = ReleaseFiles {
        in_release: None,
        release: None,
        release_gpg: None,
        validators: Validators::default(),
        source: MetadataSource::Network,
        url: redact(dists),
    };
    if let Some((bytes, validators)) = body(fetcher.get(&format!("{dists}/InRelease"), None).await?)
    {
        files.in_release = Some(bytes);
        files.validators = validators;
        return Ok(files);
    }
    let Some((release, validators)) = body(fetcher.get(&format!("{dists}/Release"), None).await?)
    else {
        return Err(RepoError::NoRelease {
            repository: repository.name.clone(),
            url: redact(dists),
        });
    };
    files.release = Some(release);
    files.validators = validators;
    files.release_gpg =
        body(fetcher.get(&format!("{dists}/Release.gpg"), None).await?).map(|(b, _)| b);
    Ok(files)
}

/// Verifies the release files and returns the Release text they authenticate.
fn authenticate(
    repository: &Repository,
    files: &ReleaseFiles,
    keyring: Option<&Keyring>,
) -> Result<(String, SignatureStatus), RepoError> {
    let signature_error = |source| RepoError::Signature {
        repository: repository.name.clone(),
        source: Box::new(source),
    };
    let Some(keyring) = keyring else {
        let text = match (&files.in_release, &files.release) {
            (Some(in_release), _) => cleartext_body(in_release),
            (None, Some(release)) => String::from_utf8_lossy(release).into_owned(),
            (None, None) => unreachable!("release_files returns one of them"),
        };
        return Ok((text, SignatureStatus::Skipped));
    };

    let verified = match (&files.in_release, &files.release, &files.release_gpg) {
        (Some(in_release), _, _) => {
            verify_cleartext(in_release, keyring).map_err(signature_error)?
        }
        (None, Some(release), Some(signature)) => {
            verify_detached(release, signature, keyring).map_err(signature_error)?
        }
        (None, Some(_), None) => {
            let url = files.url.clone();
            return Err(RepoError::MissingSignature {
                repository: repository.name.clone(),
                url,
            });
        }
        (None, None, _) => unreachable!("release_files returns one of them"),
    };
    let key = verified.subkey.as_ref().unwrap_or(&verified.primary);
    tracing::debug!(repository = %repository.name, key = %key.fingerprint, "signature verified");
    let status = SignatureStatus::Verified {
        fingerprint: key.fingerprint.clone(),
        key: verified.key_label.clone(),
    };
    Ok((
        String::from_utf8_lossy(&verified.signed_data).into_owned(),
        status,
    ))
}

fn store_release(dir: &Path, files: &ReleaseFiles) -> Result<(), RepoError> {
    for (name, bytes) in [
        ("InRelease", &files.in_release),
        ("Release", &files.release),
        ("Release.gpg", &files.release_gpg),
    ] {
        if let Some(bytes) = bytes {
            write_atomic(&dir.join(name), bytes)?;
        }
    }
    MetadataCache::write_validators(dir, &files.validators)
}

/// Extracts the text of a clear-signed message without checking it, for `gpgCheck: false`.
fn cleartext_body(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines();
    let mut body = Vec::new();
    if text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
        lines
            .by_ref()
            .take_while(|line| !line.trim().is_empty())
            .for_each(drop);
    }
    for line in lines {
        if line.starts_with("-----BEGIN PGP SIGNATURE-----") {
            break;
        }
        body.push(line.strip_prefix("- ").unwrap_or(line));
    }
    body.join("\n")
}

fn check_expiry(repository: &Repository, release: &Release) -> Result<(), RepoError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match release.valid_until {
        Some(valid_until) if release.is_expired(now) => Err(RepoError::Expired {
            repository: repository.name.clone(),
            valid_until: format_unix(valid_until),
        }),
        _ => Ok(()),
    }
}

fn format_unix(seconds: i64) -> String {
    // Days since 1970-01-01 to a civil date, by the algorithm of Howard Hinnant's `civil_from_days`.
    let days = seconds.div_euclid(86_400);
    let time = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// The index files of one repository: each component for the image's architecture, and for
/// `all` when the repository keeps `Architecture: all` packages in separate indexes.
fn index_paths(
    repository: &Repository,
    release: &Release,
    architecture: &str,
) -> Vec<(String, String, bool)> {
    let components = if repository.components.is_empty() {
        vec!["main".to_owned()]
    } else {
        repository.components.clone()
    };
    let separate_all = !release
        .no_support_for_architecture_all
        .iter()
        .any(|t| t == "Packages");
    let mut paths = Vec::new();
    for component in components {
        paths.push((
            component.clone(),
            format!("{component}/binary-{architecture}/Packages"),
            true,
        ));
        if separate_all {
            paths.push((
                component.clone(),
                format!("{component}/binary-all/Packages"),
                false,
            ));
        }
    }
    paths
}

#[allow(clippy::too_many_arguments)]
async fn load_indexes(
    repository: &Repository,
    release: &Release,
    dists: &str,
    is_local: bool,
    fetcher: &Fetcher,
    cache: &MetadataCache,
    options: &MetadataOptions,
) -> Result<Vec<Package>, RepoError> {
    let mut packages = Vec::new();
    for (component, path, required) in index_paths(repository, release, &options.architecture) {
        let request = IndexRequest {
            repository,
            release,
            dists,
            path: &path,
            component: &component,
            is_local,
        };
        let Some(parsed) = load_index(&request, required, fetcher, cache, options).await? else {
            continue;
        };
        let mut parsed = parsed.map_err(|source| RepoError::Index {
            url: format!("{}/{path}", redact(dists)),
            source: Box::new(source),
        })?;
        let architecture = &options.architecture;
        parsed.retain(|package| {
            package.architecture == *architecture || package.architecture == "all"
        });
        if packages.is_empty() {
            packages = parsed;
        } else {
            packages.append(&mut parsed);
        }
    }
    remove_duplicates(&mut packages);
    Ok(packages)
}

/// Keeps the first of the packages that share name, version string and architecture. It sorts
/// positions instead of filling a hash set, which would take several MB for a large index.
fn remove_duplicates(packages: &mut Vec<Package>) {
    let key = |position: usize| {
        let package = &packages[position];
        (
            package.name.as_str(),
            package.version.as_str(),
            package.architecture.as_str(),
        )
    };
    let mut order: Vec<usize> = (0..packages.len()).collect();
    order.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)).then(a.cmp(&b)));
    let mut duplicate = vec![false; packages.len()];
    for pair in order.windows(2) {
        duplicate[pair[1]] = key(pair[0]) == key(pair[1]);
    }
    drop(order);
    let mut duplicate = duplicate.into_iter();
    packages.retain(|_| !duplicate.next().unwrap_or(false));
    packages.shrink_to_fit();
}

struct IndexRequest<'a> {
    repository: &'a Repository,
    release: &'a Release,
    dists: &'a str,
    path: &'a str,
    component: &'a str,
    is_local: bool,
}

/// Loads and parses one Packages index, checked against the Release file: from the cache when it
/// contains the index, else downloaded. `Ok(None)` means an optional index that the repository
/// does not publish.
async fn load_index(
    request: &IndexRequest<'_>,
    required: bool,
    fetcher: &Fetcher,
    cache: &MetadataCache,
    options: &MetadataOptions,
) -> Result<Option<Result<Vec<Package>, IndexError>>, RepoError> {
    let plain = request.release.sha256.get(request.path);
    if let Some(entry) = plain.filter(|_| !request.is_local) {
        let (cache, hash, size) = (cache.clone(), entry.hash.clone(), entry.size);
        let parsed = tokio::task::spawn_blocking(move || {
            cache.parse_index(&hash, size, |reader| oic_deb::read_packages(reader))
        })
        .await
        .expect("the index parser does not panic");
        if parsed.is_some() {
            tracing::debug!(index = request.path, "using cached index");
            return Ok(parsed);
        }
    }

    let Some(text) = fetch_index(request, required, fetcher, cache, options).await? else {
        return Ok(None);
    };
    let parsed = tokio::task::spawn_blocking(move || oic_deb::read_packages(text.as_slice()))
        .await
        .expect("the index parser does not panic");
    Ok(Some(parsed))
}

/// Downloads the text of one Packages index, checks it against the Release file and keeps a copy
/// in the cache. `Ok(None)` means an optional index that the repository does not publish.
async fn fetch_index(
    request: &IndexRequest<'_>,
    required: bool,
    fetcher: &Fetcher,
    cache: &MetadataCache,
    options: &MetadataOptions,
) -> Result<Option<Vec<u8>>, RepoError> {
    let plain = request.release.sha256.get(request.path);
    let variants: Vec<_> = [".xz", ".gz", ""]
        .iter()
        .filter_map(|suffix| {
            let path = format!("{}{suffix}", request.path);
            request
                .release
                .sha256
                .get(&path)
                .map(|entry| (path, *suffix, entry))
        })
        .collect();
    if variants.is_empty() {
        if !required {
            return Ok(None);
        }
        return Err(RepoError::IndexNotListed {
            repository: request.repository.name.clone(),
            path: request.path.to_owned(),
            component: request.component.to_owned(),
        });
    }
    if options.offline && !request.is_local {
        let what = format!("{}/{}", redact(request.dists), request.path);
        return Err(RepoError::OfflineMiss {
            repository: request.repository.name.clone(),
            what,
        });
    }

    for (path, suffix, entry) in &variants {
        let url = format!("{}/{path}", request.dists);
        let bytes = match fetcher.get(&url, None).await? {
            Fetched::Body { bytes, .. } => bytes,
            Fetched::NotFound | Fetched::NotModified => continue,
        };
        check_digest(&url, &bytes, &entry.hash, entry.size)?;
        let text = decompress(&url, &bytes, suffix, plain.map(|p| p.size))?;
        drop(bytes);
        if let Some(plain) = plain {
            check_digest(
                &format!("{url} (decompressed)"),
                &text,
                &plain.hash,
                plain.size,
            )?;
            if !request.is_local {
                write_atomic(&cache.index_path(&plain.hash), &text)?;
            }
        }
        return Ok(Some(text));
    }
    let message = "not found (HTTP 404) in any form the Release file lists".to_owned();
    Err(RepoError::Fetch {
        url: format!("{}/{}", redact(request.dists), request.path),
        message,
    })
}

fn check_digest(
    url: &str,
    bytes: &[u8],
    expected: &str,
    expected_size: u64,
) -> Result<(), RepoError> {
    let actual = sha256_hex(bytes);
    let actual_size = bytes.len() as u64;
    if actual == expected && actual_size == expected_size {
        return Ok(());
    }
    Err(RepoError::Checksum {
        url: redact(url),
        expected: expected.to_owned(),
        actual,
        expected_size,
        actual_size,
    })
}

/// The largest decompressed index accepted when Release gives no size for it.
const MAX_INDEX_BYTES: u64 = 1 << 30;

fn decompress(
    url: &str,
    bytes: &[u8],
    suffix: &str,
    size: Option<u64>,
) -> Result<Vec<u8>, RepoError> {
    let limit = size.map_or(MAX_INDEX_BYTES, |size| size + 1);
    let mut output = Vec::new();
    let result = match suffix {
        ".xz" => liblzma::read::XzDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut output),
        ".gz" => flate2::read::GzDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut output),
        _ => return Ok(bytes.to_vec()),
    };
    result.map_err(|error| RepoError::Decompress {
        url: redact(url),
        message: error.to_string(),
    })?;
    Ok(output)
}

/// Keeps the packages that the repository's `allowPackages` admits: exact names, or globs when an
/// entry contains `*`, `?` or `[`.
fn filter_allowed(repository: &Repository, packages: Vec<Package>) -> Vec<Package> {
    if repository.allow_packages.is_empty() {
        return packages;
    }
    let admits = |name: &str| {
        repository.allow_packages.iter().any(|pattern| {
            if is_glob(pattern) {
                glob_match(pattern, name)
            } else {
                pattern == name
            }
        })
    };
    packages
        .into_iter()
        .filter(|package| admits(&package.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_body_undoes_dash_escaping() {
        let signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: x\n- -dash\n-----BEGIN PGP SIGNATURE-----\nabc\n";
        assert_eq!(cleartext_body(signed.as_bytes()), "Origin: x\n-dash");
    }

    #[test]
    fn unix_times_format_as_utc() {
        assert_eq!(format_unix(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix(1_779_618_997), "2026-05-24 10:36:37 UTC");
    }
}
