//! A minimal HTTP/1.1 client over `TcpStream` for the server tests.

// Each test crate uses a different part of this client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One response: status, headers with lowercase names, and the body read per Content-Length.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A keep-alive client connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Client {
    pub fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).expect("connect to the test server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        Client { reader, stream }
    }

    /// Sends `method target` with the given extra header lines, each ending in CRLF.
    pub fn send(&mut self, method: &str, target: &str, headers: &str) {
        let request = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n");
        self.stream
            .write_all(request.as_bytes())
            .expect("send the request");
    }

    /// Reads the status line and headers, then `Content-Length` body bytes unless `head_only`.
    pub fn receive(&mut self, head_only: bool) -> Response {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .expect("read the status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .expect("status code")
            .parse()
            .expect("number");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .expect("read a header line");
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').expect("header has a colon");
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if !head_only {
            let length: usize = response
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap());
            response.body = vec![0; length];
            self.reader
                .read_exact(&mut response.body)
                .expect("read the body");
        }
        response
    }

    pub fn get(&mut self, target: &str) -> Response {
        self.send("GET", target, "");
        self.receive(false)
    }

    /// Reads everything until the server closes the connection.
    pub fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).map(|_| rest)
    }
}

/// Sends one request on a new connection and returns the response.
pub fn get(address: SocketAddr, target: &str) -> Response {
    Client::connect(address).get(target)
}
