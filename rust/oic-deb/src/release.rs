//! The `Release` file of a repository suite, after its `OpenPGP` signature has been removed.

use std::collections::BTreeMap;

use crate::control::{self, ControlError, Paragraph};
use crate::date::{parse_date, DateError};

/// The size and checksum of one index file listed in a `Release` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// In bytes.
    pub size: u64,
    /// Lowercase hexadecimal digest.
    pub hash: String,
}

/// A parsed `Release` file. Fields that the file omits are `None` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub version: Option<String>,
    /// Creation time, in seconds since the Unix epoch.
    pub date: Option<i64>,
    /// Expiry time, in seconds since the Unix epoch.
    pub valid_until: Option<i64>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// Index types, such as `Packages`, whose per-architecture files also list the
    /// `Architecture: all` packages, from `No-Support-for-Architecture-all`.
    pub no_support_for_architecture_all: Vec<String>,
    /// Whether clients may download indexes from `by-hash/` paths.
    pub acquire_by_hash: bool,
    /// The `SHA256` list: path relative to the suite directory to size and digest.
    pub sha256: BTreeMap<String, FileEntry>,
    /// The `MD5Sum` list, in the same form.
    pub md5sum: BTreeMap<String, FileEntry>,
}

/// An error in a `Release` file, with the 1-based line number where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The control syntax is invalid.
    #[error(transparent)]
    Control(#[from] ControlError),

    /// The text contains no paragraph at all.
    #[error("The Release file is empty")]
    Empty,

    /// The text contains a second paragraph, which a Release file never has.
    #[error("Unexpected second paragraph on line {line} of the Release file")]
    ExtraParagraph { line: usize },

    /// A `Date` or `Valid-Until` value that is not an RFC 2822 date.
    #[error("Invalid `{field}` on line {line}: {source}")]
    InvalidDate {
        field: &'static str,
        line: usize,
        source: DateError,
    },

    /// Another field with an invalid value.
    #[error("Invalid `{field}` on line {line}: {reason}")]
    InvalidField {
        field: &'static str,
        line: usize,
        reason: String,
    },

    /// A line of a checksum list that is not `hash size path`.
    #[error("Invalid `{field}` entry on line {line}: {reason}: `{text}`")]
    InvalidFileLine {
        field: &'static str,
        line: usize,
        reason: &'static str,
        text: String,
    },
}

impl Release {
    /// Parses the text of a `Release` file, or the signed body of an `InRelease` file.
    pub fn parse(text: &str) -> Result<Self, ReleaseError> {
        let mut paragraphs = control::paragraphs(text);
        let paragraph = paragraphs.next().ok_or(ReleaseError::Empty)??;
        if let Some(extra) = paragraphs.next() {
            return Err(ReleaseError::ExtraParagraph {
                line: extra?.line(),
            });
        }

        let mut release = Self {
            origin: text_field(&paragraph, "Origin"),
            label: text_field(&paragraph, "Label"),
            suite: text_field(&paragraph, "Suite"),
            codename: text_field(&paragraph, "Codename"),
            version: text_field(&paragraph, "Version"),
            date: date_field(&paragraph, "Date")?,
            valid_until: date_field(&paragraph, "Valid-Until")?,
            architectures: word_list(&paragraph, "Architectures"),
            components: word_list(&paragraph, "Components"),
            no_support_for_architecture_all: word_list(
                &paragraph,
                "No-Support-for-Architecture-all",
            ),
            acquire_by_hash: yes_no_field(&paragraph, "Acquire-By-Hash")?,
            ..Self::default()
        };
        release.sha256 = file_list(&paragraph, "SHA256", 64)?;
        release.md5sum = file_list(&paragraph, "MD5Sum", 32)?;
        Ok(release)
    }

    /// Looks up `path` (relative to the suite directory, as in `main/binary-amd64/Packages`) in
    /// the `SHA256` list. Returns `None` when the file is not listed there, even if `MD5Sum`
    /// lists it, because MD5 does not protect against a forged file.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.sha256.get(path)
    }

    /// Tells whether `Valid-Until` lies before `now_unix` (seconds since the Unix epoch). A file
    /// without `Valid-Until` never expires.
    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.valid_until
            .is_some_and(|valid_until| now_unix > valid_until)
    }
}

