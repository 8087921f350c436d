//! The package cache of the packages stage.
//!
//! [`fetch_packages`] makes the files of a resolution present in
//! `{cache_dir}/pkgCache/{provider-id}/`, reusing every cached file whose size and checksum match
//! and downloading the rest concurrently. Bytes are hashed while they stream into a temporary
//! file next to the final name, and the file is renamed into place only when it matches, so a
//! final name never holds a partial or unverified file (see [`layout`] for the tree).
//!
//! Several builds may share one cache, also as separate processes: they hold a shared OFD lock
//! on `pkgCache/.lock`, while [`clean`] and [`prune`] take it exclusively. [`cache_info`] and
//! [`verify`] complete the commands of `os-image-composer cache`.

mod check;
mod checksum;
mod clean;
mod client;
mod download;
mod error;
mod fetch;
mod file_check;
mod info;
pub mod layout;
mod lock;
mod mounts;
mod partial;
mod progress;
mod prune;
mod report;
mod usage;
mod verify;
mod wanted;

pub use check::{check_file, CacheState, RedownloadReason};
pub use checksum::ChecksumType;
pub use clean::{clean, CleanOptions, CleanReport, CleanScope, RemovedTree};
pub use client::{FetchOptions, ProxyConfig};
pub use error::PkgCacheError;
pub use fetch::{fetch_packages, fetch_packages_blocking};
pub use file_check::{CheckFailure, FileCheck, SharedFileCheck};
pub use info::{cache_info, CacheInfo, ProviderInfo};
pub use layout::write_dot;
pub use lock::{CacheLock, LockKind};
pub use progress::{NoReporter, Reporter, TextReporter};
pub use prune::{prune, PruneOptions, PruneReport, PrunedFile};
pub use report::{format_bytes, CachedFile, FetchReport};
pub use usage::Usage;
pub use verify::{
    load_verify_index, verify, ExpectedFile, VerifiedFile, VerifyIndex, VerifyReport, VerifyStatus,
};
pub use wanted::{wanted_files, WantedFile};
