//! Deb822 control data: paragraphs of `Field: value` lines, as in `Packages`, `Release` and
//! `DEBIAN/control` files.
//!
//! Paragraphs are separated by lines that are empty or contain only spaces and tabs. A line that
//! starts with a space or a tab continues the value of the field above it. Field names compare
//! without regard to ASCII case, as Debian Policy 5.1 requires. Lines may end in `\n` or `\r\n`.
//!
//! The parser borrows from the input: a [`Field`] contains slices of the original text, and the
//! helpers [`Field::folded`] and [`Field::multiline`] build the logical value when it is needed.

use std::borrow::Cow;

/// Maximum number of characters of an offending line that an error message quotes.
const QUOTED_CHARS: usize = 80;

/// A syntax error in control data, with the 1-based line number where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// A line that neither starts a field nor continues one.
    #[error("Line {line} is not a `Field: value` line: `{text}`")]
    MissingColon { line: usize, text: String },

    /// A field name outside the characters Debian Policy allows.
    #[error(
        "Invalid field name `{name}` on line {line}: a name is printable ASCII without spaces or \
         `:`, and does not start with `#` or `-`"
    )]
    InvalidFieldName { line: usize, name: String },

    /// A continuation line at the start of a paragraph, where there is no field to continue.
    #[error("Continuation line {line} comes before any field: `{text}`")]
    ContinuationBeforeField { line: usize, text: String },

    /// A field given twice in one paragraph (names compared without regard to case).
    #[error("Duplicate field `{name}` on line {line}, first given on line {first_line}")]
    DuplicateField {
        line: usize,
        name: String,
        first_line: usize,
    },
}

impl ControlError {
    /// Returns the 1-based line number of the error.
    pub fn line(&self) -> usize {
        match self {
            Self::MissingColon { line, .. }
            | Self::InvalidFieldName { line, .. }
            | Self::ContinuationBeforeField { line, .. }
            | Self::DuplicateField { line, .. } => *line,
        }
    }
}

/// One field of a paragraph, borrowing its name and value from the parsed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    name: &'a str,
    value: &'a str,
    line: usize,
    multiline: bool,
}

impl<'a> Field<'a> {
    /// Returns the field name as written.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Returns the 1-based number of the line that starts the field.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Returns the value as written: from the first character after the colon and its spaces to the end
    /// of the last continuation line, with trailing whitespace removed. Line breaks (`\n` or
    /// `\r\n`) and the leading whitespace of continuation lines are kept. When the first line
    /// has no value, the slice starts with the line break.
    pub fn raw_value(&self) -> &'a str {
        self.value
    }

    /// Tells whether the field has continuation lines.
    pub fn is_multiline(&self) -> bool {
        self.multiline
    }

    /// Returns the value on the field's own line, trimmed. It is empty when the value starts on the next
    /// line, as in `Description` bodies or the hash lists of a `Release` file.
    pub fn first_line(&self) -> &'a str {
        match self.value.split_once('\n') {
            Some((first, _)) => first.trim(),
            None => self.value,
        }
    }

    /// Returns the continuation lines, each with its line break and `\r` removed but its leading
    /// whitespace kept.
    pub fn continuation_lines(&self) -> impl Iterator<Item = &'a str> {
        let rest = self.value.split_once('\n').map_or("", |(_, rest)| rest);
        rest.split('\n')
            .filter(move |_| !rest.is_empty())
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
    }

    /// Builds the logical value of a simple or folded field such as `Depends`: every line trimmed and
    /// joined with one space, empty lines skipped. Borrows when the value is a single line.
    pub fn folded(&self) -> Cow<'a, str> {
        if !self.is_multiline() {
            return Cow::Borrowed(self.value);
        }

        let mut folded = String::with_capacity(self.value.len());
        let lines = std::iter::once(self.first_line()).chain(self.continuation_lines());
        for line in lines.map(str::trim).filter(|line| !line.is_empty()) {
            if !folded.is_empty() {
                folded.push(' ');
            }
            folded.push_str(line);
        }
        Cow::Owned(folded)
    }

    /// Builds the logical value of a multiline field such as `Description`: the first line, then each
    /// continuation line without its first space or tab, joined with `\n`. A continuation line
    /// of a single `.` stands for an empty line.
    pub fn multiline(&self) -> String {
        let mut text = String::with_capacity(self.value.len());
        text.push_str(self.first_line());
        for line in self.continuation_lines() {
            text.push('\n');
            let line = line.trim_end();
            let body = line.strip_prefix([' ', '\t']).unwrap_or(line);
            if body != "." {
                text.push_str(body);
            }
        }
        text
    }
}

