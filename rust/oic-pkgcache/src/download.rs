//! One verified transfer: stream, hash, check, rename. Retries transient failures.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::checksum::{ChecksumType, Hasher};
use crate::client::{describe, retry_after, FetchOptions};
use crate::error::PkgCacheError;
use crate::file_check::run_check;
use crate::partial::PartialFile;
use crate::progress::Reporter;
use crate::wanted::WantedFile;
use oic_repo::fetch::redact;
use reqwest::StatusCode;

/// Bytes are collected to this size before a write, so that one write call moves many network
/// chunks.
const WRITE_BUFFER: usize = 1024 * 1024;

/// Why one attempt failed.
enum Failure {
    /// Worth another attempt: the message, the wait the server asked for, and the error to
    /// return when no attempt is left.
    Transient {
        message: String,
        wait: Option<Duration>,
        error: PkgCacheError,
    },
    Final(PkgCacheError),
}

/// Downloads `wanted` into `dir` under its file name. Returns the bytes received in the last,
/// successful attempt.
pub(crate) async fn download(
    client: &reqwest::Client,
    options: &FetchOptions,
    wanted: &WantedFile,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<u64, PkgCacheError> {
    let mut attempt = 0;
    loop {
        match attempt_once(client, wanted, dir, reporter, options).await {
            Ok(()) => return Ok(wanted.size),
            Err(Failure::Final(error)) => return Err(error),
            Err(Failure::Transient {
                message,
                wait,
                error,
            }) => {
                if attempt >= options.max_retries {
                    tracing::warn!(url = %redact(&wanted.url), %message, "giving up");
                    return Err(error);
                }
                let wait = wait.unwrap_or_else(|| options.backoff(attempt));
                tracing::warn!(
                    url = %redact(&wanted.url),
                    %message,
                    ?wait,
                    attempt = attempt + 1,
                    "retrying download"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

async fn attempt_once(
    client: &reqwest::Client,
    wanted: &WantedFile,
    dir: &Path,
    reporter: &dyn Reporter,
    options: &FetchOptions,
) -> Result<(), Failure> {
    let mut partial = PartialFile::create(dir, &wanted.file_name)
        .map_err(|error| Failure::Final(PkgCacheError::io(dir, error)))?;
    let file = partial.take_file();
    let mut sink = Sink::new(file, wanted.size, wanted.checksum_type);

    if let Some(path) = wanted.url.strip_prefix("file://") {
        copy_local(Path::new(path), &mut sink, reporter, &wanted.url).await?;
    } else {
        stream_http(client, wanted, &mut sink, reporter, options.max_retry_after).await?;
    }

    let (file, received) = sink
        .finish()
        .map_err(|error| Failure::Final(PkgCacheError::io(partial.path(), error)))?;
    if let Some(mismatch) = received.mismatch(wanted) {
        return Err(Failure::Transient {
            message: received.describe_mismatch(wanted),
            wait: None,
            error: mismatch,
        });
    }
    // A rejected file is final: the bytes match the index, so another attempt gets them again.
    // Dropping `partial` deletes the temporary file.
    run_check(options.file_check.as_ref(), partial.path(), wanted)
        .await
        .map_err(Failure::Final)?;
    let target = dir.join(&wanted.file_name);
    let renamed = target.clone();
    // fsync can take milliseconds, so it runs on the blocking pool.
    tokio::task::spawn_blocking(move || partial.persist(&file, &renamed))
        .await
        .expect("persisting a file does not panic")
        .map_err(|error| Failure::Final(PkgCacheError::io(&target, error)))?;
    tracing::debug!(file = %wanted.file_name, size = wanted.size, "downloaded and verified");
    Ok(())
}

async fn stream_http(
    client: &reqwest::Client,
    wanted: &WantedFile,
    sink: &mut Sink,
    reporter: &dyn Reporter,
    max_retry_after: Duration,
) -> Result<(), Failure> {
    let url = redact(&wanted.url);
    let transient = |message: String, wait| Failure::Transient {
        error: PkgCacheError::Download {
            url: url.clone(),
            message: message.clone(),
        },
        message,
        wait,
    };

    let mut response = client
        .get(&wanted.url)
        .send()
        .await
        .map_err(|error| classify(error, &url))?;
    let status = response.status();
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        let wait = retry_after(response.headers(), max_retry_after);
        return Err(transient(format!("HTTP {status}"), wait));
    }
    if !status.is_success() {
        let hint = if matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE) {
            ": the mirror no longer has this file, so update the repository metadata"
        } else {
            ""
        };
        return Err(Failure::Final(PkgCacheError::Download {
            url,
            message: format!("HTTP {status}{hint}"),
        }));
    }

    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(()),
            Err(error) => return Err(classify(error, &url)),
        };
        reporter.bytes(chunk.len() as u64);
        if !sink
            .push(&chunk)
            .map_err(|error| write_failure(&error, &url))?
        {
            // More bytes than promised: stop reading, the size check reports it.
            return Ok(());
        }
    }
}

async fn copy_local(
    path: &Path,
    sink: &mut Sink,
    reporter: &dyn Reporter,
    url: &str,
) -> Result<(), Failure> {
    use tokio::io::AsyncReadExt;

    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| Failure::Final(download_error(url, &error.to_string())))?;
    let mut buffer = vec![0_u8; 256 * 1024];
    loop {
        let count = file
            .read(&mut buffer)
            .await
            .map_err(|error| Failure::Final(download_error(url, &error.to_string())))?;
        if count == 0 {
            return Ok(());
        }
        reporter.bytes(count as u64);
        if !sink
            .push(&buffer[..count])
            .map_err(|error| write_failure(&error, url))?
        {
            return Ok(());
        }
    }
}

fn download_error(url: &str, message: &str) -> PkgCacheError {
    PkgCacheError::Download {
        url: redact(url),
        message: message.to_owned(),
    }
}

fn write_failure(error: &std::io::Error, url: &str) -> Failure {
    Failure::Final(download_error(
        url,
        &format!("cannot write to the cache: {error}"),
    ))
}

/// Sorts a reqwest error: a malformed request or a redirect loop is final, while connection
/// errors, timeouts and bodies cut short are transient.
fn classify(error: reqwest::Error, url: &str) -> Failure {
    let is_final = error.is_builder() || error.is_redirect();
    let message = describe(error);
    let error = download_error(url, &message);
    if is_final {
        Failure::Final(error)
    } else {
        Failure::Transient {
            message,
            wait: None,
            error,
        }
    }
}

/// The size and checksum of received bytes.
struct Received {
    size: u64,
    checksum: String,
    /// More bytes arrived than the index promised, so the transfer was cut off.
    overflowed: bool,
}

impl Received {
    fn mismatch(&self, wanted: &WantedFile) -> Option<PkgCacheError> {
        if self.size == wanted.size && self.checksum == wanted.checksum && !self.overflowed {
            return None;
        }
        Some(PkgCacheError::Checksum {
            url: redact(&wanted.url),
            checksum_type: wanted.checksum_type,
            expected: wanted.checksum.clone(),
            expected_size: wanted.size,
            actual: self.actual_checksum(wanted),
            actual_size: self.size,
        })
    }

    /// Returns the retry message of a mismatch: what arrived and what the index promised.
    fn describe_mismatch(&self, wanted: &WantedFile) -> String {
        format!(
            "received {} bytes with {kind} {}, expected {} bytes with {kind} {}",
            self.size,
            self.actual_checksum(wanted),
            wanted.size,
            wanted.checksum,
            kind = wanted.checksum_type,
        )
    }

    /// Returns the digest of the body, or a note when the body overflowed. The sink stops hashing
    /// at the chunk that passes the expected size, so its digest then covers only a prefix.
    fn actual_checksum(&self, wanted: &WantedFile) -> String {
        if self.overflowed {
            format!("(not computed, the body exceeds {} bytes)", wanted.size)
        } else {
            self.checksum.clone()
        }
    }
}

/// Hashes bytes while it writes them to the temporary file, and stops after one byte more than
/// the expected size.
struct Sink {
    file: File,
    buffer: Vec<u8>,
    hasher: Hasher,
    size: u64,
    limit: u64,
}

impl Sink {
    fn new(file: File, expected_size: u64, checksum_type: ChecksumType) -> Self {
        Self {
            file,
            buffer: Vec::with_capacity(WRITE_BUFFER),
            hasher: checksum_type.hasher(),
            size: 0,
            limit: expected_size,
        }
    }

    /// Takes `bytes`. Returns `false` once the expected size is exceeded.
    fn push(&mut self, bytes: &[u8]) -> std::io::Result<bool> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            return Ok(false);
        }
        self.hasher.update(bytes);
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= WRITE_BUFFER {
            // NOTE: a blocking write inside the async task. It lands in the page cache and the
            // buffer is 1 MiB, so it is short; the fsync happens once, at the end.
            self.file.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(true)
    }

    fn finish(mut self) -> std::io::Result<(File, Received)> {
        self.file.write_all(&self.buffer)?;
        let received = Received {
            size: self.size,
            checksum: self.hasher.finish_hex(),
            overflowed: self.size > self.limit,
        };
        Ok((self.file, received))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn wanted(body: &[u8]) -> WantedFile {
        WantedFile {
            file_name: "alpha_1.0_amd64.deb".to_owned(),
            url: "http://127.0.0.1:1/alpha_1.0_amd64.deb".to_owned(),
            size: body.len() as u64,
            checksum_type: ChecksumType::Sha256,
            checksum: oic_repo::cache::sha256_hex(body),
            repository: "main".to_owned(),
        }
    }

    fn receive(wanted: &WantedFile, body: &[u8]) -> Received {
        let file = tempfile::tempfile().unwrap();
        let mut sink = Sink::new(file, wanted.size, wanted.checksum_type);
        sink.push(body).unwrap();
        sink.finish().unwrap().1
    }

    #[test]
    fn overflow_message_has_no_digest() {
        let wanted = wanted(b"good");
        let received = receive(&wanted, b"good!!");

        let message = received.describe_mismatch(&wanted);
        assert!(message.contains("received 6 bytes"), "{message}");
        assert!(
            message.contains("not computed, the body exceeds 4 bytes"),
            "{message}"
        );
        assert!(!message.contains(EMPTY_SHA256), "{message}");

        let error = received.mismatch(&wanted).unwrap().to_string();
        assert!(
            error.contains("not computed, the body exceeds 4 bytes"),
            "{error}"
        );
    }

    #[test]
    fn equal_size_message_has_digest() {
        let wanted = wanted(b"good");
        let received = receive(&wanted, b"bad!");

        let message = received.describe_mismatch(&wanted);
        let digest = oic_repo::cache::sha256_hex(b"bad!");
        assert!(
            message.contains(&format!("received 4 bytes with sha256 {digest}")),
            "{message}"
        );
        assert!(!message.contains("not computed"), "{message}");
        assert!(received.mismatch(&wanted).is_some());
    }
}
