//! Fetching the files a build needs: reuse what the cache holds and verifies, download the
//! rest concurrently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Instant;

use rayon::prelude::*;
use tokio::sync::Semaphore;

use crate::check::{check_file, remove_if_same, touch_accessed, CacheState, RedownloadReason};
use crate::client::{build_client, FetchOptions};
use crate::download::download;
use crate::error::PkgCacheError;
use crate::file_check::{run_check, SharedFileCheck};
use crate::layout::provider_dir;
use crate::lock::CacheLock;
use crate::partial::remove_stale;
use crate::progress::Reporter;
use crate::report::{CachedFile, FetchReport};
use crate::wanted::WantedFile;

/// Downloads in this process, by final path, so that concurrent fetches of one file share a
/// single transfer.
static IN_FLIGHT: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Makes every file of `wanted` present and verified in the cache folder of `provider_id`.
///
/// Holds a shared lock on the cache while it runs. Cached files are checked in parallel against
/// their size and checksum; invalid ones are deleted, logged and downloaded again. When downloads
/// fail, the others still complete, and the error lists every failure.
pub async fn fetch_packages(
    cache_dir: &Path,
    provider_id: &str,
    wanted: &[WantedFile],
    options: &FetchOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<FetchReport, PkgCacheError> {
    let outcome = fetch_inner(cache_dir, provider_id, wanted, options, &reporter).await;
    reporter.finish(outcome.as_ref());
    outcome
}

/// Runs [`fetch_packages`] on a runtime of its own.
pub fn fetch_packages_blocking(
    cache_dir: &Path,
    provider_id: &str,
    wanted: &[WantedFile],
    options: &FetchOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<FetchReport, PkgCacheError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| PkgCacheError::io("tokio runtime", error))?;
    runtime.block_on(oic_cancel::or_cancelled(fetch_packages(
        cache_dir,
        provider_id,
        wanted,
        options,
        reporter,
    )))
}

