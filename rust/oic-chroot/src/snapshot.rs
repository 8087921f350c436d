//! The snapshot of a chroot environment, `chrootbuild/chrootenv.tar.gz`: written through a
//! temporary name with parallel gzip compression, and restored only after its size and SHA256
//! match the manifest.
//!
//! The tarball is a sequence of gzip members, one per [`CHUNK_BYTES`] of tar data, compressed in
//! parallel. RFC 1952 allows several members in one file, and `gzip -d`, `tar -xzf` and flate2's
//! `MultiGzDecoder` read them as one stream.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use flate2::write::GzEncoder;
use flate2::Compression;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::error::ChrootError;
use crate::manifest::SnapshotRecord;

/// Uncompressed bytes per gzip member.
pub const CHUNK_BYTES: usize = 4 << 20;

/// The gzip level of the snapshot. Level 1 is the fastest; see `docs/benchmarks.md` for sizes and
/// times of other levels.
pub const LEVEL: u32 = 1;

/// Writes a tarball of `root` to `tarball` and returns its size and SHA256. The data goes to a
/// temporary name in the same directory, is synced and then renamed, so an interrupted write
/// never leaves a file under the final name.
pub fn write_snapshot(root: &Path, tarball: &Path) -> Result<SnapshotRecord, ChrootError> {
    let dir = tarball.parent().expect("the tarball path has a parent");
    fs_err::create_dir_all(dir)?;
    remove_partial_files(tarball)?;
    let temp = partial_path(tarball);
    let result = write_tarball(root, &temp);
    let record = match result {
        Ok(record) => record,
        Err(error) => {
            let _ = fs_err::remove_file(&temp);
            return Err(error);
        }
    };
    fs_err::rename(&temp, tarball)?;
    fs_err::File::open(dir)?.sync_all()?;
    Ok(record)
}

/// Returns the temporary name of a snapshot being written by this process.
fn partial_path(tarball: &Path) -> PathBuf {
    let name = tarball
        .file_name()
        .expect("the tarball path names a file")
        .to_string_lossy();
    tarball.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Removes temporary files that interrupted writes of `tarball` left.
fn remove_partial_files(tarball: &Path) -> Result<(), ChrootError> {
    let dir = tarball.parent().expect("the tarball path has a parent");
    let name = tarball
        .file_name()
        .expect("the tarball path names a file")
        .to_string_lossy();
    let prefix = format!(".{name}.partial-");
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            tracing::debug!(path = %entry.path().display(), "removing an interrupted snapshot");
            fs_err::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn write_tarball(root: &Path, temp: &Path) -> Result<SnapshotRecord, ChrootError> {
    let file = fs_err::File::create(temp)?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut builder = tar::Builder::new(ParallelGzWriter::new(hashing, LEVEL));
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    // NOTE: extended attributes (file capabilities such as `security.capability`) are not
    // archived. The bookworm tools set has none, but a package that sets them in its postinst
    // loses them on restore.
    builder.append_dir_all(".", root)?;
    let gzip = builder.into_inner()?;
    let hashing = gzip.finish()?;
    let (writer, record) = hashing.finish();
    let file = writer
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    file.sync_all()?;
    Ok(record)
}

/// A writer that hashes and counts what passes through.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (W, SnapshotRecord) {
        let record = SnapshotRecord {
            size: self.size,
            sha256: hex(&self.hasher.finalize()),
        };
        (self.inner, record)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        oic_cancel::check().map_err(std::io::Error::other)?;
        let count = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..count]);
        self.size += count as u64;
        Ok(count)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// A gzip writer that compresses chunks of [`CHUNK_BYTES`] as separate gzip members, a batch
/// of them at a time on the rayon pool, and writes the members in order.
struct ParallelGzWriter<W: Write> {
    inner: W,
    level: Compression,
    chunk: Vec<u8>,
    batch: Vec<Vec<u8>>,
    batch_len: usize,
}

impl<W: Write> ParallelGzWriter<W> {
    fn new(inner: W, level: u32) -> Self {
        Self {
            inner,
            level: Compression::new(level),
            chunk: Vec::with_capacity(CHUNK_BYTES),
            batch: Vec::new(),
            // Two chunks per thread keep every thread busy while the batch fills.
            batch_len: 2 * rayon::current_num_threads(),
        }
    }

    fn compress_batch(&mut self) -> std::io::Result<()> {
        let level = self.level;
        let members: Vec<std::io::Result<Vec<u8>>> = self
            .batch
            .par_iter()
            .map(|chunk| {
                let mut encoder = GzEncoder::new(Vec::with_capacity(chunk.len() / 3), level);
                encoder.write_all(chunk)?;
                encoder.finish()
            })
            .collect();
        self.batch.clear();
        for member in members {
            self.inner.write_all(&member?)?;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.batch.push(chunk);
        }
        self.compress_batch()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let count = bytes.len().min(CHUNK_BYTES - self.chunk.len());
        self.chunk.extend_from_slice(&bytes[..count]);
        if self.chunk.len() == CHUNK_BYTES {
            let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES));
            self.batch.push(chunk);
            if self.batch.len() >= self.batch_len {
                self.compress_batch()?;
            }
        }
        Ok(count)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks that `tarball` has the size and SHA256 of `record`, reading it whole.
