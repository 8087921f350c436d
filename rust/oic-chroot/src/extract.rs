//! Extraction of package archives into a chroot directory, safe against hostile archives.
//!
//! Every path is resolved inside the root one component at a time with `lstat`. A symlink met on
//! the way is followed as the chroot would follow it: an absolute target starts again at the
//! root, and a `..` that would climb above the root rejects the entry. Entry names and hard
//! link targets must be relative and free of `..`. The last component is never followed: files,
//! symlinks, hard links and devices are created under a temporary name in the resolved parent
//! directory and renamed over the final name, which replaces a symlink instead of writing
//! through it. Extraction never removes a directory, so a parent that resolved to a real
//! directory stays one while other packages are extracted in parallel.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use rayon::prelude::*;
use tar::EntryType;

use crate::deb::open_data_tar;
use crate::error::ChrootError;

/// Symlinks followed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// Distinguishes the temporary names of concurrent extractions.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Extracts the `data.tar` of every archive in `debs` into `root`, several at a time.
pub fn extract_debs(root: &Path, debs: &[PathBuf]) -> Result<(), ChrootError> {
    let owner = Ownership::current();
    let token = oic_cancel::current();
    debs.par_iter().try_for_each(|deb| {
        let _scope = oic_cancel::Scope::enter(token.clone());
        extract_deb_as(root, deb, owner)
    })
}

/// Extracts the `data.tar` of `deb` into `root`.
pub fn extract_deb(root: &Path, deb: &Path) -> Result<(), ChrootError> {
    extract_deb_as(root, deb, Ownership::current())
}

fn extract_deb_as(root: &Path, deb: &Path, owner: Ownership) -> Result<(), ChrootError> {
    let data = open_data_tar(deb)?;
    let mut archive = tar::Archive::new(data);
    let entries = archive.entries().map_err(|error| ChrootError::InvalidDeb {
        deb: deb.to_path_buf(),
        message: format!("invalid data.tar: {error}"),
    })?;
    for entry in entries {
        oic_cancel::check()?;
        let mut entry = entry.map_err(|error| ChrootError::InvalidDeb {
            deb: deb.to_path_buf(),
            message: format!("invalid data.tar: {error}"),
        })?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let context = EntryContext {
            root,
            deb,
            entry: &name,
            owner,
        };
        context.extract(&mut entry)?;
    }
    Ok(())
}

/// Whether extraction applies the owners of the archive (only root can).
#[derive(Debug, Clone, Copy)]
struct Ownership {
    apply: bool,
}

impl Ownership {
    fn current() -> Self {
        Self {
            apply: nix::unistd::geteuid().is_root(),
        }
    }
}

/// Why a path cannot be resolved inside the root.
#[derive(Debug)]
enum ResolveError {
    Unsafe(String),
    Io(std::io::Error),
}

impl From<std::io::Error> for ResolveError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

/// Splits an archive member name into its components. It rejects absolute names and `..`.
fn member_components(name: &[u8]) -> Result<Vec<OsString>, String> {
    if name.first() == Some(&b'/') {
        return Err("the name is absolute".to_owned());
    }
    let mut components = Vec::new();
    for part in name.split(|&byte| byte == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("the name contains a `..` component".to_owned()),
            _ => components.push(OsString::from_vec(part.to_vec())),
        }
    }
    Ok(components)
}

/// Resolves `components` to a real directory inside `root`, following symlinks as a chroot
/// would and creating missing directories with mode 0755 when `create` is set.
fn resolve_dir(
    root: &Path,
    components: &[OsString],
    create: bool,
) -> Result<PathBuf, ResolveError> {
    let mut pending: VecDeque<OsString> = components.iter().cloned().collect();
    let mut resolved = root.to_path_buf();
    let mut depth = 0_usize;
    let mut hops = 0_usize;
    while let Some(part) = pending.pop_front() {
        if part.is_empty() || part == "." {
            continue;
        }
        if part == ".." {
            if depth == 0 {
                return Err(ResolveError::Unsafe(
                    "a symlink on its path points above the root".to_owned(),
                ));
            }
            resolved.pop();
            depth -= 1;
            continue;
        }
        let candidate = resolved.join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(metadata) if metadata.is_dir() => {
                resolved = candidate;
                depth += 1;
            }
            Ok(metadata) if metadata.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(ResolveError::Unsafe(
                        "too many levels of symlinks".to_owned(),
                    ));
                }
                let target = fs_err::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved = root.to_path_buf();
                    depth = 0;
                }
                let parts = target.as_os_str().as_bytes().split(|&byte| byte == b'/');
                for part in parts.rev() {
                    pending.push_front(OsString::from_vec(part.to_vec()));
                }
            }
            Ok(_) => {
                return Err(ResolveError::Unsafe(format!(
                    "`{}` is not a directory",
                    candidate.display()
                )))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => {
                match std::fs::create_dir(&candidate) {
                    Ok(()) => {}
                    // Another extraction created it first: look at it again.
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(error) => return Err(ResolveError::Io(error)),
                }
                pending.push_front(part);
            }
            Err(error) => return Err(ResolveError::Io(error)),
        }
    }
    Ok(resolved)
}

