//! The artifacts of a build: the raw disk image converted with `qemu-img` and compressed with
//! `pigz` (gzip), `xz` or `zstd`.
//!
//! Every step writes to a hidden temporary file in the output folder, which is renamed to the
//! artifact's name only when the step succeeded. A temporary file is deleted when its step
//! fails, so a failed request leaves no partial artifact.
//!
//! Raw images are mostly holes. `qemu-img` finds the data with `SEEK_DATA` and writes sparse
//! outputs, and `cp --sparse=always` keeps holes in a copy. Compressors read holes as zeros that
//! the kernel fills in without disk reads, but they still compress every zero byte.

use std::ffi::OsStr;
use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use oic_chroot::command;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tempfile::TempPath;

use crate::error::ImageError;

/// Disk image formats, named as in the template's `artifacts` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Raw,
    Qcow2,
    /// A fixed-size VHD as Azure requires: the raw data followed by a 512-byte footer.
    Vhd,
    Vhdx,
    Vmdk,
    Vdi,
}

impl ArtifactKind {
    pub const ALL: [Self; 6] = [
        Self::Raw,
        Self::Qcow2,
        Self::Vhd,
        Self::Vhdx,
        Self::Vmdk,
        Self::Vdi,
    ];

    /// Returns the template name, which is also the file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
            Self::Vhd => "vhd",
            Self::Vhdx => "vhdx",
            Self::Vmdk => "vmdk",
            Self::Vdi => "vdi",
        }
    }

    /// Returns the `qemu-img` format name of the output.
    pub fn qemu_format(self) -> &'static str {
        match self {
            Self::Vhd => "vpc",
            other => other.extension(),
        }
    }

    /// Returns the `qemu-img convert -o` options of the output format.
    ///
    /// A VHD is fixed (`subformat=fixed`), because Azure accepts no dynamic VHD. `force_size=on`
    /// keeps the exact size of the raw image, because otherwise `qemu-img` rounds the size to a
    /// cylinder/head/sector geometry and Azure rejects a size that is not a whole number of
    /// MiB.
    fn qemu_options(self) -> Option<&'static str> {
        match self {
            Self::Vhd => Some("subformat=fixed,force_size=on"),
            _ => None,
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for ArtifactKind {
    type Err = ImageError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.extension() == text)
            .ok_or_else(|| ImageError::Unsupported {
                message: format!(
                    "Unknown artifact type `{text}`: expected raw, qcow2, vhd, vhdx, vmdk or vdi"
                ),
            })
    }
}

/// Compression of an artifact file, named as in the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gz,
    Xz,
    Zst,
}

impl Compression {
    pub const ALL: [Self; 4] = [Self::None, Self::Gz, Self::Xz, Self::Zst];

    /// Returns the template name.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gz => "gz",
            Self::Xz => "xz",
            Self::Zst => "zst",
        }
    }

    /// Returns the suffix added to the file name: empty, `.gz`, `.xz` or `.zst`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Gz => ".gz",
            Self::Xz => ".xz",
            Self::Zst => ".zst",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = ImageError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|compression| compression.name() == text)
            .ok_or_else(|| ImageError::Unsupported {
                message: format!("Unknown compression `{text}`: expected none, gz, xz or zst"),
            })
    }
}

/// One artifact to produce from the raw image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArtifactRequest {
    pub kind: ArtifactKind,
    pub compression: Compression,
}

impl ArtifactRequest {
    /// Returns the file name `{stem}.{extension}` with the compression suffix.
    pub fn file_name(&self, stem: &str) -> String {
        format!(
            "{stem}.{}{}",
            self.kind.extension(),
            self.compression.extension()
        )
    }
}

/// A produced artifact file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactOutput {
    pub path: PathBuf,
    pub kind: ArtifactKind,
    pub compression: Compression,
    /// The file's apparent size in bytes, holes included.
    pub bytes: u64,
    /// SHA256 of the file as written, compressed if it is, in lowercase hex.
    pub sha256: String,
}

