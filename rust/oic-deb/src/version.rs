//! Debian package versions and dpkg's order of them.
//!
//! A version is `[epoch:]upstream[-revision]`. Comparison follows dpkg: epochs numerically, then
//! upstream and revision each by alternating non-digit and digit runs, where in non-digit runs `~`
//! sorts before everything (even the end of the string), letters before other characters, and
//! digit runs compare as numbers.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A parsed Debian version.
#[derive(Debug, Clone, Eq)]
pub struct Version {
    /// The trimmed text, checked by `parse`. The parts are split from it on every use, because an
    /// index keeps hundreds of thousands of versions and the text alone takes the least memory.
    /// Relations parsed with one [`crate::NameInterner`] share the text of equal versions.
    text: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid version `{text}`: {reason}")]
pub struct VersionError {
    pub text: String,
    pub reason: &'static str,
}

impl Version {
    /// Parses a version, checking it as dpkg does.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        Self::parse_shared(text, |trimmed| Arc::from(trimmed))
    }

    /// Parses a version as [`Version::parse`] does, taking the stored text from `share`.
    pub(crate) fn parse_shared(
        text: &str,
        share: impl FnOnce(&str) -> Arc<str>,
    ) -> Result<Self, VersionError> {
        let invalid = |reason| VersionError {
            text: text.to_owned(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid("the version is empty"));
        }
        if trimmed.contains(char::is_whitespace) {
            return Err(invalid("a version contains no spaces"));
        }

        let offset = text.len() - text.trim_start().len();
        let upstream_start = match trimmed.split_once(':') {
            Some((epoch, _)) => {
                epoch
                    .parse::<u32>()
                    .map_err(|_| invalid("the epoch is not a number"))?;
                offset + epoch.len() + 1
            }
            None => offset,
        };
        let end = offset + trimmed.len();
        let rest = &text[upstream_start..end];
        let (upstream, revision) = match rest.rfind('-') {
            Some(at) => (
                (upstream_start, upstream_start + at),
                (upstream_start + at + 1, end),
            ),
            None => ((upstream_start, end), (end, end)),
        };

        let upstream_text = &text[upstream.0..upstream.1];
        let revision_text = &text[revision.0..revision.1];
        if upstream_text.is_empty() {
            return Err(invalid("the upstream version is empty"));
        }
        if !upstream_text.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(invalid("the upstream version must start with a digit"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if !upstream_text.chars().all(allowed) {
            return Err(invalid(
                "the upstream version contains a character dpkg rejects",
            ));
        }
        if revision.0 != revision.1 || rest.ends_with('-') {
            if revision_text.is_empty() {
                return Err(invalid("the revision is empty"));
            }
            if !revision_text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c))
            {
                return Err(invalid("the revision contains a character dpkg rejects"));
            }
        }

        Ok(Self {
            text: share(trimmed),
        })
    }

    /// Splits the checked text into epoch, upstream version and revision.
    fn parts(&self) -> (u32, &str, &str) {
        let (epoch, rest) = match self.text.split_once(':') {
            // `parse` checked that the epoch is a number.
            Some((epoch, rest)) => (epoch.parse().unwrap_or(0), rest),
            None => (0, &*self.text),
        };
        match rest.rfind('-') {
            Some(at) => (epoch, &rest[..at], &rest[at + 1..]),
            None => (epoch, rest, ""),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn epoch(&self) -> u32 {
        self.parts().0
    }

    pub fn upstream(&self) -> &str {
        self.parts().1
    }

    /// The Debian revision, empty when the version has none.
    pub fn revision(&self) -> &str {
        self.parts().2
    }

    /// The version without its epoch, as used in .deb file names.
    pub fn without_epoch(&self) -> &str {
        self.text
            .split_once(':')
            .map_or(&*self.text, |(_, rest)| rest)
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let (epoch, upstream, revision) = self.parts();
        let (other_epoch, other_upstream, other_revision) = other.parts();
        epoch
            .cmp(&other_epoch)
            .then_with(|| compare_part(upstream, other_upstream))
            .then_with(|| compare_part(revision, other_revision))
    }
}

impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal versions may be written differently (`1.0` and `1.00`), so only the epoch, which
        // equal versions share, goes into the hash.
        self.epoch().hash(state);
    }
}

/// The sort weight of one character in a non-digit run: `~` first, then the end of the run,
/// then letters, then everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        Some(b'~') => -1,
        None => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Compares an upstream version or a revision as dpkg's `verrevcmp` does.
pub fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (a_text, a_rest) = split_run(a, |c| !c.is_ascii_digit());
        let (b_text, b_rest) = split_run(b, |c| !c.is_ascii_digit());
        let ordering = compare_text(a_text, b_text);
        if ordering != Ordering::Equal {
            return ordering;
        }

        let (a_digits, a_rest) = split_run(a_rest, |c| c.is_ascii_digit());
        let (b_digits, b_rest) = split_run(b_rest, |c| c.is_ascii_digit());
        let ordering = compare_digits(a_digits, b_digits);
        if ordering != Ordering::Equal {
            return ordering;
        }
        (a, b) = (a_rest, b_rest);
    }
    Ordering::Equal
}

fn split_run(bytes: &[u8], in_run: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|&c| !in_run(c))
        .unwrap_or(bytes.len());
    bytes.split_at(end)
}

fn compare_text(a: &[u8], b: &[u8]) -> Ordering {
    let length = a.len().max(b.len());
    for index in 0..length {
        let ordering = weight(a.get(index).copied()).cmp(&weight(b.get(index).copied()));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = trim_zeros(a);
    let b = trim_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn parts_are_split() {
        let version = v("2:1.0-1+deb12u1-3");
        assert_eq!(version.epoch(), 2);
        assert_eq!(version.upstream(), "1.0-1+deb12u1");
        assert_eq!(version.revision(), "3");
        assert_eq!(version.without_epoch(), "1.0-1+deb12u1-3");
        assert_eq!(v("1.2").revision(), "");
    }

    #[test]
    fn order_matches_dpkg_rules() {
        let ascending = [
            "1.0~rc1",
            "1.0",
            "1.0-1~bpo1",
            "1.0-1",
            "1.0-1+b1",
            "1.0a",
            "1.0+dfsg",
            "1.00.1",
            "1.1",
            "1.10",
            "2",
            "1:0.1",
        ];
        for pair in ascending.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn leading_zeros_are_equal() {
        assert_eq!(v("1.001"), v("1.1"));
        assert_eq!(v("0:1.0"), v("1.0"));
        assert_eq!(v("1.0-0"), v("1.0"));
    }

    #[test]
    fn tilde_sorts_before_end() {
        assert!(v("1.0~") < v("1.0"));
        assert!(v("1.0~~") < v("1.0~"));
        assert!(v("1.0~~") < v("1.0~~a"));
        assert!(v("1.0~~a") < v("1.0~"));
    }

    #[test]
    fn invalid_versions_are_rejected() {
        for text in ["", "a1.0", "1:", "x:1.0", "1.0-", "1.0 1", "1.0_1", "-1"] {
            assert!(Version::parse(text).is_err(), "{text:?}");
        }
    }
}
