//! Progress of a fetch, for the command line and Python to show.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::PkgCacheError;
use crate::report::{format_bytes, FetchReport};

/// Receives progress events of a fetch. Calls come from several tasks at once.
pub trait Reporter: Send + Sync {
    /// Called once, after the cache check, with the files and bytes left to download.
    fn start(&self, total_files: usize, total_bytes: u64);
    fn file_started(&self, file_name: &str, size: u64);
    /// Called as bytes arrive. A retried transfer reports its bytes again.
    fn bytes(&self, count: u64);
    fn file_done(&self, file_name: &str, succeeded: bool);
    fn finish(&self, outcome: Result<&FetchReport, &PkgCacheError>);
}

/// A reporter that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn start(&self, _total_files: usize, _total_bytes: u64) {}
    fn file_started(&self, _file_name: &str, _size: u64) {}
    fn bytes(&self, _count: u64) {}
    fn file_done(&self, _file_name: &str, _succeeded: bool) {}
    fn finish(&self, _outcome: Result<&FetchReport, &PkgCacheError>) {}
}

/// Writes progress to stderr: on a terminal, one line redrawn at most every 200 ms with the
/// files and bytes done, the rate and the estimated time left. Otherwise, and in any case at
/// the end, only the summary line.
#[derive(Debug)]
pub struct TextReporter {
    live: bool,
    state: Mutex<Progress>,
}

#[derive(Debug)]
struct Progress {
    total_files: usize,
    total_bytes: u64,
    files_done: usize,
    bytes_done: u64,
    started: Instant,
    drawn: Option<Instant>,
}

const REDRAW: Duration = Duration::from_millis(200);

impl TextReporter {
    /// Creates a reporter that draws progress only when stderr is a terminal.
    pub fn new() -> Self {
        Self::with_live(std::io::stderr().is_terminal())
    }

    fn with_live(live: bool) -> Self {
        Self {
            live,
            state: Mutex::new(Progress {
                total_files: 0,
                total_bytes: 0,
                files_done: 0,
                bytes_done: 0,
                started: Instant::now(),
                drawn: None,
            }),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Progress), force: bool) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut state);
        if !self.live {
            return;
        }
        let now = Instant::now();
        if force || state.drawn.is_none_or(|drawn| now - drawn >= REDRAW) {
            state.drawn = Some(now);
            let line = state.line(now);
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K{line}");
            let _ = stderr.flush();
        }
    }
}

impl Default for TextReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// Formats a line such as `12/40 files, 20.0 MB/80.0 MB, 10.0 MB/s, 6 s left`.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    fn line(&self, now: Instant) -> String {
        let elapsed = (now - self.started).as_secs_f64();
        let bytes_done = self.bytes_done.min(self.total_bytes);
        let rate = if elapsed > 0.0 {
            bytes_done as f64 / elapsed
        } else {
            0.0
        };
        let left = if rate > 0.0 {
            let seconds = (self.total_bytes - bytes_done) as f64 / rate;
            format!("{} s left", seconds.ceil() as u64)
        } else {
            "time left unknown".to_owned()
        };
        format!(
            "{}/{} files, {}/{}, {}/s, {left}",
            self.files_done,
            self.total_files,
            format_bytes(bytes_done),
            format_bytes(self.total_bytes),
            format_bytes(rate as u64),
        )
    }
}

impl Reporter for TextReporter {
    fn start(&self, total_files: usize, total_bytes: u64) {
        self.update(
            |state| {
                state.total_files = total_files;
                state.total_bytes = total_bytes;
                state.started = Instant::now();
            },
            false,
        );
    }

    fn file_started(&self, _file_name: &str, _size: u64) {}

    fn bytes(&self, count: u64) {
        self.update(|state| state.bytes_done += count, false);
    }

    fn file_done(&self, _file_name: &str, _succeeded: bool) {
        self.update(|state| state.files_done += 1, false);
    }

    fn finish(&self, outcome: Result<&FetchReport, &PkgCacheError>) {
        let mut stderr = std::io::stderr().lock();
        if self.live {
            let _ = write!(stderr, "\r\x1b[2K");
        }
        if let Ok(report) = outcome {
            let _ = writeln!(stderr, "{}", report.summary_line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_rate_and_time_left() {
        let started = Instant::now();
        let progress = Progress {
            total_files: 40,
            total_bytes: 80_000_000,
            files_done: 12,
            bytes_done: 20_000_000,
            started,
            drawn: None,
        };
        let line = progress.line(started + Duration::from_secs(2));
        assert_eq!(line, "12/40 files, 20.0 MB/80.0 MB, 10.0 MB/s, 6 s left");
    }
}
