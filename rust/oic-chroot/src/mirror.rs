//! Package sets from a local Debian mirror (a `dists/` index and the `pool/` files it names),
//! for the benchmark and the tests.

use std::path::Path;

use oic_solve::{solve, Request, SolveRequest, Universe, UniversePackage};

use crate::error::ChrootError;
use crate::ChrootPackage;

/// The packages a set adds to the essential set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageSet {
    /// `Essential: yes` and `Priority: required`, with their dependencies.
    Essential,
    /// The essential set plus apt and the file system and partitioning tools.
    Tools,
    /// The tools plus a kernel, initramfs-tools and a bootloader.
    Bootable,
}

impl PackageSet {
    /// Returns the set named `name`: `essential`, `tools` or `bootable`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "essential" => Some(Self::Essential),
            "tools" => Some(Self::Tools),
            "bootable" => Some(Self::Bootable),
            _ => None,
        }
    }

    /// Returns the package names requested on top of the essential set.
    pub fn extra(self) -> &'static [&'static str] {
        match self {
            Self::Essential => &[],
            Self::Tools => &["apt", "e2fsprogs", "dosfstools", "mtools", "fdisk"],
            Self::Bootable => &[
                "apt",
                "e2fsprogs",
                "dosfstools",
                "mtools",
                "fdisk",
                "linux-image-amd64",
                "initramfs-tools",
                "grub-efi-amd64",
            ],
        }
    }
}

/// Resolves `set` against the mirror at `mirror` (the directory holding `dists/` and `pool/`),
/// from the packages of `suite`'s `main` amd64 index whose `.deb` exists in the pool.
pub fn mirror_packages(
    mirror: &Path,
    suite: &str,
    set: PackageSet,
) -> Result<Vec<ChrootPackage>, ChrootError> {
    let invalid = |message: String| ChrootError::PackageSet { message };
    let index = mirror.join(format!("dists/{suite}/main/binary-amd64/Packages"));
    let text = fs_err::read_to_string(&index)?;
    let parsed = oic_deb::parse_packages(&text)
        .map_err(|error| invalid(format!("{}: {error}", index.display())))?;
    let available: Vec<UniversePackage> = parsed
        .into_iter()
        .filter(|package| mirror.join(&package.filename).is_file())
        .map(|package| UniversePackage::new(package, "mirror", 500))
        .collect();
    let universe = Universe::new(available, "amd64");
    let mut essential: Vec<String> = universe
        .packages()
        .iter()
        .map(|candidate| &candidate.package)
        .filter(|package| package.essential || package.priority.as_deref() == Some("required"))
        .map(|package| package.name.clone())
        .collect();
    essential.sort();
    essential.dedup();
    let request = SolveRequest {
        requests: set
            .extra()
            .iter()
            .map(|&name| Request::name(name))
            .collect(),
        essential,
        options: oic_solve::SolveOptions::default(),
    };
    let resolution = solve(&universe, &request).map_err(|error| invalid(error.to_string()))?;
    Ok(resolution
        .packages
        .iter()
        .map(|candidate| ChrootPackage {
            package: (*candidate.package).clone(),
            deb: mirror.join(&candidate.package.filename),
        })
        .collect())
}