async fn fetch_inner(
    cache_dir: &Path,
    provider_id: &str,
    wanted: &[WantedFile],
    options: &FetchOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<FetchReport, PkgCacheError> {
    let started = Instant::now();
    options.check()?;
    let wanted = distinct(wanted)?;
    let dir = provider_dir(cache_dir, provider_id);

    let (lock, plan) = {
        let cache_dir = cache_dir.to_path_buf();
        let dir = dir.clone();
        let check = options.file_check.clone();
        tokio::task::spawn_blocking(move || prepare(&cache_dir, &dir, wanted, check.as_ref()))
            .await
            .expect("the cache check does not panic")?
    };

    let downloads: Vec<&Planned> = plan.iter().filter(|item| !item.reused).collect();
    if options.offline && !downloads.is_empty() {
        return Err(offline_error(&downloads));
    }
    let total_bytes = downloads.iter().map(|item| item.wanted.size).sum();
    reporter.start(downloads.len(), total_bytes);

    let mut outcomes = HashMap::new();
    if !downloads.is_empty() {
        let client = build_client(options)?;
        outcomes = run_downloads(&client, options, &dir, &downloads, reporter).await;
        sync_dir(&dir);
    }
    drop(lock);
    assemble(&dir, plan, outcomes, started)
}

/// Builds the error of an offline fetch that would need `downloads`.
fn offline_error(downloads: &[&Planned]) -> PkgCacheError {
    const NAMED: usize = 5;
    let mut files: Vec<&str> = downloads
        .iter()
        .take(NAMED)
        .map(|item| item.wanted.file_name.as_str())
        .collect();
    if downloads.len() > NAMED {
        files.push("...");
    }
    PkgCacheError::OfflineMissing {
        count: downloads.len(),
        files: files.join(", "),
    }
}

/// One file of the request and whether the cache could serve it.
struct Planned {
    wanted: WantedFile,
    reused: bool,
    reason: Option<RedownloadReason>,
}

/// Locks the cache, removes stale temporary files, and checks the cached copies in parallel.
fn prepare(
    cache_dir: &Path,
    dir: &Path,
    wanted: Vec<WantedFile>,
    check: Option<&SharedFileCheck>,
) -> Result<(CacheLock, Vec<Planned>), PkgCacheError> {
    let lock = CacheLock::shared(cache_dir)?;
    fs_err::create_dir_all(dir).map_err(|error| PkgCacheError::io(dir, error))?;
    remove_stale(dir).map_err(|error| PkgCacheError::io(dir, error))?;
    let plan = wanted
        .into_par_iter()
        .map(|wanted| plan_file(dir, wanted, check))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((lock, plan))
}

fn plan_file(
    dir: &Path,
    wanted: WantedFile,
    check: Option<&SharedFileCheck>,
) -> Result<Planned, PkgCacheError> {
    let path = dir.join(&wanted.file_name);
    let mut state = check_file(&path, wanted.size, wanted.checksum_type, &wanted.checksum)
        .map_err(|e| PkgCacheError::io(&path, e))?;
    if state == CacheState::Valid {
        if let Some(Err(error)) = check.map(|check| check.0.check(&path, &wanted)) {
            // The bytes match the index, so the download that follows fails the same check
            // unless the repository's keys changed.
            tracing::warn!(file = %wanted.file_name, %error, "deleting rejected cached file");
            fs_err::remove_file(&path).map_err(|e| PkgCacheError::io(&path, e))?;
            state = CacheState::Missing;
        }
    }
    let (reused, reason) = match state {
        CacheState::Valid => {
            tracing::debug!(file = %wanted.file_name, "reusing cached file");
            touch_accessed(&path);
            (true, None)
        }
        CacheState::Missing => {
            tracing::debug!(file = %wanted.file_name, "not cached");
            (false, None)
        }
        CacheState::Invalid {
            reason,
            actual_size,
            actual_checksum,
            identity,
        } => {
            tracing::warn!(
                file = %wanted.file_name,
                %reason,
                expected_size = wanted.size,
                actual_size,
                checksum_type = %wanted.checksum_type,
                expected_checksum = %wanted.checksum,
                actual_checksum = actual_checksum.as_deref().unwrap_or("not computed"),
                "deleting invalid cached file and downloading it again"
            );
            remove_if_same(&path, identity).map_err(|e| PkgCacheError::io(&path, e))?;
            (false, Some(reason))
        }
    };
    Ok(Planned {
        wanted,
        reused,
        reason,
    })
}

/// Removes repeated file names. The same name with other bytes is an error.
fn distinct(wanted: &[WantedFile]) -> Result<Vec<WantedFile>, PkgCacheError> {
    let mut seen: HashMap<&str, &WantedFile> = HashMap::new();
    let mut files = Vec::with_capacity(wanted.len());
    for file in wanted {
        file.check()?;
        match seen.get(file.file_name.as_str()) {
            None => {
                seen.insert(&file.file_name, file);
                files.push(file.clone());
            }
            Some(first)
                if first.size == file.size
                    && first.checksum_type == file.checksum_type
                    && first.checksum == file.checksum => {}
            Some(first) => {
                return Err(PkgCacheError::ConflictingFiles {
                    file_name: file.file_name.clone(),
                    first: oic_repo::fetch::redact(&first.url),
                    second: oic_repo::fetch::redact(&file.url),
                })
            }
        }
    }
    Ok(files)
}

/// How a download ended: `Ok(true)` when this task transferred the file, `Ok(false)` when a
/// concurrent fetch in this process did.
type Outcome = Result<bool, PkgCacheError>;

async fn run_downloads(
    client: &reqwest::Client,
    options: &FetchOptions,
    dir: &Path,
    downloads: &[&Planned],
    reporter: &Arc<dyn Reporter>,
) -> HashMap<String, Outcome> {
    let semaphore = Arc::new(Semaphore::new(options.workers));
    let mut tasks = tokio::task::JoinSet::new();
    for item in downloads {
        let client = client.clone();
        let options = options.clone();
        let dir = dir.to_path_buf();
        let wanted = item.wanted.clone();
        let reporter = Arc::clone(reporter);
        let semaphore = Arc::clone(&semaphore);
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.expect("never closed");
            let outcome = fetch_shared(&client, &options, &dir, &wanted, reporter.as_ref()).await;
            (wanted.file_name, outcome)
        });
    }
    let mut outcomes = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (file_name, outcome) = joined.expect("download tasks do not panic");
        outcomes.insert(file_name, outcome);
    }
    outcomes
}

