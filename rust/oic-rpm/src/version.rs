//! RPM version comparison: `rpmvercmp` on single strings, and `[epoch:]version[-release]`.
//!
//! The order is the one of rpm 4.18's `rpmvercmp` and `rpmverCmp`, and the tests in
//! `tests/vercmp.rs` compare it with the host's `rpm` on thousands of pairs.

use std::cmp::Ordering;
use std::fmt;

/// Compares two version or release strings the way rpm's `rpmvercmp` does.
///
/// The strings are split into segments of ASCII digits or ASCII letters. Every other byte
/// separates segments, except `~` and `^`:
///
/// - `~` sorts before everything, even the end of the string, so `1.0~rc1 < 1.0`.
/// - `^` sorts after the end of the string but before any other segment, so
///   `1.0 < 1.0^git1 < 1.0.1`.
///
/// Numeric segments compare as numbers (leading zeros ignored, any length), letter segments
/// compare bytewise, and a numeric segment is newer than a letter segment. When one string runs
/// out of segments first, the longer one is newer.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let mut one = a.as_bytes();
    let mut two = b.as_bytes();
    loop {
        one = skip_separators(one);
        two = skip_separators(two);

        if let Some(order) = compare_tilde(&mut one, &mut two) {
            match order {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        if let Some(order) = compare_caret(&mut one, &mut two) {
            match order {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        if one.is_empty() || two.is_empty() {
            break;
        }

        let is_numeric = one[0].is_ascii_digit();
        let (segment_one, rest_one) = split_segment(one, is_numeric);
        let (segment_two, rest_two) = split_segment(two, is_numeric);
        // The first string always starts a segment of its own type here. An empty segment on
        // the second side means the two segments have different types, and a number wins.
        if segment_two.is_empty() {
            return if is_numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let order = if is_numeric {
            compare_numbers(segment_one, segment_two)
        } else {
            segment_one.cmp(segment_two)
        };
        if order != Ordering::Equal {
            return order;
        }
        one = rest_one;
        two = rest_two;
    }
    match (one.is_empty(), two.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

fn skip_separators(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| byte.is_ascii_alphanumeric() || byte == b'~' || byte == b'^')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Handles a `~` at the front of either side: `Some(Equal)` when both had one and it was
/// consumed, `Some(order)` when only one side had it, `None` when neither had.
fn compare_tilde(one: &mut &[u8], two: &mut &[u8]) -> Option<Ordering> {
    let (tilde_one, tilde_two) = (one.first() == Some(&b'~'), two.first() == Some(&b'~'));
    match (tilde_one, tilde_two) {
        (false, false) => None,
        (true, false) => Some(Ordering::Less),
        (false, true) => Some(Ordering::Greater),
        (true, true) => {
            *one = &one[1..];
            *two = &two[1..];
            Some(Ordering::Equal)
        }
    }
}

/// Handles a `^` at the front of either side, like [`compare_tilde`]. A `^` is newer than the
/// end of the string and older than any segment.
fn compare_caret(one: &mut &[u8], two: &mut &[u8]) -> Option<Ordering> {
    let (caret_one, caret_two) = (one.first() == Some(&b'^'), two.first() == Some(&b'^'));
    if !caret_one && !caret_two {
        return None;
    }
    if one.is_empty() {
        return Some(Ordering::Less);
    }
    if two.is_empty() {
        return Some(Ordering::Greater);
    }
    match (caret_one, caret_two) {
        (false, _) => Some(Ordering::Greater),
        (_, false) => Some(Ordering::Less),
        (true, true) => {
            *one = &one[1..];
            *two = &two[1..];
            Some(Ordering::Equal)
        }
    }
}

fn split_segment(bytes: &[u8], numeric: bool) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|&byte| {
            if numeric {
                !byte.is_ascii_digit()
            } else {
                !byte.is_ascii_alphabetic()
            }
        })
        .unwrap_or(bytes.len());
    bytes.split_at(end)
}

/// Compares two runs of ASCII digits as numbers of any length.
fn compare_numbers(one: &[u8], two: &[u8]) -> Ordering {
    let trim = |digits: &[u8]| {
        let start = digits
            .iter()
            .position(|&digit| digit != b'0')
            .unwrap_or(digits.len());
        digits[start..].to_vec()
    };
    let (one, two) = (trim(one), trim(two));
    one.len().cmp(&two.len()).then_with(|| one.cmp(&two))
}

/// An `[epoch:]version[-release]` triple, as in package headers and dependency entries.
///
/// A missing epoch counts as 0 everywhere. A missing release is kept as `None`: when sorting
/// packages it sorts before every release, and in dependency ranges it matches any release
/// (see [`crate::Constraint`]).
///
/// Equality follows the order, so `0:1.0-1 == 1.0-1` and `1.01 == 1.1`.
#[derive(Clone, Debug)]
pub struct Evr {
    pub epoch: Option<String>,
    pub version: String,
    pub release: Option<String>,
}

impl Evr {
    /// Creates an EVR from its parts. An empty epoch or release is treated as missing.
    pub fn new(epoch: Option<&str>, version: &str, release: Option<&str>) -> Self {
        let present = |part: Option<&str>| part.filter(|text| !text.is_empty()).map(str::to_owned);
        Self {
            epoch: present(epoch),
            version: version.to_owned(),
            release: present(release),
        }
    }

    /// Parses `[epoch:]version[-release]` as rpm does: the epoch is a run of leading digits
    /// ended by `:`, and the release follows the last `-` after the epoch.
    pub fn parse(text: &str) -> Self {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = if text.as_bytes().get(digits) == Some(&b':') {
            // rpm reads an empty epoch (":1.0") as 0.
            let epoch = if digits == 0 { "0" } else { &text[..digits] };
            (Some(epoch), &text[digits + 1..])
        } else {
            (None, text)
        };
        let (version, release) = match rest.rfind('-') {
            Some(dash) => (&rest[..dash], Some(&rest[dash + 1..])),
            None => (rest, None),
        };
        Self {
            epoch: epoch.map(str::to_owned),
            version: version.to_owned(),
            release: release.map(str::to_owned),
        }
    }

    /// Returns the epoch, or `"0"` when it is missing.
    pub fn epoch_or_zero(&self) -> &str {
        self.epoch.as_deref().unwrap_or("0")
    }

    /// Returns whether the epoch is present and not zero.
    fn has_nonzero_epoch(&self) -> bool {
        self.epoch
            .as_deref()
            .is_some_and(|epoch| epoch.bytes().any(|digit| digit != b'0'))
    }

    /// Compares epochs as rpm's dependency check does. When only one side gives an epoch, the
    /// other counts as 0.
    pub(crate) fn compare_epoch(&self, other: &Self) -> Ordering {
        match (&self.epoch, &other.epoch) {
            (Some(one), Some(two)) => rpmvercmp(one, two),
            _ if self.has_nonzero_epoch() => Ordering::Greater,
            _ if other.has_nonzero_epoch() => Ordering::Less,
            _ => Ordering::Equal,
        }
    }
}

impl Ord for Evr {
    /// Orders packages as `rpm.vercmp` does: epoch (missing is 0), version, then release, where
    /// a missing release sorts before any release.
    fn cmp(&self, other: &Self) -> Ordering {
        rpmvercmp(self.epoch_or_zero(), other.epoch_or_zero())
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| {
                rpmvercmp(
                    self.release.as_deref().unwrap_or(""),
                    other.release.as_deref().unwrap_or(""),
                )
            })
    }
}

impl PartialEq for Evr {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Evr {}

impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Evr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(epoch) = &self.epoch {
            write!(formatter, "{epoch}:")?;
        }
        formatter.write_str(&self.version)?;
        if let Some(release) = &self.release {
            write!(formatter, "-{release}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_and_caret_order() {
        let ordered = ["1.0~rc1", "1.0", "1.0^git1", "1.0^git1.1", "1.0a", "1.0.1"];
        for pair in ordered.windows(2) {
            assert_eq!(rpmvercmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
            assert_eq!(rpmvercmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        assert_eq!(rpmvercmp("1.010", "1.9"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.001", "1.1"), Ordering::Equal);
        assert_eq!(
            rpmvercmp("99999999999999999999999", "100000000000000000000000"),
            Ordering::Less
        );
    }

    #[test]
    fn evr_parse_splits_parts() {
        let evr = Evr::parse("2:1.0-rc-3.fc40");
        assert_eq!(evr.epoch.as_deref(), Some("2"));
        assert_eq!(evr.version, "1.0-rc");
        assert_eq!(evr.release.as_deref(), Some("3.fc40"));
        assert_eq!(Evr::parse(":1").epoch.as_deref(), Some("0"));
        assert_eq!(Evr::parse("a:1").epoch, None);
        assert_eq!(Evr::parse("2:1.0-rc-3.fc40").to_string(), "2:1.0-rc-3.fc40");
    }

    #[test]
    fn missing_epoch_is_zero() {
        assert_eq!(
            Evr::parse("0:1.0-1").cmp(&Evr::parse("1.0-1")),
            Ordering::Equal
        );
        assert_eq!(
            Evr::parse("1:0.1").cmp(&Evr::parse("9.9")),
            Ordering::Greater
        );
    }
}
