//! The image of the compose and finalize stages: the configured image root, the disk with its
//! partitions and file systems, the bootloader, the converted and compressed artifacts and the
//! SBOM.

pub mod artifacts;
pub mod bootloader;
pub mod command;
pub mod configure;
pub mod disk;
mod error;
pub mod paths;
pub mod root;
pub mod sbom;
pub mod xfs;

pub use error::ImageError;