/// Writes `{out_dir}/{stem}.{extension}[.gz|.xz|.zst]` for every distinct request, in request
/// order, and returns them with their sizes and hashes. A repeated request is produced once.
///
/// `raw` may itself be `{out_dir}/{stem}.raw`, and then an uncompressed raw request keeps that
/// file as it is. An existing artifact of the same name is replaced. On the first failure the
/// artifacts of earlier requests stay in place, and the failed one leaves no file behind.
pub fn produce(
    raw: &Path,
    requests: &[ArtifactRequest],
    out_dir: &Path,
    stem: &str,
) -> Result<Vec<ArtifactOutput>, ImageError> {
    check_raw_input(raw)?;

    let mut outputs: Vec<ArtifactOutput> = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        if requests[..index].contains(request) {
            continue;
        }

        let path = out_dir.join(request.file_name(stem));
        let is_input = same_file(raw, &path)?;
        if is_input && (request.kind, request.compression) != (ArtifactKind::Raw, Compression::None)
        {
            return Err(invalid(
                &path,
                "the artifact would replace the raw input image: choose another stem",
            ));
        }

        if !is_input {
            produce_one(raw, *request, out_dir, &path)?;
        }
        outputs.push(describe(&path, *request)?);
    }
    Ok(outputs)
}

fn check_raw_input(raw: &Path) -> Result<(), ImageError> {
    let metadata = fs_err::metadata(raw)?;
    if !metadata.is_file() {
        return Err(invalid(raw, "the raw image is not a regular file"));
    }
    if metadata.len() % (1 << 20) != 0 {
        tracing::warn!(
            path = %raw.display(),
            bytes = metadata.len(),
            "the raw image size is not a multiple of 1 MiB, which Azure requires of a VHD"
        );
    }
    Ok(())
}

/// Tells whether `a` and `b` name the same file. A missing `b` is a different file.
fn same_file(a: &Path, b: &Path) -> Result<bool, ImageError> {
    let b_metadata = match std::fs::metadata(b) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(with_path(&error, "read", b).into()),
    };
    let a_metadata = fs_err::metadata(a)?;
    Ok(a_metadata.dev() == b_metadata.dev() && a_metadata.ino() == b_metadata.ino())
}

/// Produces one artifact at `path` through temporary files in `out_dir`.
fn produce_one(
    raw: &Path,
    request: ArtifactRequest,
    out_dir: &Path,
    path: &Path,
) -> Result<(), ImageError> {
    tracing::info!(
        raw = %raw.display(),
        output = %path.display(),
        kind = %request.kind,
        compression = %request.compression,
        "producing artifact"
    );

    let converted = match request.kind {
        ArtifactKind::Raw if request.compression != Compression::None => None,
        ArtifactKind::Raw => Some(copy_sparse(raw, out_dir, path)?),
        kind => Some(convert(raw, kind, out_dir, path)?),
    };

    let finished = match request.compression {
        Compression::None => converted.expect("an uncompressed artifact is converted or copied"),
        compression => {
            let input = converted.as_deref().unwrap_or(raw);
            compress(input, compression, out_dir, path)?
        }
    };

    finish(finished, path)
}

/// Creates an empty hidden file in `out_dir` named after `path`, deleted when dropped.
fn temporary(out_dir: &Path, path: &Path) -> Result<TempPath, ImageError> {
    let name = path.file_name().unwrap_or(OsStr::new("artifact"));
    let mut prefix = OsStr::new(".").to_os_string();
    prefix.push(name);
    prefix.push(".");

    let file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(out_dir)
        .map_err(|error| with_path(&error, "create a file in", out_dir))?;
    Ok(file.into_temp_path())
}

