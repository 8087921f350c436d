//! Fetches a list of package files into a cache, for benchmarks until the CLI has a command.
//!
//! ```text
//! cargo run --release -p oic-pkgcache --example fetch -- \
//!     --cache DIR --mirror URL --list FILE [--workers N] [--provider ID]
//! ```
//!
//! Each line of the list is `POOL_PATH SIZE SHA256`, with the pool path relative to the mirror
//! URL. A first run downloads; a later run checks every cached file and downloads nothing.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use oic_pkgcache::{fetch_packages_blocking, FetchOptions, TextReporter, WantedFile};

struct Arguments {
    cache: PathBuf,
    mirror: String,
    list: PathBuf,
    workers: usize,
    provider: String,
}

const USAGE: &str =
    "usage: fetch --cache DIR --mirror URL --list FILE [--workers N] [--provider ID]";

fn parse_arguments() -> Result<Arguments, String> {
    let mut cache = None;
    let mut mirror = None;
    let mut list = None;
    let mut workers = 8;
    let mut provider = "debian-debian12-x86_64".to_owned();
    let mut arguments = std::env::args().skip(1);
    while let Some(flag) = arguments.next() {
        let value = arguments
            .next()
            .ok_or_else(|| format!("missing value after {flag}"))?;
        match flag.as_str() {
            "--cache" => cache = Some(PathBuf::from(value)),
            "--mirror" => mirror = Some(value),
            "--list" => list = Some(PathBuf::from(value)),
            "--workers" => {
                workers = value
                    .parse()
                    .map_err(|_| format!("invalid --workers {value}: expected 1 to 100"))?;
            }
            "--provider" => provider = value,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(Arguments {
        cache: cache.ok_or("missing --cache")?,
        mirror: mirror.ok_or("missing --mirror")?,
        list: list.ok_or("missing --list")?,
        workers,
        provider,
    })
}

fn read_list(arguments: &Arguments) -> Result<Vec<WantedFile>, String> {
    let text = std::fs::read_to_string(&arguments.list)
        .map_err(|error| format!("cannot read {}: {error}", arguments.list.display()))?;
    let base = arguments.mirror.trim_end_matches('/');
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [path, size, sha256] = fields[..] else {
                return Err(format!(
                    "invalid list line {line:?}: expected PATH SIZE SHA256"
                ));
            };
            Ok(WantedFile {
                file_name: path.rsplit('/').next().unwrap_or(path).to_owned(),
                url: format!("{base}/{path}"),
                size: size
                    .parse()
                    .map_err(|_| format!("invalid size in list line {line:?}"))?,
                checksum_type: oic_pkgcache::ChecksumType::Sha256,
                checksum: sha256.to_owned(),
                repository: "mirror".to_owned(),
            })
        })
        .collect()
}

fn main() -> ExitCode {
    let result = parse_arguments().and_then(|arguments| {
        let wanted = read_list(&arguments)?;
        let options = FetchOptions {
            workers: arguments.workers,
            ..FetchOptions::default()
        };
        fetch_packages_blocking(
            &arguments.cache,
            &arguments.provider,
            &wanted,
            &options,
            Arc::new(TextReporter::new()),
        )
        .map_err(|error| error.to_string())
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