fn text_field(paragraph: &Paragraph<'_>, name: &str) -> Option<String> {
    paragraph.get(name).map(|field| field.folded().into_owned())
}

fn word_list(paragraph: &Paragraph<'_>, name: &str) -> Vec<String> {
    paragraph.get(name).map_or_else(Vec::new, |field| {
        field
            .raw_value()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    })
}

fn date_field(paragraph: &Paragraph<'_>, name: &'static str) -> Result<Option<i64>, ReleaseError> {
    let Some(field) = paragraph.get(name) else {
        return Ok(None);
    };
    let date = parse_date(&field.folded()).map_err(|source| ReleaseError::InvalidDate {
        field: name,
        line: field.line(),
        source,
    })?;
    Ok(Some(date))
}

fn yes_no_field(paragraph: &Paragraph<'_>, name: &'static str) -> Result<bool, ReleaseError> {
    let Some(field) = paragraph.get(name) else {
        return Ok(false);
    };
    match field.raw_value() {
        "yes" => Ok(true),
        "no" => Ok(false),
        value => Err(ReleaseError::InvalidField {
            field: name,
            line: field.line(),
            reason: format!("`{}` is not `yes` or `no`", value.trim()),
        }),
    }
}

/// Reads a checksum list: continuation lines of `hash size path`, with the digest
/// `hash_length` hexadecimal digits long.
fn file_list(
    paragraph: &Paragraph<'_>,
    name: &'static str,
    hash_length: usize,
) -> Result<BTreeMap<String, FileEntry>, ReleaseError> {
    let mut files = BTreeMap::new();
    let Some(field) = paragraph.get(name) else {
        return Ok(files);
    };
    if !field.first_line().is_empty() {
        return Err(file_line_error(
            name,
            field.line(),
            "the list must start on the next line",
            field.first_line(),
        ));
    }

    for (index, text) in field.continuation_lines().enumerate() {
        let line = field.line() + index + 1;
        let (path, entry) = parse_file_line(text, hash_length)
            .map_err(|reason| file_line_error(name, line, reason, text))?;
        if files.insert(path.to_owned(), entry).is_some() {
            return Err(file_line_error(
                name,
                line,
                "the path is listed twice",
                text,
            ));
        }
    }
    Ok(files)
}

fn parse_file_line(text: &str, hash_length: usize) -> Result<(&str, FileEntry), &'static str> {
    let mut words = text.split_whitespace();
    let (Some(hash), Some(size), Some(path), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err("expected `hash size path`");
    };

    if hash.len() != hash_length || !hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err("the hash has the wrong length or is not hexadecimal");
    }
    if !size.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("the size is not a whole number");
    }
    let size = size.parse().map_err(|_| "the size is too large")?;

    let entry = FileEntry {
        size,
        hash: hash.to_ascii_lowercase(),
    };
    Ok((path, entry))
}