pub fn verify_snapshot(tarball: &Path, record: &SnapshotRecord) -> Result<(), ChrootError> {
    let unusable = |message: String| ChrootError::Snapshot {
        path: tarball.to_path_buf(),
        message,
    };
    let size = fs_err::metadata(tarball)?.len();
    if size != record.size {
        return Err(unusable(format!(
            "its size is {size} bytes but the manifest records {} (truncated or replaced)",
            record.size
        )));
    }
    let sha256 = sha256_file(tarball)?;
    if sha256 != record.sha256 {
        return Err(unusable(format!(
            "its SHA256 is {sha256} but the manifest records {}",
            record.sha256
        )));
    }
    Ok(())
}

/// Returns the lowercase hexadecimal SHA256 of the file at `path`.
pub fn sha256_file(path: &Path) -> Result<String, ChrootError> {
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
    Ok(hex(&hasher.finalize()))
}

/// Verifies `tarball` against `record` and extracts it into `target`, which must not exist.
/// Decompression runs in its own thread, ahead of the extraction.
pub fn restore_snapshot(
    tarball: &Path,
    record: &SnapshotRecord,
    target: &Path,
) -> Result<(), ChrootError> {
    verify_snapshot(tarball, record)?;
    fs_err::create_dir(target)?;
    let file = fs_err::File::open(tarball)?;
    let decoder = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file));
    let mut reader = ChannelReader::spawn(decoder);
    let mut archive = tar::Archive::new(&mut reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    archive
        .unpack(target)
        .map_err(|error| ChrootError::Snapshot {
            path: tarball.to_path_buf(),
            message: format!("failed to extract into `{}`: {error}", target.display()),
        })?;
    // Reads the rest of the stream, so that every gzip member's CRC is checked.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|error| ChrootError::Snapshot {
        path: tarball.to_path_buf(),
        message: error.to_string(),
    })?;
    Ok(())
}

/// A reader over the output of another reader that runs in its own thread.
struct ChannelReader {
    receiver: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    position: usize,
}

impl ChannelReader {
    fn spawn<R: Read + Send + 'static>(mut source: R) -> Self {
        let (sender, receiver) = mpsc::sync_channel(16);
        std::thread::spawn(move || loop {
            let mut buffer = vec![0_u8; 1 << 20];
            let result = read_full(&mut source, &mut buffer).map(|count| {
                buffer.truncate(count);
                buffer
            });
            let done = matches!(&result, Ok(buffer) if buffer.is_empty()) || result.is_err();
            if sender.send(result).is_err() || done {
                return;
            }
        });
        Self {
            receiver,
            current: Vec::new(),
            position: 0,
        }
    }
}

/// Reads until `buffer` is full or the source ends.
fn read_full(source: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match source.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.current.len() {
            oic_cancel::check().map_err(std::io::Error::other)?;
            match self.receiver.recv() {
                Ok(Ok(buffer)) => {
                    self.current = buffer;
                    self.position = 0;
                }
                Ok(Err(error)) => return Err(error),
                // The thread ended after sending the end of the stream or an error.
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
        let count = out.len().min(self.current.len() - self.position);
        out[..count].copy_from_slice(&self.current[self.position..self.position + count]);
        self.position += count;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_gzip_reads_back_whole() {
        let data: Vec<u8> = (0..(CHUNK_BYTES * 3 + 12345))
            .map(|index| u8::try_from(index % 251).unwrap())
            .collect();
        let mut writer = ParallelGzWriter::new(Vec::new(), LEVEL);
        writer.write_all(&data).unwrap();
        let compressed = writer.finish().unwrap();
        let mut decoded = Vec::new();
        flate2::read::MultiGzDecoder::new(&compressed[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, data);
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs_err::create_dir_all(root.join("usr/bin")).unwrap();
        fs_err::write(root.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("usr/bin", root.join("bin")).unwrap();
        let tarball = dir.path().join("build/chrootenv.tar.gz");

        let record = write_snapshot(&root, &tarball).unwrap();
        let target = dir.path().join("restored");
        restore_snapshot(&tarball, &record, &target).unwrap();

        assert_eq!(
            fs_err::read(target.join("usr/bin/tool")).unwrap(),
            b"#!/bin/sh\n"
        );
        assert_eq!(
            fs_err::read_link(target.join("bin")).unwrap(),
            Path::new("usr/bin")
        );
    }

    #[test]
    fn truncated_snapshot_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::write(root.join("file"), vec![7_u8; 100_000]).unwrap();
        let tarball = dir.path().join("chrootenv.tar.gz");
        let record = write_snapshot(&root, &tarball).unwrap();
        let bytes = fs_err::read(&tarball).unwrap();
        fs_err::write(&tarball, &bytes[..bytes.len() / 2]).unwrap();

        let error = restore_snapshot(&tarball, &record, &dir.path().join("t")).unwrap_err();

        assert!(error.to_string().contains("truncated"), "{error}");
        assert!(!dir.path().join("t").exists());
    }
}