/// Downloads one file unless a concurrent fetch in this process is already doing so, in which
/// case it waits for that one and checks its result.
async fn fetch_shared(
    client: &reqwest::Client,
    options: &FetchOptions,
    dir: &Path,
    wanted: &WantedFile,
    reporter: &dyn Reporter,
) -> Outcome {
    let target = dir.join(&wanted.file_name);
    let gate = Arc::clone(
        IN_FLIGHT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(target.clone())
            .or_default(),
    );
    let outcome = {
        let _turn = gate.lock().await;
        fetch_unless_present(client, options, dir, wanted, reporter).await
    };

    let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    // Two references left means only the map and this task hold the gate.
    if Arc::strong_count(&gate) == 2 {
        in_flight.remove(&target);
    }
    outcome
}

async fn fetch_unless_present(
    client: &reqwest::Client,
    options: &FetchOptions,
    dir: &Path,
    wanted: &WantedFile,
    reporter: &dyn Reporter,
) -> Outcome {
    let target = dir.join(&wanted.file_name);
    let checked = {
        let target = target.clone();
        let (size, kind, checksum) = (wanted.size, wanted.checksum_type, wanted.checksum.clone());
        tokio::task::spawn_blocking(move || check_file(&target, size, kind, &checksum))
            .await
            .expect("the file check does not panic")
    };
    if matches!(checked, Ok(CacheState::Valid)) {
        tracing::debug!(file = %wanted.file_name, "a concurrent fetch downloaded this file");
        run_check(options.file_check.as_ref(), &target, wanted).await?;
        return Ok(false);
    }

    reporter.file_started(&wanted.file_name, wanted.size);
    let result = download(client, options, wanted, dir, reporter).await;
    reporter.file_done(&wanted.file_name, result.is_ok());
    result.map(|_| true)
}

fn sync_dir(dir: &Path) {
    // The renames are durable only once the folder itself is synced.
    if let Err(error) = std::fs::File::open(dir).and_then(|folder| folder.sync_all()) {
        tracing::debug!(dir = %dir.display(), %error, "cannot sync the cache folder");
    }
}

fn assemble(
    dir: &Path,
    plan: Vec<Planned>,
    mut outcomes: HashMap<String, Outcome>,
    started: Instant,
) -> Result<FetchReport, PkgCacheError> {
    let mut report = FetchReport {
        files: Vec::with_capacity(plan.len()),
        downloaded_bytes: 0,
        downloaded_count: 0,
        cached_count: 0,
        elapsed: started.elapsed(),
    };
    let mut errors = Vec::new();
    for item in plan {
        let from_cache = if item.reused {
            true
        } else {
            match outcomes.remove(&item.wanted.file_name) {
                Some(Ok(transferred)) => !transferred,
                Some(Err(error)) => {
                    errors.push(error);
                    continue;
                }
                None => unreachable!("every planned download has an outcome"),
            }
        };
        if from_cache {
            report.cached_count += 1;
        } else {
            report.downloaded_count += 1;
            report.downloaded_bytes += item.wanted.size;
        }
        report.files.push(CachedFile {
            path: dir.join(&item.wanted.file_name),
            file_name: item.wanted.file_name,
            size: item.wanted.size,
            from_cache,
            redownload_reason: item.reason,
        });
    }
    match errors.len() {
        0 => Ok(report),
        1 => Err(errors.remove(0)),
        _ => Err(PkgCacheError::Several(errors)),
    }
}