/// One archive entry being extracted, for error messages.
struct EntryContext<'a> {
    root: &'a Path,
    deb: &'a Path,
    entry: &'a str,
    owner: Ownership,
}

impl EntryContext<'_> {
    fn unsafe_entry(&self, reason: impl Into<String>) -> ChrootError {
        ChrootError::UnsafeEntry {
            deb: self.deb.to_path_buf(),
            entry: self.entry.to_owned(),
            reason: reason.into(),
        }
    }

    fn failed(&self, source: std::io::Error) -> ChrootError {
        ChrootError::Extract {
            deb: self.deb.to_path_buf(),
            entry: self.entry.to_owned(),
            source,
        }
    }

    fn resolve_error(&self, error: ResolveError) -> ChrootError {
        match error {
            ResolveError::Unsafe(reason) => self.unsafe_entry(reason),
            ResolveError::Io(source) => self.failed(source),
        }
    }

    /// Resolves the parent directory of the entry and returns it with the final name, or
    /// `None` for the root itself.
    fn parent_and_name(&self, name: &[u8]) -> Result<Option<(PathBuf, OsString)>, ChrootError> {
        let mut components = member_components(name).map_err(|reason| self.unsafe_entry(reason))?;
        let Some(file_name) = components.pop() else {
            return Ok(None);
        };
        let parent =
            resolve_dir(self.root, &components, true).map_err(|error| self.resolve_error(error))?;
        Ok(Some((parent, file_name)))
    }

    fn extract<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<(), ChrootError> {
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().map_err(|error| self.failed(error))? & 0o7777;
        let uid = header.uid().map_err(|error| self.failed(error))?;
        let gid = header.gid().map_err(|error| self.failed(error))?;
        let mtime = header.mtime().map_err(|error| self.failed(error))?;
        let Some((parent, name)) = self.parent_and_name(&entry.path_bytes())? else {
            return Ok(());
        };
        let meta = EntryMeta {
            mode,
            uid,
            gid,
            mtime,
        };
        match kind {
            EntryType::Directory => self.directory(&parent, &name, meta),
            EntryType::Regular | EntryType::Continuous => self.regular(&parent, &name, meta, entry),
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry("the symlink has no target"))?
                    .into_owned();
                self.symlink(&parent, &name, &target, meta)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.unsafe_entry("the hard link has no target"))?
                    .into_owned();
                self.hard_link(&parent, &name, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (major, minor) = (
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                );
                self.special(
                    &parent,
                    &name,
                    kind,
                    u64::from(major),
                    u64::from(minor),
                    meta,
                )
            }
            EntryType::XGlobalHeader => Ok(()),
            other => Err(self.unsafe_entry(format!("unsupported entry type {other:?}"))),
        }
    }

    fn directory(&self, parent: &Path, name: &OsStr, meta: EntryMeta) -> Result<(), ChrootError> {
        let path = parent.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(metadata) if metadata.file_type().is_symlink() => {
                // Like dpkg, keep a symlink to a directory, such as the merged-/usr `bin`. It must
                // resolve to a directory inside the root.
                let relative = path.strip_prefix(self.root).unwrap_or(&path);
                let components: Vec<OsString> = relative.iter().map(OsStr::to_os_string).collect();
                resolve_dir(self.root, &components, false)
                    .map_err(|error| self.resolve_error(error))?;
                return Ok(());
            }
            Ok(_) => return Err(self.unsafe_entry("a non-directory exists at this path")),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::create_dir(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(error) => return Err(self.failed(error)),
                }
            }
            Err(error) => return Err(self.failed(error)),
        }
        // `path` is a real directory here, so neither call follows a symlink.
        self.chown(&path, meta)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.mode))
            .map_err(|error| self.failed(error))
    }

    fn regular<R: Read>(
        &self,
        parent: &Path,
        name: &OsStr,
        meta: EntryMeta,
        data: &mut R,
    ) -> Result<(), ChrootError> {
        let temp = temp_path(parent, name);
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .mode(0o600)
                .open(&temp)?;
            std::io::copy(data, &mut file)?;
            if self.owner.apply {
                std::os::unix::fs::fchown(&file, Some(meta.uid_u32()), Some(meta.gid_u32()))?;
            }
            // After the owner, because chown clears the set-user-ID bit.
            file.set_permissions(std::fs::Permissions::from_mode(meta.mode))?;
            let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime);
            file.set_modified(mtime)?;
            std::fs::rename(&temp, parent.join(name))
        })();
        self.finish(&temp, result)
    }

    fn symlink(
        &self,
        parent: &Path,
        name: &OsStr,
        target: &[u8],
        meta: EntryMeta,
    ) -> Result<(), ChrootError> {
        let temp = temp_path(parent, name);
        let target = PathBuf::from(OsString::from_vec(target.to_vec()));
        let result = (|| {
            std::os::unix::fs::symlink(&target, &temp)?;
            if self.owner.apply {
                std::os::unix::fs::lchown(&temp, Some(meta.uid_u32()), Some(meta.gid_u32()))?;
            }
            std::fs::rename(&temp, parent.join(name))
        })();
        self.finish(&temp, result)
    }

    fn hard_link(&self, parent: &Path, name: &OsStr, target: &[u8]) -> Result<(), ChrootError> {
        let mut components = member_components(target)
            .map_err(|reason| self.unsafe_entry(format!("hard link target: {reason}")))?;
        let target_name = components
            .pop()
            .ok_or_else(|| self.unsafe_entry("the hard link target is the root"))?;
        let target_dir = resolve_dir(self.root, &components, false)
            .map_err(|error| self.resolve_error(error))?;
        let source = target_dir.join(target_name);
        match std::fs::symlink_metadata(&source) {
            Ok(metadata) if metadata.is_file() => {}
            Ok(_) => return Err(self.unsafe_entry("the hard link target is not a regular file")),
            Err(error) => return Err(self.failed(error)),
        }
        let temp = temp_path(parent, name);
        // link(2) does not follow a symlink at `source`, and `source` is a regular file here.
        let result = std::fs::hard_link(&source, &temp)
            .and_then(|()| std::fs::rename(&temp, parent.join(name)));
        self.finish(&temp, result)
    }

    fn special(
        &self,
        parent: &Path,
        name: &OsStr,
        kind: EntryType,
        major: u64,
        minor: u64,
        meta: EntryMeta,
    ) -> Result<(), ChrootError> {
        let flag = match kind {
            EntryType::Char => SFlag::S_IFCHR,
            EntryType::Block => SFlag::S_IFBLK,
            _ => SFlag::S_IFIFO,
        };
        let temp = temp_path(parent, name);
        let result = (|| {
            mknod(
                &temp,
                flag,
                Mode::from_bits_truncate(meta.mode),
                makedev(major, minor),
            )
            .map_err(std::io::Error::from)?;
            self.chown_nofollow(&temp, meta)?;
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(meta.mode))?;
            std::fs::rename(&temp, parent.join(name))
        })();
        self.finish(&temp, result)
    }

    fn chown(&self, path: &Path, meta: EntryMeta) -> Result<(), ChrootError> {
        self.chown_nofollow(path, meta)
            .map_err(|error| self.failed(error))
    }

    fn chown_nofollow(&self, path: &Path, meta: EntryMeta) -> std::io::Result<()> {
        if self.owner.apply {
            std::os::unix::fs::lchown(path, Some(meta.uid_u32()), Some(meta.gid_u32()))?;
        }
        Ok(())
    }

    /// Removes the temporary file after a failure and wraps the error.
    fn finish(&self, temp: &Path, result: std::io::Result<()>) -> Result<(), ChrootError> {
        result.map_err(|error| {
            let _ = std::fs::remove_file(temp);
            self.failed(error)
        })
    }
}

