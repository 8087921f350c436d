//! The SBOM of an image whose packages rpm installed: the SPDX 2.3 document of [`crate::sbom`],
//! built from the rpm database inside the image root, which the build host's `rpm` reads with
//! `--root`.
//!
//! `DEPENDS_ON` relationships follow `Requires`, resolved by name against the `Provides` and
//! the file lists of the installed packages, as the Debian SBOM resolves `Depends`. Versions
//! are not compared, because rpm checked them when it installed the set. A rich dependency
//! that only combines names with `or` links to the first installed one. Every other rich
//! dependency links to each installed package it names.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use serde::Serialize;
use serde_json::{json, Value};

use oic_chroot::rpm::{rpm_command, DBPATH};

use crate::error::ImageError;
use crate::sbom::{self, SbomInfo, SbomSummary, NOASSERTION};

/// The name under which rpm stores imported OpenPGP keys as pseudo-packages. They are keys,
/// not software, so the SBOM leaves them out.
const PUBKEY_NAME: &str = "gpg-pubkey";

/// One line per header field, then one line per entry of each array. `%|TAG?{...}:{}|` prints
/// nothing for a missing tag, where a plain `%{TAG}` would print `(none)`.
const QUERY_FORMAT: &str = "@package\n\
    name=%{NAME}\n\
    epoch=%|EPOCH?{%{EPOCH}}:{}|\n\
    version=%{VERSION}\n\
    release=%{RELEASE}\n\
    arch=%|ARCH?{%{ARCH}}:{}|\n\
    vendor=%|VENDOR?{%{VENDOR}}:{}|\n\
    packager=%|PACKAGER?{%{PACKAGER}}:{}|\n\
    license=%|LICENSE?{%{LICENSE}}:{}|\n\
    url=%|URL?{%{URL}}:{}|\n\
    sourcerpm=%|SOURCERPM?{%{SOURCERPM}}:{}|\n\
    sha256header=%|SHA256HEADER?{%{SHA256HEADER}}:{}|\n\
    [requires=%{REQUIRENAME}\n]\
    [provides=%{PROVIDENAME}\n]\
    [file=%{FILENAMES}\n]";

/// A package that the rpm database of an image root lists as installed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RpmInstalledPackage {
    pub name: String,
    pub epoch: Option<String>,
    pub version: String,
    pub release: String,
    /// The architecture, or `noarch`. Empty for headers without one.
    pub arch: String,
    pub vendor: Option<String>,
    pub packager: Option<String>,
    /// The `License` tag as written, which need not be an SPDX expression.
    pub license: Option<String>,
    pub url: Option<String>,
    pub source_rpm: Option<String>,
    /// The SHA256 of the package header, in lowercase hex.
    pub sha256_header: Option<String>,
    pub requires: Vec<String>,
    pub provides: Vec<String>,
    pub files: Vec<String>,
    /// Indices of the packages this one requires, into the list [`installed_rpm_packages`]
    /// returned. Sorted, without duplicates and without the package itself.
    pub depends: Vec<usize>,
}

impl RpmInstalledPackage {
    /// Returns `[epoch:]version-release`, as rpm prints an EVR.
    pub fn evr(&self) -> String {
        match &self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }

    /// Returns `name-epoch:version-release.arch` with the epoch always present, 0 when the
    /// header has none: the key of [`RpmSbomRequest::file_checksums`].
    pub fn nevra(&self) -> String {
        format!(
            "{}-{}:{}-{}.{}",
            self.name,
            self.epoch.as_deref().unwrap_or("0"),
            self.version,
            self.release,
            self.arch
        )
    }
}

/// The inputs of the RPM SBOM besides the rpm database.
#[derive(Debug, Clone, Default)]
pub struct RpmSbomRequest {
    /// The namespace of the package URLs, such as `azure-linux`: the template's `target.os`.
    pub purl_namespace: String,
    /// The checksum type (`sha256`, `sha512`, ...) and hex checksum of each package file that
    /// the build verified and installed, keyed by [`RpmInstalledPackage::nevra`]. An installed
    /// package found here gets the checksum.
    pub file_checksums: HashMap<String, (String, String)>,
}

/// Reads the packages installed in the image root `root` with `rpm -qa`, sorted by name, then
/// architecture, then EVR, with `depends` filled in. Imported keys (`gpg-pubkey`) are left out.
pub fn installed_rpm_packages(root: &Path) -> Result<Vec<RpmInstalledPackage>, ImageError> {
    // rpm_command passes `--dbpath`, because Debian's rpm keeps its own database in `~/.rpmdb`.
    let mut command = rpm_command(root);
    command.args(["-qa", "--queryformat", QUERY_FORMAT]);
    let output = query_output(&mut command)?;

    let mut packages = parse_query(&output, root)?;
    packages.retain(|package| package.name != PUBKEY_NAME);
    packages.sort_by(|a, b| (&a.name, &a.arch, a.evr()).cmp(&(&b.name, &b.arch, b.evr())));
    resolve_requires(&mut packages);
    tracing::debug!(root = %root.display(), packages = packages.len(), "read the rpm database");
    Ok(packages)
}

