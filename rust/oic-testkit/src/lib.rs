//! Test helpers: signed Debian repositories served over HTTP on 127.0.0.1.
