//! The `Packages` index of a repository: one control paragraph per binary package.

use std::io::{ErrorKind, Read};
use std::sync::Arc;

use rayon::prelude::*;

use crate::control::{self, ControlError, Field, Paragraph};
use crate::package::{MultiArch, Package, Sha256Digest};
use crate::relation::{
    is_package_name, parse_relation_list_with, parse_relations_with, Alternatives, NameInterner,
    Relation, RelationError,
};
use crate::version::{Version, VersionError};

/// Texts at least this long are split into chunks parsed in parallel.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// The target size of one chunk. A chunk ends at the first paragraph break after this size.
const CHUNK_BYTES: usize = 1 << 20;

/// An error in a `Packages` index. Line numbers are 1-based and count from the start of the
/// text given to [`parse_packages`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The control syntax is invalid.
    #[error(transparent)]
    Control(#[from] ControlError),

    /// A stanza without a `Package` field.
    #[error("The stanza on line {line} has no `Package` field")]
    MissingPackage { line: usize },

    /// A stanza without another required field.
    #[error("Package `{package}` on line {line} has no `{field}` field")]
    MissingField {
        package: String,
        field: &'static str,
        line: usize,
    },

    /// A field whose value is invalid, with the line of that field.
    #[error("Invalid `{field}` of package `{package}` on line {line}: {reason}")]
    InvalidField {
        package: String,
        field: &'static str,
        line: usize,
        reason: String,
    },

    /// A `Version` field that is not a valid Debian version.
    #[error("Invalid `Version` of package `{package}` on line {line}: {source}")]
    InvalidVersion {
        package: String,
        line: usize,
        source: VersionError,
    },

    /// Reading failed in [`read_packages`]. `line` is the number of lines read before.
    #[error("Failed to read the index after line {line}: {message}")]
    Read { line: usize, message: String },

    /// A relation field such as `Depends` that does not parse.
    #[error("Invalid `{field}` of package `{package}` on line {line}: {source}")]
    InvalidRelation {
        package: String,
        field: &'static str,
        line: usize,
        source: RelationError,
    },
}

/// Parses a whole `Packages` index, in parallel chunks when it is large. Returns the packages in
/// file order, or the first error in file order.
pub fn parse_packages(text: &str) -> Result<Vec<Package>, IndexError> {
    if text.len() < PARALLEL_MIN_BYTES {
        return parse_chunk(text, 1);
    }

    let chunks = split_into_chunks(text);
    let first_lines = first_line_numbers(&chunks);
    let results: Vec<Result<Vec<Package>, IndexError>> = chunks
        .par_iter()
        .zip(first_lines)
        .map(|(chunk, first_line)| parse_chunk(chunk, first_line))
        .collect();

    let mut packages = Vec::with_capacity(results.iter().flatten().map(Vec::len).sum());
    for result in results {
        packages.extend(result?);
    }
    Ok(packages)
}