/// A paragraph (stanza) of fields in the order they appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph<'a> {
    fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// Returns the 1-based line number of the paragraph's first field.
    pub fn line(&self) -> usize {
        self.fields.first().map_or(0, |field| field.line)
    }

    /// Returns the fields in file order. A parsed paragraph has at least one.
    pub fn fields(&self) -> &[Field<'a>] {
        &self.fields
    }

    /// Finds a field by name, ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case(name))
    }
}

/// Parses every paragraph of `text`, stopping at the first error.
pub fn parse_paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, ControlError> {
    paragraphs(text).collect()
}

/// Returns an iterator over the paragraphs of `text`. It yields an error at most once and then
/// ends.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs::starting_at_line(text, 1)
}

/// An iterator over the paragraphs of control data, made by [`paragraphs`].
#[derive(Debug, Clone)]
pub struct Paragraphs<'a> {
    text: &'a str,
    /// Byte offset of the next line to read.
    position: usize,
    /// 1-based number of the line at `position`.
    line: usize,
    failed: bool,
}

/// One line of the input without its line break.
struct Line<'a> {
    text: &'a str,
    /// Byte offset of the line in the whole input.
    start: usize,
    /// Byte offset of the line after it.
    next: usize,
}

impl<'a> Paragraphs<'a> {
    /// Starts reading `text` and numbers its first line `first_line`, so that a caller that
    /// splits a large file can keep the file's line numbers.
    pub(crate) fn starting_at_line(text: &'a str, first_line: usize) -> Self {
        Self {
            text,
            position: 0,
            line: first_line,
            failed: false,
        }
    }

    /// Returns the line at the current position without consuming it.
    fn peek_line(&self) -> Option<Line<'a>> {
        if self.position >= self.text.len() {
            return None;
        }

        let rest = &self.text[self.position..];
        let (text, next) = match rest.find('\n') {
            Some(end) => (&rest[..end], self.position + end + 1),
            None => (rest, self.text.len()),
        };
        Some(Line {
            text: text.strip_suffix('\r').unwrap_or(text),
            start: self.position,
            next,
        })
    }

    fn consume(&mut self, line: &Line<'a>) {
        self.position = line.next;
        self.line += 1;
    }

    fn skip_blank_lines(&mut self) {
        while let Some(line) = self.peek_line() {
            if !is_blank(line.text) {
                break;
            }
            self.consume(&line);
        }
    }

    fn read_paragraph(&mut self) -> Result<Paragraph<'a>, ControlError> {
        let mut fields: Vec<Field<'a>> = Vec::with_capacity(24);
        // Byte range of the value of the last field, which continuation lines extend.
        let mut value_range = (0, 0);

        while let Some(line) = self.peek_line() {
            if is_blank(line.text) {
                break;
            }

            if line.text.starts_with([' ', '\t']) {
                let Some(last) = fields.last_mut() else {
                    return Err(ControlError::ContinuationBeforeField {
                        line: self.line,
                        text: quote(line.text),
                    });
                };
                value_range.1 = line.start + line.text.len();
                last.value = self.text[value_range.0..value_range.1].trim_end();
                last.multiline = true;
            } else {
                let (field, range) = self.read_field(&line)?;
                check_duplicate(&fields, &field)?;
                fields.push(field);
                value_range = range;
            }
            self.consume(&line);
        }
        Ok(Paragraph { fields })
    }

    fn read_field(&self, line: &Line<'a>) -> Result<(Field<'a>, (usize, usize)), ControlError> {
        let Some((name, value)) = line.text.split_once(':') else {
            return Err(ControlError::MissingColon {
                line: self.line,
                text: quote(line.text),
            });
        };
        if !is_field_name(name) {
            return Err(ControlError::InvalidFieldName {
                line: self.line,
                name: quote(name),
            });
        }

        let after_colon = value;
        let value = after_colon.trim_start_matches([' ', '\t']);
        let start = line.start + name.len() + 1 + (after_colon.len() - value.len());
        let value = value.trim_end();
        let field = Field {
            name,
            value,
            line: self.line,
            multiline: false,
        };
        Ok((field, (start, start + value.len())))
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, ControlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }

        self.skip_blank_lines();
        self.peek_line()?;

        let result = self.read_paragraph();
        self.failed = result.is_err();
        Some(result)
    }
}

