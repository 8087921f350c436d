//! The disk tools of a build: sfdisk, mkfs and mtools, from one place for the whole disk.
//!
//! The provider's chroot environment runs them when it contains every program the disk needs,
//! with the image root's trees and the build folder bind-mounted, so that the target
//! distribution's own tools create the file systems. When it lacks any of them, such as the
//! chroot environment of an RPM provider whose build tools are not installed as programs, the
//! build host runs all of them, and the build logs the missing programs at info level. One place
//! for all tools keeps the paths that [`Tools::path`] returns valid for every command.

use std::path::{Path, PathBuf};
use std::process::Command;

use oic_chroot::{ChrootEnv, MountedChroot};
use oic_image::disk::{self, DiskPlan, Tools};
use oic_image::{paths, ImageError};

/// The folder inside the chroot environment that shows the image root's trees, read-only.
const TREES: &str = "mnt/oic-trees";
/// The folder inside the chroot environment that shows the build folder.
const BUILD: &str = "mnt/oic-build";

/// The `PATH` of the disk tools on the build host.
const HOST_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The tools that write one disk: the chroot environment's or the build host's.
pub enum DiskTools {
    Chroot(ChrootTools),
    Host(HostTools),
}

impl DiskTools {
    /// Chooses where the tools for `plan` run, as the module describes, and mounts the chroot
    /// environment when it is chosen. Fails when neither place has every program.
    pub fn select(
        chroot: &ChrootEnv,
        plan: &DiskPlan,
        trees: &Path,
        build: &Path,
    ) -> Result<Self, ImageError> {
        let needed = disk::required_tools(plan);
        let chroot_root = chroot.root();
        let missing = missing_programs(&chroot_root, &needed)?;
        if missing.is_empty() {
            return Ok(Self::Chroot(ChrootTools::mount(chroot, trees, build)?));
        }

        let missing_on_host = missing_programs(Path::new("/"), &needed)?;
        if !missing_on_host.is_empty() {
            return Err(ImageError::Unsupported {
                message: format!(
                    "the disk needs {}, which the chroot environment `{}` lacks ({}) and the \
                     build host lacks too ({}): add the packages that provide them to the \
                     provider's buildTools, or install them on the build host",
                    needed.join(", "),
                    chroot_root.display(),
                    missing.join(", "),
                    missing_on_host.join(", ")
                ),
            });
        }
        tracing::info!(
            missing = %missing.join(", "),
            chroot = %chroot_root.display(),
            "the chroot environment lacks disk tools, so the build host's {} write the disk",
            needed.join(", ")
        );
        Ok(Self::Host(HostTools))
    }
}

impl Tools for DiskTools {
    fn command(&self, program: &str) -> Command {
        match self {
            Self::Chroot(tools) => tools.command(program),
            Self::Host(tools) => tools.command(program),
        }
    }

    fn path(&self, path: &Path) -> Result<PathBuf, ImageError> {
        match self {
            Self::Chroot(tools) => tools.path(path),
            Self::Host(tools) => tools.path(path),
        }
    }
}

/// Returns the programs of `needed` that the tree at `root` lacks.
fn missing_programs(root: &Path, needed: &[String]) -> Result<Vec<String>, ImageError> {
    let mut missing = Vec::new();
    for program in needed {
        if !paths::has_program(root, program)? {
            missing.push(program.clone());
        }
    }
    Ok(missing)
}

/// A mounted chroot environment with the two folders bound, released when dropped.
pub struct ChrootTools {
    mounted: MountedChroot,
    trees: PathBuf,
    build: PathBuf,
}

impl ChrootTools {
    /// Mounts the environment and binds `trees` and `build` into it.
    pub fn mount(chroot: &ChrootEnv, trees: &Path, build: &Path) -> Result<Self, ImageError> {
        let mut mounted = chroot.mount()?;
        mounted.bind(trees, TREES, true)?;
        mounted.bind(build, BUILD, false)?;
        Ok(Self {
            mounted,
            trees: trees.to_path_buf(),
            build: build.to_path_buf(),
        })
    }
}

impl Tools for ChrootTools {
    fn command(&self, program: &str) -> Command {
        self.mounted.command(program)
    }

    fn path(&self, path: &Path) -> Result<PathBuf, ImageError> {
        for (host, inside) in [(&self.trees, TREES), (&self.build, BUILD)] {
            if let Ok(relative) = path.strip_prefix(host) {
                return Ok(Path::new("/").join(inside).join(relative));
            }
        }
        Err(ImageError::Invalid {
            path: path.to_path_buf(),
            message: "the path is outside the folders bound into the chroot environment".to_owned(),
        })
    }
}

/// The build host's programs, with a fixed `PATH` and locale. Paths stay as they are.
pub struct HostTools;

impl Tools for HostTools {
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", HOST_PATH)
            .env("LC_ALL", "C")
            .env("HOME", "/root");
        command
    }

    fn path(&self, path: &Path) -> Result<PathBuf, ImageError> {
        Ok(path.to_path_buf())
    }
}
