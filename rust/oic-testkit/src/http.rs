//! HTTP/1.1 request parsing, path resolution and byte ranges for the test server.

use std::io::{self, BufRead, Read};
use std::path::{Component, Path, PathBuf};

/// Maximum length of the request line or of one header line, in bytes.
const MAX_LINE: u64 = 8192;
/// Maximum number of header lines in one request.
const MAX_HEADERS: usize = 100;

/// The request line and headers of one request.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// Returns the first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Returns whether the connection stays open after the response: the HTTP/1.1 default
    /// unless the client sent `Connection: close`, and HTTP/1.0 only with `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("Connection").unwrap_or("").to_ascii_lowercase();
        if self.version == "HTTP/1.1" {
            !connection.contains("close")
        } else {
            connection.contains("keep-alive")
        }
    }

    /// Returns the path part of the request target, without query or fragment.
    pub fn path(&self) -> &str {
        let end = self.target.find(['?', '#']).unwrap_or(self.target.len());
        &self.target[..end]
    }
}

/// Reads one request head. Returns `Ok(None)` when the client closed the connection first.
pub(crate) fn read_request(reader: &mut impl BufRead) -> io::Result<Option<RequestHead>> {
    let Some(request_line) = read_line(reader)? else {
        return Ok(None);
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("invalid request line {request_line:?}")));
    };
    let mut head = RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers: Vec::new(),
    };
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("connection closed in headers"))?;
        if line.is_empty() {
            return Ok(Some(head));
        }
        if head.headers.len() == MAX_HEADERS {
            return Err(invalid(format!("more than {MAX_HEADERS} header lines")));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("invalid header line {line:?}")))?;
        head.headers
            .push((name.trim().to_owned(), value.trim().to_owned()));
    }
}

/// Reads one CRLF- or LF-terminated line without its terminator, or `None` at end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    reader.take(MAX_LINE + 1).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(invalid(format!(
            "line longer than {MAX_LINE} bytes or cut off"
        )));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| invalid("request line or header is not UTF-8"))
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Maps the URL path `path` to a regular file under `root`, which must be canonical.
///
/// Returns the status to send instead of a file: 400 for `..` segments, backslashes, NUL bytes
/// and invalid percent-encoding, and 404 for missing files, directories and symlinks that lead
/// outside `root`.
pub(crate) fn resolve(root: &Path, path: &str) -> Result<PathBuf, u16> {
    let decoded = percent_decode(path).ok_or(400_u16)?;
    let decoded = String::from_utf8(decoded).map_err(|_| 400_u16)?;
    if !decoded.starts_with('/') || decoded.contains(['\\', '\0']) {
        return Err(400);
    }
    let mut candidate = root.to_path_buf();
    for component in Path::new(&decoded).components() {
        match component {
            Component::Normal(part) => candidate.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err(400),
        }
    }
    let canonical = candidate.canonicalize().map_err(|_| 404_u16)?;
    if !canonical.starts_with(root) || !canonical.is_file() {
        return Err(404);
    }
    Ok(canonical)
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    Some(decoded)
}

/// The part of a file that a `Range` header selects.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeSelection {
    /// No range, an unsupported unit or several ranges: send the whole file with 200.
    Whole,
    /// Send bytes `start..=end` with 206.
    Partial { start: usize, end: usize },
    /// Send 416.
    Unsatisfiable,
}

/// Parses a single `bytes=` range against a body of `size` bytes.
pub(crate) fn parse_range(header: Option<&str>, size: usize) -> RangeSelection {
    let Some(spec) = header.and_then(|value| value.trim().strip_prefix("bytes=")) else {
        return RangeSelection::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeSelection::Whole;
    };
    if spec.contains(',') {
        return RangeSelection::Whole;
    }
    let (Ok(first), Ok(last)) = (parse_bound(first), parse_bound(last)) else {
        return RangeSelection::Whole;
    };
    let last_index = size.saturating_sub(1);
    let (start, end) = match (first, last) {
        (None, None) => return RangeSelection::Whole,
        (None, Some(suffix)) => (size.saturating_sub(suffix), last_index),
        (Some(start), last) => (start, last.unwrap_or(usize::MAX).min(last_index)),
    };
    if size == 0 || start >= size || start > end {
        return RangeSelection::Unsatisfiable;
    }
    RangeSelection::Partial { start, end }
}

/// Parses one end of a range, which is `None` when it is empty.
fn parse_bound(text: &str) -> Result<Option<usize>, std::num::ParseIntError> {
    if text.is_empty() {
        Ok(None)
    } else {
        text.parse().map(Some)
    }
}

/// Returns the reason phrase for the statuses the server sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_range, percent_decode, RangeSelection};

    #[test]
    fn range_forms() {
        assert_eq!(parse_range(None, 10), RangeSelection::Whole);
        assert_eq!(
            parse_range(Some("bytes=2-4"), 10),
            RangeSelection::Partial { start: 2, end: 4 }
        );
        assert_eq!(
            parse_range(Some("bytes=8-"), 10),
            RangeSelection::Partial { start: 8, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            RangeSelection::Partial { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-100"), 10),
            RangeSelection::Partial { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=10-"), 10),
            RangeSelection::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=1-2,4-5"), 10),
            RangeSelection::Whole
        );
        assert_eq!(parse_range(Some("items=1-2"), 10), RangeSelection::Whole);
        assert_eq!(
            parse_range(Some("bytes=-0"), 10),
            RangeSelection::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=0-0"), 0),
            RangeSelection::Unsatisfiable
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            percent_decode("/a%2e%2E/b").as_deref(),
            Some(&b"/a../b"[..])
        );
        assert_eq!(percent_decode("/bad%2"), None);
        assert_eq!(percent_decode("/bad%zz"), None);
    }
}
