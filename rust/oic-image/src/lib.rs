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
pub mod rpm_sbom;
pub mod sbom;
pub mod xfs;

pub use error::ImageError;

/// Returns `bytes` as lowercase hexadecimal, two digits per byte, as SHA256 sums are written.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;

    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}