/// Runs the query and returns its standard output. Warnings on standard error are logged, not
/// parsed.
fn query_output(command: &mut Command) -> Result<String, ImageError> {
    let line = oic_chroot::command::command_line(command);
    let output = command.output().map_err(|error| ImageError::Command {
        command: line.clone(),
        status: "not started".to_owned(),
        output: format!("{error}: install rpm on the build host"),
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(ImageError::Command {
            command: line,
            status: output.status.to_string(),
            output: stderr.into_owned(),
        });
    }
    if !stderr.trim().is_empty() {
        tracing::warn!(command = %line, output = %stderr.trim(), "rpm printed warnings");
    }
    String::from_utf8(output.stdout).map_err(|error| ImageError::Command {
        command: line,
        status: "invalid output".to_owned(),
        output: format!("the output is not UTF-8: {error}"),
    })
}

/// Parses the output of `rpm -qa` with [`QUERY_FORMAT`].
pub fn parse_query(output: &str, root: &Path) -> Result<Vec<RpmInstalledPackage>, ImageError> {
    let mut packages: Vec<RpmInstalledPackage> = Vec::new();
    for (number, line) in output.lines().enumerate() {
        if line == "@package" {
            packages.push(RpmInstalledPackage::default());
            continue;
        }
        let invalid = |message: &str| ImageError::Invalid {
            path: root.join(DBPATH.trim_start_matches('/')),
            message: format!("line {} of `rpm -qa`: {message}: {line:?}", number + 1),
        };
        let Some(package) = packages.last_mut() else {
            return Err(invalid("the output does not start with a package"));
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(invalid("the line has no `=`"));
        };
        set_field(package, key, value).map_err(|()| invalid("unknown field"))?;
    }
    if let Some(package) = packages.iter().find(|package| package.name.is_empty()) {
        return Err(ImageError::Invalid {
            path: root.join(DBPATH.trim_start_matches('/')),
            message: format!("`rpm -qa` listed a package without a name: {package:?}"),
        });
    }
    Ok(packages)
}

fn set_field(package: &mut RpmInstalledPackage, key: &str, value: &str) -> Result<(), ()> {
    let optional = || (!value.trim().is_empty()).then(|| value.trim().to_owned());
    match key {
        "name" => value.clone_into(&mut package.name),
        "epoch" => package.epoch = optional(),
        "version" => value.clone_into(&mut package.version),
        "release" => value.clone_into(&mut package.release),
        "arch" => value.clone_into(&mut package.arch),
        "vendor" => package.vendor = optional(),
        "packager" => package.packager = optional(),
        "license" => package.license = optional(),
        "url" => package.url = optional(),
        "sourcerpm" => package.source_rpm = optional(),
        "sha256header" => package.sha256_header = optional(),
        "requires" => package.requires.push(value.to_owned()),
        "provides" => package.provides.push(value.to_owned()),
        "file" => package.files.push(value.to_owned()),
        _ => return Err(()),
    }
    Ok(())
}

/// Fills in `depends` of every package. `packages` must be sorted, because a name that several
/// installed packages provide resolves to the first of them.
pub fn resolve_requires(packages: &mut [RpmInstalledPackage]) {
    let mut providers: HashMap<&str, usize> = HashMap::new();
    for (index, package) in packages.iter().enumerate() {
        let names = std::iter::once(&package.name)
            .chain(&package.provides)
            .chain(&package.files);
        for name in names {
            providers.entry(name.as_str()).or_insert(index);
        }
    }

    let depends: Vec<Vec<usize>> = packages
        .iter()
        .enumerate()
        .map(|(index, package)| {
            let mut targets: Vec<usize> = package
                .requires
                .iter()
                .flat_map(|requirement| requirement_targets(requirement, &providers))
                .filter(|target| *target != index)
                .collect();
            targets.sort_unstable();
            targets.dedup();
            targets
        })
        .collect();
    for (package, targets) in packages.iter_mut().zip(depends) {
        package.depends = targets;
    }
}

/// Returns the installed packages that satisfy one `Requires` entry.
fn requirement_targets(requirement: &str, providers: &HashMap<&str, usize>) -> Vec<usize> {
    if !requirement.starts_with('(') {
        return providers.get(requirement).copied().into_iter().collect();
    }
    let (names, only_or) = rich_dependency_names(requirement);
    let mut found = names.iter().filter_map(|name| providers.get(name).copied());
    if only_or {
        found.next().into_iter().collect()
    } else {
        found.collect()
    }
}

/// Returns the names in a rich dependency such as `(a >= 1 or (b and c))`, in order, and
/// whether `or` is its only operator. Versions after a comparison are not names.
pub fn rich_dependency_names(requirement: &str) -> (Vec<&str>, bool) {
    const OPERATORS: &[&str] = &["and", "or", "if", "else", "with", "without", "unless"];
    const COMPARISONS: &[&str] = &["<", "<=", "=", ">=", ">", "!="];

    let mut names = Vec::new();
    let mut only_or = true;
    let mut after_comparison = false;
    for token in requirement.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
        if token.is_empty() {
            continue;
        }
        if after_comparison {
            after_comparison = false;
        } else if COMPARISONS.contains(&token) {
            after_comparison = true;
        } else if OPERATORS.contains(&token) {
            only_or &= token == "or";
        } else {
            names.push(token);
        }
    }
    (names, only_or)
}

