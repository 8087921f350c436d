//! Tests of the HTTP test server against raw `TcpStream` requests.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{get, Client};
use oic_testkit::{Fault, HttpServer};
use tempfile::TempDir;

const RELEASE: &[u8] = b"Origin: test\nLabel: test\nSuite: testing\nCodename: oic\n";

fn site() -> TempDir {
    let root = tempfile::tempdir().expect("create a temporary directory");
    fs::create_dir_all(root.path().join("dists/oic")).unwrap();
    fs::write(root.path().join("dists/oic/Release"), RELEASE).unwrap();
    fs::write(root.path().join("dists/oic/InRelease"), b"signed release").unwrap();
    root
}

fn release_path() -> &'static str {
    "/dists/oic/Release"
}

#[test]
fn get_returns_file() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let response = get(server.address(), release_path());
    assert_eq!(response.status, 200);
    assert_eq!(response.body, RELEASE);
    assert_eq!(
        response.header("content-length"),
        Some(RELEASE.len().to_string().as_str())
    );
}

#[test]
fn head_sends_no_body() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let mut client = Client::connect(server.address());
    client.send("HEAD", release_path(), "");
    let response = client.receive(true);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-length"),
        Some(RELEASE.len().to_string().as_str())
    );
    // The next response on the connection starts right after the HEAD response's headers.
    assert_eq!(client.get("/dists/oic/InRelease").body, b"signed release");
}

#[test]
fn missing_path_is_404() {
    let root = site();
    let server = HttpServer::serve(root.path());
    assert_eq!(get(server.address(), "/dists/oic/Missing").status, 404);
    assert_eq!(get(server.address(), "/dists/oic/").status, 404);
    assert_eq!(get(server.address(), "/dists").status, 404);
    let log: Vec<u16> = server
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(log, [404, 404, 404]);
}

#[test]
fn parent_segments_rejected() {
    let root = site();
    let server = HttpServer::serve(root.path());
    for target in [
        "/../../etc/passwd",
        "/dists/../../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/a\\..\\b",
    ] {
        let response = get(server.address(), target);
        assert_eq!(response.status, 400, "{target}");
        assert!(
            !String::from_utf8_lossy(&response.body).contains("root:"),
            "{target}"
        );
    }
}

#[test]
fn symlink_outside_root_is_404() {
    let root = site();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link")).unwrap();
    let server = HttpServer::serve(root.path());
    assert_eq!(get(server.address(), "/link").status, 404);
}

#[test]
fn other_methods_get_405() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let mut client = Client::connect(server.address());
    client.send("POST", release_path(), "Content-Length: 0\r\n");
    let response = client.receive(false);
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

#[test]
fn keep_alive_serves_two_requests() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let mut client = Client::connect(server.address());
    assert_eq!(client.get(release_path()).body, RELEASE);
    assert_eq!(client.get("/dists/oic/InRelease").body, b"signed release");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].connection, requests[1].connection);
}

#[test]
fn connection_close_is_honoured() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let mut client = Client::connect(server.address());
    client.send("GET", release_path(), "Connection: close\r\n");
    let response = client.receive(false);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(client.read_to_end().unwrap(), b"");
}

#[test]
fn range_request_returns_part() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let mut client = Client::connect(server.address());
    client.send("GET", release_path(), "Range: bytes=8-11\r\n");
    let response = client.receive(false);
    assert_eq!(response.status, 206);
    assert_eq!(response.body, &RELEASE[8..12]);
    let expected = format!("bytes 8-11/{}", RELEASE.len());
    assert_eq!(response.header("content-range"), Some(expected.as_str()));
    client.send(
        "GET",
        release_path(),
        &format!("Range: bytes={}-\r\n", RELEASE.len()),
    );
    assert_eq!(client.receive(false).status, 416);
    assert_eq!(server.requests()[0].range.as_deref(), Some("bytes=8-11"));
}

#[test]
fn fail_first_n_then_ok() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let fault = Fault {
        fail_first: 2,
        status: 503,
        retry_after: Some(1),
        ..Fault::default()
    };
    server.add_fault("*/Release", fault);
    let first = get(server.address(), release_path());
    assert_eq!(first.status, 503);
    assert_eq!(first.header("retry-after"), Some("1"));
    assert_eq!(get(server.address(), release_path()).status, 503);
    let third = get(server.address(), release_path());
    assert_eq!(third.status, 200);
    assert_eq!(third.body, RELEASE);
    assert_eq!(get(server.address(), "/dists/oic/InRelease").status, 200);
    let log: Vec<u16> = server
        .requests()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(log, [503, 503, 200, 200]);
}