/// Reads and parses a `Packages` index from `reader` in chunks of about [`CHUNK_BYTES`], parsing
/// a batch of chunks in parallel, so that only one batch of text is in memory at a time. Invalid
/// UTF-8 becomes U+FFFD. Returns the packages in file order, or the first error in file order.
///
/// The names and versions in relations are shared across the whole index: each chunk looks them
/// up in the texts of the batches before it, so only chunks of one batch can add the same text
/// twice.
pub fn read_packages(reader: impl Read) -> Result<Vec<Package>, IndexError> {
    let mut chunks = ChunkReader::new(reader);
    let batch_len = rayon::current_num_threads();
    let mut packages = Vec::new();
    let mut shared_names = Arc::new(NameInterner::default());
    loop {
        let mut batch = Vec::with_capacity(batch_len);
        // A read error counts after the chunks read before it, which may contain earlier errors.
        let read_error = loop {
            match chunks.next_chunk() {
                Ok(Some(chunk)) => batch.push(chunk),
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
            if batch.len() == batch_len {
                break None;
            }
        };
        let is_last = batch.len() < batch_len;
        // Each text is dropped as soon as its chunk is parsed.
        let (results, chunk_names): (Vec<_>, Vec<_>) = batch
            .into_par_iter()
            .map(|(text, first_line)| {
                let mut names = NameInterner::with_shared(Arc::clone(&shared_names));
                (parse_chunk_with(&text, first_line, &mut names), names)
            })
            .unzip();
        NameInterner::merge_into_shared(&mut shared_names, chunk_names);
        append_exact(&mut packages, results)?;
        if let Some(error) = read_error {
            return Err(error);
        }
        if is_last {
            packages.shrink_to_fit();
            return Ok(packages);
        }
    }
}

/// Appends the packages of parsed chunks, growing `packages` by exactly their number. Doubling the
/// capacity would keep up to twice the final array (about 26 MB for Debian's main index) while
/// the allocator moves it.
fn append_exact(
    packages: &mut Vec<Package>,
    results: Vec<Result<Vec<Package>, IndexError>>,
) -> Result<(), IndexError> {
    let added = results.iter().flatten().map(Vec::len).sum();
    packages.reserve_exact(added);
    for result in results {
        packages.extend(result?);
    }
    Ok(())
}

/// Splits the bytes of a reader into texts of whole paragraphs, each with the number of its first
/// line. As in [`split_into_chunks`], a text starts with the blank line that ends the one before.
struct ChunkReader<R> {
    reader: R,
    /// Bytes read but not yet returned.
    pending: Vec<u8>,
    /// The 1-based number of the first line in `pending`.
    line: usize,
    at_end: bool,
}

impl<R: Read> ChunkReader<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            pending: Vec::new(),
            line: 1,
            at_end: false,
        }
    }

    fn next_chunk(&mut self) -> Result<Option<(String, usize)>, IndexError> {
        let end = loop {
            if let Some(end) = complete_blank_line(&self.pending, CHUNK_BYTES) {
                break end;
            }
            if self.at_end {
                break self.pending.len();
            }
            self.fill()?;
        };
        if end == 0 {
            return Ok(None);
        }
        let rest = self.pending.split_off(end);
        let bytes = std::mem::replace(&mut self.pending, rest);
        let first_line = self.line;
        self.line += count_line_breaks(&bytes);
        let text = String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
        Ok(Some((text, first_line)))
    }

    /// Appends up to [`READ_BYTES`] from the reader to `pending` and notes the end of the input.
    fn fill(&mut self) -> Result<(), IndexError> {
        let start = self.pending.len();
        self.pending.resize(start + READ_BYTES, 0);
        let result = loop {
            match self.reader.read(&mut self.pending[start..]) {
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                result => break result,
            }
        };
        let read = result.map_err(|error| IndexError::Read {
            line: self.line - 1 + count_line_breaks(&self.pending[..start]),
            message: error.to_string(),
        })?;
        self.pending.truncate(start + read);
        self.at_end = read == 0;
        Ok(())
    }
}

fn count_line_breaks(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&byte| byte == b'\n').count()
}

/// The number of bytes [`ChunkReader`] requests from its reader in one call.
const READ_BYTES: usize = 256 << 10;

/// Finds the first blank line that starts after `from` and whose line break is in `bytes`, so that
/// more input cannot turn it into a continuation line.
fn complete_blank_line(bytes: &[u8], from: usize) -> Option<usize> {
    let start = next_blank_line_in(bytes, from)?;
    bytes[start..].contains(&b'\n').then_some(start)
}

/// Parses the paragraphs of one chunk. Its relations share one copy of each name.
fn parse_chunk(text: &str, first_line: usize) -> Result<Vec<Package>, IndexError> {
    parse_chunk_with(text, first_line, &mut NameInterner::default())
}

fn parse_chunk_with(
    text: &str,
    first_line: usize,
    names: &mut NameInterner,
) -> Result<Vec<Package>, IndexError> {
    control::Paragraphs::starting_at_line(text, first_line)
        .map(|paragraph| parse_package_with(&paragraph?, names))
        .collect()
}

/// Splits `text` at blank lines into pieces of about [`CHUNK_BYTES`], each made of whole
/// paragraphs. A piece starts with the blank line that ends the piece before it.
fn split_into_chunks(text: &str) -> Vec<&str> {
    let mut chunks = Vec::with_capacity(text.len() / CHUNK_BYTES + 1);
    let mut start = 0;
    while start < text.len() {
        let end = next_blank_line(text, start + CHUNK_BYTES).unwrap_or(text.len());
        chunks.push(&text[start..end]);
        start = end;
    }
    chunks
}

