//! A threaded HTTP/1.1 file server on 127.0.0.1 with a request log and fault injection.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;
use std::{fs, thread};

use crate::glob::glob_match;
use crate::http::{parse_range, read_request, reason, resolve, RangeSelection, RequestHead};

/// Idle keep-alive connections are closed after this time.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One request and the status the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path of the request target, still percent-encoded, without query.
    pub path: String,
    pub status: u16,
    /// The `Range` header, if the client sent one.
    pub range: Option<String>,
    /// A number that is the same for all requests on one TCP connection.
    pub connection: u64,
}

/// Faults applied to requests whose path matches a glob (see [`HttpServer::add_fault`]).
///
/// The first `fail_first` matching requests get `status` with an empty body. The body faults
/// then apply to the next `times` matching requests, or to all of them when `times` is `None`.
/// Byte offsets count from the start of the body.
#[derive(Clone, Debug)]
pub struct Fault {
    pub fail_first: u32,
    pub status: u16,
    pub retry_after: Option<u32>,
    /// Sends the full `Content-Length`, then only this many body bytes, then closes (FIN).
    pub truncate_after: Option<usize>,
    /// Sends this many body bytes, then resets the connection (RST). Wins over truncation.
    pub reset_after: Option<usize>,
    /// Sends this `Content-Length` in place of the real body length, then closes.
    pub wrong_length: Option<u64>,
    /// Waits this long before the status line.
    pub delay: Duration,
    /// Sends this many body bytes, then waits for the duration before the rest.
    pub stall: Option<(usize, Duration)>,
    /// Sends these bytes in place of the file. `Content-Length` follows the new body.
    pub replace_body: Option<Vec<u8>>,
    pub times: Option<u32>,
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            fail_first: 0,
            status: 503,
            retry_after: None,
            truncate_after: None,
            reset_after: None,
            wrong_length: None,
            delay: Duration::ZERO,
            stall: None,
            replace_body: None,
            times: None,
        }
    }
}

struct FaultRule {
    glob: String,
    fault: Fault,
    matched: u32,
}

/// The effect of a matching fault on one request.
struct FaultAction {
    fault: Fault,
    fail: bool,
    body_faults: bool,
}

/// The state of the connection after a response.
#[derive(PartialEq, Eq)]
enum AfterResponse {
    KeepOpen,
    Close,
    Reset,
}

struct Shared {
    root: PathBuf,
    requests: Mutex<Vec<Request>>,
    faults: Mutex<Vec<FaultRule>>,
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
    stopping: Mutex<bool>,
    stopped: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn is_stopping(&self) -> bool {
        *lock(&self.stopping)
    }

    /// Sleeps for `duration`, or less if the server stops meanwhile.
    fn sleep(&self, duration: Duration) {
        let guard = lock(&self.stopping);
        let _ = self
            .stopped
            .wait_timeout_while(guard, duration, |stopping| !*stopping)
            .unwrap_or_else(PoisonError::into_inner);
    }

    fn match_fault(&self, path: &str) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let rule = faults
            .iter_mut()
            .find(|rule| glob_match(&rule.glob, path))?;
        rule.matched += 1;
        let fail = rule.matched <= rule.fault.fail_first;
        let body_index = rule.matched.saturating_sub(rule.fault.fail_first);
        let body_faults = !fail && rule.fault.times.is_none_or(|times| body_index <= times);
        Some(FaultAction {
            fault: rule.fault.clone(),
            fail,
            body_faults,
        })
    }

    fn record(&self, head: &RequestHead, status: u16, connection: u64) {
        lock(&self.requests).push(Request {
            method: head.method.clone(),
            path: head.path().to_owned(),
            status,
            range: head.header("Range").map(str::to_owned),
            connection,
        });
    }
}

