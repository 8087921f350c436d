//! Disk usage of folders, counted like `du -x --apparent-size`: symbolic links are not
//! followed and other file systems mounted inside are skipped.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The apparent size and number of regular files under a folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub bytes: u64,
    pub files: u64,
    /// Entries that could not be read, such as folders owned by another user.
    pub unreadable: u64,
}

impl Usage {
    pub(crate) fn add(&mut self, other: Usage) {
        self.bytes += other.bytes;
        self.files += other.files;
        self.unreadable += other.unreadable;
    }
}

/// Measures `path`. A missing path has zero usage.
pub fn usage(path: &Path) -> Usage {
    let mut total = Usage::default();
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => walk(path, &metadata, metadata.dev(), &mut total),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => total.unreadable += 1,
    }
    total
}

fn walk(path: &Path, metadata: &std::fs::Metadata, device: u64, total: &mut Usage) {
    if metadata.is_file() {
        total.bytes += metadata.len();
        total.files += 1;
        return;
    }
    if !metadata.is_dir() || metadata.dev() != device {
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        total.unreadable += 1;
        return;
    };
    for entry in entries {
        let Ok(entry) = entry else {
            total.unreadable += 1;
            continue;
        };
        let child = entry.path();
        match std::fs::symlink_metadata(&child) {
            Ok(child_metadata) => walk(&child, &child_metadata, device, total),
            Err(_) => total.unreadable += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("big"), vec![0_u8; 1000]).unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("sub/a"), b"12345").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();

        let measured = usage(&tree);
        assert_eq!(measured.bytes, 5);
        assert_eq!(measured.files, 1);
        assert_eq!(usage(&dir.path().join("missing")), Usage::default());
    }
}
