//! Checks that a package file must pass, besides its size and checksum, before it counts as
//! cached, such as the OpenPGP header signature of an `.rpm` file.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::error::PkgCacheError;
use crate::wanted::WantedFile;

/// The reason a [`FileCheck`] rejects a file. Callers may downcast it to the checker's error type.
pub type CheckFailure = Box<dyn std::error::Error + Send + Sync>;

/// A check of a file's content. [`crate::fetch_packages`] runs it on every downloaded file
/// before renaming it into place, and on every cached file before reusing it.
pub trait FileCheck: Send + Sync + fmt::Debug {
    /// Checks the file at `path`, which already has the size and checksum of `wanted`. Returns
    /// the reason when the file must not be cached.
    fn check(&self, path: &Path, wanted: &WantedFile) -> Result<(), CheckFailure>;
}

/// A shared [`FileCheck`]. Two values are equal when they share the same check.
#[derive(Clone, Debug)]
pub struct SharedFileCheck(pub Arc<dyn FileCheck>);

impl PartialEq for SharedFileCheck {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedFileCheck {}

/// Runs `check` on the blocking pool, because it may read the whole file.
pub(crate) async fn run_check(
    check: Option<&SharedFileCheck>,
    path: &Path,
    wanted: &WantedFile,
) -> Result<(), PkgCacheError> {
    let Some(check) = check else {
        return Ok(());
    };
    let check = Arc::clone(&check.0);
    let (path, wanted) = (path.to_owned(), wanted.clone());
    tokio::task::spawn_blocking(move || {
        check
            .check(&path, &wanted)
            .map_err(|source| rejected(&wanted, source))
    })
    .await
    .expect("file checks do not panic")
}

pub(crate) fn rejected(wanted: &WantedFile, source: CheckFailure) -> PkgCacheError {
    PkgCacheError::Rejected {
        file_name: wanted.file_name.clone(),
        repository: wanted.repository.clone(),
        source,
    }
}