/// Builds the SPDX 2.3 JSON document for an image that contains the RPM `packages`.
///
/// The document namespace ends in a SHA256 of the image name, version and package list, so the
/// same inputs always give the same document.
pub fn rpm_spdx_document(
    packages: &[RpmInstalledPackage],
    info: &SbomInfo,
    request: &RpmSbomRequest,
) -> Value {
    let ids = sbom::unique_spdx_ids(
        packages
            .iter()
            .map(|package| (package.name.as_str(), package.arch.as_str())),
    );
    let spdx_packages = packages
        .iter()
        .zip(&ids)
        .map(|(package, id)| package_json(package, id, request))
        .collect();

    let mut relationships = sbom::image_relationships(&ids);
    for (package, id) in packages.iter().zip(&ids) {
        for &target in &package.depends {
            relationships.push(sbom::relationship(id, "DEPENDS_ON", &ids[target]));
        }
    }

    let lines = packages.iter().map(|package| {
        let depends: Vec<String> = package
            .depends
            .iter()
            .map(|&target| packages[target].nevra())
            .collect();
        format!("{} {}\n", package.nevra(), depends.join(","))
    });
    let namespace = sbom::document_namespace(info, lines);
    sbom::document_json(info, &namespace, spdx_packages, &relationships)
}

fn package_json(package: &RpmInstalledPackage, id: &str, request: &RpmSbomRequest) -> Value {
    let supplier = package
        .vendor
        .as_deref()
        .map_or_else(|| NOASSERTION.to_owned(), sbom::supplier);
    let mut value = json!({
        "SPDXID": id,
        "name": package.name,
        "versionInfo": package.evr(),
        "supplier": supplier,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": license_declared(package.license.as_deref()),
        "copyrightText": NOASSERTION,
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": rpm_purl(package, &request.purl_namespace),
        }],
    });

    let object = value.as_object_mut().expect("a JSON object");
    if let Some(packager) = &package.packager {
        object.insert("originator".to_owned(), json!(sbom::supplier(packager)));
    }
    if let Some(homepage) = package.url.as_deref().filter(|url| sbom::is_web_url(url)) {
        object.insert("homepage".to_owned(), json!(homepage));
    }
    if let Some(source) = &package.source_rpm {
        let text = format!("built from the source RPM {source}");
        object.insert("sourceInfo".to_owned(), json!(text));
    }
    // The SPDX package checksum is the checksum of the package file, which the header digest
    // is not, so the header digest goes into the comment.
    if let Some((kind, value)) = request.file_checksums.get(&package.nevra()) {
        let algorithm = kind.to_ascii_uppercase();
        let checksums = json!([{"algorithm": algorithm, "checksumValue": value}]);
        object.insert("checksums".to_owned(), checksums);
    }
    if let Some(header) = &package.sha256_header {
        let text = format!("SHA256 of the RPM header: {header}");
        object.insert("comment".to_owned(), json!(text));
    }
    value
}

/// Returns the `License` tag when it is a valid SPDX license expression of current license
/// ids, else `NOASSERTION`. Older packages write names such as `GPLv2+`, which SPDX does not
/// define.
pub fn license_declared(license: Option<&str>) -> String {
    match license {
        Some(text) if spdx::Expression::parse(text).is_ok() => text.to_owned(),
        _ => NOASSERTION.to_owned(),
    }
}

/// Builds the package URL `pkg:rpm/{namespace}/{name}@{version}-{release}?arch={arch}`, with
/// `&epoch={epoch}` when the package has an epoch, as the purl specification writes RPMs.
pub fn rpm_purl(package: &RpmInstalledPackage, namespace: &str) -> String {
    let mut purl = format!(
        "pkg:rpm/{}/{}@{}",
        sbom::percent_encode(&namespace.to_lowercase()),
        sbom::percent_encode(&package.name),
        sbom::percent_encode(&format!("{}-{}", package.version, package.release)),
    );
    let mut qualifiers = Vec::new();
    if !package.arch.is_empty() {
        qualifiers.push(format!("arch={}", sbom::percent_encode(&package.arch)));
    }
    if let Some(epoch) = &package.epoch {
        qualifiers.push(format!("epoch={}", sbom::percent_encode(epoch)));
    }
    if !qualifiers.is_empty() {
        purl.push('?');
        purl.push_str(&qualifiers.join("&"));
    }
    purl
}

/// Writes the SBOM of the RPM image at `root` to `output`, replacing it atomically as
/// [`sbom::write_sbom`] does.
pub fn write_rpm_sbom(
    root: &Path,
    info: &SbomInfo,
    request: &RpmSbomRequest,
    output: &Path,
) -> Result<SbomSummary, ImageError> {
    let packages = installed_rpm_packages(root)?;
    let document = rpm_spdx_document(&packages, info, request);
    sbom::write_document(&document, packages.len(), output)
}
