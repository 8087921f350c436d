//! Build orchestration: the stages that turn a checked template into an image.
//!
//! Today this holds the packages stage ([`packages::resolve_packages`]): verified repository
//! metadata for the provider's and the template's repositories, then the set of packages the
//! image installs, with its dependency graph.

pub mod chroot;
mod error;
pub mod fetch;
pub mod packages;

pub use chroot::{prepare_chroot, ChrootReport};
pub use error::BuildError;
pub use fetch::fetch_packages;
pub use packages::{
    resolve_packages, PackagesOptions, PackagesOutcome, ResolvedEdge, ResolvedPackage,
};
