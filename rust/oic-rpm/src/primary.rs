//! A streaming parser of `primary.xml`, the package list of an RPM repository.
//!
//! The document is read event by event, so memory follows the package model, not the size of
//! the XML. Summaries, descriptions and the weak dependency lists (`recommends`, `suggests`,
//! `supplements`, `enhances`) are skipped.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::dependency::{Comparison, Constraint, Dependency};
use crate::error::RpmError;
use crate::package::{Requirement, RpmPackage};
use crate::rich::Expression;
use crate::version::Evr;
use crate::xml::{attribute, text_of};

/// The dependency list that `<rpm:entry>` elements belong to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Provides,
    Requires,
    Conflicts,
    Obsoletes,
    /// A list this parser does not keep.
    Ignored,
}

impl List {
    fn of(local_name: &str) -> Option<Self> {
        Some(match local_name {
            "provides" => Self::Provides,
            "requires" => Self::Requires,
            "conflicts" => Self::Conflicts,
            "obsoletes" => Self::Obsoletes,
            "recommends" | "suggests" | "supplements" | "enhances" => Self::Ignored,
            _ => return None,
        })
    }
}

/// The state of the parse inside one `<package>`.
struct Parser<'u> {
    url: &'u str,
    package: Option<RpmPackage>,
    list: Option<List>,
}

/// Parses a decompressed primary.xml. `url` names the document in errors.
pub fn parse_primary<R: BufRead>(input: R, url: &str) -> Result<Vec<RpmPackage>, RpmError> {
    let mut reader = Reader::from_reader(input);
    let mut parser = Parser {
        url,
        package: None,
        list: None,
    };
    let mut packages = Vec::new();
    let mut buffer = Vec::new();
    let mut declared_count = None;
    let mut closed = false;
    loop {
        let event = reader.read_event_into(&mut buffer);
        let position = reader.buffer_position();
        let invalid = |message: String| RpmError::InvalidPrimary {
            url: url.to_owned(),
            position,
            message,
        };
        match event.map_err(|error| invalid(error.to_string()))? {
            Event::Start(start) if start.local_name().as_ref() == "metadata" => {
                declared_count = attribute(&start, "packages").map_err(invalid)?;
            }
            Event::Start(start) => {
                let start = start.into_owned();
                parser.start(&mut reader, &start, false).map_err(invalid)?;
            }
            Event::Empty(start) => {
                let start = start.into_owned();
                parser.start(&mut reader, &start, true).map_err(invalid)?;
            }
            Event::End(end) => match end.local_name().as_ref() {
                "package" => packages.extend(parser.package.take()),
                "metadata" => closed = true,
                name if List::of(name).is_some() => parser.list = None,
                _ => {}
            },
            Event::Eof if closed => break,
            Event::Eof => return Err(invalid("the document ends before </metadata>".to_owned())),
            _ => {}
        }
        buffer.clear();
    }
    check_count(declared_count.as_deref(), packages.len(), url)?;
    tracing::debug!(url, packages = packages.len(), "parsed primary metadata");
    Ok(packages)
}

/// Compares the `packages` attribute of `<metadata>` with the number of packages read.
fn check_count(declared: Option<&str>, actual: usize, url: &str) -> Result<(), RpmError> {
    let Some(declared) = declared else {
        return Ok(());
    };
    if declared.trim().parse() == Ok(actual) {
        return Ok(());
    }
    Err(RpmError::InvalidPrimary {
        url: url.to_owned(),
        position: 0,
        message: format!("<metadata packages=\"{declared}\"> but the document lists {actual}"),
    })
}

impl Parser<'_> {
    fn start<R: BufRead>(
        &mut self,
        reader: &mut Reader<R>,
        start: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), String> {
        let local = start.local_name();
        let name = local.as_ref();
        if name == "package" {
            self.package = Some(empty_package(attribute(start, "type")?.as_deref()));
            return Ok(());
        }
        let url = self.url;
        let Some(package) = self.package.as_mut() else {
            return Ok(());
        };
        if let Some(list) = List::of(name) {
            self.list = (!empty).then_some(list);
            return Ok(());
        }
        match name {
            "entry" => {
                if let Some(list) = self.list {
                    add_entry(package, list, start)?;
                }
            }
            "version" => {
                package.evr = Evr::new(
                    attribute(start, "epoch")?.as_deref(),
                    &attribute(start, "ver")?.unwrap_or_default(),
                    attribute(start, "rel")?.as_deref(),
                );
            }
            "size" => {
                package.size = number(attribute(start, "package")?)?;
                package.installed_size = number(attribute(start, "installed")?)?;
            }
            "location" => {
                package.location = attribute(start, "href")?.unwrap_or_default();
                package.location_base = attribute(start, "xml:base")?;
            }
            "checksum" if !empty => read_checksum(reader, start, package, url)?,
            _ if empty => {}
            "name" => text_of(reader)?.trim().clone_into(&mut package.name),
            "arch" => text_of(reader)?.trim().clone_into(&mut package.arch),
            "sourcerpm" => {
                let source = text_of(reader)?;
                package.source_rpm = (!source.is_empty()).then_some(source);
            }
            "file" => package.files.push(text_of(reader)?),
            _ => {}
        }
        Ok(())
    }
}

