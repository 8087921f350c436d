//! Errors of the image stages.

use std::path::PathBuf;

/// A failure to configure an image root, lay out a disk, install a bootloader, convert an
/// artifact or write the SBOM. Every variant names the path, value or command it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error(transparent)]
    Chroot(#[from] oic_chroot::ChrootError),

    #[error("Command failed ({status}): {command}\n{output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },

    #[error("`{path}`: {message}")]
    Invalid { path: PathBuf, message: String },

    #[error("{message}")]
    Unsupported { message: String },

    #[error(
        "systemConfig.configurations[{index}] (`{first_line}`) failed inside the image \
         ({status}):\n{output}"
    )]
    Configuration {
        index: usize,
        first_line: String,
        status: String,
        output: String,
    },

    #[error(
        "{setting} needs `{tool}` inside the image, and the image has no such program (looked \
         for {searched}): add the package that provides it to systemConfig.packages, or remove \
         the setting"
    )]
    MissingTool {
        tool: String,
        setting: String,
        searched: String,
    },

    #[error(
        "Partition `{partition}` is too small: its content needs about {needed} bytes, and the \
         partition has {available}; make it larger in the template's disk section"
    )]
    TooSmall {
        partition: String,
        needed: u64,
        available: u64,
    },

    #[error(
        "Not enough free space in `{path}`: the image needs about {needed} bytes and {free} are \
         free; free some space or choose another work_dir"
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        free: u64,
    },

    #[error(transparent)]
    Cancelled(#[from] oic_cancel::Cancelled),
}
