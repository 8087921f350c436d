//! The software bill of materials (SBOM) of an image: an SPDX 2.3 JSON document built from the
//! dpkg database inside the image root, so it lists what dpkg installed there and nothing else.
//!
//! The document describes one package for the image, which `CONTAINS` every installed package.
//! `DEPENDS_ON` relationships follow `Depends` and `Pre-Depends`: of each group of alternatives
//! the first one that is installed, either as a real package or as a virtual package that an
//! installed package provides.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use oic_deb::control::{self, Field, Paragraph};
use oic_deb::relation::{parse_relation_list, parse_relations, Alternatives};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::ImageError;

/// The dpkg status file, relative to the image root.
const STATUS_PATH: &str = "var/lib/dpkg/status";

/// The prefix of every document namespace. The namespace is an identifier for references
/// between SPDX documents, and no document is published at that address.
const NAMESPACE_PREFIX: &str = "https://spdx.org/spdxdocs/os-image-composer/";

/// The SPDX identifier of the package that stands for the image itself.
const IMAGE_SPDX_ID: &str = "SPDXRef-Image";

/// Value of an SPDX field whose content the document does not state.
pub(crate) const NOASSERTION: &str = "NOASSERTION";

/// The facts about the image and the run that the dpkg database does not contain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbomInfo {
    pub image_name: String,
    pub image_version: String,
    /// The os-image-composer version, written into the document's creator.
    pub tool_version: String,
    /// The creation time in RFC 3339 UTC, such as `2026-12-04T21:30:00Z`.
    pub created: String,
}

/// A package that dpkg lists as installed in an image root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub maintainer: Option<String>,
    /// The source package name, without the version that dpkg adds when it differs.
    pub source: Option<String>,
    pub homepage: Option<String>,
    /// Names of the installed packages that this one depends on through `Depends` and
    /// `Pre-Depends`, after choosing alternatives and following `Provides`. Sorted, without
    /// duplicates and without the package itself.
    pub depends: Vec<String>,
    /// Names of the virtual packages in `Provides`.
    pub provides: Vec<String>,
}

/// The SBOM file that [`write_sbom`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SbomSummary {
    pub path: PathBuf,
    /// Number of installed packages in the document, not counting the image package.
    pub packages: usize,
    /// SHA256 of the file, in lowercase hex.
    pub sha256: String,
}

/// An installed package with the relations that [`resolve_depends`] turns into `depends`.
struct StatusEntry {
    package: InstalledPackage,
    relations: Vec<Alternatives>,
}

/// Reads the packages that dpkg lists as installed in `{root}/var/lib/dpkg/status`, sorted by
/// name and then architecture.
///
/// A package counts as installed when the state word of its `Status` field is `installed`.
/// That includes held packages (`hold ok installed`) and packages selected for removal whose
/// files are still present (`deinstall ok installed`). It excludes every other state, such as
/// `config-files`, `half-installed` and `unpacked`.
pub fn installed_packages(root: &Path) -> Result<Vec<InstalledPackage>, ImageError> {
    let path = root.join(STATUS_PATH);
    let text = fs_err::read_to_string(&path)?;

    let mut entries = parse_status(&text, &path)?;
    entries.sort_by(|a, b| {
        let a = &a.package;
        let b = &b.package;
        (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture))
    });

    resolve_depends(&mut entries);
    tracing::debug!(path = %path.display(), packages = entries.len(), "read dpkg status");
    Ok(entries.into_iter().map(|entry| entry.package).collect())
}

fn parse_status(text: &str, path: &Path) -> Result<Vec<StatusEntry>, ImageError> {
    let mut entries = Vec::new();
    for paragraph in control::paragraphs(text) {
        let paragraph = paragraph.map_err(|error| invalid(path, error.to_string()))?;
        if !is_installed(&paragraph) {
            continue;
        }
        entries.push(parse_entry(&paragraph, path)?);
    }
    Ok(entries)
}

/// Tells whether the third word of `Status` (want, error flag, state) is `installed`.
fn is_installed(paragraph: &Paragraph<'_>) -> bool {
    let Some(status) = paragraph.get("Status") else {
        return false;
    };
    status.first_line().split_whitespace().nth(2) == Some("installed")
}

