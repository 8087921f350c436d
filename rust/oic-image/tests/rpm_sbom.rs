//! The SBOM of RPM images: parsing `rpm -qa` output, resolving requires and the SPDX fields.
//! The end-to-end test in `tests/test_rpm_build.py` reads a real rpm database.

use std::collections::HashMap;
use std::path::Path;

use oic_image::rpm_sbom::{
    license_declared, parse_query, resolve_requires, rich_dependency_names, rpm_purl,
    rpm_spdx_document, RpmInstalledPackage, RpmSbomRequest,
};
use oic_image::sbom::SbomInfo;
use serde_json::Value;

fn info() -> SbomInfo {
    SbomInfo {
        image_name: "azl".to_owned(),
        image_version: "3.0".to_owned(),
        tool_version: "0.1.0".to_owned(),
        created: "2026-12-05T00:00:00Z".to_owned(),
    }
}

/// Output of `rpm -qa` with the query format of `installed_rpm_packages`, for three packages.
const QUERY_OUTPUT: &str = "\
@package
name=app
epoch=2
version=1.0
release=3.azl3
arch=x86_64
vendor=Microsoft Corporation
packager=Azure Linux Team <azurelinux@microsoft.com>
license=MIT OR Apache-2.0
url=https://example.org/app
sourcerpm=app-1.0-3.azl3.src.rpm
sha256header=abc123
requires=(liba or libb)
requires=/usr/bin/tool
requires=rpmlib(RichDependencies)
requires=app
@package
name=libb
epoch=
version=0.9
release=1
arch=x86_64
vendor=
packager=
license=GPLv2+
url=
sourcerpm=
sha256header=
provides=libb.so.1()(64bit)
@package
name=tools
epoch=
version=5
release=1
arch=noarch
vendor=
packager=
license=
url=not a url
sourcerpm=
sha256header=
file=/usr/bin/tool
";

fn parsed() -> Vec<RpmInstalledPackage> {
    let mut packages = parse_query(QUERY_OUTPUT, Path::new("/image")).unwrap();
    resolve_requires(&mut packages);
    packages
}

fn spdx_package<'a>(document: &'a Value, name: &str) -> &'a Value {
    document["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == name)
        .unwrap_or_else(|| panic!("no SPDX package named {name}"))
}

