//! SBOM tests: dpkg status parsing, SPDX identifiers and relationships on synthetic status
//! files, and a document of this machine's own dpkg database checked with `pyspdxtools`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use oic_image::sbom::{
    installed_packages, is_web_url, package_spdx_ids, purl, sanitize_spdx_id, spdx_document,
    write_sbom, InstalledPackage, SbomInfo,
};
use serde_json::Value;

fn info() -> SbomInfo {
    SbomInfo {
        image_name: "minimal-raw".to_owned(),
        image_version: "1.0.0".to_owned(),
        tool_version: "0.1.0".to_owned(),
        created: "2026-12-04T21:30:00Z".to_owned(),
    }
}

/// Creates an image root whose dpkg status file contains `status`.
fn root_with_status(status: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("var/lib/dpkg");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("status"), status).unwrap();
    root
}

fn stanza(name: &str, status: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nStatus: {status}\nMaintainer: Debian Team <team@debian.org>\n\
         Architecture: amd64\nVersion: 1.0-1\n{extra}Description: {name}\n .\n more text\n\n"
    )
}

fn package(name: &str, depends: &[&str]) -> InstalledPackage {
    InstalledPackage {
        name: name.to_owned(),
        version: "1:2.3+dfsg-1~deb12u1".to_owned(),
        architecture: "amd64".to_owned(),
        maintainer: Some("Jane Doe (QA) <jane@example.org>".to_owned()),
        source: None,
        homepage: None,
        depends: depends.iter().map(|name| (*name).to_owned()).collect(),
        provides: Vec::new(),
    }
}

fn names(packages: &[InstalledPackage]) -> Vec<&str> {
    packages
        .iter()
        .map(|package| package.name.as_str())
        .collect()
}

fn relationships<'a>(document: &'a Value, kind: &str) -> Vec<(&'a str, &'a str)> {
    document["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|relationship| relationship["relationshipType"] == kind)
        .map(|relationship| {
            (
                relationship["spdxElementId"].as_str().unwrap(),
                relationship["relatedSpdxElement"].as_str().unwrap(),
            )
        })
        .collect()
}

fn spdx_package<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == name)
        .unwrap()
}

#[test]
fn status_skips_packages_not_installed() {
    let status = [
        stanza("zlib1g", "install ok installed", ""),
        stanza("held", "hold ok installed", ""),
        stanza("removed", "deinstall ok config-files", ""),
        stanza("broken", "install reinstreq half-installed", ""),
        stanza("unpacked", "install ok unpacked", ""),
        stanza("configuring", "install ok half-configured", ""),
        "Package: purged\nStatus: purge ok not-installed\nArchitecture: amd64\n\n".to_owned(),
        stanza("base-files", "install ok installed", ""),
    ]
    .concat();
    let root = root_with_status(&status);

    let packages = installed_packages(root.path()).unwrap();

    assert_eq!(names(&packages), ["base-files", "held", "zlib1g"]);
}

#[test]
fn status_fields_are_read() {
    let extra = "Source: zlib (1:1.2.13.dfsg-1)\nHomepage: http://zlib.net/\n";
    let root = root_with_status(&stanza("zlib1g", "install ok installed", extra));

    let packages = installed_packages(root.path()).unwrap();

    let zlib = &packages[0];
    assert_eq!(zlib.version, "1.0-1");
    assert_eq!(zlib.architecture, "amd64");
    assert_eq!(
        zlib.maintainer.as_deref(),
        Some("Debian Team <team@debian.org>")
    );
    assert_eq!(zlib.source.as_deref(), Some("zlib"));
    assert_eq!(zlib.homepage.as_deref(), Some("http://zlib.net/"));
}

#[test]
fn status_without_version_is_invalid() {
    let root = root_with_status("Package: a\nStatus: install ok installed\nArchitecture: all\n");

    let error = installed_packages(root.path()).unwrap_err();

    let message = error.to_string();
    assert!(message.contains("var/lib/dpkg/status"), "{message}");
    assert!(message.contains("`Version`"), "{message}");
}

#[test]
fn missing_status_file_names_path() {
    let root = tempfile::tempdir().unwrap();

    let error = installed_packages(root.path()).unwrap_err();

    assert!(error.to_string().contains("var/lib/dpkg/status"), "{error}");
}

#[test]
fn depends_take_first_installed_alternative() {
    let status = [
        stanza(
            "app",
            "install ok installed",
            "Depends: missing | second (>= 1) | third, libc6:any\nPre-Depends: dpkg\n",
        ),
        stanza("second", "install ok installed", ""),
        stanza("third", "install ok installed", ""),
        stanza("libc6", "install ok installed", ""),
        stanza("dpkg", "install ok installed", ""),
    ]
    .concat();
    let root = root_with_status(&status);

    let packages = installed_packages(root.path()).unwrap();

    let app = packages
        .iter()
        .find(|package| package.name == "app")
        .unwrap();
    assert_eq!(app.depends, ["dpkg", "libc6", "second"]);
}

