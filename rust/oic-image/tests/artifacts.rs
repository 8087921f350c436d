//! Artifact tests with the real tools: a sparse raw disk with a GPT, an ext4 file system and
//! random data is converted to every format and compression, then decompressed and compared
//! with `qemu-img compare`.

use std::collections::BTreeSet;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use oic_image::artifacts::{produce, ArtifactKind, ArtifactRequest, Compression};

const RAW_BYTES: u64 = 32 << 20;

fn run(command: &mut Command) -> String {
    let output = command.output().expect("the command starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

/// Writes a sparse raw disk: a GPT with one partition at 1 MiB, an ext4 file system in it, and
/// 1 MiB of random data at 24 MiB and at the last MiB.
fn write_raw_disk(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    file.set_len(RAW_BYTES).unwrap();
    drop(file);

    let table = "label: gpt\nstart=2048, size=40960, type=linux\n";
    let mut sfdisk = Command::new("sfdisk")
        .arg("-q")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(table.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk failed");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-E", "offset=1048576"])
        .arg(path)
        .arg("20M"));

    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for offset in [24 << 20, RAW_BYTES - (1 << 20)] {
        let random = random_bytes(1 << 20);
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(&random).unwrap();
    }
}

fn random_bytes(count: usize) -> Vec<u8> {
    use std::io::Read as _;
    let mut bytes = vec![0_u8; count];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

fn sha256sum(path: &Path) -> String {
    let text = run(Command::new("sha256sum").arg(path));
    text.split_whitespace().next().unwrap().to_owned()
}

fn all_requests() -> Vec<ArtifactRequest> {
    let mut requests = Vec::new();
    for kind in ArtifactKind::ALL {
        for compression in Compression::ALL {
            requests.push(ArtifactRequest { kind, compression });
        }
    }
    requests
}

fn file_names(folder: &Path) -> BTreeSet<String> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Decompresses `path` into `folder` and returns the decompressed file.
fn decompress(path: &Path, compression: Compression, folder: &Path) -> PathBuf {
    let program = match compression {
        Compression::None => return path.to_owned(),
        Compression::Gz => "gzip",
        Compression::Xz => "xz",
        Compression::Zst => "zstd",
    };
    let output = folder.join(path.file_stem().unwrap());
    let file = std::fs::File::create(&output).unwrap();
    let status = Command::new(program)
        .arg("-dc")
        .arg(path)
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success(), "{program} -dc {} failed", path.display());
    output
}

/// Runs `qemu-img info`, with the format given because qemu-img probes a fixed VHD as raw: its
/// only header is the footer at the end.
fn qemu_info(path: &Path, format: &str) -> serde_json::Value {
    let text = run(Command::new("qemu-img")
        .args(["info", "--output=json", "-f", format])
        .arg(path));
    serde_json::from_str(&text).unwrap()
}

/// Runs `qemu-img info` and lets it detect the format.
fn probed_format(path: &Path) -> String {
    let text = run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path));
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    info["format"].as_str().unwrap().to_owned()
}

#[test]
fn every_kind_and_compression_matches_raw() {
    let out_dir = tempfile::tempdir().unwrap();
    let raw = out_dir.path().join("disk.raw");
    write_raw_disk(&raw);
    let raw_hash = sha256sum(&raw);
    let requests = all_requests();

    let outputs = produce(&raw, &requests, out_dir.path(), "disk").unwrap();

    assert_eq!(outputs.len(), requests.len());
    assert_eq!(sha256sum(&raw), raw_hash, "the raw input changed");
    let expected: BTreeSet<String> = requests.iter().map(|r| r.file_name("disk")).collect();
    assert_eq!(file_names(out_dir.path()), expected);

    let scratch = tempfile::tempdir().unwrap();
    for (output, request) in outputs.iter().zip(&requests) {
        let name = output.path.display().to_string();
        assert_eq!(output.kind, request.kind, "{name}");
        assert_eq!(output.compression, request.compression, "{name}");
        assert_eq!(output.path, out_dir.path().join(request.file_name("disk")));
        assert_eq!(output.bytes, std::fs::metadata(&output.path).unwrap().len());
        assert_eq!(output.sha256, sha256sum(&output.path), "{name}");

        let image = decompress(&output.path, output.compression, scratch.path());
        let format = output.kind.qemu_format();
        if output.kind != ArtifactKind::Vhd {
            assert_eq!(probed_format(&image), format, "{name}");
        }
        let info = qemu_info(&image, format);
        assert_eq!(info["virtual-size"], RAW_BYTES, "{name}");
        run(Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", output.kind.qemu_format()])
            .arg(&raw)
            .arg(&image));
        if image != output.path {
            std::fs::remove_file(&image).unwrap();
        }
    }
}

#[test]
fn fixed_vhd_has_exact_size() {
    let folder = tempfile::tempdir().unwrap();
    let raw = folder.path().join("input.raw");
    write_raw_disk(&raw);
    let request = ArtifactRequest {
        kind: ArtifactKind::Vhd,
        compression: Compression::None,
    };

    let outputs = produce(&raw, &[request], folder.path(), "azure").unwrap();

    assert_eq!(outputs[0].bytes, RAW_BYTES + 512);
    let info = qemu_info(&outputs[0].path, "vpc");
    assert_eq!(info["virtual-size"], RAW_BYTES);
    let bytes = std::fs::read(&outputs[0].path).unwrap();
    let footer = &bytes[bytes.len() - 512..];
    assert_eq!(&footer[..8], b"conectix", "VHD footer cookie");
    assert_eq!(
        &footer[60..64],
        &2_u32.to_be_bytes(),
        "disk type 2 is fixed"
    );
}

