//! The HTTP client of the package cache: timeouts, retries and proxies.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::PkgCacheError;
use crate::file_check::SharedFileCheck;

/// Which proxies the HTTP client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxyConfig {
    /// reqwest's system proxy: `http_proxy`, `https_proxy`, `all_proxy` and `no_proxy` (or their
    /// upper-case forms) of the process environment.
    #[default]
    System,
    /// Connect directly, whatever the environment says.
    Direct,
    /// The same variables as [`ProxyConfig::System`], read from this map instead of the process
    /// environment, so that a caller or a test can set them for one client.
    Variables(BTreeMap<String, String>),
}

/// Settings of the downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Concurrent transfers, 1 to 100.
    pub workers: usize,
    pub connect_timeout: Duration,
    /// A transfer that receives no byte for this long fails and is retried. A slow transfer
    /// that keeps moving does not time out.
    pub read_timeout: Duration,
    /// Retries of one file after a connection error, a timeout, a body cut short, HTTP 5xx,
    /// 408 or 429, or bytes that do not match the index.
    pub max_retries: u32,
    /// The wait before the first retry. It doubles with each further retry.
    pub first_backoff: Duration,
    /// The longest `Retry-After` that is honoured; a longer one is shortened to this.
    pub max_retry_after: Duration,
    pub proxy: ProxyConfig,
    /// A check that every file must pass before it counts as cached, besides size and checksum.
    pub file_check: Option<SharedFileCheck>,
    /// Serve every file from the cache: a file that is missing or fails its checks is an error
    /// instead of a download.
    pub offline: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            workers: 8,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            max_retries: oic_repo::fetch::MAX_RETRIES,
            first_backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(10),
            proxy: ProxyConfig::System,
            file_check: None,
            offline: false,
        }
    }
}

impl FetchOptions {
    /// Checks the number of workers.
    pub fn check(&self) -> Result<(), PkgCacheError> {
        if (1..=100).contains(&self.workers) {
            Ok(())
        } else {
            Err(PkgCacheError::InvalidWorkers {
                workers: self.workers,
            })
        }
    }

    /// Returns the wait before retry number `attempt` (0 for the first retry).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.first_backoff
            .saturating_mul(2_u32.saturating_pow(attempt))
    }
}

/// Builds the one client that all transfers of a fetch share, so connections are kept alive.
pub(crate) fn build_client(options: &FetchOptions) -> Result<reqwest::Client, PkgCacheError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .user_agent(concat!("os-image-composer/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(options.workers);
    builder = match &options.proxy {
        ProxyConfig::System => builder,
        ProxyConfig::Direct => builder.no_proxy(),
        ProxyConfig::Variables(variables) => {
            let mut builder = builder.no_proxy();
            for proxy in proxies_from(variables)? {
                builder = builder.proxy(proxy);
            }
            builder
        }
    };
    builder.build().map_err(|error| PkgCacheError::Client {
        message: error.without_url().to_string(),
    })
}

type MakeProxy = fn(&str) -> reqwest::Result<reqwest::Proxy>;

/// Builds proxies from `http_proxy`, `https_proxy`, `all_proxy` and `no_proxy`, preferring the
/// lower-case name like curl and reqwest do.
fn proxies_from(
    variables: &BTreeMap<String, String>,
) -> Result<Vec<reqwest::Proxy>, PkgCacheError> {
    let lookup = |name: &str| {
        variables
            .get(name)
            .or_else(|| variables.get(&name.to_ascii_uppercase()))
            .filter(|value| !value.is_empty())
    };
    let no_proxy = lookup("no_proxy").and_then(|list| reqwest::NoProxy::from_string(list));
    let kinds: [(&str, MakeProxy); 3] = [
        ("http_proxy", |url| reqwest::Proxy::http(url)),
        ("https_proxy", |url| reqwest::Proxy::https(url)),
        ("all_proxy", |url| reqwest::Proxy::all(url)),
    ];
    let mut proxies = Vec::new();
    for (name, make) in kinds {
        let Some(url) = lookup(name) else { continue };
        let proxy = make(url).map_err(|_| PkgCacheError::Client {
            message: format!(
                "invalid proxy URL in {name}: `{}`",
                oic_repo::fetch::redact(url)
            ),
        })?;
        proxies.push(proxy.no_proxy(no_proxy.clone()));
    }
    Ok(proxies)
}

/// Formats an error with its sources, without the URL that reqwest puts in its messages.
pub(crate) fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Returns a `Retry-After` given in seconds, capped at `max`. HTTP dates are ignored.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap, max: Duration) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_outside_range_are_rejected() {
        for workers in [0, 101] {
            let options = FetchOptions {
                workers,
                ..FetchOptions::default()
            };
            assert!(options.check().is_err(), "{workers} was accepted");
        }
        assert!(FetchOptions::default().check().is_ok());
    }

    #[test]
    fn backoff_doubles() {
        let options = FetchOptions::default();
        assert_eq!(options.backoff(0), Duration::from_millis(200));
        assert_eq!(options.backoff(2), Duration::from_millis(800));
    }

    #[test]
    fn invalid_proxy_is_reported_without_credentials() {
        let variables = BTreeMap::from([(
            "HTTP_PROXY".to_owned(),
            "http://user:secret@[bad".to_owned(),
        )]);
        let options = FetchOptions {
            proxy: ProxyConfig::Variables(variables),
            ..FetchOptions::default()
        };
        let error = build_client(&options).unwrap_err().to_string();
        assert!(
            error.contains("HTTP_PROXY") || error.contains("http_proxy"),
            "{error}"
        );
        assert!(!error.contains("secret"), "{error}");
    }
}
