//! Extraction of crafted package archives that try to write outside the root. Each test builds
//! the `.deb` by hand (dpkg-deb refuses to build such archives), extracts it, and checks that
//! a folder of canary files next to the root is byte-for-byte unchanged.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use oic_chroot::extract::extract_deb;
use oic_chroot::ChrootError;
use sha2::{Digest as _, Sha256};

/// One tar entry of a crafted archive.
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

/// Writes `text` into a header field, unchecked: the `tar` crate's setters reject `..`.
fn put(field: &mut [u8], text: &str) {
    assert!(
        text.len() < field.len(),
        "name too long for this test: {text}"
    );
    field.fill(0);
    field[..text.len()].copy_from_slice(text.as_bytes());
}

fn data_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        let (name, kind, mode, link, data): (&str, tar::EntryType, u32, &str, &[u8]) = match entry {
            Entry::File(name, data) => (name, tar::EntryType::Regular, 0o644, "", data),
            Entry::Dir(name) => (name, tar::EntryType::Directory, 0o755, "", b""),
            Entry::Symlink(name, target) => (name, tar::EntryType::Symlink, 0o777, target, b""),
            Entry::HardLink(name, target) => (name, tar::EntryType::Link, 0o644, target, b""),
        };
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        let gnu = header.as_gnu_mut().unwrap();
        put(&mut gnu.name, name);
        put(&mut gnu.linkname, link);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Appends one `ar` member.
fn ar_member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let header = format!(
        "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
        0,
        0,
        0,
        "100644",
        data.len()
    );
    assert_eq!(header.len(), 60);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}

/// Builds a `.deb` whose `data.tar.gz` contains `entries`.
fn crafted_deb(dir: &Path, entries: &[Entry<'_>]) -> PathBuf {
    use std::io::Write as _;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&data_tar(entries)).unwrap();
    let data = gzip.finish().unwrap();
    let mut deb = b"!<arch>\n".to_vec();
    ar_member(&mut deb, "debian-binary", b"2.0\n");
    ar_member(&mut deb, "control.tar.gz", b"");
    ar_member(&mut deb, "data.tar.gz", &data);
    let path = dir.join("crafted.deb");
    std::fs::write(&path, deb).unwrap();
    path
}

/// A root to extract into and a host folder of canaries beside it.
struct Scene {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    before: BTreeMap<PathBuf, String>,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(outside.join("etc")).unwrap();
        std::fs::write(outside.join("canary"), b"host canary\n").unwrap();
        std::fs::write(outside.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
        let before = tree_state(&outside);
        Self {
            _dir: dir,
            root,
            outside,
            before,
        }
    }

    fn outside_str(&self) -> String {
        self.outside.display().to_string()
    }

    fn extract(&self, entries: &[Entry<'_>]) -> Result<(), ChrootError> {
        let deb = crafted_deb(self.root.parent().unwrap(), entries);
        extract_deb(&self.root, &deb)
    }

    fn assert_host_unchanged(&self) {
        assert_eq!(
            tree_state(&self.outside),
            self.before,
            "the host folder changed"
        );
    }
}

/// Returns every path below `dir` with its type, mode, link count and content hash.
fn tree_state(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut state = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        let detail = if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            "dir".to_owned()
        } else if metadata.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else {
            let digest = Sha256::digest(std::fs::read(&path).unwrap());
            format!("file {:?}", digest.as_slice())
        };
        let line = format!(
            "{detail} mode {:o} links {}",
            metadata.mode(),
            metadata.nlink()
        );
        state.insert(path, line);
    }
    state
}

fn assert_rejects(result: Result<(), ChrootError>, entry: &str) {
    let error = result.expect_err("the archive must be rejected");
    let message = error.to_string();
    assert!(
        message.contains(&format!("`{entry}`")),
        "the error names another entry: {message}"
    );
}

#[test]
fn dotdot_entry_is_rejected() {
    let scene = Scene::new();
    let result = scene.extract(&[Entry::File("./../outside/canary", b"owned\n")]);
    assert_rejects(result, "./../outside/canary");
    scene.assert_host_unchanged();
}

#[test]
fn absolute_entry_is_rejected() {
    let scene = Scene::new();
    let name = format!("{}/canary", scene.outside_str());
    let result = scene.extract(&[Entry::File(&name, b"owned\n")]);
    assert_rejects(result, &name);
    scene.assert_host_unchanged();
}

#[test]
fn absolute_symlink_stays_in_root() {
    let scene = Scene::new();
    let target = format!("{}/etc", scene.outside_str());
    scene
        .extract(&[
            Entry::Symlink("./etc", &target),
            Entry::File("./etc/passwd", b"owned\n"),
        ])
        .unwrap();
    scene.assert_host_unchanged();
    // Followed as the chroot would: the file lands below the root.
    let landed = scene
        .root
        .join(target.trim_start_matches('/'))
        .join("passwd");
    assert_eq!(std::fs::read(landed).unwrap(), b"owned\n");
}

