//! Fetching real .debs from a signed repository served on 127.0.0.1, with injected faults.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{
    assert_cache_valid, assert_no_unverified, build_repo, fetch, fetch_with, partial_files,
    provider_dir, quick_options, wanted, RecordingProxy, PROVIDER,
};
use oic_pkgcache::{fetch_packages, NoReporter, PkgCacheError, ProxyConfig, RedownloadReason};
use oic_testkit::{Fault, HttpServer};

fn deb_requests(server: &HttpServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|request| {
            std::path::Path::new(&request.path)
                .extension()
                .is_some_and(|extension| extension == "deb")
        })
        .count()
}

#[test]
fn cold_fetch_then_warm_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");

    let cold = fetch(&cache, &files).unwrap();
    assert_eq!(cold.downloaded_count, files.len());
    assert_eq!(cold.cached_count, 0);
    let total: u64 = files.iter().map(|file| file.size).sum();
    assert_eq!(cold.downloaded_bytes, total);
    assert_cache_valid(&cache, &files);
    assert_eq!(deb_requests(&server), files.len());

    server.clear_requests();
    let warm = fetch(&cache, &files).unwrap();
    assert_eq!(warm.cached_count, files.len());
    assert_eq!(warm.downloaded_count, 0);
    assert!(warm.files.iter().all(|file| file.from_cache));
    assert_eq!(deb_requests(&server), 0);
    assert!(
        warm.summary_line()
            .starts_with("4 packages: 4 from cache, 0 downloaded"),
        "{}",
        warm.summary_line()
    );
}

#[test]
fn first_requests_fail_then_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    server.add_fault(
        "*alpha*.deb",
        Fault {
            fail_first: 2,
            status: 503,
            ..Fault::default()
        },
    );
    server.add_fault(
        "*bravo*.deb",
        Fault {
            fail_first: 1,
            status: 429,
            retry_after: Some(1),
            ..Fault::default()
        },
    );

    let report = fetch(&cache, &files).unwrap();
    assert_eq!(report.downloaded_count, files.len());
    assert_cache_valid(&cache, &files);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 503).count(), 2);
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 1);
}

#[test]
fn persistent_server_error_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    server.add_fault(
        "*alpha*.deb",
        Fault {
            fail_first: 100,
            status: 500,
            ..Fault::default()
        },
    );

    let error = fetch(&cache, &files).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(message.contains("alpha"), "{message}");
    // The other files still completed and are reused next time.
    assert_eq!(common::names(&cache).len(), files.len() - 1);
    assert_no_unverified(&cache, &files);
    assert_eq!(partial_files(&cache), Vec::<String>::new());
}

/// Applies `fault` once to every .deb and checks that the fetch still ends with a valid cache.
fn survives_once(fault: &Fault) {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    for file in &files {
        let fault = Fault {
            times: Some(1),
            ..fault.clone()
        };
        server.add_fault(&format!("*/{}", file.file_name), fault);
    }

    let report = fetch(&cache, &files).unwrap();
    assert_eq!(report.downloaded_count, files.len());
    assert_cache_valid(&cache, &files);
    assert_eq!(deb_requests(&server), 2 * files.len());
}

#[test]
fn truncated_bodies_are_retried() {
    survives_once(&Fault {
        truncate_after: Some(1000),
        ..Fault::default()
    });
}

#[test]
fn connection_resets_are_retried() {
    survives_once(&Fault {
        reset_after: Some(5000),
        ..Fault::default()
    });
}

#[test]
fn stalled_transfers_time_out_and_retry() {
    survives_once(&Fault {
        stall: Some((2000, Duration::from_secs(10))),
        ..Fault::default()
    });
}

#[test]
fn short_content_length_is_retried() {
    survives_once(&Fault {
        wrong_length: Some(500),
        ..Fault::default()
    });
}

#[test]
fn long_content_length_is_retried() {
    survives_once(&Fault {
        wrong_length: Some(10_000_000),
        ..Fault::default()
    });
}

