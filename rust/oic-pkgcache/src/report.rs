//! The result of a fetch.

use std::path::PathBuf;
use std::time::Duration;

use crate::check::RedownloadReason;

/// A package file that is now in the cache with the expected size and checksum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachedFile {
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    /// The file was already cached and valid, or another fetch in this process downloaded it
    /// at the same time.
    pub from_cache: bool,
    /// Set when a cached copy was invalid and replaced.
    pub redownload_reason: Option<RedownloadReason>,
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FetchReport {
    /// One entry per distinct file name, in the order of the request.
    pub files: Vec<CachedFile>,
    pub downloaded_bytes: u64,
    pub downloaded_count: usize,
    pub cached_count: usize,
    #[serde(rename = "elapsed_seconds", serialize_with = "seconds")]
    pub elapsed: Duration,
}

impl FetchReport {
    /// Returns one line such as
    /// `153 packages: 150 from cache, 3 downloaded (4.2 MB) in 0.6 s`.
    pub fn summary_line(&self) -> String {
        format!(
            "{} packages: {} from cache, {} downloaded ({}) in {:.1} s",
            self.files.len(),
            self.cached_count,
            self.downloaded_count,
            format_bytes(self.downloaded_bytes),
            self.elapsed.as_secs_f64()
        )
    }
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// Formats a byte count in decimal units with one decimal, such as `4.2 MB`.
#[allow(clippy::cast_precision_loss)] // display only
pub fn format_bytes(bytes: u64) -> String {
    let value = bytes as f64;
    if bytes < 1_000 {
        format!("{bytes} B")
    } else if bytes < 1_000_000 {
        format!("{:.1} kB", value / 1e3)
    } else if bytes < 1_000_000_000 {
        format!("{:.1} MB", value / 1e6)
    } else {
        format!("{:.2} GB", value / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_reads_as_documented() {
        let file = CachedFile {
            path: PathBuf::from("/c/a.deb"),
            file_name: "a.deb".to_owned(),
            size: 1,
            from_cache: true,
            redownload_reason: None,
        };
        let report = FetchReport {
            files: vec![file; 153],
            downloaded_bytes: 4_200_000,
            downloaded_count: 3,
            cached_count: 150,
            elapsed: Duration::from_millis(600),
        };
        assert_eq!(
            report.summary_line(),
            "153 packages: 150 from cache, 3 downloaded (4.2 MB) in 0.6 s"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["elapsed_seconds"], 0.6);
    }

    #[test]
    fn bytes_use_decimal_units() {
        assert_eq!(format_bytes(999), "999 B");
        assert_eq!(format_bytes(1_500), "1.5 kB");
        assert_eq!(format_bytes(155_000_000), "155.0 MB");
        assert_eq!(format_bytes(2_000_000_000), "2.00 GB");
    }
}
