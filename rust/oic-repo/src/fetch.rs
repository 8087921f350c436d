//! HTTP(S) and local file fetching for metadata, with bounded retries and conditional requests.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use reqwest::StatusCode;

use crate::error::RepoError;

/// How many times a request is retried after a connection error, a timeout, a 5xx or a 429.
pub const MAX_RETRIES: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A read that brings no byte for this long fails; a slow but moving transfer does not.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Validators of a cached response, sent back so that an unchanged file costs a 304.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The result of a fetch.
#[derive(Debug)]
pub enum Fetched {
    Body {
        bytes: Vec<u8>,
        validators: Validators,
    },
    NotModified,
    NotFound,
}

/// Fetches URLs: `http://`, `https://` and `file://`.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new() -> Result<Self, RepoError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("os-image-composer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| RepoError::Fetch {
                url: String::new(),
                message: error.to_string(),
            })?;
        Ok(Self { client })
    }

    /// Fetches `url`, sending `validators` when given. Retries transient failures.
    pub async fn get(
        &self,
        url: &str,
        validators: Option<&Validators>,
    ) -> Result<Fetched, RepoError> {
        if let Some(path) = url.strip_prefix("file://") {
            return read_local(&PathBuf::from(path), url);
        }

        let mut attempt = 0;
        loop {
            match self.try_get(url, validators).await {
                Ok(fetched) => return Ok(fetched),
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Transient { message, wait }) if attempt < MAX_RETRIES => {
                    let wait = wait.unwrap_or(FIRST_BACKOFF * 2_u32.pow(attempt));
                    tracing::warn!(url = %redact(url), %message, ?wait, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(Failure::Transient { message, .. }) => {
                    let message = format!("{message} (after {} attempts)", attempt + 1);
                    return Err(RepoError::Fetch {
                        url: redact(url),
                        message,
                    });
                }
            }
        }
    }

    async fn try_get(
        &self,
        url: &str,
        validators: Option<&Validators>,
    ) -> Result<Fetched, Failure> {
        let mut request = self.client.get(url);
        if let Some(validators) = validators {
            if let Some(etag) = &validators.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = &validators.last_modified {
                request = request.header(IF_MODIFIED_SINCE, last_modified);
            }
        }

        let response = request.send().await.map_err(|error| transient(&error))?;
        let status = response.status();
        match status {
            StatusCode::NOT_MODIFIED => return Ok(Fetched::NotModified),
            StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Fetched::NotFound),
            _ if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(response.headers());
                return Err(Failure::Transient {
                    message: format!("HTTP {status}"),
                    wait,
                });
            }
            _ if !status.is_success() => {
                let message = format!("HTTP {status}");
                return Err(Failure::Final(RepoError::Fetch {
                    url: redact(url),
                    message,
                }));
            }
            _ => {}
        }

        let validators = validators_of(response.headers());
        let bytes = response.bytes().await.map_err(|error| transient(&error))?;
        Ok(Fetched::Body {
            bytes: bytes.to_vec(),
            validators,
        })
    }
}

enum Failure {
    Transient {
        message: String,
        wait: Option<Duration>,
    },
    Final(RepoError),
}

fn transient(error: &reqwest::Error) -> Failure {
    // Connection errors, timeouts and bodies cut short are worth another attempt; a malformed
    // URL or a redirect loop is not.
    if error.is_builder() || error.is_redirect() {
        let url = error
            .url()
            .map(|url| redact(url.as_str()))
            .unwrap_or_default();
        return Failure::Final(RepoError::Fetch {
            url,
            message: error.to_string(),
        });
    }
    Failure::Transient {
        message: error_chain(error),
        wait: None,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

fn validators_of(headers: &HeaderMap) -> Validators {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Validators {
        etag: text(ETAG),
        last_modified: text(LAST_MODIFIED),
    }
}

fn read_local(path: &std::path::Path, url: &str) -> Result<Fetched, RepoError> {
    match fs_err::read(path) {
        Ok(bytes) => Ok(Fetched::Body {
            bytes,
            validators: Validators::default(),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Fetched::NotFound),
        Err(error) => Err(RepoError::Fetch {
            url: redact(url),
            message: error.to_string(),
        }),
    }
}

/// Removes a user name and password from a URL, so that it can be logged and shown.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact("https://user:secret@example.org/debian"),
            "https://***@example.org/debian"
        );
        assert_eq!(
            redact("http://127.0.0.1:8080/debian"),
            "http://127.0.0.1:8080/debian"
        );
        assert_eq!(redact("http://h/p@q"), "http://h/p@q");
    }
}