#[test]
fn other_bytes_end_in_checksum_error() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    let alpha = files
        .iter()
        .find(|f| f.file_name.starts_with("alpha"))
        .unwrap();
    let body = b"not the package the index promises".to_vec();
    let body_sha256 = oic_repo::cache::sha256_hex(&body);
    server.add_fault(
        &format!("*/{}", alpha.file_name),
        Fault {
            replace_body: Some(body.clone()),
            ..Fault::default()
        },
    );

    let error = fetch(&cache, &files).unwrap_err();
    let PkgCacheError::Checksum {
        url,
        checksum_type,
        expected: expected_sha256,
        expected_size,
        actual: actual_sha256,
        actual_size,
    } = &error
    else {
        panic!("expected a checksum error, got {error}");
    };
    assert_eq!(url, &alpha.url);
    assert_eq!(*checksum_type, oic_pkgcache::ChecksumType::Sha256);
    assert_eq!(expected_sha256, &alpha.checksum);
    assert_eq!(*expected_size, alpha.size);
    assert_eq!(actual_sha256, &body_sha256);
    assert_eq!(*actual_size, body.len() as u64);
    let message = error.to_string();
    assert!(message.contains(&alpha.url), "{message}");
    assert!(message.contains(&alpha.checksum), "{message}");
    assert!(message.contains(&body_sha256), "{message}");
    assert!(!provider_dir(&cache).join(&alpha.file_name).exists());
    assert_no_unverified(&cache, &files);
    assert_eq!(partial_files(&cache), Vec::<String>::new());
}

#[test]
fn larger_body_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    let alpha = files
        .iter()
        .find(|f| f.file_name.starts_with("alpha"))
        .unwrap();
    let size = usize::try_from(alpha.size).unwrap();
    server.add_fault(
        &format!("*/{}", alpha.file_name),
        Fault {
            replace_body: Some(vec![b'x'; size * 3]),
            ..Fault::default()
        },
    );

    let error = fetch(&cache, std::slice::from_ref(alpha)).unwrap_err();
    assert!(matches!(error, PkgCacheError::Checksum { .. }), "{error}");
    assert!(!provider_dir(&cache).join(&alpha.file_name).exists());
    assert_eq!(partial_files(&cache), Vec::<String>::new());
}

#[test]
fn bad_cache_entries_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    fetch(&cache, &files).unwrap();
    let folder = provider_dir(&cache);
    let path_of = |prefix: &str| {
        let file = files
            .iter()
            .find(|f| f.file_name.starts_with(prefix))
            .unwrap();
        folder.join(&file.file_name)
    };

    let mut flipped = std::fs::read(path_of("alpha")).unwrap();
    flipped[1000] ^= 0x01;
    std::fs::write(path_of("alpha"), &flipped).unwrap();
    let bravo = std::fs::read(path_of("bravo")).unwrap();
    std::fs::write(path_of("bravo"), &bravo[..bravo.len() / 2]).unwrap();
    let mut longer = std::fs::read(path_of("charlie")).unwrap();
    longer.extend_from_slice(b"republished");
    std::fs::write(path_of("charlie"), &longer).unwrap();

    server.clear_requests();
    let report = fetch(&cache, &files).unwrap();
    let reasons: HashMap<&str, Option<RedownloadReason>> = report
        .files
        .iter()
        .map(|file| (&file.file_name[..5], file.redownload_reason))
        .collect();
    assert_eq!(reasons["alpha"], Some(RedownloadReason::UpstreamChanged));
    assert_eq!(reasons["bravo"], Some(RedownloadReason::Truncated));
    assert_eq!(reasons["charl"], Some(RedownloadReason::SizeDiffers));
    assert_eq!(reasons["delta"], None);
    assert_eq!(report.downloaded_count, 3);
    assert_eq!(report.cached_count, 1);
    assert_eq!(deb_requests(&server), 3);
    assert_cache_valid(&cache, &files);
}

#[test]
fn unneeded_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(provider_dir(&cache)).unwrap();
    std::fs::write(provider_dir(&cache).join("old_0.9_amd64.deb"), b"junk").unwrap();

    fetch(&cache, &files).unwrap();
    assert!(provider_dir(&cache).join("old_0.9_amd64.deb").exists());
}