/// Finds the byte offset of the first blank line that starts after `from`. Works on bytes, because
/// `from` may fall inside a multi-byte character.
fn next_blank_line(text: &str, from: usize) -> Option<usize> {
    next_blank_line_in(text.as_bytes(), from)
}

fn next_blank_line_in(bytes: &[u8], from: usize) -> Option<usize> {
    let mut line_start = from;
    loop {
        line_start += bytes
            .get(line_start..)?
            .iter()
            .position(|&byte| byte == b'\n')?
            + 1;

        let rest = &bytes[line_start..];
        let line_end = rest
            .iter()
            .position(|&byte| byte == b'\n')
            .unwrap_or(rest.len());
        if rest[..line_end]
            .iter()
            .all(|&byte| matches!(byte, b' ' | b'\t' | b'\r'))
        {
            return Some(line_start);
        }
    }
}

/// Numbers the first line of every chunk, counting the line breaks of the chunks before it.
fn first_line_numbers(chunks: &[&str]) -> Vec<usize> {
    let line_counts: Vec<usize> = chunks
        .par_iter()
        .map(|chunk| chunk.bytes().filter(|&byte| byte == b'\n').count())
        .collect();

    let mut next = 1;
    line_counts
        .into_iter()
        .map(|count| {
            let first = next;
            next += count;
            first
        })
        .collect()
}

/// The fields of a `Packages` stanza that [`Package`] stores.
#[derive(Clone, Copy)]
enum Key {
    Package,
    Version,
    Architecture,
    MultiArch,
    Essential,
    Priority,
    Section,
    Source,
    Depends,
    PreDepends,
    Recommends,
    Conflicts,
    Breaks,
    Provides,
    Replaces,
    Filename,
    Size,
    Sha256,
    InstalledSize,
}

/// Maps a field name, in any ASCII case, to its key. Names longer than any known name are
/// skipped without a copy.
fn key_of(name: &str) -> Option<Key> {
    let mut buffer = [0_u8; 16];
    let lowered = buffer.get_mut(..name.len())?;
    lowered.copy_from_slice(name.as_bytes());
    lowered.make_ascii_lowercase();

    let key = match &*lowered {
        b"package" => Key::Package,
        b"version" => Key::Version,
        b"architecture" => Key::Architecture,
        b"multi-arch" => Key::MultiArch,
        b"essential" => Key::Essential,
        b"priority" => Key::Priority,
        b"section" => Key::Section,
        b"source" => Key::Source,
        b"depends" => Key::Depends,
        b"pre-depends" => Key::PreDepends,
        b"recommends" => Key::Recommends,
        b"conflicts" => Key::Conflicts,
        b"breaks" => Key::Breaks,
        b"provides" => Key::Provides,
        b"replaces" => Key::Replaces,
        b"filename" => Key::Filename,
        b"size" => Key::Size,
        b"sha256" => Key::Sha256,
        b"installed-size" => Key::InstalledSize,
        _ => return None,
    };
    Some(key)
}

/// The fields of one stanza, looked up once.
#[derive(Default)]
struct Stanza<'p, 'a> {
    fields: [Option<&'p Field<'a>>; 19],
}

impl<'p, 'a> Stanza<'p, 'a> {
    fn new(paragraph: &'p Paragraph<'a>) -> Self {
        let mut stanza = Self::default();
        for field in paragraph.fields() {
            if let Some(key) = key_of(field.name()) {
                stanza.fields[key as usize] = Some(field);
            }
        }
        stanza
    }

    fn get(&self, key: Key) -> Option<&'p Field<'a>> {
        self.fields[key as usize]
    }
}

/// Context for the errors of one stanza.
struct Builder<'p, 'a> {
    stanza: Stanza<'p, 'a>,
    package: &'a str,
    line: usize,
}

/// Builds a [`Package`] from one stanza of a `Packages` index.
pub fn parse_package(paragraph: &Paragraph<'_>) -> Result<Package, IndexError> {
    parse_package_with(paragraph, &mut NameInterner::default())
}

