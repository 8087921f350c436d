//! Build orchestration: the stages that turn a checked template into an image.
//!
//! - Packages ([`packages::resolve_packages`], [`fetch::fetch_packages`]): verified repository
//!   metadata for the provider's and the template's repositories, the set of packages the image
//!   installs with its dependency graph, and their files in the package cache. RPM providers
//!   take the same path through [`rpm_packages`], and their fetch also checks every package
//!   signature. [`rpm_set::rpm_set`] returns an RPM set in install order for
//!   `oic_chroot::install_rpm_root`.
//! - The chroot environment ([`chroot::prepare_chroot`]): the provider's essential set and build
//!   tools, created, restored or reused by `oic-chroot`.
//! - The build ([`build::build_file`]): every stage from the template to the artifacts, with
//!   the image root, disk, bootloader and SBOM from `oic-image`.

pub mod build;
pub mod chroot;
mod error;
pub mod fetch;
pub mod packages;
pub mod rpm_order;
pub mod rpm_packages;
pub mod rpm_set;
mod tools;

pub use build::{build_file, BuildOptions, BuildReport};
pub use chroot::{prepare_chroot, ChrootReport};
pub use error::BuildError;
pub use fetch::fetch_packages;
pub use packages::{
    resolve_packages, PackageSet, PackagesOptions, PackagesOutcome, ResolvedEdge, ResolvedPackage,
};
pub use rpm_set::{rpm_set, RpmSet};