fn file_line_error(
    field: &'static str,
    line: usize,
    reason: &'static str,
    text: &str,
) -> ReleaseError {
    ReleaseError::InvalidFileLine {
        field,
        line,
        reason,
        text: text.trim().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA_A: &str = "515e692f2c4121c6fcec444ef100cc18f79a991910615f3a88c8b7becfc94d2f";
    const MD5_A: &str = "f230d61720e789abf5df55d6026230c6";

    fn sample() -> String {
        format!(
            "Origin: Debian\nLabel: Debian\nSuite: oldstable\nVersion: 12.15\nCodename: bookworm\n\
             Date: Sat, 11 Jul 2026 10:16:37 UTC\nValid-Until: Sat, 18 Jul 2026 10:16:37 UTC\n\
             Acquire-By-Hash: yes\nNo-Support-for-Architecture-all: Packages\n\
             Architectures: all amd64 arm64\nComponents: main contrib\n\
             Description: Debian 12.15 Released 11 July 2026\n\
             MD5Sum:\n {MD5_A} 50060337 main/binary-amd64/Packages\n\
             SHA256:\n {SHA_A}   50060337 main/binary-amd64/Packages\n \
             {SHA_A} 0 main/binary-amd64/Release\n"
        )
    }

    fn error(text: &str) -> ReleaseError {
        Release::parse(text).unwrap_err()
    }

    #[test]
    fn all_fields_parse() {
        let release = Release::parse(&sample()).unwrap();
        assert_eq!(release.origin.as_deref(), Some("Debian"));
        assert_eq!(release.label.as_deref(), Some("Debian"));
        assert_eq!(release.suite.as_deref(), Some("oldstable"));
        assert_eq!(release.codename.as_deref(), Some("bookworm"));
        assert_eq!(release.version.as_deref(), Some("12.15"));
        assert_eq!(release.date, Some(1_783_764_997));
        assert_eq!(release.valid_until, Some(1_783_764_997 + 7 * 86_400));
        assert!(release.acquire_by_hash);
        assert_eq!(release.no_support_for_architecture_all, ["Packages"]);
        assert_eq!(release.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(release.components, ["main", "contrib"]);
        assert_eq!(release.sha256.len(), 2);
        assert_eq!(release.md5sum.len(), 1);
    }

    #[test]
    fn file_looks_up_sha256() {
        let release = Release::parse(&sample()).unwrap();
        let entry = release.file("main/binary-amd64/Packages").unwrap();
        assert_eq!(entry.size, 50_060_337);
        assert_eq!(entry.hash, SHA_A);
        assert_eq!(release.file("main/binary-amd64/Release").unwrap().size, 0);
        assert!(release.file("main/binary-i386/Packages").is_none());
    }

    #[test]
    fn file_ignores_md5_only_entries() {
        let text = format!("Suite: x\nMD5Sum:\n {MD5_A} 1 main/only-md5\n");
        let release = Release::parse(&text).unwrap();
        assert!(release.md5sum.contains_key("main/only-md5"));
        assert!(release.file("main/only-md5").is_none());
    }

    #[test]
    fn expiry_compares_valid_until() {
        let release = Release::parse(&sample()).unwrap();
        let valid_until = release.valid_until.unwrap();
        assert!(!release.is_expired(valid_until - 1));
        assert!(!release.is_expired(valid_until));
        assert!(release.is_expired(valid_until + 1));
        assert!(!Release::default().is_expired(i64::MAX));
    }

    #[test]
    fn optional_fields_default() {
        let release = Release::parse("Suite: sid\n").unwrap();
        assert_eq!(release.suite.as_deref(), Some("sid"));
        assert_eq!(release.origin, None);
        assert_eq!(release.date, None);
        assert!(!release.acquire_by_hash);
        assert!(release.architectures.is_empty());
        assert!(release.sha256.is_empty());
    }

    #[test]
    fn field_names_ignore_case() {
        let text = format!("suite: sid\nACQUIRE-BY-HASH: no\nsha256:\n {SHA_A} 1 a/b\n");
        let release = Release::parse(&text).unwrap();
        assert_eq!(release.suite.as_deref(), Some("sid"));
        assert!(!release.acquire_by_hash);
        assert!(release.file("a/b").is_some());
    }

    #[test]
    fn crlf_release_parses() {
        let release = Release::parse(&sample().replace('\n', "\r\n")).unwrap();
        assert_eq!(release.codename.as_deref(), Some("bookworm"));
        assert_eq!(
            release.file("main/binary-amd64/Packages").unwrap().size,
            50_060_337
        );
    }

    #[test]
    fn uppercase_hash_is_lowered() {
        let text = format!("SHA256:\n {} 1 a/b\n", SHA_A.to_uppercase());
        assert_eq!(
            Release::parse(&text).unwrap().file("a/b").unwrap().hash,
            SHA_A
        );
    }

    #[test]
    fn empty_text_is_an_error() {
        assert_eq!(error(""), ReleaseError::Empty);
        assert_eq!(error("\n\n"), ReleaseError::Empty);
    }

    #[test]
    fn second_paragraph_is_an_error() {
        assert_eq!(
            error("Suite: a\n\nSuite: b\n"),
            ReleaseError::ExtraParagraph { line: 3 }
        );
    }

    #[test]
    fn syntax_errors_pass_through() {
        assert!(matches!(
            error("Suite: a\nSuite: b\n"),
            ReleaseError::Control(ControlError::DuplicateField { line: 2, .. })
        ));
        assert!(matches!(
            error("Suite: a\n\nbroken\n"),
            ReleaseError::Control(ControlError::MissingColon { line: 3, .. })
        ));
    }

    #[test]
    fn invalid_dates_are_errors() {
        let found = error("Suite: a\nValid-Until: tomorrow\n");
        assert!(matches!(
            found,
            ReleaseError::InvalidDate {
                field: "Valid-Until",
                line: 2,
                ..
            }
        ));
        assert_eq!(
            found.to_string(),
            "Invalid `Valid-Until` on line 2: Invalid date `tomorrow`: \
             expected `Day, DD Mon YYYY HH:MM:SS UTC`"
        );
        assert!(matches!(
            error("Date: Sat, 11 Jul 2026 25:00:00 UTC\n"),
            ReleaseError::InvalidDate {
                field: "Date",
                line: 1,
                ..
            }
        ));
    }

    #[test]
    fn invalid_acquire_by_hash_is_an_error() {
        let found = error("Suite: a\nAcquire-By-Hash: maybe\n");
        assert_eq!(
            found.to_string(),
            "Invalid `Acquire-By-Hash` on line 2: `maybe` is not `yes` or `no`"
        );
    }

    #[test]
    fn malformed_hash_lines_are_errors() {
        let cases = [
            (format!(" {SHA_A} 1\n"), "expected `hash size path`"),
            (
                format!(" {SHA_A} 1 a/b extra\n"),
                "expected `hash size path`",
            ),
            (
                " abc 1 a/b\n".to_owned(),
                "the hash has the wrong length or is not hexadecimal",
            ),
            (
                format!(" {} 1 a/b\n", "g".repeat(64)),
                "the hash has the wrong length or is not hexadecimal",
            ),
            (
                format!(" {SHA_A} 1x a/b\n"),
                "the size is not a whole number",
            ),
            (
                format!(" {SHA_A} -1 a/b\n"),
                "the size is not a whole number",
            ),
            (
                format!(" {SHA_A} 99999999999999999999999 a/b\n"),
                "the size is too large",
            ),
        ];
        for (line, reason) in cases {
            let text = format!("Suite: a\nSHA256:\n {SHA_A} 1 ok/file\n{line}");
            let found = error(&text);
            let ReleaseError::InvalidFileLine {
                field,
                line: number,
                reason: found_reason,
                ..
            } = found
            else {
                panic!("{line:?} gave {found:?}");
            };
            assert_eq!(field, "SHA256", "{line:?}");
            assert_eq!(number, 4, "{line:?}");
            assert_eq!(found_reason, reason, "{line:?}");
        }
    }

    #[test]
    fn md5_list_checks_its_own_length() {
        let found = error(&format!("MD5Sum:\n {SHA_A} 1 a/b\n"));
        assert!(matches!(
            found,
            ReleaseError::InvalidFileLine {
                field: "MD5Sum",
                line: 2,
                ..
            }
        ));
    }

    #[test]
    fn value_on_hash_field_line_is_an_error() {
        let found = error(&format!("SHA256: {SHA_A} 1 a/b\n"));
        assert!(matches!(
            found,
            ReleaseError::InvalidFileLine {
                field: "SHA256",
                line: 1,
                ..
            }
        ));
    }

    #[test]
    fn repeated_path_is_an_error() {
        let found = error(&format!("SHA256:\n {SHA_A} 1 a/b\n {SHA_A} 2 a/b\n"));
        assert_eq!(
            found.to_string(),
            format!("Invalid `SHA256` entry on line 3: the path is listed twice: `{SHA_A} 2 a/b`")
        );
    }

    #[test]
    fn truncated_hash_list_is_an_error() {
        let text = sample();
        let cut = &text[..text.len() - 30];
        assert!(matches!(
            error(cut),
            ReleaseError::InvalidFileLine {
                field: "SHA256",
                ..
            }
        ));
    }
}