#[test]
fn depends_follow_provides() {
    let status = [
        stanza(
            "cron",
            "install ok installed",
            "Depends: default-mta | mail-transport-agent, cron\n",
        ),
        stanza(
            "postfix",
            "install ok installed",
            "Provides: mail-transport-agent, postfix-api (= 3)\n",
        ),
        stanza(
            "exim4",
            "deinstall ok config-files",
            "Provides: mail-transport-agent\n",
        ),
    ]
    .concat();
    let root = root_with_status(&status);

    let packages = installed_packages(root.path()).unwrap();

    let cron = packages
        .iter()
        .find(|package| package.name == "cron")
        .unwrap();
    assert_eq!(cron.depends, ["postfix"]);
    let postfix = packages
        .iter()
        .find(|package| package.name == "postfix")
        .unwrap();
    assert_eq!(postfix.provides, ["mail-transport-agent", "postfix-api"]);
}

#[test]
fn depends_on_relationships_use_spdx_ids() {
    let status = [
        stanza(
            "app",
            "install ok installed",
            "Depends: virtual-lib | other\n",
        ),
        stanza("lib++", "install ok installed", "Provides: virtual-lib\n"),
    ]
    .concat();
    let root = root_with_status(&status);
    let packages = installed_packages(root.path()).unwrap();

    let document = spdx_document(&packages, &info());

    let depends = relationships(&document, "DEPENDS_ON");
    assert_eq!(
        depends,
        [("SPDXRef-Package-app-amd64", "SPDXRef-Package-lib---amd64")]
    );
}

#[test]
fn image_contains_every_package() {
    let packages = [package("a", &[]), package("b", &["a", "not-installed"])];

    let document = spdx_document(&packages, &info());

    assert_eq!(
        relationships(&document, "DESCRIBES"),
        [("SPDXRef-DOCUMENT", "SPDXRef-Image")]
    );
    assert_eq!(
        relationships(&document, "CONTAINS"),
        [
            ("SPDXRef-Image", "SPDXRef-Package-a-amd64"),
            ("SPDXRef-Image", "SPDXRef-Package-b-amd64")
        ]
    );
    assert_eq!(
        relationships(&document, "DEPENDS_ON"),
        [("SPDXRef-Package-b-amd64", "SPDXRef-Package-a-amd64")]
    );
    assert_eq!(document["packages"].as_array().unwrap().len(), 3);
}

#[test]
fn spdx_id_sanitizing() {
    assert_eq!(sanitize_spdx_id("libstdc++6"), "libstdc--6");
    assert_eq!(sanitize_spdx_id("a_b c:d/é"), "a-b-c-d--");
    assert_eq!(sanitize_spdx_id("Ok.1-2"), "Ok.1-2");
}

#[test]
fn spdx_ids_stay_unique() {
    let mut i386 = package("libc6", &[]);
    i386.architecture = "i386".into();
    let packages = [
        package("a+b", &[]),
        package("a-b", &[]),
        package("a.b", &[]),
        package("libc6", &[]),
        i386,
    ];

    let ids = package_spdx_ids(&packages);

    assert_eq!(
        ids,
        [
            "SPDXRef-Package-a-b-amd64",
            "SPDXRef-Package-a-b-amd64-2",
            "SPDXRef-Package-a.b-amd64",
            "SPDXRef-Package-libc6-amd64",
            "SPDXRef-Package-libc6-i386",
        ]
    );
}

#[test]
fn depends_on_prefers_same_architecture() {
    let mut i386 = package("libc6", &[]);
    i386.architecture = "i386".into();
    let mut app = package("app", &["libc6"]);
    app.architecture = "i386".into();
    let packages = [app, package("libc6", &[]), i386];

    let document = spdx_document(&packages, &info());

    assert_eq!(
        relationships(&document, "DEPENDS_ON"),
        [("SPDXRef-Package-app-i386", "SPDXRef-Package-libc6-i386")]
    );
}

#[test]
fn namespace_is_deterministic() {
    let packages = [package("a", &[]), package("b", &["a"])];

    let first = spdx_document(&packages, &info());
    let second = spdx_document(&packages, &info());

    assert_eq!(first, second);
    let namespace = first["documentNamespace"].as_str().unwrap();
    assert!(
        namespace.starts_with("https://spdx.org/spdxdocs/os-image-composer/minimal-raw-1.0.0-"),
        "{namespace}"
    );
}

