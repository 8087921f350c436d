//! The disk tools of a build: the provider's chroot environment with the image root's trees
//! and the build folder bind-mounted, so that the target distribution's own mkfs, sfdisk and
//! mtools create the file systems.

use std::path::{Path, PathBuf};
use std::process::Command;

use oic_chroot::{ChrootEnv, MountedChroot};
use oic_image::disk::Tools;
use oic_image::ImageError;

/// The folder inside the chroot environment that shows the image root's trees, read-only.
const TREES: &str = "mnt/oic-trees";
/// The folder inside the chroot environment that shows the build folder.
const BUILD: &str = "mnt/oic-build";

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