fn parse_package_with(
    paragraph: &Paragraph<'_>,
    names: &mut NameInterner,
) -> Result<Package, IndexError> {
    let stanza = Stanza::new(paragraph);
    let line = paragraph.line();
    let name_field = stanza
        .get(Key::Package)
        .ok_or(IndexError::MissingPackage { line })?;
    let builder = Builder {
        stanza,
        package: name_field.first_line(),
        line,
    };

    let name = builder.simple(Key::Package, "Package")?;
    if !is_package_name(name) {
        return Err(builder.invalid(Key::Package, "Package", "the package name is invalid"));
    }
    let version = builder.version()?;
    let architecture = builder.simple(Key::Architecture, "Architecture")?;
    let mut package = Package::with_architecture(name, version, names.intern(architecture));

    builder.read_flags(&mut package)?;
    builder.read_descriptions(&mut package, names)?;
    builder.read_relations(&mut package, names)?;
    builder.read_file(&mut package)?;
    Ok(package)
}

impl<'a> Builder<'_, 'a> {
    fn invalid(&self, key: Key, field: &'static str, reason: &str) -> IndexError {
        IndexError::InvalidField {
            package: self.package.to_owned(),
            field,
            line: self.stanza.get(key).map_or(self.line, Field::line),
            reason: reason.to_owned(),
        }
    }

    /// Returns a required single-line field.
    fn simple(&self, key: Key, field: &'static str) -> Result<&'a str, IndexError> {
        match self.optional(key, field)? {
            Some(value) => Ok(value),
            None => Err(IndexError::MissingField {
                package: self.package.to_owned(),
                field,
                line: self.line,
            }),
        }
    }

    /// Returns an optional single-line field. An empty value is an error.
    fn optional(&self, key: Key, field: &'static str) -> Result<Option<&'a str>, IndexError> {
        let Some(value) = self.stanza.get(key) else {
            return Ok(None);
        };
        if value.is_multiline() {
            return Err(self.invalid(key, field, "the value must be a single line"));
        }
        if value.raw_value().is_empty() {
            return Err(self.invalid(key, field, "the value is empty"));
        }
        Ok(Some(value.raw_value()))
    }

    fn number(&self, key: Key, field: &'static str) -> Result<Option<u64>, IndexError> {
        let Some(value) = self.optional(key, field)? else {
            return Ok(None);
        };
        match value.parse() {
            Ok(number) if value.bytes().all(|byte| byte.is_ascii_digit()) => Ok(Some(number)),
            _ => Err(self.invalid(key, field, &format!("`{value}` is not a whole number"))),
        }
    }

    fn version(&self) -> Result<Version, IndexError> {
        let text = self.simple(Key::Version, "Version")?;
        Version::parse(text).map_err(|source| IndexError::InvalidVersion {
            package: self.package.to_owned(),
            line: self.stanza.get(Key::Version).map_or(self.line, Field::line),
            source,
        })
    }

    fn read_flags(&self, package: &mut Package) -> Result<(), IndexError> {
        if let Some(value) = self.optional(Key::MultiArch, "Multi-Arch")? {
            package.multi_arch = match value {
                "no" => MultiArch::No,
                "same" => MultiArch::Same,
                "foreign" => MultiArch::Foreign,
                "allowed" => MultiArch::Allowed,
                _ => {
                    let reason = format!("`{value}` is not `no`, `same`, `foreign` or `allowed`");
                    return Err(self.invalid(Key::MultiArch, "Multi-Arch", &reason));
                }
            };
        }

        if let Some(value) = self.optional(Key::Essential, "Essential")? {
            package.essential = match value {
                "yes" => true,
                "no" => false,
                _ => {
                    let reason = format!("`{value}` is not `yes` or `no`");
                    return Err(self.invalid(Key::Essential, "Essential", &reason));
                }
            };
        }
        Ok(())
    }

    fn read_descriptions(
        &self,
        package: &mut Package,
        names: &mut NameInterner,
    ) -> Result<(), IndexError> {
        let priority = self.optional(Key::Priority, "Priority")?;
        package.priority = priority.map(|value| names.intern(value));
        let section = self.optional(Key::Section, "Section")?;
        package.section = section.map(|value| names.intern(value));

        // A source package whose version differs from the binary's is written `name (version)`.
        if let Some(value) = self.optional(Key::Source, "Source")? {
            let name = value.split_once('(').map_or(value, |(name, _)| name).trim();
            if !is_package_name(name) {
                let reason = format!("`{value}` does not start with a valid package name");
                return Err(self.invalid(Key::Source, "Source", &reason));
            }
            package.source = Some(names.intern(name));
        }

        package.installed_size = self.number(Key::InstalledSize, "Installed-Size")?;
        Ok(())
    }

    fn read_relations(
        &self,
        package: &mut Package,
        names: &mut NameInterner,
    ) -> Result<(), IndexError> {
        package.depends = self.alternatives(Key::Depends, "Depends", names)?;
        package.pre_depends = self.alternatives(Key::PreDepends, "Pre-Depends", names)?;
        package.recommends = self.alternatives(Key::Recommends, "Recommends", names)?;
        package.conflicts = self.list(Key::Conflicts, "Conflicts", names)?;
        package.breaks = self.list(Key::Breaks, "Breaks", names)?;
        package.provides = self.list(Key::Provides, "Provides", names)?;
        package.replaces = self.list(Key::Replaces, "Replaces", names)?;
        Ok(())
    }

    fn alternatives(
        &self,
        key: Key,
        field: &'static str,
        names: &mut NameInterner,
    ) -> Result<Vec<Alternatives>, IndexError> {
        match self.stanza.get(key) {
            Some(value) => parse_relations_with(&value.folded(), names)
                .map_err(|source| self.invalid_relation(value, field, source)),
            None => Ok(Vec::new()),
        }
    }

    fn list(
        &self,
        key: Key,
        field: &'static str,
        names: &mut NameInterner,
    ) -> Result<Vec<Relation>, IndexError> {
        match self.stanza.get(key) {
            Some(value) => parse_relation_list_with(&value.folded(), names)
                .map_err(|source| self.invalid_relation(value, field, source)),
            None => Ok(Vec::new()),
        }
    }

    fn invalid_relation(
        &self,
        value: &Field<'_>,
        field: &'static str,
        source: RelationError,
    ) -> IndexError {
        IndexError::InvalidRelation {
            package: self.package.to_owned(),
            field,
            line: value.line(),
            source,
        }
    }

    fn read_file(&self, package: &mut Package) -> Result<(), IndexError> {
        self.simple(Key::Filename, "Filename")?
            .clone_into(&mut package.filename);
        package.size = match self.number(Key::Size, "Size")? {
            Some(size) => size,
            None => {
                return Err(IndexError::MissingField {
                    package: self.package.to_owned(),
                    field: "Size",
                    line: self.line,
                })
            }
        };

        let sha256 = self.simple(Key::Sha256, "SHA256")?;
        let Some(digest) = Sha256Digest::from_hex(sha256) else {
            let reason = format!("`{sha256}` is not 64 hexadecimal digits");
            return Err(self.invalid(Key::Sha256, "SHA256", &reason));
        };
        package.sha256 = digest;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relation::ArchQualifier;

    const SHA: &str = "3a2118df47bf3f04285649f0455c2fc6fe2dc7f0b237073038aa00af41f0d5f2";

    fn stanza(name: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\n{extra}\
             Filename: pool/main/{name}_1.0-1_amd64.deb\nSize: 1234\nSHA256: {SHA}\n"
        )
    }

    fn parse_one(text: &str) -> Package {
        let mut packages = parse_packages(text).unwrap();
        assert_eq!(packages.len(), 1);
        packages.remove(0)
    }

    #[test]
    fn minimal_stanza_parses() {
        let package = parse_one(&stanza("hello", ""));
        assert_eq!(package.name, "hello");
        assert_eq!(package.version.as_str(), "1.0-1");
        assert_eq!(package.architecture, "amd64");
        assert_eq!(package.filename, "pool/main/hello_1.0-1_amd64.deb");
        assert_eq!(package.size, 1234);
        assert_eq!(package.sha256.to_hex(), SHA);
        assert_eq!(package.multi_arch, MultiArch::No);
        assert!(!package.essential);
        assert_eq!(package.source, None);
        assert_eq!(package.installed_size, None);
        assert!(package.depends.is_empty());
    }

    #[test]
    fn all_fields_parse() {
        let extra = "Multi-Arch: same\nEssential: yes\nPriority: required\nSection: libs\n\
                     Source: glibc (2.36-9)\nInstalled-Size: 42\n\
                     Depends: libc6 (>= 2.36), aa | bb\nPre-Depends: dpkg (>= 1.15.6~)\n\
                     Recommends: rr\nSuggests: s1, s2\nConflicts: cc (<< 2)\nBreaks: kk\n\
                     Provides: virtual (= 1.0)\nReplaces: old\nDescription: text\n more\n";
        let package = parse_one(&stanza("libc6", extra));
        assert_eq!(package.multi_arch, MultiArch::Same);
        assert!(package.essential);
        assert_eq!(package.priority.as_deref(), Some("required"));
        assert_eq!(package.section.as_deref(), Some("libs"));
        assert_eq!(package.source.as_deref(), Some("glibc"));
        assert_eq!(package.installed_size, Some(42));
        assert_eq!(package.depends.len(), 2);
        assert_eq!(package.depends[1].len(), 2);
        assert_eq!(package.pre_depends[0][0].name, "dpkg");
        assert_eq!(package.recommends[0][0].name, "rr");
        assert_eq!(package.conflicts[0].name, "cc");
        assert_eq!(package.breaks[0].name, "kk");
        assert_eq!(
            package.provides[0].constraint.as_ref().unwrap().op,
            crate::Op::Eq
        );
        assert_eq!(package.replaces[0].name, "old");
    }

    #[test]
    fn multi_arch_values_parse() {
        for (value, expected) in [
            ("no", MultiArch::No),
            ("same", MultiArch::Same),
            ("foreign", MultiArch::Foreign),
            ("allowed", MultiArch::Allowed),
        ] {
            let package = parse_one(&stanza("p1", &format!("Multi-Arch: {value}\n")));
            assert_eq!(package.multi_arch, expected, "{value}");
        }
    }

    #[test]
    fn source_without_version_parses() {
        let package = parse_one(&stanza("p1", "Source: src\n"));
        assert_eq!(package.source.as_deref(), Some("src"));
    }

    #[test]
    fn folded_depends_parse() {
        let package = parse_one(&stanza("p1", "Depends: aa,\n bb:any,\n cc\n"));
        let names: Vec<&str> = package.depends.iter().map(|g| g[0].name.as_str()).collect();
        assert_eq!(names, ["aa", "bb", "cc"]);
        assert_eq!(package.depends[1][0].arch, ArchQualifier::Any);
    }

    #[test]
    fn field_names_ignore_case() {
        let text = format!(
            "package: p1\nVERSION: 1\narchitecture: all\nfilename: f\nsize: 1\nsha256: {}\n",
            SHA.to_uppercase()
        );
        let package = parse_one(&text);
        assert_eq!(package.name, "p1");
        assert_eq!(package.sha256.to_hex(), SHA);
    }

    #[test]
    fn several_stanzas_keep_order() {
        let text = format!(
            "{}\n{}\n\n{}",
            stanza("a1", ""),
            stanza("b1", ""),
            stanza("c1", "")
        );
        let names: Vec<String> = parse_packages(&text)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a1", "b1", "c1"]);
    }

    #[test]
    fn crlf_index_parses() {
        let text = format!(
            "{}\n{}",
            stanza("a1", "Depends: xx,\n yy\n"),
            stanza("b1", "")
        )
        .replace('\n', "\r\n");
        let packages = parse_packages(&text).unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].depends.len(), 2);
        assert_eq!(packages[1].sha256.to_hex(), SHA);
    }

    #[test]
    fn missing_package_is_an_error() {
        let text = stanza("p1", "").replace("Package: p1\n", "");
        assert_eq!(
            parse_packages(&format!("\n\n{text}")),
            Err(IndexError::MissingPackage { line: 3 })
        );
    }

    #[test]
    fn missing_required_fields_are_errors() {
        for (field, line) in [
            ("Version", "Version: 1.0-1\n"),
            ("Architecture", "Architecture: amd64\n"),
            ("Filename", "Filename: pool/main/p1_1.0-1_amd64.deb\n"),
            ("Size", "Size: 1234\n"),
            ("SHA256", &format!("SHA256: {SHA}\n")),
        ] {
            let text = format!(
                "{}\n{}",
                stanza("p0", ""),
                stanza("p1", "").replace(line, "")
            );
            let found = parse_packages(&text).unwrap_err();
            assert_eq!(
                found,
                IndexError::MissingField {
                    package: "p1".into(),
                    field,
                    line: 8,
                }
            );
        }
    }

    #[test]
    fn missing_field_message_names_package() {
        let text = "Package: p1\nVersion: 1\nArchitecture: all\n";
        assert_eq!(
            parse_packages(text).unwrap_err().to_string(),
            "Package `p1` on line 1 has no `Filename` field"
        );
    }

    #[test]
    fn truncated_stanza_is_an_error() {
        let full = format!("{}\n{}", stanza("p0", ""), stanza("p1", ""));
        for end in [full.len() - 20, full.len() - 70, full.len() - 100] {
            assert!(parse_packages(&full[..end]).is_err(), "cut at {end}");
        }
    }

    #[test]
    fn invalid_values_are_errors() {
        let cases = [
            ("Size: 12x\n", "Size"),
            ("Size: -1\n", "Size"),
            ("Size: +1\n", "Size"),
            ("Installed-Size: big\n", "Installed-Size"),
            ("Multi-Arch: both\n", "Multi-Arch"),
            ("Essential: true\n", "Essential"),
            ("SHA256: abc\n", "SHA256"),
            ("Source: (1.0)\n", "Source"),
        ];
        for (line, field) in cases {
            let prefix = format!("{}:", line.split(':').next().unwrap());
            let mut text: String = stanza("p1", "")
                .split_inclusive('\n')
                .filter(|l| !l.starts_with(&prefix))
                .collect();
            text.push_str(line);
            let found = parse_packages(&text).unwrap_err();
            let IndexError::InvalidField {
                field: found_field,
                line: found_line,
                ..
            } = found
            else {
                panic!("{line:?} gave {found:?}");
            };
            assert_eq!(found_field, field, "{line:?}");
            assert_eq!(found_line, text.lines().count(), "{line:?}");
        }
    }

    #[test]
    fn invalid_package_name_is_an_error() {
        let found = parse_packages(&stanza("Bad_Name", "")).unwrap_err();
        assert!(matches!(
            found,
            IndexError::InvalidField {
                field: "Package",
                ..
            }
        ));
    }

    #[test]
    fn multiline_simple_field_is_an_error() {
        let text = stanza("p1", "Section: libs\n devel\n");
        let found = parse_packages(&text).unwrap_err();
        assert_eq!(
            found.to_string(),
            "Invalid `Section` of package `p1` on line 4: the value must be a single line"
        );
    }

    #[test]
    fn empty_required_value_is_an_error() {
        let text = stanza("p1", "").replace("Architecture: amd64", "Architecture:");
        let found = parse_packages(&text).unwrap_err();
        assert!(matches!(
            found,
            IndexError::InvalidField {
                field: "Architecture",
                line: 3,
                ..
            }
        ));
    }

    #[test]
    fn invalid_version_is_an_error() {
        let text = stanza("p1", "").replace("Version: 1.0-1", "Version: x1.0");
        let found = parse_packages(&text).unwrap_err();
        assert!(matches!(found, IndexError::InvalidVersion { line: 2, .. }));
        assert!(found
            .to_string()
            .starts_with("Invalid `Version` of package `p1` on line 2:"));
    }

    #[test]
    fn invalid_relation_is_an_error() {
        let found = parse_packages(&stanza("p1", "Depends: aa (>= )\n")).unwrap_err();
        assert!(matches!(
            found,
            IndexError::InvalidRelation {
                field: "Depends",
                line: 4,
                ..
            }
        ));
        let found = parse_packages(&stanza("p1", "Provides: aa | bb\n")).unwrap_err();
        assert!(matches!(
            found,
            IndexError::InvalidRelation {
                field: "Provides",
                ..
            }
        ));
    }

    #[test]
    fn duplicate_field_is_an_error() {
        let text = stanza("p1", "Size: 1\n");
        let found = parse_packages(&text).unwrap_err();
        assert!(matches!(
            found,
            IndexError::Control(ControlError::DuplicateField {
                line: 6,
                first_line: 4,
                ..
            })
        ));
    }

    /// Builds an index large enough for the parallel path.
    fn large_index(count: usize) -> String {
        (0..count)
            .map(|index| {
                stanza(
                    &format!("pkg{index}"),
                    "Description: filler text\n .\n more\n",
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn parallel_parse_keeps_order() {
        let text = large_index(20_000);
        assert!(text.len() > 2 * PARALLEL_MIN_BYTES);
        let packages = parse_packages(&text).unwrap();
        assert_eq!(packages.len(), 20_000);
        for (index, package) in packages.iter().enumerate() {
            assert_eq!(package.name, format!("pkg{index}"));
        }
    }

    #[test]
    fn parallel_errors_keep_file_lines() {
        let mut text = large_index(20_000);
        let lines_before = text.matches('\n').count();
        text.push_str("\n\nPackage: late\n");
        let found = parse_packages(&text).unwrap_err();
        assert_eq!(
            found,
            IndexError::MissingField {
                package: "late".into(),
                field: "Version",
                line: lines_before + 3,
            }
        );
    }

    #[test]
    fn parallel_returns_first_error() {
        let mut text = large_index(20_000);
        let middle = text.len() / 2;
        let at = middle + text[middle..].find("\nSize: 1234").unwrap() + 1;
        let line = text[..at].matches('\n').count() + 1;
        text.replace_range(at..at + 10, "Size: bad!");
        text.push_str("\nbroken tail\n");
        let found = parse_packages(&text).unwrap_err();
        assert!(
            matches!(found, IndexError::InvalidField { field: "Size", line: l, .. } if l == line),
            "{found:?}"
        );
    }

    /// A reader that returns at most `step` bytes per call, then fails when `fail` is set.
    struct SlowReader<'a> {
        bytes: &'a [u8],
        step: usize,
        fail: bool,
    }

    impl Read for SlowReader<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if self.bytes.is_empty() && self.fail {
                return Err(std::io::Error::other("disk on fire"));
            }
            let length = self.step.min(buffer.len()).min(self.bytes.len());
            buffer[..length].copy_from_slice(&self.bytes[..length]);
            self.bytes = &self.bytes[length..];
            Ok(length)
        }
    }

    #[test]
    fn read_packages_matches_parse_packages() {
        let text = large_index(20_000).replace("\n\n", "\n \t\n");
        for step in [1000, 4096, 300_000] {
            let reader = SlowReader {
                bytes: text.as_bytes(),
                step,
                fail: false,
            };
            assert_eq!(read_packages(reader), parse_packages(&text), "step {step}");
        }
        assert_eq!(read_packages(&b""[..]), Ok(Vec::new()));
    }

    #[test]
    fn read_packages_keeps_file_lines() {
        let mut text = large_index(20_000);
        let lines_before = text.matches('\n').count();
        text.push_str("\n\nPackage: late\n");
        assert_eq!(
            read_packages(text.as_bytes()).unwrap_err(),
            IndexError::MissingField {
                package: "late".into(),
                field: "Version",
                line: lines_before + 3,
            }
        );
    }

    #[test]
    fn read_packages_reports_read_errors() {
        let text = stanza("p1", "");
        let reader = SlowReader {
            bytes: text.as_bytes(),
            step: 7,
            fail: true,
        };
        let found = read_packages(reader).unwrap_err();
        assert_eq!(
            found.to_string(),
            "Failed to read the index after line 6: disk on fire"
        );
    }

    #[test]
    fn read_packages_replaces_invalid_utf8() {
        let mut bytes = stanza("p1", "").into_bytes();
        bytes.extend_from_slice(b"Description: caf\xff\n");
        let packages = read_packages(bytes.as_slice()).unwrap();
        assert_eq!(packages.len(), 1);
        assert_eq!(packages[0].name, "p1");
    }

    #[test]
    fn chunk_search_accepts_any_offset() {
        let text = "A: \u{e9}t\u{e9}\n\nB: \u{1f600}\n \t\r\nC: 1\n";
        // The end of a text that ends in a line break counts as an empty last line.
        let blank_lines = [
            text.find("\n\n").unwrap() + 1,
            text.find(" \t").unwrap(),
            text.len(),
        ];
        for from in 0..text.len() {
            let expected = blank_lines.iter().copied().find(|&start| start > from);
            assert_eq!(next_blank_line(text, from), expected, "from {from}");
        }
    }

    #[test]
    fn chunks_end_at_blank_lines() {
        let text = large_index(20_000).replace('\n', "\r\n");
        let chunks = split_into_chunks(&text);
        assert!(chunks.len() > 1);
        assert_eq!(chunks.concat(), text);
        for chunk in &chunks[1..] {
            assert!(chunk.starts_with("\r\n"), "{:?}", &chunk[..20]);
        }
        assert_eq!(parse_packages(&text).unwrap().len(), 20_000);
    }
}
