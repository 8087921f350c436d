//! The chroot environment of the compose stage: the target distribution's own tools (dpkg,
//! apt, mkfs, bootloader binaries) in `{work_dir}/{provider-id}/chrootenv/`, created once per
//! provider from a resolved package set and reused while its inputs stay the same.
//!
//! - [`ensure`] reuses, restores or creates the environment under a per-provider lock and
//!   writes its snapshot, `chrootbuild/chrootenv.tar.gz`.
//! - Creation extracts the essential packages with this crate's own `.deb` reader
//!   ([`extract`]), then lets dpkg inside the chroot install everything ([`dpkg`]).
//! - [`ChrootEnv::mount`] mounts proc, sys, a private /dev, devpts and run for commands, and
//!   releases them on every exit path ([`mounts`], [`signals`]).

pub mod command;
pub mod deb;
pub mod dpkg;
mod env;
mod error;
pub mod extract;
pub mod lock;
pub mod manifest;
pub mod mirror;
pub mod mountinfo;
pub mod mounts;
pub mod rpm;
pub mod signals;
pub mod snapshot;

use std::path::PathBuf;

pub use env::{
    ensure, ensure_packages, ensure_rpm, install_root, ChrootEnv, ChrootOptions, EnvPackages,
    MountedChroot, Outcome,
};
pub use error::ChrootError;
pub use manifest::{Manifest, ProviderInputs, RepositoryInputs};
pub use rpm::{install_rpm_root, RpmChrootPackage, RpmInstall};

/// A package of the resolved set with the path of its downloaded `.deb`.
#[derive(Debug, Clone)]
pub struct ChrootPackage {
    pub package: oic_deb::Package,
    pub deb: PathBuf,
}