#[test]
fn raw_copy_keeps_holes() {
    let folder = tempfile::tempdir().unwrap();
    let raw = folder.path().join("input.raw");
    write_raw_disk(&raw);
    let request = ArtifactRequest {
        kind: ArtifactKind::Raw,
        compression: Compression::None,
    };

    let outputs = produce(&raw, &[request, request], folder.path(), "copy").unwrap();

    assert_eq!(outputs.len(), 1, "a repeated request is produced once");
    let copy = &outputs[0].path;
    assert_eq!(copy, &folder.path().join("copy.raw"));
    assert_eq!(sha256sum(copy), sha256sum(&raw));
    let allocated = std::fs::metadata(copy).unwrap().blocks() * 512;
    assert!(allocated < RAW_BYTES / 2, "{allocated} bytes allocated");
    let mode = std::fs::metadata(copy).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn raw_output_that_is_input_stays() {
    let folder = tempfile::tempdir().unwrap();
    let raw = folder.path().join("disk.raw");
    write_raw_disk(&raw);
    let inode = std::fs::metadata(&raw).unwrap().ino();
    let request = ArtifactRequest {
        kind: ArtifactKind::Raw,
        compression: Compression::None,
    };

    let outputs = produce(&raw, &[request], folder.path(), "disk").unwrap();

    assert_eq!(outputs[0].path, raw);
    assert_eq!(std::fs::metadata(&raw).unwrap().ino(), inode);
    assert_eq!(outputs[0].sha256, sha256sum(&raw));
}

#[test]
fn artifact_replacing_input_is_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let raw = folder.path().join("disk.qcow2");
    write_raw_disk(&raw);
    let hash = sha256sum(&raw);
    let request = ArtifactRequest {
        kind: ArtifactKind::Qcow2,
        compression: Compression::None,
    };

    let error = produce(&raw, &[request], folder.path(), "disk").unwrap_err();

    assert!(error.to_string().contains("raw input"), "{error}");
    assert_eq!(sha256sum(&raw), hash);
}

#[test]
fn missing_raw_input_names_path() {
    let folder = tempfile::tempdir().unwrap();
    let raw = folder.path().join("absent.raw");

    let error = produce(&raw, &all_requests(), folder.path(), "disk").unwrap_err();

    assert!(error.to_string().contains("absent.raw"), "{error}");
    assert!(file_names(folder.path()).is_empty());
}

/// A tmpfs of 2 MiB mounted on a temporary folder and unmounted on drop.
struct SmallFileSystem {
    folder: tempfile::TempDir,
}

impl SmallFileSystem {
    fn mount() -> Self {
        let folder = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(folder.path()));
        Self { folder }
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.folder.path()).status();
    }
}

#[test]
fn failed_steps_leave_nothing() {
    let input = tempfile::tempdir().unwrap();
    let raw = input.path().join("disk.raw");
    write_raw_disk(&raw);
    let full = SmallFileSystem::mount();

    for kind in ArtifactKind::ALL {
        for compression in Compression::ALL {
            let request = ArtifactRequest { kind, compression };

            let result = produce(&raw, &[request], full.folder.path(), "disk");

            let name = request.file_name("disk");
            assert!(result.is_err(), "{name} fit into 2 MiB");
            let message = result.unwrap_err().to_string();
            assert!(!message.is_empty(), "{name}");
            let left = file_names(full.folder.path());
            assert!(left.is_empty(), "{name} left {left:?}");
        }
    }
}

#[test]
fn names_parse() {
    for kind in ArtifactKind::ALL {
        assert_eq!(kind.extension().parse::<ArtifactKind>().unwrap(), kind);
    }
    for compression in Compression::ALL {
        assert_eq!(
            compression.name().parse::<Compression>().unwrap(),
            compression
        );
    }
    assert_eq!(ArtifactKind::Vhd.qemu_format(), "vpc");
    assert_eq!(Compression::Zst.extension(), ".zst");
}

#[test]
fn unknown_names_are_rejected() {
    let error = "iso".parse::<ArtifactKind>().unwrap_err();
    assert!(error.to_string().contains("`iso`"), "{error}");

    let error = "bz2".parse::<Compression>().unwrap_err();
    assert!(error.to_string().contains("`bz2`"), "{error}");
}

#[test]
fn output_serializes() {
    let folder = tempfile::tempdir().unwrap();
    let raw = folder.path().join("disk.raw");
    write_raw_disk(&raw);
    let request = ArtifactRequest {
        kind: ArtifactKind::Qcow2,
        compression: Compression::Zst,
    };

    let outputs = produce(&raw, &[request], folder.path(), "disk").unwrap();

    let value = serde_json::to_value(&outputs[0]).unwrap();
    assert_eq!(value["kind"], "qcow2");
    assert_eq!(value["compression"], "zst");
    assert_eq!(value["bytes"], outputs[0].bytes);
}