fn is_blank(line: &str) -> bool {
    line.bytes().all(|byte| byte == b' ' || byte == b'\t')
}

/// Tells whether `name` is a field name as Debian Policy 5.1 defines it: printable US-ASCII
/// other than space and `:`, not starting with `#` or `-`.
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['#', '-'])
        && name.bytes().all(|byte| (b'!'..=b'~').contains(&byte))
}

fn check_duplicate(fields: &[Field<'_>], field: &Field<'_>) -> Result<(), ControlError> {
    let earlier = fields
        .iter()
        .find(|earlier| earlier.name.eq_ignore_ascii_case(field.name));
    match earlier {
        Some(earlier) => Err(ControlError::DuplicateField {
            line: field.line,
            name: field.name.to_owned(),
            first_line: earlier.line,
        }),
        None => Ok(()),
    }
}

/// Shortens an offending line for an error message, at a character boundary.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Paragraph<'_>> {
        parse_paragraphs(text).unwrap()
    }

    fn error(text: &str) -> ControlError {
        parse_paragraphs(text).unwrap_err()
    }

    #[test]
    fn simple_fields_parse() {
        let paragraphs = parse("Package: hello\nVersion:  2.10-3 \n");
        assert_eq!(paragraphs.len(), 1);
        let fields = paragraphs[0].fields();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].name(), "Package");
        assert_eq!(fields[0].raw_value(), "hello");
        assert_eq!(fields[1].raw_value(), "2.10-3");
        assert_eq!(fields[1].line(), 2);
        assert!(!fields[1].is_multiline());
    }

    #[test]
    fn paragraphs_split_on_blank_lines() {
        let text = "\n\nA: 1\n\nB: 2\n \t \nC: 3\n\n\n";
        let paragraphs = parse(text);
        assert_eq!(paragraphs.len(), 3);
        assert_eq!(paragraphs[0].line(), 3);
        assert_eq!(paragraphs[1].line(), 5);
        assert_eq!(paragraphs[2].line(), 7);
        assert_eq!(paragraphs[2].get("c").unwrap().raw_value(), "3");
    }

    #[test]
    fn empty_text_has_no_paragraphs() {
        assert!(parse("").is_empty());
        assert!(parse("\n \n\t\n").is_empty());
    }

    #[test]
    fn last_line_without_newline() {
        let paragraphs = parse("A: 1\nB: two words");
        assert_eq!(paragraphs[0].get("B").unwrap().raw_value(), "two words");
    }

    #[test]
    fn names_ignore_case() {
        let paragraphs = parse("Multi-Arch: same\n");
        assert!(paragraphs[0].get("multi-arch").is_some());
        assert!(paragraphs[0].get("MULTI-ARCH").is_some());
        assert!(paragraphs[0].get("Multi_Arch").is_none());
    }

    #[test]
    fn folded_field_joins_lines() {
        let text = "Depends: a,\n b (>= 1),\n\tc\nX: y\n";
        let paragraphs = parse(text);
        let depends = paragraphs[0].get("Depends").unwrap();
        assert!(depends.is_multiline());
        assert_eq!(depends.raw_value(), "a,\n b (>= 1),\n\tc");
        assert_eq!(depends.first_line(), "a,");
        assert_eq!(depends.folded(), "a, b (>= 1), c");
        assert_eq!(paragraphs[0].get("X").unwrap().line(), 4);
    }

    #[test]
    fn single_line_folded_borrows() {
        let paragraphs = parse("A: value\n");
        let folded = paragraphs[0].fields()[0].folded();
        assert!(matches!(folded, Cow::Borrowed("value")));
    }

    #[test]
    fn multiline_field_keeps_lines() {
        let text = "Description: short\n long line\n .\n  indented\nB: 1\n";
        let paragraphs = parse(text);
        let description = paragraphs[0].get("description").unwrap();
        assert_eq!(description.first_line(), "short");
        assert_eq!(
            description.continuation_lines().collect::<Vec<_>>(),
            [" long line", " .", "  indented"]
        );
        assert_eq!(description.multiline(), "short\nlong line\n\n indented");
    }

    #[test]
    fn value_starting_on_next_line() {
        let text = "SHA256:\n abc 1 main/x\n def 2 main/y\n";
        let paragraphs = parse(text);
        let field = paragraphs[0].get("SHA256").unwrap();
        assert_eq!(field.first_line(), "");
        assert_eq!(field.raw_value(), "\n abc 1 main/x\n def 2 main/y");
        assert_eq!(field.continuation_lines().count(), 2);
        assert_eq!(field.folded(), "abc 1 main/x def 2 main/y");
    }

    #[test]
    fn empty_value_is_allowed() {
        let paragraphs = parse("A:\nB: 1\n");
        let field = paragraphs[0].get("A").unwrap();
        assert_eq!(field.raw_value(), "");
        assert!(!field.is_multiline());
        assert_eq!(field.continuation_lines().count(), 0);
    }

    #[test]
    fn crlf_line_ends_are_removed() {
        let text = "A: 1\r\nB: x,\r\n y\r\n\r\nC:\r\n z\r\n";
        let paragraphs = parse(text);
        assert_eq!(paragraphs.len(), 2);
        assert_eq!(paragraphs[0].get("A").unwrap().raw_value(), "1");
        assert_eq!(paragraphs[0].get("B").unwrap().folded(), "x, y");
        let c = paragraphs[1].get("C").unwrap();
        assert_eq!(c.first_line(), "");
        assert_eq!(c.continuation_lines().collect::<Vec<_>>(), [" z"]);
        assert_eq!(c.multiline(), "\nz");
        assert_eq!(paragraphs[1].line(), 5);
    }

    #[test]
    fn value_may_contain_colons() {
        let paragraphs = parse("Homepage: https://example.org:8080/\n");
        assert_eq!(
            paragraphs[0].fields()[0].raw_value(),
            "https://example.org:8080/"
        );
    }

    #[test]
    fn duplicate_field_is_an_error() {
        let found = error("Package: a\nVersion: 1\npackage: b\n");
        assert_eq!(
            found,
            ControlError::DuplicateField {
                line: 3,
                name: "package".into(),
                first_line: 1,
            }
        );
        assert_eq!(
            found.to_string(),
            "Duplicate field `package` on line 3, first given on line 1"
        );
    }

    #[test]
    fn same_field_in_two_paragraphs_is_fine() {
        assert_eq!(parse("A: 1\n\nA: 2\n").len(), 2);
    }

    #[test]
    fn continuation_before_field_is_an_error() {
        let found = error(" orphan\nA: 1\n");
        assert_eq!(found.line(), 1);
        assert!(matches!(
            found,
            ControlError::ContinuationBeforeField { .. }
        ));

        let found = error("A: 1\n\n\tstray\n");
        assert_eq!(found.line(), 3);
        assert!(matches!(
            found,
            ControlError::ContinuationBeforeField { .. }
        ));
    }

    #[test]
    fn line_without_colon_is_an_error() {
        let found = error("Package: a\nVers");
        assert_eq!(
            found,
            ControlError::MissingColon {
                line: 2,
                text: "Vers".into(),
            }
        );
        assert_eq!(
            found.to_string(),
            "Line 2 is not a `Field: value` line: `Vers`"
        );
    }

    #[test]
    fn invalid_field_names_are_errors() {
        for (text, name) in [
            (": value\n", ""),
            ("Package : a\n", "Package "),
            ("#comment: a\n", "#comment"),
            ("-Field: a\n", "-Field"),
            ("Fi\u{e9}ld: a\n", "Fi\u{e9}ld"),
            ("A\u{7f}: a\n", "A\u{7f}"),
        ] {
            let found = error(text);
            assert_eq!(
                found,
                ControlError::InvalidFieldName {
                    line: 1,
                    name: name.into(),
                },
                "{text:?}"
            );
        }
    }

    #[test]
    fn long_lines_are_shortened_in_errors() {
        let line = "\u{e9}".repeat(200);
        let ControlError::MissingColon { text, .. } = error(&line) else {
            panic!("expected MissingColon");
        };
        assert_eq!(text.chars().count(), QUOTED_CHARS + 3);
        assert!(text.ends_with("..."));
    }

    #[test]
    fn iterator_stops_after_an_error() {
        let mut iterator = paragraphs("A: 1\n\nbad\n\nB: 2\n");
        assert!(iterator.next().unwrap().is_ok());
        assert!(iterator.next().unwrap().is_err());
        assert!(iterator.next().is_none());
    }

    #[test]
    fn lone_carriage_return_line_is_blank() {
        let paragraphs = parse("A: 1\r\n\r\nB: 2");
        assert_eq!(paragraphs.len(), 2);
    }
}