/// Returns a package with empty fields. Packages of another `type` than `rpm` get the arch
/// `src`, so that architecture filters drop them.
fn empty_package(kind: Option<&str>) -> RpmPackage {
    RpmPackage {
        name: String::new(),
        arch: if kind.is_none_or(|kind| kind == "rpm") {
            String::new()
        } else {
            "src".to_owned()
        },
        evr: Evr::new(None, "", None),
        location: String::new(),
        location_base: None,
        size: 0,
        installed_size: 0,
        checksum: Checksum {
            algorithm: ChecksumAlgorithm::Sha256,
            value: String::new(),
        },
        pkgid: false,
        source_rpm: None,
        requires: Vec::new(),
        provides: Vec::new(),
        conflicts: Vec::new(),
        obsoletes: Vec::new(),
        files: Vec::new(),
    }
}

fn number(text: Option<String>) -> Result<u64, String> {
    let Some(text) = text else {
        return Ok(0);
    };
    text.trim()
        .parse()
        .map_err(|_| format!("invalid size `{text}`"))
}

fn read_checksum<R: BufRead>(
    reader: &mut Reader<R>,
    start: &BytesStart<'_>,
    package: &mut RpmPackage,
    url: &str,
) -> Result<(), String> {
    let kind = attribute(start, "type")?.unwrap_or_default();
    package.pkgid = attribute(start, "pkgid")?.is_some_and(|pkgid| pkgid == "YES");
    let value = text_of(reader)?;
    let algorithm = ChecksumAlgorithm::parse(&kind, &format!("{url} (package {})", package.name))
        .map_err(|error| error.to_string())?;
    package.checksum = Checksum {
        algorithm,
        value: value.trim().to_ascii_lowercase(),
    };
    Ok(())
}

fn add_entry(package: &mut RpmPackage, list: List, start: &BytesStart<'_>) -> Result<(), String> {
    let name = attribute(start, "name")?.unwrap_or_default();
    if list == List::Ignored || name.is_empty() {
        return Ok(());
    }
    if list == List::Requires {
        let pre = attribute(start, "pre")?.is_some_and(|pre| pre == "1");
        // rpmlib() entries are features of rpm itself, not packages of the repository.
        if name.starts_with("rpmlib(") {
            return Ok(());
        }
        let expression = if name.starts_with('(') {
            Expression::parse_rich(&name)
        } else {
            Expression::Atom(entry_dependency(name, start)?)
        };
        package.requires.push(Requirement { expression, pre });
        return Ok(());
    }
    // NOTE: a rich dependency in Conflicts or Obsoletes is kept as one name that no package
    // provides, so it never takes effect.
    let dependency = entry_dependency(name, start)?;
    match list {
        List::Provides => package.provides.push(dependency),
        List::Conflicts => package.conflicts.push(dependency),
        List::Obsoletes => package.obsoletes.push(dependency),
        List::Requires | List::Ignored => {}
    }
    Ok(())
}

