//! Mount points from `/proc/self/mountinfo`: release what a killed run left, and recursive
//! removal that never descends into a mount.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};

use crate::error::ChrootError;

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Rounds of unmounting in [`release_stale_mounts`]. Several mounts stacked on one point need one
/// round each.
const RELEASE_ROUNDS: usize = 16;

/// Decodes the octal escapes (`\040` for a space) that the kernel writes in mountinfo paths.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt as _;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let octal = bytes.get(index + 1..index + 4);
        let code = octal
            .filter(|_| bytes[index] == b'\\')
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        if let Some(code) = code {
            out.push(code);
            index += 4;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Parses the mount points of a mountinfo text, in mount order.
pub fn parse_mount_points(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .collect()
}

/// The mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, ChrootError> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let text = fs_err::read_to_string(MOUNTINFO)?;
    let mut points: Vec<PathBuf> = parse_mount_points(&text)
        .into_iter()
        .filter(|point| point.starts_with(&dir))
        .collect();
    // Stable sort: among mounts stacked on one point, the last mounted comes first.
    points.reverse();
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    Ok(points)
}

/// Unmounts everything mounted at or below `dir`, deepest first, lazily when a mount is busy.
/// Returns the mount points released. Callers hold the lock that keeps live runs out of `dir`,
/// so whatever is mounted there was left by a run that was killed.
pub fn release_stale_mounts(dir: &Path) -> Result<Vec<PathBuf>, ChrootError> {
    let mut released = Vec::new();
    for _ in 0..RELEASE_ROUNDS {
        let points = mounts_under(dir)?;
        if points.is_empty() {
            return Ok(released);
        }
        for point in points {
            tracing::warn!(mount_point = %point.display(), "releasing a mount left by an earlier run");
            unmount(&point)?;
            released.push(point);
        }
    }
    match mounts_under(dir)?.into_iter().next() {
        Some(mount_point) => Err(ChrootError::Mount {
            action: "release the stale mount",
            target: mount_point,
            source: Errno::EBUSY,
        }),
        None => Ok(released),
    }
}

/// Unmounts `target`, detaching it lazily if it is busy. A target that is no longer mounted
/// counts as released.
pub fn unmount(target: &Path) -> Result<(), ChrootError> {
    let lazily = match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
        Err(Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH),
        Err(error) => Err(error),
    };
    match lazily {
        Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => Ok(()),
        Err(source) => Err(ChrootError::Mount {
            action: "unmount",
            target: target.to_path_buf(),
            source,
        }),
    }
}

/// Removes `path` and everything below it without following symlinks. It rejects the removal,
/// naming the mount point, when anything is mounted at or below `path`. A symlink at `path` is
/// removed itself.
pub fn remove_tree(path: &Path) -> Result<(), ChrootError> {
    let metadata = match fs_err::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    if !metadata.is_dir() {
        fs_err::remove_file(path)?;
        return Ok(());
    }
    if let Some(mount_point) = mounts_under(path)?.into_iter().next() {
        return Err(ChrootError::MountedInside {
            path: path.to_path_buf(),
            mount_point,
        });
    }
    // std's remove_dir_all opens each directory with O_NOFOLLOW and unlinks symlinks instead of
    // following them (Rust 1.58.1 and later).
    fs_err::remove_dir_all(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_unescaped() {
        let text = "36 35 98:0 / /mnt/a\\040b rw shared:1 - ext4 /dev/vda rw\n\
                    37 36 0:5 / /proc rw - proc proc rw\n";
        let points = parse_mount_points(text);
        assert_eq!(points, [PathBuf::from("/mnt/a b"), PathBuf::from("/proc")]);
    }

    #[test]
    fn remove_tree_keeps_symlink_targets() {
        let outside = tempfile::tempdir().unwrap();
        let canary = outside.path().join("canary");
        std::fs::write(&canary, "host").unwrap();
        let tree = tempfile::tempdir().unwrap();
        let inside = tree.path().join("root");
        std::fs::create_dir(&inside).unwrap();
        std::os::unix::fs::symlink(outside.path(), inside.join("link")).unwrap();

        remove_tree(&inside).unwrap();

        assert!(!inside.exists());
        assert_eq!(std::fs::read_to_string(&canary).unwrap(), "host");
    }

    #[test]
    fn remove_tree_of_missing_path_succeeds() {
        let tree = tempfile::tempdir().unwrap();
        remove_tree(&tree.path().join("missing")).unwrap();
    }
}