/// An HTTP/1.1 server for the files under a directory, bound to 127.0.0.1 on a free port.
///
/// It serves GET and HEAD with keep-alive and single byte ranges, never lists directories and
/// rejects paths with `..` segments. Dropping it stops the server and closes all connections.
pub struct HttpServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Starts serving `root`. Panics if `root` does not exist or no port can be bound, which
    /// ends the test that called it.
    pub fn serve(root: &Path) -> HttpServer {
        Self::try_serve(root)
            .unwrap_or_else(|error| panic!("cannot serve {}: {error}", root.display()))
    }

    /// Starts serving `root`, returning the error if `root` does not exist or binding fails.
    pub fn try_serve(root: &Path) -> io::Result<HttpServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            root: root.canonicalize()?,
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            stopping: Mutex::new(false),
            stopped: Condvar::new(),
        });
        let acceptor_shared = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name(format!("http-accept-{}", address.port()))
            .spawn(move || accept_loop(&listener, &acceptor_shared))?;
        Ok(HttpServer {
            address,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Returns the base URL with a trailing slash, e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Returns a copy of the request log, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Applies `fault` to request paths matching `glob`, where `*` matches any run of
    /// characters including `/`, e.g. `*/InRelease`. The first added matching fault applies.
    pub fn add_fault(&self, glob: &str, fault: Fault) {
        lock(&self.shared.faults).push(FaultRule {
            glob: glob.to_owned(),
            fault,
            matched: 0,
        });
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        *lock(&self.shared.stopping) = true;
        self.shared.stopped.notify_all();
        for connection in lock(&self.shared.connections).values() {
            let _ = connection.shutdown(std::net::Shutdown::Both);
        }
        // The acceptor blocks in accept(), so a connection of our own wakes it up to see the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.is_stopping() {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!(
                    "oic-testkit: accept on {:?} failed: {error}",
                    listener.local_addr()
                );
                continue;
            }
        };
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        if let Ok(registered) = stream.try_clone() {
            lock(&shared.connections).insert(id, registered);
        }
        let connection_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("http-connection-{id}"))
            .spawn(move || serve_connection(&connection_shared, &stream, id));
        if let Err(error) = spawned {
            eprintln!("oic-testkit: cannot start a thread for connection {id}: {error}");
            lock(&shared.connections).remove(&id);
        }
    }
}

fn serve_connection(shared: &Shared, stream: &TcpStream, id: u64) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let after = match stream.try_clone() {
        Ok(read_half) => serve_requests(shared, &mut BufReader::new(read_half), stream, id),
        Err(_) => AfterResponse::Close,
    };
    // The registered clone must close first: the socket closes, or resets, with its last handle.
    lock(&shared.connections).remove(&id);
    if after == AfterResponse::Reset {
        // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let _ = nix::sys::socket::setsockopt(stream, nix::sys::socket::sockopt::Linger, &linger);
    }
}

fn serve_requests(
    shared: &Shared,
    reader: &mut BufReader<TcpStream>,
    mut writer: &TcpStream,
    id: u64,
) -> AfterResponse {
    loop {
        if shared.is_stopping() {
            return AfterResponse::Close;
        }
        let head = match read_request(reader) {
            Ok(Some(head)) => head,
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                let _ = write_empty(&mut writer, 400, None, false);
                return AfterResponse::Close;
            }
            Ok(None) | Err(_) => return AfterResponse::Close,
        };
        match respond(shared, &head, &mut writer, id) {
            Ok(AfterResponse::KeepOpen) if head.keep_alive() => {}
            Ok(AfterResponse::Reset) => return AfterResponse::Reset,
            _ => return AfterResponse::Close,
        }
    }
}

fn respond(
    shared: &Shared,
    head: &RequestHead,
    writer: &mut impl Write,
    id: u64,
) -> io::Result<AfterResponse> {
    let keep_alive = head.keep_alive();
    if head.method != "GET" && head.method != "HEAD" {
        shared.record(head, 405, id);
        write_empty(writer, 405, None, keep_alive)?;
        return Ok(AfterResponse::KeepOpen);
    }
    let action = shared.match_fault(head.path());
    if let Some(action) = &action {
        shared.sleep(action.fault.delay);
        if action.fail {
            shared.record(head, action.fault.status, id);
            write_empty(
                writer,
                action.fault.status,
                action.fault.retry_after,
                keep_alive,
            )?;
            return Ok(AfterResponse::KeepOpen);
        }
    }
    let body =
        match resolve(&shared.root, head.path()).and_then(|file| fs::read(file).map_err(|_| 404)) {
            Ok(body) => body,
            Err(status) => {
                shared.record(head, status, id);
                write_empty(writer, status, None, keep_alive)?;
                return Ok(AfterResponse::KeepOpen);
            }
        };
    let fault = action
        .filter(|action| action.body_faults)
        .map(|action| action.fault);
    send_file(shared, head, writer, id, body, fault.as_ref())
}