fn entry_dependency(name: String, start: &BytesStart<'_>) -> Result<Dependency, String> {
    let flags = attribute(start, "flags")?;
    let version = attribute(start, "ver")?;
    let constraint = match (flags, version) {
        (Some(flags), Some(version)) => {
            let comparison = Comparison::from_flags(&flags)
                .ok_or_else(|| format!("invalid flags `{flags}` on the entry `{name}`"))?;
            let evr = Evr::new(
                attribute(start, "epoch")?.as_deref(),
                &version,
                attribute(start, "rel")?.as_deref(),
            );
            Some(Constraint { comparison, evr })
        }
        _ => None,
    };
    Ok(Dependency { name, constraint })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="2">
<package type="rpm">
  <name>app</name>
  <arch>x86_64</arch>
  <version epoch="1" ver="2.0" rel="3.azl3"/>
  <checksum type="sha256" pkgid="YES">ABC</checksum>
  <summary>An app &amp; more</summary>
  <description>text</description>
  <size package="1234" installed="99" archive="1500"/>
  <location xml:base="http://mirror.invalid/" href="Packages/a/app-2.0-3.azl3.x86_64.rpm"/>
  <format>
    <rpm:sourcerpm>app-2.0-3.azl3.src.rpm</rpm:sourcerpm>
    <rpm:provides>
      <rpm:entry name="app" flags="EQ" epoch="1" ver="2.0" rel="3.azl3"/>
      <rpm:entry name="app(x86-64)" flags="EQ" epoch="1" ver="2.0" rel="3.azl3"/>
    </rpm:provides>
    <rpm:requires>
      <rpm:entry name="lib &lt;1&gt;" flags="GE" epoch="0" ver="1.5"/>
      <rpm:entry name="/bin/sh" pre="1"/>
      <rpm:entry name="(a or (b and c &gt;= 2))"/>
      <rpm:entry name="rpmlib(CompressedFileNames)" flags="LE" epoch="0" ver="3.0.4" rel="1"/>
    </rpm:requires>
    <rpm:conflicts><rpm:entry name="old-app" flags="LT" epoch="0" ver="2"/></rpm:conflicts>
    <rpm:obsoletes><rpm:entry name="app-legacy"/></rpm:obsoletes>
    <rpm:recommends><rpm:entry name="app-docs"/></rpm:recommends>
    <file>/usr/bin/app</file>
    <file type="dir">/etc/app</file>
  </format>
</package>
<package type="rpm">
  <name>b</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/>
  <checksum type="sha512" pkgid="YES">def</checksum>
  <size package="1" installed="1" archive="1"/><location href="b.rpm"/>
  <format><rpm:provides/></format>
</package>
</metadata>"#;

    #[test]
    fn package_fields_are_read() {
        let packages = parse_primary(PRIMARY.as_bytes(), "primary.xml").unwrap();
        assert_eq!(packages.len(), 2);
        let app = &packages[0];
        assert_eq!(app.nevra(), "app-1:2.0-3.azl3.x86_64");
        assert_eq!(app.size, 1234);
        assert_eq!(app.installed_size, 99);
        assert_eq!(app.checksum.value, "abc");
        assert!(app.pkgid);
        assert_eq!(app.location, "Packages/a/app-2.0-3.azl3.x86_64.rpm");
        assert_eq!(app.location_base.as_deref(), Some("http://mirror.invalid/"));
        assert_eq!(app.source_rpm.as_deref(), Some("app-2.0-3.azl3.src.rpm"));
        assert_eq!(app.provides.len(), 2);
        assert_eq!(app.conflicts[0].to_string(), "old-app < 0:2");
        assert_eq!(app.obsoletes[0].name, "app-legacy");
        assert_eq!(app.files, ["/usr/bin/app", "/etc/app"]);
        assert_eq!(packages[1].checksum.algorithm, ChecksumAlgorithm::Sha512);
    }

    #[test]
    fn requires_keep_pre_and_rich_entries() {
        let packages = parse_primary(PRIMARY.as_bytes(), "primary.xml").unwrap();
        let requires = &packages[0].requires;
        assert_eq!(requires.len(), 3, "{requires:?}");
        assert_eq!(requires[0].expression.to_string(), "lib <1> >= 0:1.5");
        assert!(!requires[0].pre);
        assert!(requires[1].pre);
        assert_eq!(requires[2].expression.to_string(), "(a or (b and c >= 2))");
    }

    #[test]
    fn truncated_document_is_an_error() {
        let cut = &PRIMARY[..PRIMARY.len() / 2];
        let error = parse_primary(cut.as_bytes(), "primary.xml").unwrap_err();
        assert!(matches!(error, RpmError::InvalidPrimary { .. }), "{error}");
    }

    #[test]
    fn weak_package_checksum_is_rejected() {
        let weak = PRIMARY.replace(r#"type="sha512""#, r#"type="sha1""#);
        let error = parse_primary(weak.as_bytes(), "primary.xml").unwrap_err();
        assert!(error.to_string().contains("sha1"), "{error}");
    }
}
