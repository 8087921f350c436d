//! Where the package cache keeps its files.
//!
//! ```text
//! {cache_dir}/pkgCache/
//! ├── .lock                          OFD lock: shared while a build uses the cache,
//! │                                  exclusive for clean and prune
//! └── {provider-id}/
//!     ├── {file_name}.deb            package files, flat, named as the `Filename` field's
//!     │                              basename, present only after size and checksum matched
//!     ├── chrootpkgs.dot             the dependency graph of the last build (Graphviz)
//!     └── .{file_name}.part-{pid}-{n}  a download in progress, locked by its writer
//! ```
//!
//! There is no index: a package file is valid exactly when its size and checksum match what the
//! build's metadata promises, so deleting files or whole provider folders by hand is safe.

use std::path::{Path, PathBuf};

use crate::error::PkgCacheError;

/// The folder under the cache directory that holds the package cache.
pub const PKG_CACHE_DIR: &str = "pkgCache";
/// The name of the dependency graph written next to the packages.
pub const DOT_FILE: &str = "chrootpkgs.dot";
const LOCK_FILE: &str = ".lock";
const PART_MARKER: &str = ".part-";

/// Returns `{cache_dir}/pkgCache`.
pub fn pkg_cache_root(cache_dir: &Path) -> PathBuf {
    cache_dir.join(PKG_CACHE_DIR)
}

/// Returns `{cache_dir}/pkgCache/{provider_id}`.
pub fn provider_dir(cache_dir: &Path, provider_id: &str) -> PathBuf {
    pkg_cache_root(cache_dir).join(provider_id)
}

/// Returns `{cache_dir}/pkgCache/.lock`.
pub fn lock_path(cache_dir: &Path) -> PathBuf {
    pkg_cache_root(cache_dir).join(LOCK_FILE)
}

/// Writes the dependency graph `dot_text` to `{provider dir}/chrootpkgs.dot` atomically.
pub fn write_dot(cache_dir: &Path, provider_id: &str, dot_text: &str) -> Result<(), PkgCacheError> {
    let path = provider_dir(cache_dir, provider_id).join(DOT_FILE);
    oic_repo::cache::write_atomic(&path, dot_text.as_bytes())?;
    Ok(())
}

/// Returns the name of a temporary download file for `file_name`.
pub(crate) fn partial_name(file_name: &str, sequence: u64) -> String {
    format!(".{file_name}{PART_MARKER}{}-{sequence}", std::process::id())
}

/// Tells whether a folder entry is a temporary download file, of this or any other process.
pub fn is_partial_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(PART_MARKER)
}

/// Tells whether a folder entry is a package file, as opposed to the graph or a hidden file.
pub fn is_package_name(name: &str) -> bool {
    !name.starts_with('.') && name != DOT_FILE
}

/// Checks that `file_name` is a plain file name that is safe to join to the provider folder.
pub fn check_file_name(file_name: &str) -> Result<(), PkgCacheError> {
    let reason = if file_name.is_empty() {
        Some("it is empty")
    } else if file_name.contains('/') || file_name.contains('\0') {
        Some("it contains `/` or a NUL byte")
    } else if file_name.starts_with('.') {
        Some("it starts with `.`, which the cache reserves for temporary files")
    } else if file_name == DOT_FILE {
        Some("it is the name of the dependency graph file")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(PkgCacheError::InvalidFileName {
            file_name: file_name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks that `provider_id` names one folder, so that joining it cannot leave the cache.
pub fn check_provider_id(provider_id: &str) -> Result<(), PkgCacheError> {
    let valid = !provider_id.is_empty()
        && !provider_id.starts_with('.')
        && !provider_id.contains('/')
        && !provider_id.contains('\0');
    if valid {
        Ok(())
    } else {
        Err(PkgCacheError::InvalidProviderId {
            provider_id: provider_id.to_owned(),
        })
    }
}

/// Lists the sub-folders of `dir`, and links to folders, whose names do not start with `.`,
/// sorted. A missing folder has none.
pub(crate) fn list_subdirs(dir: &Path) -> Result<Vec<String>, PkgCacheError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(PkgCacheError::io(dir, error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| PkgCacheError::io(dir, error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A symbolic link to a folder counts, as a user may move a provider to another disk.
        let is_dir = entry.path().is_dir();
        if is_dir && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_are_hidden_and_never_packages() {
        let name = partial_name("a_1_amd64.deb", 7);
        assert!(is_partial_name(&name), "{name}");
        assert!(!is_package_name(&name), "{name}");
        let extension = std::path::Path::new(&name).extension();
        assert_ne!(extension, Some(std::ffi::OsStr::new("deb")), "{name}");
    }

    #[test]
    fn unsafe_file_names_are_rejected() {
        for name in ["", "../x.deb", "a/b.deb", ".hidden.deb", "chrootpkgs.dot"] {
            assert!(check_file_name(name).is_err(), "{name:?} was accepted");
        }
        assert!(check_file_name("libc6_2.36-9_amd64.deb").is_ok());
    }

    #[test]
    fn dot_file_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        write_dot(dir.path(), "p", "digraph {}\n").unwrap();
        let folder = provider_dir(dir.path(), "p");
        assert_eq!(
            fs_err::read_to_string(folder.join(DOT_FILE)).unwrap(),
            "digraph {}\n"
        );
        assert_eq!(fs_err::read_dir(&folder).unwrap().count(), 1);
    }
}