/// Permissions, owner and modification time of an entry.
#[derive(Debug, Clone, Copy)]
struct EntryMeta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

impl EntryMeta {
    fn uid_u32(self) -> u32 {
        u32::try_from(self.uid).unwrap_or(u32::MAX)
    }

    fn gid_u32(self) -> u32 {
        u32::try_from(self.gid).unwrap_or(u32::MAX)
    }
}

/// A fresh name in `parent` for an entry to be renamed to `name`.
fn temp_path(parent: &Path, name: &OsStr) -> PathBuf {
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp = OsString::from(".oic-extract-");
    temp.push(std::process::id().to_string());
    temp.push(format!("-{counter}-"));
    // Keeps the name below NAME_MAX whatever the entry's name.
    let short: Vec<u8> = name.as_bytes().iter().copied().take(128).collect();
    temp.push(OsString::from_vec(short));
    parent.join(temp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_reject_dotdot() {
        assert!(member_components(b"./usr/../../etc/passwd").is_err());
        assert!(member_components(b"/etc/passwd").is_err());
        let parts = member_components(b"./usr//bin/./ls").unwrap();
        assert_eq!(parts, ["usr", "bin", "ls"]);
    }

    #[test]
    fn resolve_follows_symlinks_inside_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", root.path().join("bin")).unwrap();
        std::os::unix::fs::symlink("/usr", root.path().join("abs")).unwrap();
        let parts = |text: &[u8]| member_components(text).unwrap();

        let bin = resolve_dir(root.path(), &parts(b"bin"), false).unwrap();
        assert_eq!(bin, root.path().join("usr/bin"));
        let abs = resolve_dir(root.path(), &parts(b"abs/bin"), false).unwrap();
        assert_eq!(abs, root.path().join("usr/bin"));
    }

    #[test]
    fn resolve_rejects_escape() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("../..", root.path().join("up")).unwrap();
        let parts = member_components(b"up/etc").unwrap();
        let error = resolve_dir(root.path(), &parts, true).unwrap_err();
        assert!(matches!(error, ResolveError::Unsafe(_)), "{error:?}");
    }

    #[test]
    fn resolve_rejects_loop() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", root.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", root.path().join("b")).unwrap();
        let parts = member_components(b"a/x").unwrap();
        let error = resolve_dir(root.path(), &parts, true).unwrap_err();
        assert!(matches!(error, ResolveError::Unsafe(_)), "{error:?}");
    }
}
