//! Access to the apt lists of this machine, which the tests use as real repository data.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The directory where apt keeps downloaded indexes.
pub const LISTS: &str = "/var/lib/apt/lists";

pub const BOOKWORM_PACKAGES: &str =
    "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4";
pub const BOOKWORM_IN_RELEASE: &str = "deb.debian.org_debian_dists_bookworm_InRelease";

/// Indexes of other suites whose packages are newer versions of bookworm's.
pub const UPDATE_PACKAGES: [&str; 2] = [
    "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages.lz4",
    "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages.lz4",
];

/// Reads a file of the apt lists, decompressing it with the `lz4` command when its name ends
/// in `.lz4`. Returns `None` after printing why when the file or the command is missing.
pub fn read_list(name: &str) -> Option<String> {
    let path = Path::new(LISTS).join(name);
    if !path.exists() {
        println!(
            "skipped: {} is absent (run `apt-get update` to fetch it)",
            path.display()
        );
        return None;
    }

    if path.extension().is_none_or(|extension| extension != "lz4") {
        return Some(std::fs::read_to_string(&path).expect("the list is UTF-8"));
    }

    let output = match Command::new("lz4").arg("-dc").arg(&path).output() {
        Ok(output) => output,
        Err(error) => {
            println!(
                "skipped: cannot run `lz4` to decompress {}: {error}",
                path.display()
            );
            return None;
        }
    };
    assert!(
        output.status.success(),
        "`lz4 -dc {}` failed",
        path.display()
    );
    Some(String::from_utf8(output.stdout).expect("the decompressed list is UTF-8"))
}

/// Extracts the signed text of an `InRelease` file: the lines between the blank line that ends
/// the armor headers and the signature block, with the `- ` dash escapes removed.
pub fn in_release_body(armored: &str) -> String {
    let mut lines = armored.lines();
    let first = lines.next().unwrap_or_default();
    assert_eq!(first, "-----BEGIN PGP SIGNED MESSAGE-----");
    for header in lines.by_ref() {
        if header.is_empty() {
            break;
        }
    }

    let mut body = String::with_capacity(armored.len());
    for line in lines {
        if line == "-----BEGIN PGP SIGNATURE-----" {
            return body;
        }
        body.push_str(line.strip_prefix("- ").unwrap_or(line));
        body.push('\n');
    }
    panic!("the InRelease file has no signature block");
}