#[test]
fn escaping_symlink_is_rejected() {
    let scene = Scene::new();
    let result = scene.extract(&[
        Entry::Symlink("./up", "../outside"),
        Entry::File("./up/canary", b"owned\n"),
    ]);
    assert_rejects(result, "./up/canary");
    scene.assert_host_unchanged();
}

#[test]
fn symlink_chain_escape_is_rejected() {
    let scene = Scene::new();
    let result = scene.extract(&[
        Entry::Symlink("./a", "b"),
        Entry::Symlink("./b", "usr/c"),
        Entry::Symlink("./usr/c", "../../outside"),
        Entry::File("./a/canary", b"owned\n"),
    ]);
    assert_rejects(result, "./a/canary");
    scene.assert_host_unchanged();
}

#[test]
fn symlink_loop_is_rejected() {
    let scene = Scene::new();
    let result = scene.extract(&[
        Entry::Symlink("./a", "b"),
        Entry::Symlink("./b", "a"),
        Entry::File("./a/file", b"x\n"),
    ]);
    assert_rejects(result, "./a/file");
    scene.assert_host_unchanged();
}

#[test]
fn directory_through_escaping_symlink_is_rejected() {
    let scene = Scene::new();
    let result = scene.extract(&[Entry::Symlink("./d", "../outside"), Entry::Dir("./d/")]);
    assert_rejects(result, "./d/");
    scene.assert_host_unchanged();
}

#[test]
fn file_replaces_symlink_instead_of_following() {
    let scene = Scene::new();
    let canary = format!("{}/canary", scene.outside_str());
    scene
        .extract(&[
            Entry::Symlink("./f", &canary),
            Entry::File("./f", b"package data\n"),
        ])
        .unwrap();
    scene.assert_host_unchanged();
    let metadata = std::fs::symlink_metadata(scene.root.join("f")).unwrap();
    assert!(metadata.is_file(), "the symlink was not replaced");
    assert_eq!(
        std::fs::read(scene.root.join("f")).unwrap(),
        b"package data\n"
    );
}

#[test]
fn absolute_hard_link_is_rejected() {
    let scene = Scene::new();
    let canary = format!("{}/canary", scene.outside_str());
    let result = scene.extract(&[Entry::HardLink("./h", &canary)]);
    assert_rejects(result, "./h");
    scene.assert_host_unchanged();
}

#[test]
fn dotdot_hard_link_is_rejected() {
    let scene = Scene::new();
    let result = scene.extract(&[Entry::HardLink("./h", "../outside/canary")]);
    assert_rejects(result, "./h");
    scene.assert_host_unchanged();
}

#[test]
fn hard_link_through_symlink_is_rejected() {
    let scene = Scene::new();
    let outside = scene.outside_str();
    let result = scene.extract(&[
        Entry::Symlink("./evil", &outside),
        Entry::HardLink("./h", "./evil/canary"),
    ]);
    // The symlink resolves inside the root, where no canary exists.
    assert_rejects(result, "./h");
    scene.assert_host_unchanged();
}

#[test]
fn hard_link_inside_root_works() {
    let scene = Scene::new();
    scene
        .extract(&[
            Entry::File("./usr/bin/tool", b"tool\n"),
            Entry::HardLink("./usr/bin/alias", "./usr/bin/tool"),
        ])
        .unwrap();
    let tool = std::fs::metadata(scene.root.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.nlink(), 2);
    scene.assert_host_unchanged();
}

#[test]
fn file_through_merged_usr_symlink_lands_in_usr() {
    let scene = Scene::new();
    std::os::unix::fs::symlink("usr/bin", scene.root.join("bin")).unwrap();
    scene
        .extract(&[Entry::Dir("./bin/"), Entry::File("./bin/sh", b"shell\n")])
        .unwrap();
    assert_eq!(
        std::fs::read(scene.root.join("usr/bin/sh")).unwrap(),
        b"shell\n"
    );
    assert!(std::fs::symlink_metadata(scene.root.join("bin"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Returns an archive from the mirror's pool folder `prefix`, if the mirror is prepared.
fn mirror_deb(prefix: &str) -> Option<PathBuf> {
    let dir = Path::new("/var/cache/os-image-composer-testdata/debian-bookworm/debian/pool/main")
        .join(prefix);
    let entries = std::fs::read_dir(&dir).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "deb"))
}

#[test]
fn real_package_matches_dpkg_deb_listing() {
    let Some(deb) = mirror_deb("d/dash") else {
        eprintln!("skipped: the test mirror is missing (python -m os_image_composer.testing.mirror prepare)");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    extract_deb(root.path(), &deb).unwrap();
    let listing = std::process::Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .output();
    let Ok(listing) = listing else {
        eprintln!("skipped: dpkg-deb is missing");
        return;
    };
    let mut archive = tar::Archive::new(&listing.stdout[..]);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let extracted = root.path().join(&path);
        let metadata = std::fs::symlink_metadata(&extracted)
            .unwrap_or_else(|error| panic!("{} is missing: {error}", path.display()));
        assert_eq!(
            metadata.mode() & 0o7777,
            entry.header().mode().unwrap() & 0o7777,
            "{}",
            path.display()
        );
    }
}