/// Copies the raw image with its holes, or as a reflink where the file system supports one.
fn copy_sparse(raw: &Path, out_dir: &Path, path: &Path) -> Result<TempPath, ImageError> {
    let output = temporary(out_dir, path)?;
    command::run(
        Command::new("cp")
            .args(["--reflink=auto", "--sparse=always", "--"])
            .arg(raw)
            .arg(&output),
    )?;
    Ok(output)
}

fn convert(
    raw: &Path,
    kind: ArtifactKind,
    out_dir: &Path,
    path: &Path,
) -> Result<TempPath, ImageError> {
    let output = temporary(out_dir, path)?;
    let mut convert = Command::new("qemu-img");
    convert.args(["convert", "-q", "-f", "raw", "-O", kind.qemu_format()]);
    if let Some(options) = kind.qemu_options() {
        convert.args(["-o", options]);
    }
    convert.arg(raw).arg(&output);
    command::run(&mut convert)?;
    Ok(output)
}

/// Compresses `input` into a temporary file with one thread per processor: `pigz`, `xz -T0`
/// and `zstd -T0`. xz keeps its default preset 6 for the smallest files, at a cost: on zeros,
/// which make up most of an image, it compresses about 31 MB/s per thread against 125 MB/s
/// at preset 3 (xz 5.4.1, 100 MiB of zeros, one thread on a shared 2-core machine, so a rough
/// figure). The compressors write to standard output, which `sh` redirects into the temporary
/// file.
fn compress(
    input: &Path,
    compression: Compression,
    out_dir: &Path,
    path: &Path,
) -> Result<TempPath, ImageError> {
    let output = temporary(out_dir, path)?;
    let compressor: &[&str] = match compression {
        Compression::None => unreachable!("uncompressed artifacts are not compressed"),
        Compression::Gz => &["pigz", "-c", "-n", "-6"],
        Compression::Xz => &["xz", "-c", "-T0", "-6"],
        Compression::Zst => &["zstd", "-c", "-q", "-T0", "-3"],
    };

    // `sh` replaces itself with the compressor, so the process that `run` registers for SIGINT
    // is the compressor.
    let mut shell = Command::new("sh");
    shell
        .args(["-c", r#"out=$1; shift; exec "$@" > "$out""#, "sh"])
        .arg(&output)
        .args(compressor)
        .arg("--")
        .arg(input);
    command::run(&mut shell)?;
    Ok(output)
}

/// Makes the finished file readable by everyone and renames it to `path`.
fn finish(finished: TempPath, path: &Path) -> Result<(), ImageError> {
    fs_err::set_permissions(&finished, std::fs::Permissions::from_mode(0o644))?;
    finished
        .persist(path)
        .map_err(|error| with_path(&error.error, "rename to", path))?;
    Ok(())
}

fn describe(path: &Path, request: ArtifactRequest) -> Result<ArtifactOutput, ImageError> {
    let bytes = fs_err::metadata(path)?.len();
    let sha256 = sha256_file(path)?;
    tracing::info!(path = %path.display(), bytes, %sha256, "artifact ready");
    Ok(ArtifactOutput {
        path: path.to_owned(),
        kind: request.kind,
        compression: request.compression,
        bytes,
        sha256,
    })
}

/// Hashes a file in 1 MiB reads. Holes read as zeros without disk reads.
fn sha256_file(path: &Path) -> Result<String, ImageError> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 20];
    loop {
        let count = file.read(&mut buffer)?;
        if count == 0 {
            break;
        }
        hasher.update(&buffer[..count]);
    }

    Ok(crate::hex(&hasher.finalize()))
}

fn invalid(path: &Path, message: &str) -> ImageError {
    ImageError::Invalid {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

/// Adds the path to an I/O error from a call that does not name it.
fn with_path(error: &std::io::Error, action: &str, path: &Path) -> std::io::Error {
    std::io::Error::new(
        error.kind(),
        format!("failed to {action} `{}`: {error}", path.display()),
    )
}