fn parse_entry(paragraph: &Paragraph<'_>, path: &Path) -> Result<StatusEntry, ImageError> {
    let line = paragraph.line();
    let required = |name: &str| {
        optional(paragraph, name).ok_or_else(|| {
            invalid(
                path,
                format!("the installed package on line {line} has no `{name}` field"),
            )
        })
    };
    let name = required("Package")?;
    let version = required("Version")?;
    let architecture = required("Architecture")?;

    let relation_error = |field: &str, error: String| {
        invalid(
            path,
            format!("invalid `{field}` of package `{name}`: {error}"),
        )
    };
    let mut relations = Vec::new();
    for field in ["Pre-Depends", "Depends"] {
        if let Some(value) = paragraph.get(field) {
            let groups = parse_relations(&value.folded())
                .map_err(|error| relation_error(field, error.to_string()))?;
            relations.extend(groups);
        }
    }
    let provides = match paragraph.get("Provides") {
        Some(value) => parse_relation_list(&value.folded())
            .map_err(|error| relation_error("Provides", error.to_string()))?
            .into_iter()
            .map(|relation| relation.name.to_string())
            .collect(),
        None => Vec::new(),
    };

    let source = optional(paragraph, "Source").map(|value| {
        let name = value
            .split_once('(')
            .map_or(value.as_str(), |(name, _)| name);
        name.trim().to_owned()
    });
    let package = InstalledPackage {
        name,
        version,
        architecture,
        maintainer: optional(paragraph, "Maintainer"),
        source,
        homepage: optional(paragraph, "Homepage"),
        depends: Vec::new(),
        provides,
    };
    Ok(StatusEntry { package, relations })
}

/// Returns the folded value of a field, or `None` when the field is missing or empty.
fn optional(paragraph: &Paragraph<'_>, name: &str) -> Option<String> {
    let value = paragraph.get(name).map(Field::folded)?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

fn invalid(path: &Path, message: String) -> ImageError {
    ImageError::Invalid {
        path: path.to_owned(),
        message,
    }
}

/// Fills in `depends` of every entry. `entries` must be sorted, because a virtual package with
/// several installed providers resolves to the first of them.
fn resolve_depends(entries: &mut [StatusEntry]) {
    let installed: HashSet<String> = entries
        .iter()
        .map(|entry| entry.package.name.clone())
        .collect();
    let mut providers: HashMap<String, String> = HashMap::new();
    for entry in entries.iter() {
        for virtual_name in &entry.package.provides {
            providers
                .entry(virtual_name.clone())
                .or_insert_with(|| entry.package.name.clone());
        }
    }

    for entry in entries.iter_mut() {
        let mut depends: Vec<String> = entry
            .relations
            .iter()
            .filter_map(|group| {
                group.iter().find_map(|relation| {
                    if installed.contains(relation.name.as_str()) {
                        return Some(relation.name.to_string());
                    }
                    providers.get(relation.name.as_str()).cloned()
                })
            })
            .filter(|name| *name != entry.package.name)
            .collect();
        depends.sort();
        depends.dedup();
        entry.package.depends = depends;
    }
}

/// Builds the SPDX 2.3 JSON document for an image that contains `packages`.
///
/// The document namespace ends in a SHA256 of the image name, version and package list, so the
/// same inputs always give the same document.
pub fn spdx_document(packages: &[InstalledPackage], info: &SbomInfo) -> Value {
    let ids = package_spdx_ids(packages);
    let spdx_packages = packages
        .iter()
        .zip(&ids)
        .map(|(package, id)| package_json(package, id))
        .collect();
    let lines = packages.iter().map(|package| {
        format!(
            "{} {} {} {}\n",
            package.name,
            package.version,
            package.architecture,
            package.depends.join(",")
        )
    });
    let namespace = document_namespace(info, lines);
    document_json(
        info,
        &namespace,
        spdx_packages,
        &relationships(packages, &ids),
    )
}

/// Assembles the document from the SPDX packages of the installed packages, which the image
/// package precedes, and their relationships.
pub(crate) fn document_json(
    info: &SbomInfo,
    namespace: &str,
    packages: Vec<Value>,
    relationships: &[Value],
) -> Value {
    let mut spdx_packages = vec![image_package(info)];
    spdx_packages.extend(packages);
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", info.image_name, info.image_version),
        "documentNamespace": namespace,
        "creationInfo": {
            "created": info.created,
            "creators": [format!("Tool: os-image-composer-{}", info.tool_version)],
        },
        "packages": spdx_packages,
        "relationships": relationships,
    })
}