#[test]
fn local_file_urls_are_copied_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let base = format!("file://{}", repo.root.display());
    let files = wanted(&repo, &base);
    let cache = dir.path().join("cache");

    let report = fetch(&cache, &files).unwrap();
    assert_eq!(report.downloaded_count, files.len());
    assert_cache_valid(&cache, &files);

    let mut wrong = files[0].clone();
    wrong.checksum = "0".repeat(64);
    wrong.file_name = "renamed_1.0_amd64.deb".to_owned();
    let error = fetch(&cache, &[wrong]).unwrap_err();
    assert!(matches!(error, PkgCacheError::Checksum { .. }), "{error}");
}

#[test]
fn credentials_never_reach_errors() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let base = format!("http://user:secret-password@{}/", server.address());
    let mut files = wanted(&repo, &base);
    files[0].url = format!("{base}pool/missing_1.0_amd64.deb");
    files[1].checksum = "0".repeat(64);
    let cache = dir.path().join("cache");

    let error = fetch(&cache, &files).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(message.contains("Checksum mismatch"), "{message}");
    assert!(!message.contains("secret-password"), "{message}");
    assert!(message.contains("***@127.0.0.1"), "{message}");
}

#[test]
fn concurrent_fetches_share_transfers() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    // Slow responses keep the first transfers in flight while the second fetch starts.
    server.add_fault(
        "*.deb",
        Fault {
            delay: Duration::from_millis(300),
            ..Fault::default()
        },
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let options = quick_options();
    let (first, second) = runtime.block_on(async {
        tokio::join!(
            fetch_packages(&cache, PROVIDER, &files, &options, Arc::new(NoReporter)),
            fetch_packages(&cache, PROVIDER, &files, &options, Arc::new(NoReporter)),
        )
    });
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(deb_requests(&server), files.len());
    assert_eq!(
        first.downloaded_count + second.downloaded_count,
        files.len()
    );
    assert_cache_valid(&cache, &files);
}

#[test]
fn duplicate_names_with_other_bytes_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = oic_pkgcache::WantedFile {
        file_name: "a_1_amd64.deb".to_owned(),
        url: "http://127.0.0.1:9/a.deb".to_owned(),
        size: 1,
        checksum_type: oic_pkgcache::ChecksumType::Sha256,
        checksum: "a".repeat(64),
        repository: "one".to_owned(),
    };
    let mut other = file.clone();
    other.checksum = "b".repeat(64);
    let error = fetch(dir.path(), &[file, other]).unwrap_err();
    assert!(
        matches!(error, PkgCacheError::ConflictingFiles { .. }),
        "{error}"
    );
}

#[test]
fn proxy_variables_route_through_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    let proxy = RecordingProxy::start();
    let variables = std::collections::BTreeMap::from([(
        "http_proxy".to_owned(),
        format!("http://{}", proxy.address),
    )]);
    let options = oic_pkgcache::FetchOptions {
        proxy: ProxyConfig::Variables(variables),
        ..quick_options()
    };

    fetch_with(&cache, &files, &options).unwrap();
    assert_cache_valid(&cache, &files);
    let lines = proxy.lines();
    assert_eq!(lines.len(), files.len(), "{lines:?}");
    for file in &files {
        let expected = format!("GET {} HTTP/1.1", file.url);
        assert!(lines.contains(&expected), "{expected} not in {lines:?}");
    }
}

#[test]
fn no_proxy_variable_bypasses_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    let proxy = RecordingProxy::start();
    let variables = std::collections::BTreeMap::from([
        ("HTTP_PROXY".to_owned(), format!("http://{}", proxy.address)),
        ("NO_PROXY".to_owned(), "127.0.0.1".to_owned()),
    ]);
    let options = oic_pkgcache::FetchOptions {
        proxy: ProxyConfig::Variables(variables),
        ..quick_options()
    };

    fetch_with(&cache, &files, &options).unwrap();
    assert!(proxy.lines().is_empty());
    assert_eq!(deb_requests(&server), files.len());
}
