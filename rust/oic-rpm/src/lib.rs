//! RPM repositories for the packages stage: Azure Linux, Edge Microvisor Toolkit and
//! RHEL-compatible distributions.
//!
//! - [`version`]: rpm's version order (`rpmvercmp`) and `[epoch:]version[-release]`.
//! - [`Repomd`] and [`parse_primary`]: `repodata/repomd.xml` and the streaming parse of
//!   `primary.xml` into [`RpmPackage`]s with their dependencies, rich `or`/`and`
//!   dependencies as [`Expression`] trees and primary's file list as file provides.
//! - [`load_repository`]: fetches repomd.xml, verifies `repomd.xml.asc` against the
//!   repository's keys, checks the size and checksum of primary.xml against repomd.xml before
//!   parsing it, and caches the verified files keyed by the digest of repomd.xml.
//! - [`add_file_provides`]: reads filelists.xml, checked against repomd.xml and cached like
//!   primary.xml, only when a reachable file dependency is missing from primary.xml.
//! - [`RpmUniverse`] and [`solve`]: the dependency solver on resolvo with rpm's rules for
//!   `Requires`, `Provides`, file provides, `Conflicts`, `Obsoletes` and rich dependencies.
//! - [`verify_package_file`]: parses an `.rpm` file, verifies its OpenPGP header signature and
//!   its header and payload digests, and checks it against its primary.xml entry.

mod checksum;
mod compression;
mod dependency;
mod error;
mod filelists;
mod header;
mod metadata;
mod package;
mod primary;
mod provider;
mod repomd;
mod rich;
mod solve;
mod universe;
mod verify;
pub mod version;
mod xml;

pub use checksum::{Checksum, ChecksumAlgorithm};
pub use dependency::{Comparison, Constraint, Dependency};
pub use error::RpmError;
pub use filelists::{
    add_file_provides, add_file_provides_blocking, parse_filelists, unknown_file_requirements,
    FilelistsSource, ListedFile,
};
pub use header::{Header, RpmFile};
pub use metadata::{
    load_repository, load_repository_blocking, RepomdSignature, RpmMetadataOptions, RpmRepoMetadata,
};
pub use package::{Requirement, RpmPackage};
pub use primary::parse_primary;
pub use repomd::{Repomd, RepomdData};
pub use rich::Expression;
pub use solve::{solve, RpmEdge, RpmResolution, RpmSolveRequest};
pub use universe::{RpmCandidate, RpmUniverse};
pub use verify::{verify_package_file, PackageVerification};
pub use version::{rpmvercmp, Evr};