/// Builds the namespace URI from the image name and version and a SHA256 of them and of
/// `lines`, one line per package.
pub(crate) fn document_namespace(
    info: &SbomInfo,
    lines: impl IntoIterator<Item = String>,
) -> String {
    let mut hasher = Sha256::new();
    for text in [&info.image_name, &info.image_version] {
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
    }
    for line in lines {
        hasher.update(line.as_bytes());
    }

    let name = sanitize_spdx_id(&info.image_name);
    let version = sanitize_spdx_id(&info.image_version);
    let digest = crate::hex(&hasher.finalize());
    format!("{NAMESPACE_PREFIX}{name}-{version}-{digest}")
}

/// Replaces every character that an SPDX identifier does not allow (anything but ASCII
/// letters, digits, `.` and `-`) with `-`.
pub fn sanitize_spdx_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Returns one unique SPDX identifier per package: `SPDXRef-Package-{name}-{architecture}`,
/// sanitized, with `-2`, `-3` and so on appended when sanitizing made two of them equal.
pub fn package_spdx_ids(packages: &[InstalledPackage]) -> Vec<String> {
    unique_spdx_ids(
        packages
            .iter()
            .map(|package| (package.name.as_str(), package.architecture.as_str())),
    )
}

/// Returns one unique SPDX identifier per `(name, architecture)` pair, as
/// [`package_spdx_ids`] describes.
pub(crate) fn unique_spdx_ids<'a>(
    packages: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let mut used = HashSet::new();
    packages
        .into_iter()
        .map(|(name, architecture)| {
            let base = sanitize_spdx_id(&format!("SPDXRef-Package-{name}-{architecture}"));
            let mut id = base.clone();
            let mut suffix = 2;
            while !used.insert(id.clone()) {
                id = format!("{base}-{suffix}");
                suffix += 1;
            }
            id
        })
        .collect()
}

fn image_package(info: &SbomInfo) -> Value {
    json!({
        "SPDXID": IMAGE_SPDX_ID,
        "name": info.image_name,
        "versionInfo": info.image_version,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "supplier": NOASSERTION,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
    })
}

/// Builds the SPDX package of an installed package. Licenses stay `NOASSERTION`.
// TODO: read licenses from machine-readable `/usr/share/doc/{package}/copyright` files. Their
// `License` fields use Debian's short names (`GPL-2+`, `Expat`), which are not SPDX expressions
// and need a mapping before they can go into `licenseDeclared`.
fn package_json(package: &InstalledPackage, id: &str) -> Value {
    let supplier = package
        .maintainer
        .as_deref()
        .map_or_else(|| NOASSERTION.to_owned(), supplier);

    let mut value = json!({
        "SPDXID": id,
        "name": package.name,
        "versionInfo": package.version,
        "supplier": supplier,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl(package),
        }],
    });

    let object = value.as_object_mut().expect("a JSON object");
    if let Some(homepage) = package.homepage.as_deref().filter(|url| is_web_url(url)) {
        object.insert("homepage".to_owned(), json!(homepage));
    }
    if let Some(source) = &package.source {
        let text = format!("built from the Debian source package {source}");
        object.insert("sourceInfo".to_owned(), json!(text));
    }
    value
}

/// Turns a Debian `Maintainer` such as `Jane Doe <jane@example.org>` into the SPDX form
/// `Organization: Jane Doe (jane@example.org)`. Parentheses in the name become brackets,
/// because SPDX readers take the last parenthesized part for the email address.
pub(crate) fn supplier(maintainer: &str) -> String {
    let (name, email) = match maintainer.rsplit_once('<') {
        Some((name, rest)) => (name, rest.strip_suffix('>').map(str::trim)),
        None => (maintainer, None),
    };
    let name = name.trim().replace('(', "[").replace(')', "]");
    match email.filter(|email| !email.is_empty()) {
        Some(email) => format!("Organization: {name} ({email})"),
        None => format!("Organization: {name}"),
    }
}

/// Builds the package URL `pkg:deb/debian/{name}@{version}?arch={architecture}`.
pub fn purl(package: &InstalledPackage) -> String {
    format!(
        "pkg:deb/debian/{}@{}?arch={}",
        percent_encode(&package.name),
        percent_encode(&package.version),
        percent_encode(&package.architecture)
    )
}