/// Returns an entity tag derived from the content, so a changed file never matches an old tag
/// even within the same second.
fn entity_tag(body: &[u8]) -> String {
    use std::hash::{Hash, Hasher};

    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}-{}\"", hasher.finish(), body.len())
}

fn send_file(
    shared: &Shared,
    head: &RequestHead,
    writer: &mut impl Write,
    id: u64,
    body: Vec<u8>,
    fault: Option<&Fault>,
) -> io::Result<AfterResponse> {
    let body = fault
        .and_then(|fault| fault.replace_body.clone())
        .unwrap_or(body);
    let etag = entity_tag(&body);
    if head.header("If-None-Match") == Some(etag.as_str()) {
        shared.record(head, 304, id);
        write_empty(writer, 304, None, head.keep_alive())?;
        return Ok(AfterResponse::KeepOpen);
    }
    let size = body.len();
    let (status, part, content_range) = match parse_range(head.header("Range"), size) {
        RangeSelection::Whole => (200, &body[..], None),
        RangeSelection::Partial { start, end } => (
            206,
            &body[start..=end],
            Some(format!("bytes {start}-{end}/{size}")),
        ),
        RangeSelection::Unsatisfiable => (416, &body[..0], Some(format!("bytes */{size}"))),
    };
    shared.record(head, status, id);
    let length = fault
        .and_then(|fault| fault.wrong_length)
        .unwrap_or(part.len() as u64);
    let mut header = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {length}\r\n",
        reason(status)
    );
    header.push_str("Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\n");
    let _ = write!(header, "ETag: {etag}\r\n");
    if let Some(content_range) = content_range {
        let _ = write!(header, "Content-Range: {content_range}\r\n");
    }
    if !head.keep_alive() {
        header.push_str("Connection: close\r\n");
    }
    header.push_str("\r\n");
    writer.write_all(header.as_bytes())?;
    if head.method == "HEAD" || status == 416 {
        return Ok(AfterResponse::KeepOpen);
    }
    match fault {
        Some(fault) => write_faulty_body(shared, writer, part, fault),
        None => writer.write_all(part).map(|()| AfterResponse::KeepOpen),
    }
}

fn write_faulty_body(
    shared: &Shared,
    writer: &mut impl Write,
    body: &[u8],
    fault: &Fault,
) -> io::Result<AfterResponse> {
    let cut = fault.reset_after.or(fault.truncate_after);
    let end = cut.map_or(body.len(), |cut| cut.min(body.len()));
    if let Some((stall_at, pause)) = fault.stall {
        let stall_at = stall_at.min(end);
        writer.write_all(&body[..stall_at])?;
        writer.flush()?;
        shared.sleep(pause);
        // A server being dropped ends the stall early and must not finish the body: the
        // connection is shut down, and writing the rest first would race with that.
        if shared.is_stopping() {
            return Ok(AfterResponse::Close);
        }
        writer.write_all(&body[stall_at..end])?;
    } else {
        writer.write_all(&body[..end])?;
    }
    writer.flush()?;
    if fault.reset_after.is_some() {
        Ok(AfterResponse::Reset)
    } else if cut.is_some() || fault.wrong_length.is_some() {
        // A client that trusts a wrong Content-Length cannot find where the next response starts.
        Ok(AfterResponse::Close)
    } else {
        Ok(AfterResponse::KeepOpen)
    }
}

fn write_empty(
    writer: &mut impl Write,
    status: u16,
    retry_after: Option<u32>,
    keep_alive: bool,
) -> io::Result<()> {
    let mut header = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: 0\r\n",
        reason(status)
    );
    if let Some(seconds) = retry_after {
        let _ = write!(header, "Retry-After: {seconds}\r\n");
    }
    if status == 405 {
        header.push_str("Allow: GET, HEAD\r\n");
    }
    if !keep_alive {
        header.push_str("Connection: close\r\n");
    }
    header.push_str("\r\n");
    writer.write_all(header.as_bytes())?;
    writer.flush()
}