#[test]
fn namespace_changes_with_content() {
    let packages = [package("a", &[]), package("b", &["a"])];
    let base = spdx_document(&packages, &info());

    let mut changed = packages.clone();
    changed[1].version = "2".to_owned();
    let mut other_version = info();
    other_version.image_version = "1.0.1".to_owned();
    let mut other_name = info();
    other_name.image_name = "other".to_owned();

    let namespaces = [
        &base,
        &spdx_document(&changed, &info()),
        &spdx_document(&packages, &other_version),
        &spdx_document(&packages, &other_name),
        &spdx_document(&packages[..1], &info()),
    ]
    .map(|document| document["documentNamespace"].as_str().unwrap().to_owned());
    let distinct: BTreeSet<&String> = namespaces.iter().collect();
    assert_eq!(distinct.len(), namespaces.len(), "{namespaces:?}");
}

#[test]
fn package_fields() {
    let mut zlib = package("zlib1g", &[]);
    zlib.homepage = Some("https://zlib.net/".to_owned());
    zlib.source = Some("zlib".into());
    let mut bad_homepage = package("bad", &[]);
    bad_homepage.homepage = Some("zlib.net".to_owned());
    bad_homepage.maintainer = None;

    let document = spdx_document(&[bad_homepage, zlib], &info());

    let zlib = spdx_package(&document, "zlib1g");
    assert_eq!(zlib["versionInfo"], "1:2.3+dfsg-1~deb12u1");
    assert_eq!(
        zlib["supplier"],
        "Organization: Jane Doe [QA] (jane@example.org)"
    );
    assert_eq!(zlib["homepage"], "https://zlib.net/");
    assert_eq!(zlib["downloadLocation"], "NOASSERTION");
    assert_eq!(zlib["filesAnalyzed"], false);
    assert_eq!(zlib["licenseDeclared"], "NOASSERTION");
    assert_eq!(
        zlib["externalRefs"][0]["referenceLocator"],
        "pkg:deb/debian/zlib1g@1%3A2.3%2Bdfsg-1~deb12u1?arch=amd64"
    );
    let bad = spdx_package(&document, "bad");
    assert!(bad.get("homepage").is_none());
    assert_eq!(bad["supplier"], "NOASSERTION");
}

#[test]
fn purl_encodes_name() {
    let package = package("libstdc++6", &[]);

    assert_eq!(
        purl(&package),
        "pkg:deb/debian/libstdc%2B%2B6@1%3A2.3%2Bdfsg-1~deb12u1?arch=amd64"
    );
}

#[test]
fn web_url_check() {
    for url in [
        "https://www.gnu.org/software/coreutils/",
        "http://zlib.net",
        "https://example.org:8080/a?b=c#d",
    ] {
        assert!(is_web_url(url), "{url}");
    }
    for url in [
        "www.gnu.org",
        "ftp://ftp.gnu.org/",
        "https://",
        "https://localhost/",
        "https://exa mple.org/",
        "https://example.org/<x>",
        "https://example.org:80a/",
    ] {
        assert!(!is_web_url(url), "{url}");
    }
}

#[test]
fn write_sbom_replaces_file() {
    let root = root_with_status(&stanza("a", "install ok installed", ""));
    let output_dir = tempfile::tempdir().unwrap();
    let output = output_dir.path().join("image.spdx.json");
    std::fs::write(&output, "old").unwrap();

    let summary = write_sbom(root.path(), &info(), &output).unwrap();

    assert_eq!(summary.packages, 1);
    assert_eq!(summary.path, output);
    let bytes = std::fs::read(&output).unwrap();
    let document: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    assert_eq!(summary.sha256.len(), 64);
    let entries = std::fs::read_dir(output_dir.path()).unwrap().count();
    assert_eq!(entries, 1, "a temporary file was left behind");
}

/// Returns the names of the packages that dpkg-query reports as installed on this machine.
fn host_installed_names() -> BTreeSet<String> {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status} ${Package}\n"])
        .output()
        .expect("dpkg-query runs");
    assert!(output.status.success(), "dpkg-query failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("installed "))
        .map(str::to_owned)
        .collect()
}

fn validate_with_pyspdxtools(path: &Path) {
    let output = Command::new("pyspdxtools")
        .arg("-i")
        .arg(path)
        .output()
        .expect("pyspdxtools is missing: run scripts/setup.sh or `pip install spdx-tools`");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "pyspdxtools rejected the SBOM:\n{text}"
    );
    assert!(
        !text.contains("validation"),
        "pyspdxtools reported problems:\n{text}"
    );
}

#[test]
fn host_dpkg_database_sbom() {
    let output_dir = tempfile::tempdir().unwrap();
    let output = output_dir.path().join("host.spdx.json");

    let summary = write_sbom(Path::new("/"), &info(), &output).unwrap();

    let packages = installed_packages(Path::new("/")).unwrap();
    let ours: BTreeSet<String> = packages
        .iter()
        .map(|package| package.name.clone())
        .collect();
    assert_eq!(ours, host_installed_names());
    assert_eq!(summary.packages, packages.len());
    validate_with_pyspdxtools(&output);
}
