//! Paths inside an image root, resolved as the image would resolve them.
//!
//! The root contains symlinks that packages and configuration scripts made, such as
//! `/etc/localtime -> /usr/share/zoneinfo/Etc/UTC` and `/var/run -> /run`. Followed by the build
//! host, an absolute target names a host file. So every file the build writes into the root, and
//! every file it reads from there, goes through [`resolve`], which follows symlinks with the root
//! as `/`, and a file written replaces a symlink at its own name instead of following it.

use fs_err::os::unix::fs::OpenOptionsExt as _;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::error::ImageError;

/// Symlinks followed in one path before it counts as a loop, as in Linux.
const MAX_LINKS: usize = 40;

/// Resolves `relative` (a path inside the image, with or without a leading `/`) to a host path
/// below `root`, following symlinks with `root` as `/` and `..` stopping at `root`. Components
/// that do not exist yet are kept as written.
pub fn resolve(root: &Path, relative: &Path) -> Result<PathBuf, ImageError> {
    let mut pending: VecDeque<OsString> = parts(relative).collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = joined(root, &resolved).join(&part);
        let Ok(metadata) = std::fs::symlink_metadata(&candidate) else {
            resolved.push(part);
            continue;
        };
        if !metadata.is_symlink() {
            resolved.push(part);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(ImageError::Invalid {
                path: root.join(relative),
                message: "too many levels of symbolic links inside the image".to_owned(),
            });
        }
        let target = fs_err::read_link(&candidate)?;
        if target.is_absolute() {
            resolved.clear();
        }
        for target_part in parts(&target).collect::<Vec<_>>().into_iter().rev() {
            pending.push_front(target_part);
        }
    }
    Ok(joined(root, &resolved))
}

/// Returns the normal and `..` components of `path`, without `/` and `.`.
fn parts(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|component| match component {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

fn joined(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(parts);
    path
}

/// Creates the folder `relative` inside the image, with its parents, and returns its host path.
pub fn create_dir(root: &Path, relative: &str) -> Result<PathBuf, ImageError> {
    let path = resolve(root, Path::new(relative))?;
    fs_err::create_dir_all(&path)?;
    Ok(path)
}

/// Writes `bytes` to `relative` inside the image with permissions `mode`. The parent folders
/// are resolved inside the image and created when missing; a symlink or file at the name itself
/// is replaced, never followed.
pub fn write_file(
    root: &Path,
    relative: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<PathBuf, ImageError> {
    let relative = Path::new(relative);
    let name = relative.file_name().ok_or_else(|| ImageError::Invalid {
        path: relative.to_path_buf(),
        message: "the path inside the image names no file".to_owned(),
    })?;
    let parent = resolve(root, relative.parent().unwrap_or(Path::new("")))?;
    fs_err::create_dir_all(&parent)?;
    let target = parent.join(name);

    match std::fs::symlink_metadata(&target) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(ImageError::Invalid {
                path: target,
                message: "a folder exists where the image needs a file".to_owned(),
            })
        }
        Ok(_) => fs_err::remove_file(&target)?,
        Err(_) => {}
    }
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&target)?;
    file.write_all(bytes)?;
    drop(file);
    // The mode given to open is reduced by the umask.
    fs_err::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    Ok(target)
}

/// The folders that commands are looked up in inside an image or a chroot environment, in the
/// order of the `PATH` that chroot commands get.
pub const PROGRAM_DIRS: [&str; 4] = ["usr/sbin", "usr/bin", "sbin", "bin"];

/// Tells whether the tree at `root` contains the executable file `program`, either at that
/// absolute path or in one of [`PROGRAM_DIRS`]. Symbolic links resolve inside the tree.
pub fn has_program(root: &Path, program: &str) -> Result<bool, ImageError> {
    use std::os::unix::fs::PermissionsExt as _;

    for candidate in program_candidates(program) {
        let path = resolve(root, &candidate)?;
        let executable = fs_err::metadata(&path)
            .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0);
        if executable {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Returns the paths, relative to the tree, where `program` may be.
pub fn program_candidates(program: &str) -> Vec<PathBuf> {
    match program.strip_prefix('/') {
        Some(relative) => vec![PathBuf::from(relative)],
        None => PROGRAM_DIRS
            .iter()
            .map(|dir| Path::new(dir).join(program))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let host = dir.path().join("host");
        fs_err::create_dir_all(root.join("etc")).unwrap();
        fs_err::create_dir_all(root.join("run")).unwrap();
        fs_err::create_dir_all(root.join("var")).unwrap();
        fs_err::create_dir_all(&host).unwrap();
        fs_err::write(host.join("secret"), "host file").unwrap();
        (dir, root, host)
    }

    #[test]
    fn absolute_parent_link_stays_inside() {
        let (_dir, root, _host) = setup();
        symlink("/run", root.join("var/run")).unwrap();

        let written = write_file(&root, "/var/run/marker", b"x", 0o644).unwrap();

        assert_eq!(written, root.join("run/marker"));
        assert_eq!(
            fs_err::read_to_string(root.join("run/marker")).unwrap(),
            "x"
        );
    }

    #[test]
    fn link_at_file_name_is_replaced() {
        let (_dir, root, host) = setup();
        symlink(host.join("secret"), root.join("etc/localtime")).unwrap();

        write_file(&root, "/etc/localtime", b"image file", 0o600).unwrap();

        assert_eq!(
            fs_err::read_to_string(host.join("secret")).unwrap(),
            "host file"
        );
        let metadata = std::fs::symlink_metadata(root.join("etc/localtime")).unwrap();
        assert!(metadata.is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn host_path_in_link_maps_into_root() {
        let (_dir, root, host) = setup();
        symlink(&host, root.join("etc/escape")).unwrap();

        let resolved = resolve(&root, Path::new("/etc/escape/secret")).unwrap();

        assert!(resolved.starts_with(&root), "{}", resolved.display());
    }

    #[test]
    fn parent_dirs_stop_at_root() {
        let (_dir, root, _host) = setup();
        symlink("../../../../..", root.join("etc/up")).unwrap();

        let resolved = resolve(&root, Path::new("etc/up/../../x")).unwrap();

        assert_eq!(resolved, root.join("x"));
    }

    #[test]
    fn link_loop_is_an_error() {
        let (_dir, root, _host) = setup();
        symlink("b", root.join("etc/a")).unwrap();
        symlink("a", root.join("etc/b")).unwrap();

        let error = resolve(&root, Path::new("/etc/a/file")).unwrap_err();

        assert!(error.to_string().contains("too many levels"), "{error}");
    }

    #[test]
    fn programs_are_found_through_links() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        fs_err::write(root.join("usr/bin/busybox"), "").unwrap();
        fs_err::set_permissions(
            root.join("usr/bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("busybox", root.join("usr/bin/sh")).unwrap();
        fs_err::write(root.join("usr/bin/plain"), "").unwrap();

        assert!(has_program(root, "/bin/sh").unwrap());
        assert!(has_program(root, "sh").unwrap());
        assert!(!has_program(root, "plain").unwrap());
        assert!(!has_program(root, "useradd").unwrap());
    }
}