#[test]
fn fail_status_selectable() {
    let root = site();
    let server = HttpServer::serve(root.path());
    server.add_fault(
        "/dists/*",
        Fault {
            fail_first: 1,
            status: 429,
            ..Fault::default()
        },
    );
    assert_eq!(get(server.address(), release_path()).status, 429);
    server.clear_faults();
    server.add_fault(
        "/dists/*",
        Fault {
            fail_first: 1,
            status: 500,
            ..Fault::default()
        },
    );
    assert_eq!(get(server.address(), release_path()).status, 500);
    assert_eq!(get(server.address(), release_path()).status, 200);
}

/// Sends a GET and returns the declared length and whatever body bytes arrive before the
/// connection ends.
fn get_raw_body(server: &HttpServer) -> (usize, std::io::Result<Vec<u8>>) {
    let mut client = Client::connect(server.address());
    client.send("GET", release_path(), "");
    let head = client.receive(true);
    let declared = head.header("content-length").unwrap().parse().unwrap();
    (declared, client.read_to_end())
}

#[test]
fn truncation_gives_short_body() {
    let root = site();
    let server = HttpServer::serve(root.path());
    server.add_fault(
        "*/Release",
        Fault {
            truncate_after: Some(10),
            ..Fault::default()
        },
    );
    let (declared, body) = get_raw_body(&server);
    assert_eq!(declared, RELEASE.len());
    assert_eq!(body.unwrap(), &RELEASE[..10]);
}

#[test]
fn reset_mid_body() {
    let root = site();
    let server = HttpServer::serve(root.path());
    server.add_fault(
        "*/Release",
        Fault {
            reset_after: Some(5),
            ..Fault::default()
        },
    );
    let (_, body) = get_raw_body(&server);
    match body {
        Err(error) => assert_eq!(error.kind(), ErrorKind::ConnectionReset),
        // The reset can arrive after the client read the 5 bytes and before it read again.
        Ok(bytes) => assert!(bytes.len() <= 5, "read {} bytes", bytes.len()),
    }
}

#[test]
fn wrong_length_declared() {
    let root = site();
    let server = HttpServer::serve(root.path());
    server.add_fault(
        "*/Release",
        Fault {
            wrong_length: Some(1000),
            ..Fault::default()
        },
    );
    let (declared, body) = get_raw_body(&server);
    assert_eq!(declared, 1000);
    assert_eq!(body.unwrap(), RELEASE);
}

#[test]
fn replace_body_once() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let fault = Fault {
        replace_body: Some(b"tampered".to_vec()),
        times: Some(1),
        ..Fault::default()
    };
    server.add_fault("*/Release", fault);
    assert_eq!(get(server.address(), release_path()).body, b"tampered");
    assert_eq!(get(server.address(), release_path()).body, RELEASE);
}

#[test]
fn delay_and_stall_take_time() {
    let root = site();
    let server = HttpServer::serve(root.path());
    server.add_fault(
        "*/Release",
        Fault {
            delay: Duration::from_millis(300),
            ..Fault::default()
        },
    );
    let stall = Some((4, Duration::from_millis(300)));
    server.add_fault(
        "*/InRelease",
        Fault {
            stall,
            ..Fault::default()
        },
    );
    for (target, body) in [
        (release_path(), RELEASE),
        ("/dists/oic/InRelease", b"signed release"),
    ] {
        let started = Instant::now();
        let response = get(server.address(), target);
        assert_eq!(response.body, body);
        assert!(started.elapsed() >= Duration::from_millis(300), "{target}");
    }
}

#[test]
fn drop_stops_server_and_stall() {
    let root = site();
    let server = HttpServer::serve(root.path());
    let stall = Some((4, Duration::from_secs(60)));
    server.add_fault(
        "*/Release",
        Fault {
            stall,
            ..Fault::default()
        },
    );
    let address = server.address();
    let mut client = Client::connect(address);
    client.send("GET", release_path(), "");
    let _ = client.receive(true);
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(5));
    let rest = client.read_to_end().unwrap_or_default();
    assert!(rest.len() <= 4);
    assert!(TcpStream::connect(address).is_err());
}

#[test]
fn serve_missing_root_fails() {
    let missing = Path::new("/nonexistent/oic-testkit-root");
    assert!(HttpServer::try_serve(missing).is_err());
}
