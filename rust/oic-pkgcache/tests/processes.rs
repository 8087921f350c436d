//! Fetches in separate processes: killed mid-download, and two at once on one cache.
//!
//! The child is this test binary run again with `CHILD_ENV` set: `child_fetch` then fetches the
//! files in its JSON argument and exits, while every other test returns at once.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    assert_cache_valid, build_repo, fetch, partial_files, provider_dir, wanted, RecordingProxy,
};
use oic_pkgcache::{ProxyConfig, WantedFile};
use oic_testkit::{Fault, HttpServer};
use serde_json::json;

const CHILD_ENV: &str = "OIC_PKGCACHE_TEST_CHILD";

#[test]
fn child_fetch() {
    let Ok(argument) = std::env::var(CHILD_ENV) else {
        return;
    };
    let argument: serde_json::Value = serde_json::from_str(&argument).unwrap();
    let cache = Path::new(argument["cache"].as_str().unwrap());
    let files: Vec<WantedFile> = serde_json::from_value(argument["files"].clone()).unwrap();
    let mut options = common::quick_options();
    options.read_timeout = Duration::from_secs(60);
    if argument["system_proxy"].as_bool() == Some(true) {
        options.proxy = ProxyConfig::System;
    }
    let report = common::fetch_with(cache, &files, &options).unwrap();
    println!("child fetched: {}", report.summary_line());
}

fn spawn_child(cache: &Path, files: &[WantedFile], extra_env: &[(&str, String)]) -> Child {
    let argument = json!({"cache": cache, "files": files, "system_proxy": !extra_env.is_empty()});
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_fetch", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, argument.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command.spawn().unwrap()
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn succeeded(child: Child) -> String {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("child fetched"), "{stdout}");
    stdout
}

#[test]
fn killed_fetch_leaves_no_final_file() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    server.add_fault(
        "*.deb",
        Fault {
            stall: Some((4000, Duration::from_secs(60))),
            ..Fault::default()
        },
    );

    let mut child = spawn_child(&cache, &files, &[]);
    wait_for("a temporary file per download", || {
        partial_files(&cache).len() == files.len()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();

    let left = partial_files(&cache);
    assert_eq!(left.len(), files.len(), "{left:?}");
    for file in &files {
        assert!(!provider_dir(&cache).join(&file.file_name).exists());
    }

    server.clear_faults();
    let report = fetch(&cache, &files).unwrap();
    assert_eq!(report.downloaded_count, files.len());
    assert_cache_valid(&cache, &files);
}

#[test]
fn two_processes_fill_one_cache() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    // A delay per response makes the two children overlap.
    server.add_fault(
        "*.deb",
        Fault {
            delay: Duration::from_millis(200),
            ..Fault::default()
        },
    );

    let first = spawn_child(&cache, &files, &[]);
    let second = spawn_child(&cache, &files, &[]);
    succeeded(first);
    succeeded(second);
    assert_cache_valid(&cache, &files);
}

#[test]
fn system_proxy_comes_from_environment() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let files = wanted(&repo, &server.url());
    let cache = dir.path().join("cache");
    let proxy = RecordingProxy::start();
    let proxy_url = format!("http://{}", proxy.address);

    let child = spawn_child(
        &cache,
        &files,
        &[("http_proxy", proxy_url), ("no_proxy", String::new())],
    );
    succeeded(child);
    assert_cache_valid(&cache, &files);
    assert_eq!(proxy.lines().len(), files.len(), "{:?}", proxy.lines());
}