fn depends_on(document: &Value) -> Vec<(String, String)> {
    document["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|relationship| relationship["relationshipType"] == "DEPENDS_ON")
        .map(|relationship| {
            (
                relationship["spdxElementId"].as_str().unwrap().to_owned(),
                relationship["relatedSpdxElement"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn query_fields_are_read() {
    let packages = parsed();
    assert_eq!(packages.len(), 3);
    let app = &packages[0];
    assert_eq!(app.name, "app");
    assert_eq!(app.epoch.as_deref(), Some("2"));
    assert_eq!(app.evr(), "2:1.0-3.azl3");
    assert_eq!(app.nevra(), "app-2:1.0-3.azl3.x86_64");
    assert_eq!(app.vendor.as_deref(), Some("Microsoft Corporation"));
    assert_eq!(app.requires.len(), 4);
    let libb = &packages[1];
    assert_eq!(libb.epoch, None);
    assert_eq!(libb.vendor, None);
    assert_eq!(libb.evr(), "0.9-1");
    assert_eq!(packages[2].files, ["/usr/bin/tool"]);
}

#[test]
fn query_rejects_unknown_field() {
    let error = parse_query("@package\nname=a\ncolour=red\n", Path::new("/image")).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("unknown field"), "{message}");
    assert!(message.contains("colour=red"), "{message}");
    assert!(message.contains("/image/var/lib/rpm"), "{message}");
}

#[test]
fn query_rejects_line_before_package() {
    let error = parse_query("name=a\n", Path::new("/image")).unwrap_err();
    assert!(error.to_string().contains("does not start with a package"));
}

#[test]
fn requires_resolve_through_provides_and_files() {
    let packages = parsed();
    // app requires (liba or libb), which libb satisfies, and /usr/bin/tool, which tools
    // contains; rpmlib() and its own name resolve to nothing else.
    assert_eq!(packages[0].depends, [1, 2]);
    assert!(packages[1].depends.is_empty());
    assert!(packages[2].depends.is_empty());
}

#[test]
fn rich_dependency_picks_first_installed_alternative() {
    let mut packages = vec![
        RpmInstalledPackage {
            name: "a".to_owned(),
            requires: vec!["(b or c)".to_owned(), "(d and (e >= 2 or f))".to_owned()],
            ..RpmInstalledPackage::default()
        },
        RpmInstalledPackage {
            name: "b".to_owned(),
            ..RpmInstalledPackage::default()
        },
        RpmInstalledPackage {
            name: "c".to_owned(),
            ..RpmInstalledPackage::default()
        },
        RpmInstalledPackage {
            name: "d".to_owned(),
            ..RpmInstalledPackage::default()
        },
        RpmInstalledPackage {
            name: "f".to_owned(),
            ..RpmInstalledPackage::default()
        },
    ];
    resolve_requires(&mut packages);
    // `(b or c)` links b only; the `and` dependency links every installed name it has.
    assert_eq!(packages[0].depends, [1, 3, 4]);
}

#[test]
fn rich_dependency_names_skip_versions() {
    let (names, only_or) = rich_dependency_names("(a >= 1:2.0 or (b < 3 or c))");
    assert_eq!(names, ["a", "b", "c"]);
    assert!(only_or);
    let (names, only_or) = rich_dependency_names("(a if b else c)");
    assert_eq!(names, ["a", "b", "c"]);
    assert!(!only_or);
}

#[test]
fn license_must_be_spdx_expression() {
    assert_eq!(
        license_declared(Some("MIT OR Apache-2.0")),
        "MIT OR Apache-2.0"
    );
    assert_eq!(
        license_declared(Some("GPL-2.0-or-later")),
        "GPL-2.0-or-later"
    );
    assert_eq!(license_declared(Some("GPLv2+")), "NOASSERTION");
    assert_eq!(license_declared(Some("MIT and BSD")), "NOASSERTION");
    assert_eq!(license_declared(None), "NOASSERTION");
}

#[test]
fn purl_has_arch_and_epoch() {
    let packages = parsed();
    assert_eq!(
        rpm_purl(&packages[0], "azure-linux"),
        "pkg:rpm/azure-linux/app@1.0-3.azl3?arch=x86_64&epoch=2"
    );
    assert_eq!(
        rpm_purl(&packages[1], "Azure-Linux"),
        "pkg:rpm/azure-linux/libb@0.9-1?arch=x86_64"
    );
}

#[test]
fn spdx_package_fields() {
    let packages = parsed();
    let request = RpmSbomRequest {
        purl_namespace: "azure-linux".to_owned(),
        // A repository that lists SHA-512 checksums gives SHA512 file checksums.
        file_checksums: HashMap::from([(
            "app-2:1.0-3.azl3.x86_64".to_owned(),
            ("sha512".to_owned(), "f00d".to_owned()),
        )]),
    };
    let document = rpm_spdx_document(&packages, &info(), &request);

    let app = spdx_package(&document, "app");
    assert_eq!(app["versionInfo"], "2:1.0-3.azl3");
    assert_eq!(app["supplier"], "Organization: Microsoft Corporation");
    assert_eq!(
        app["originator"],
        "Organization: Azure Linux Team (azurelinux@microsoft.com)"
    );
    assert_eq!(app["licenseDeclared"], "MIT OR Apache-2.0");
    assert_eq!(app["homepage"], "https://example.org/app");
    assert_eq!(
        app["sourceInfo"],
        "built from the source RPM app-1.0-3.azl3.src.rpm"
    );
    assert_eq!(app["checksums"][0]["algorithm"], "SHA512");
    assert_eq!(app["checksums"][0]["checksumValue"], "f00d");
    assert_eq!(app["comment"], "SHA256 of the RPM header: abc123");
    assert_eq!(
        app["externalRefs"][0]["referenceLocator"],
        "pkg:rpm/azure-linux/app@1.0-3.azl3?arch=x86_64&epoch=2"
    );

    let libb = spdx_package(&document, "libb");
    assert_eq!(libb["supplier"], "NOASSERTION");
    assert_eq!(libb["licenseDeclared"], "NOASSERTION");
    assert!(libb.get("originator").is_none());
    assert!(libb.get("checksums").is_none());
    assert!(libb.get("comment").is_none());
    assert!(spdx_package(&document, "tools").get("homepage").is_none());
}

#[test]
fn spdx_relationships() {
    let packages = parsed();
    let document = rpm_spdx_document(&packages, &info(), &RpmSbomRequest::default());
    assert_eq!(document["spdxVersion"], "SPDX-2.3");
    assert_eq!(document["packages"].as_array().unwrap().len(), 4);
    let contains = document["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|relationship| relationship["relationshipType"] == "CONTAINS")
        .count();
    assert_eq!(contains, 3);
    let mut depends = depends_on(&document);
    depends.sort();
    assert_eq!(
        depends,
        [
            (
                "SPDXRef-Package-app-x86-64".to_owned(),
                "SPDXRef-Package-libb-x86-64".to_owned()
            ),
            (
                "SPDXRef-Package-app-x86-64".to_owned(),
                "SPDXRef-Package-tools-noarch".to_owned()
            ),
        ]
    );
}

#[test]
fn namespace_follows_content() {
    let packages = parsed();
    let request = RpmSbomRequest::default();
    let first = rpm_spdx_document(&packages, &info(), &request);
    let again = rpm_spdx_document(&packages, &info(), &request);
    assert_eq!(first["documentNamespace"], again["documentNamespace"]);
    let fewer = rpm_spdx_document(&packages[1..], &info(), &request);
    assert_ne!(first["documentNamespace"], fewer["documentNamespace"]);
}
