//! Shared helpers: a signed repository of real .debs served on 127.0.0.1, and cache checks.
//! Building the repository needs python3, dpkg-deb and gpg.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oic_pkgcache::{
    check_file, fetch_packages_blocking, layout, CacheState, ChecksumType, FetchOptions,
    FetchReport, NoReporter, PkgCacheError, ProxyConfig, WantedFile,
};
use oic_testkit::{BuiltRepo, DebRepo};
use serde_json::json;

pub const PROVIDER: &str = "debian-debian12-x86_64";

/// Returns `count` bytes of hexadecimal text that compress poorly, so the .debs have some size.
fn filler(seed: &str, count: usize) -> String {
    use sha2::{Digest, Sha256};
    let mut text = String::with_capacity(count + 64);
    let mut block = Sha256::digest(seed.as_bytes());
    while text.len() < count {
        block = Sha256::digest(block);
        text.push_str(&oic_repo::cache::sha256_hex(&block));
    }
    text.truncate(count);
    text
}

/// Builds a repository of four packages with 120 to 300 kB of poorly compressible text each.
pub fn build_repo(dir: &Path) -> BuiltRepo {
    let packages: Vec<_> = ["alpha", "bravo", "charlie", "delta"]
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let content = filler(name, 120_000 + index * 60_000);
            json!({
                "name": name,
                "version": "1.0-1",
                "files": {format!("/usr/share/{name}/data"): {"content": content}}
            })
        })
        .collect();
    let spec = json!({"codename": "oic", "components": {"main": packages}});
    DebRepo::build(&spec, &dir.join("repo")).expect("build the test repository")
}

/// Lists the repository's packages as wanted files under `base_url`.
pub fn wanted(repo: &BuiltRepo, base_url: &str) -> Vec<WantedFile> {
    repo.packages
        .iter()
        .map(|package| WantedFile {
            file_name: package.filename.rsplit('/').next().unwrap().to_owned(),
            url: format!("{}/{}", base_url.trim_end_matches('/'), package.filename),
            size: package.size,
            checksum_type: ChecksumType::Sha256,
            checksum: package.sha256.clone(),
            repository: "test".to_owned(),
        })
        .collect()
}

/// Options with short timeouts and backoff, and no proxy from the environment.
pub fn quick_options() -> FetchOptions {
    FetchOptions {
        workers: 4,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(500),
        max_retries: 3,
        first_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
        proxy: ProxyConfig::Direct,
        file_check: None,
        offline: false,
    }
}

pub fn fetch(cache: &Path, wanted: &[WantedFile]) -> Result<FetchReport, PkgCacheError> {
    fetch_with(cache, wanted, &quick_options())
}

pub fn fetch_with(
    cache: &Path,
    wanted: &[WantedFile],
    options: &FetchOptions,
) -> Result<FetchReport, PkgCacheError> {
    fetch_packages_blocking(cache, PROVIDER, wanted, options, Arc::new(NoReporter))
}

pub fn provider_dir(cache: &Path) -> PathBuf {
    layout::provider_dir(cache, PROVIDER)
}

/// Returns the names in the provider folder, sorted.
pub fn names(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(provider_dir(cache)) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

pub fn partial_files(cache: &Path) -> Vec<String> {
    names(cache)
        .into_iter()
        .filter(|name| layout::is_partial_name(name))
        .collect()
}

/// Asserts that every wanted file is cached and valid and that no temporary file is left.
pub fn assert_cache_valid(cache: &Path, wanted: &[WantedFile]) {
    for file in wanted {
        let path = provider_dir(cache).join(&file.file_name);
        let state = check_file(&path, file.size, file.checksum_type, &file.checksum).unwrap();
        assert_eq!(state, CacheState::Valid, "{}", file.file_name);
    }
    assert_eq!(partial_files(cache), Vec::<String>::new());
}

/// Asserts that every file under a final name in the provider folder matches its wanted entry.
pub fn assert_no_unverified(cache: &Path, wanted: &[WantedFile]) {
    for name in names(cache) {
        if layout::is_partial_name(&name) || name == layout::DOT_FILE {
            continue;
        }
        let file = wanted
            .iter()
            .find(|file| file.file_name == name)
            .unwrap_or_else(|| panic!("unexpected file {name}"));
        let state = check_file(
            &provider_dir(cache).join(&name),
            file.size,
            file.checksum_type,
            &file.checksum,
        );
        assert_eq!(state.unwrap(), CacheState::Valid, "{name}");
    }
}

/// A forward proxy for plain HTTP that records each request line and relays the exchange.
pub struct RecordingProxy {
    pub address: std::net::SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&lines);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || relay(client, &recorded));
            }
        });
        Self { address, lines }
    }

    /// Returns the request lines received so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Relays one request: reads the head, sends it to the origin in origin form with
/// `Connection: close`, and copies the response back.
fn relay(mut client: TcpStream, recorded: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    recorded.lock().unwrap().push(request_line.clone());
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
    let rest = target.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut origin = TcpStream::connect(host).unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    origin.write_all(request.as_bytes()).unwrap();
    let _ = std::io::copy(&mut origin, &mut client);
}