/// Percent-encodes every byte except the unreserved characters of RFC 3986, so an epoch colon
/// becomes `%3A` and a `+` becomes `%2B`.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Tells whether `url` is an absolute `http` or `https` URL with a dotted host name and no
/// characters that a URL must escape. Packages with other `Homepage` values get no homepage.
pub fn is_web_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    if url
        .chars()
        .any(|c| !c.is_ascii_graphic() || "<>\"{}|\\^`".contains(c))
    {
        return false;
    }

    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = host.split_once(':').unwrap_or((host, ""));
    if !port.bytes().all(|byte| byte.is_ascii_digit()) {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let valid_label = |label: &&str| {
        !label.is_empty()
            && !label.starts_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let top_level = labels.last().copied().unwrap_or_default();
    labels.len() >= 2
        && labels.iter().all(valid_label)
        && top_level.len() >= 2
        && top_level.bytes().all(|byte| byte.is_ascii_alphabetic())
}

/// Lists `DESCRIBES` from the document to the image, `CONTAINS` from the image to every
/// package and `DEPENDS_ON` between packages. A dependency that is not in `packages` is left
/// out. A name installed for several architectures resolves to the same architecture, then to
/// `all`, then to the first one.
fn relationships(packages: &[InstalledPackage], ids: &[String]) -> Vec<Value> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, package) in packages.iter().enumerate() {
        by_name.entry(&package.name).or_default().push(index);
    }

    let mut list = image_relationships(ids);
    for (package, id) in packages.iter().zip(ids) {
        for name in &package.depends {
            let Some(candidates) = by_name.get(name.as_str()) else {
                continue;
            };
            let target = pick_architecture(packages, candidates, &package.architecture);
            list.push(relationship(id, "DEPENDS_ON", &ids[target]));
        }
    }
    list
}

/// Lists `DESCRIBES` from the document to the image and `CONTAINS` from the image to every
/// package of `ids`.
pub(crate) fn image_relationships(ids: &[String]) -> Vec<Value> {
    let mut list = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_SPDX_ID)];
    for id in ids {
        list.push(relationship(IMAGE_SPDX_ID, "CONTAINS", id));
    }
    list
}

pub(crate) fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}

fn pick_architecture(packages: &[InstalledPackage], candidates: &[usize], arch: &str) -> usize {
    let with_arch = |wanted: &str| {
        candidates
            .iter()
            .copied()
            .find(|&index| packages[index].architecture == wanted)
    };
    with_arch(arch)
        .or_else(|| with_arch("all"))
        .unwrap_or(candidates[0])
}

/// Writes the SBOM of the image at `root` to `output`: a temporary file in the same folder,
/// flushed to disk and renamed over `output`, so readers never see a partial document.
pub fn write_sbom(root: &Path, info: &SbomInfo, output: &Path) -> Result<SbomSummary, ImageError> {
    let packages = installed_packages(root)?;
    let document = spdx_document(&packages, info);
    write_document(&document, packages.len(), output)
}

/// Writes `document`, which lists `packages` installed packages, to `output` as
/// [`write_sbom`] describes.
pub(crate) fn write_document(
    document: &Value,
    packages: usize,
    output: &Path,
) -> Result<SbomSummary, ImageError> {
    let mut bytes = serde_json::to_vec_pretty(document).map_err(std::io::Error::from)?;
    bytes.push(b'\n');
    write_atomically(output, &bytes)?;

    let summary = SbomSummary {
        path: output.to_owned(),
        packages,
        sha256: crate::hex(&Sha256::digest(&bytes)),
    };
    tracing::info!(
        path = %output.display(),
        packages = summary.packages,
        sha256 = %summary.sha256,
        "wrote SBOM"
    );
    Ok(summary)
}

fn write_atomically(output: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let folder = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".sbom-")
        .suffix(".tmp")
        .tempfile_in(folder)
        .map_err(|error| with_path(&error, folder))?;

    file.write_all(bytes)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.as_file().sync_all()?;
    file.persist(output)
        .map_err(|error| with_path(&error.error, output))?;
    Ok(())
}

/// Adds the path to an I/O error from a call that does not name it.
fn with_path(error: &std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(
        error.kind(),
        format!("failed to write `{}`: {error}", path.display()),
    )
}
