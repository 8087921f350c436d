//! The disk: a sparse raw file with a GPT or MBR partition table and one file system per
//! partition. Each file system is created with its content in one pass and without mounting:
//! `mkfs.ext4 -d` at the partition's offset, `mkfs.fat --offset` filled by mtools, and a swap
//! signature. XFS has no such option, so it goes through a loop-mounted scratch file (see
//! [`crate::xfs`]). The tools run through a [`Tools`] value, normally the provider's chroot
//! environment.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use oic_config::template::Disk;
use oic_config::validate::{DiskLayout, TableType};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::ImageError;

const SECTOR: u64 = 512;

/// Runs the disk tools and maps host paths to the paths those tools see.
pub trait Tools {
    /// Returns a command that runs `program`.
    fn command(&self, program: &str) -> Command;

    /// Returns the path under which the tools see the host path `path`.
    fn path(&self, path: &Path) -> Result<PathBuf, ImageError>;
}

/// One partition with everything needed to create it and to name it in `/etc/fstab`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionPlan {
    pub id: String,
    /// 1-based.
    pub number: usize,
    pub start: u64,
    /// The first byte after the partition.
    pub end: u64,
    /// A GPT type GUID, or a two-digit MBR type.
    pub type_code: String,
    /// GPT attribute bits, or the MBR active flag as bit 2.
    pub attributes: Vec<u8>,
    pub fs_type: Option<String>,
    pub label: Option<String>,
    pub mount_point: Option<String>,
    pub mount_options: Option<String>,
    /// The file system UUID, or for FAT the volume id in `XXXX-XXXX` form.
    pub fs_uuid: String,
    /// The GPT partition UUID.
    pub part_uuid: String,
}

impl PartitionPlan {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Returns whether the partition contains a FAT file system.
    pub fn is_fat(&self) -> bool {
        matches!(self.fs_type.as_deref(), Some("fat16" | "fat32" | "vfat"))
    }

    pub fn is_swap(&self) -> bool {
        self.fs_type.as_deref() == Some("swap")
    }
}

/// The disk of one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskPlan {
    pub size: u64,
    pub table: TableType,
    pub disk_id: String,
    pub partitions: Vec<PartitionPlan>,
}

impl DiskPlan {
    /// Returns the partition mounted at `/`.
    pub fn root(&self) -> Option<&PartitionPlan> {
        self.partitions
            .iter()
            .find(|partition| partition.mount_point.as_deref() == Some("/"))
    }

    /// Returns the partition that contains `/boot`: a `/boot` partition, else the root.
    pub fn boot(&self) -> Option<&PartitionPlan> {
        self.partitions
            .iter()
            .find(|partition| partition.mount_point.as_deref() == Some("/boot"))
            .or_else(|| self.root())
    }

    /// Returns the EFI system partition.
    pub fn esp(&self) -> Option<&PartitionPlan> {
        self.partitions.iter().find(|partition| {
            partition.type_code.eq_ignore_ascii_case(ESP_GUID) || partition.type_code == "ef"
        })
    }
}

const ESP_GUID: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

/// GPT type GUIDs and MBR types of the template's partition types.
fn type_codes(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "esp" => (ESP_GUID, "ef"),
        "bios-boot" => ("21686148-6449-6E6F-744E-656564454649", "ef02"),
        "linux" => ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "83"),
        "linux-root-amd64" => ("4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "83"),
        "linux-root-arm64" => ("B921B045-1DF0-41C3-AF44-4C6F280D3FAE", "83"),
        "linux-swap" => ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "82"),
        "linux-home" => ("933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "83"),
        "linux-var" => ("4D21B016-B534-45C2-A9FB-5C16E091FD2D", "83"),
        "linux-usr-amd64" => ("8484680C-9521-48C6-9C11-B0720656F69E", "83"),
        "linux-usr-arm64" => ("B0E01050-EE5F-4390-949A-9101B17104E9", "83"),
        _ => return None,
    })
}

/// Builds the plan of `disk` from its checked `layout`. UUIDs derive from `seed` and the
/// partition id, so that the same inputs give the same disk.
pub fn plan(disk: &Disk, layout: &DiskLayout, seed: &str) -> Result<DiskPlan, ImageError> {
    let mut partitions = Vec::new();
    for (index, (partition, placed)) in disk.partitions.iter().zip(&layout.partitions).enumerate() {
        let text = |value: &Option<oic_config::read::Spanned<String>>| {
            value.as_ref().map(|spanned| spanned.value.clone())
        };
        let flags: Vec<&str> = partition
            .flags
            .iter()
            .map(|flag| flag.value.as_str())
            .collect();
        let kind = text(&partition.kind).unwrap_or_else(|| {
            if flags.contains(&"esp") {
                "esp".to_owned()
            } else {
                "linux".to_owned()
            }
        });
        let type_code = match (&partition.type_uuid, type_codes(&kind), layout.table) {
            (Some(explicit), _, _) => explicit.value.clone(),
            (None, Some((guid, _)), TableType::Gpt) => guid.to_owned(),
            (None, Some((_, "ef02")), TableType::Mbr) => {
                return Err(ImageError::Unsupported {
                    message: format!(
                        "partition `{}`: a bios-boot partition needs a GPT disk",
                        placed.id
                    ),
                })
            }
            (None, Some((_, mbr)), TableType::Mbr) => mbr.to_owned(),
            (None, None, _) => {
                return Err(ImageError::Unsupported {
                    message: format!("partition `{}`: unknown type `{kind}`", placed.id),
                })
            }
        };
        let fs_type = placed.fs_type.clone();
        let fs_uuid = if matches!(fs_type.as_deref(), Some("fat16" | "fat32" | "vfat")) {
            volume_id(seed, &placed.id)
        } else {
            derived_uuid(seed, &format!("fs:{}", placed.id))
        };
        partitions.push(PartitionPlan {
            id: placed.id.clone(),
            number: index + 1,
            start: placed.start,
            end: placed.end,
            type_code,
            attributes: attributes(&flags, layout.table),
            fs_type,
            label: text(&partition.fs_label),
            mount_point: placed.mount_point.clone(),
            mount_options: text(&partition.mount_options),
            fs_uuid,
            part_uuid: derived_uuid(seed, &format!("part:{}", placed.id)),
        });
    }
    Ok(DiskPlan {
        size: layout.size,
        table: layout.table,
        disk_id: derived_uuid(seed, "disk"),
        partitions,
    })
}

/// GPT attribute bits for the template's flags: 0 required (`boot` on GPT is the ESP type, not
/// an attribute), 2 legacy BIOS bootable, 60 read-only, 62 hidden. On MBR, bit 2 marks the
/// active partition.
fn attributes(flags: &[&str], table: TableType) -> Vec<u8> {
    let mut bits = Vec::new();
    for flag in flags {
        let bit = match (*flag, table) {
            ("legacy_boot", _) | ("boot", TableType::Mbr) => 2,
            ("read-only", TableType::Gpt) => 60,
            ("hidden", TableType::Gpt) => 62,
            _ => continue,
        };
        if !bits.contains(&bit) {
            bits.push(bit);
        }
    }
    bits.sort_unstable();
    bits
}

/// Derives a version-4-shaped UUID from the SHA256 of `seed` and `purpose`.
pub fn derived_uuid(seed: &str, purpose: &str) -> String {
    let digest = Sha256::new()
        .chain_update(seed.as_bytes())
        .chain_update(b"\0")
        .chain_update(purpose.as_bytes())
        .finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = crate::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Derives a FAT volume id (`XXXX-XXXX`) from the SHA256 of `seed` and the partition id.
fn volume_id(seed: &str, id: &str) -> String {
    let uuid = derived_uuid(seed, &format!("fat:{id}")).to_uppercase();
    format!("{}-{}", &uuid[..4], &uuid[4..8])
}

/// Writes the `/etc/fstab` of `plan`: one line per mounted partition by UUID, the root first,
/// then by mount point depth and name, and swap last. Partitions without a mount point get none.
pub fn fstab(plan: &DiskPlan) -> String {
    let mut mounted: Vec<&PartitionPlan> = plan
        .partitions
        .iter()
        .filter(|partition| {
            partition
                .mount_point
                .as_deref()
                .is_some_and(|mp| mp.starts_with('/'))
        })
        .filter(|partition| !partition.is_swap())
        .collect();
    mounted.sort_by_key(|partition| {
        let mount_point = partition.mount_point.clone().unwrap_or_default();
        (mount_depth(&mount_point), mount_point)
    });
    let mut text = String::from(
        "# /etc/fstab: written by os-image-composer from the image template.\n\
         # <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\n",
    );
    for partition in mounted {
        let mount_point = partition.mount_point.as_deref().unwrap_or("/");
        let fs_type = match partition.fs_type.as_deref() {
            Some("fat16" | "fat32" | "vfat") => "vfat",
            Some(other) => other,
            None => continue,
        };
        let options = partition.mount_options.as_deref().unwrap_or("defaults");
        // XFS checks itself when mounted; fsck.xfs does nothing.
        let pass = match (mount_point, fs_type) {
            ("/", _) => 1,
            (_, "xfs") => 0,
            _ => 2,
        };
        let _ = writeln!(
            text,
            "UUID={}\t{mount_point}\t{fs_type}\t{options}\t0\t{pass}",
            partition.fs_uuid
        );
    }
    for partition in plan
        .partitions
        .iter()
        .filter(|partition| partition.is_swap())
    {
        let _ = writeln!(text, "UUID={}\tnone\tswap\tsw\t0\t0", partition.fs_uuid);
    }
    text
}

/// Counts the path components of a mount point: 0 for `/`, 1 for `/srv`, 2 for `/boot/efi`.
pub fn mount_depth(mount_point: &str) -> usize {
    mount_point
        .split('/')
        .filter(|part| !part.is_empty())
        .count()
}

/// Writes the sfdisk script of `plan`.
pub fn sfdisk_script(plan: &DiskPlan) -> String {
    let mut script = String::new();
    match plan.table {
        TableType::Gpt => {
            let _ = writeln!(
                script,
                "label: gpt\nlabel-id: {}",
                plan.disk_id.to_uppercase()
            );
        }
        TableType::Mbr => {
            let id = &plan.disk_id[..8];
            let _ = writeln!(script, "label: dos\nlabel-id: 0x{id}");
        }
    }
    script.push_str("unit: sectors\nsector-size: 512\n\n");
    for partition in &plan.partitions {
        let mut line = format!(
            "start={}, size={}, type={}",
            partition.start / SECTOR,
            partition.size() / SECTOR,
            partition.type_code
        );
        match plan.table {
            TableType::Gpt => {
                let _ = write!(
                    line,
                    ", uuid={}, name=\"{}\"",
                    partition.part_uuid.to_uppercase(),
                    partition.id
                );
                if !partition.attributes.is_empty() {
                    let bits: Vec<String> = partition
                        .attributes
                        .iter()
                        .map(|bit| format!("GUID:{bit}"))
                        .collect();
                    let _ = write!(line, ", attrs=\"{}\"", bits.join(" "));
                }
            }
            TableType::Mbr => {
                if partition.attributes.contains(&2) {
                    line.push_str(", bootable");
                }
            }
        }
        script.push_str(&line);
        script.push('\n');
    }
    script
}

/// Bytes a folder tree takes on disk: file sizes rounded up to 4 KiB, plus 4 KiB per entry for
/// inodes and folders.
pub fn tree_bytes(tree: &Path) -> Result<u64, ImageError> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0_u64;
    let mut pending = vec![tree.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            let metadata = fs_err::symlink_metadata(entry.path())?;
            total += metadata.size().div_ceil(4096) * 4096 + 4096;
            if metadata.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(total)
}

/// Returns the programs that [`write_disk`] runs for `plan`, each once, in the order it first
/// needs them.
pub fn required_tools(plan: &DiskPlan) -> Vec<String> {
    let mut tools = vec!["sfdisk".to_owned()];
    for partition in &plan.partitions {
        let programs = match partition.fs_type.as_deref() {
            Some(fs_type @ ("ext2" | "ext3" | "ext4")) => vec![format!("mkfs.{fs_type}")],
            Some("fat16" | "fat32" | "vfat") => vec!["mkfs.fat".to_owned(), "mcopy".to_owned()],
            Some("swap") => vec!["mkswap".to_owned()],
            Some("xfs") => vec!["mkfs.xfs".to_owned()],
            _ => Vec::new(),
        };
        for program in programs {
            if !tools.contains(&program) {
                tools.push(program);
            }
        }
    }
    tools
}

/// Creates the sparse disk file at `disk` with the partition table and a file system in every
/// partition that names one, filled from `trees/{partition id}` when that folder exists.
pub fn write_disk(
    tools: &dyn Tools,
    plan: &DiskPlan,
    trees: &Path,
    disk: &Path,
) -> Result<(), ImageError> {
    let sizes = content_sizes(plan, trees)?;
    check_contents_fit(plan, &sizes)?;
    check_free_space(&sizes, disk)?;

    let file = fs_err::File::create(disk)?;
    file.set_len(plan.size)?;
    drop(file);

    let disk_inside = tools.path(disk)?;
    let mut command = tools.command("sfdisk");
    command.args([
        "--quiet",
        "--no-reread",
        "--no-tell-kernel",
        "--wipe",
        "always",
    ]);
    command.arg(&disk_inside);
    crate::command::run_with_input(&mut command, &sfdisk_script(plan))?;

    for partition in &plan.partitions {
        let tree = trees.join(&partition.id);
        let tree = tree.is_dir().then_some(tree);
        create_filesystem(tools, partition, tree.as_deref(), disk, &disk_inside)?;
    }
    Ok(())
}

/// The bytes each partition's tree takes, by partition id, for the partitions that have one.
fn content_sizes(plan: &DiskPlan, trees: &Path) -> Result<Vec<(String, u64)>, ImageError> {
    let mut sizes = Vec::new();
    for partition in &plan.partitions {
        let tree = trees.join(&partition.id);
        if tree.is_dir() {
            sizes.push((partition.id.clone(), tree_bytes(&tree)?));
        }
    }
    Ok(sizes)
}

/// Fails when a partition's content does not fit, naming both sizes.
fn check_contents_fit(plan: &DiskPlan, sizes: &[(String, u64)]) -> Result<(), ImageError> {
    for (id, needed) in sizes {
        let Some(partition) = plan.partitions.iter().find(|partition| &partition.id == id) else {
            continue;
        };
        // File system metadata (inode tables, journal, FAT) takes about a tenth (an estimate).
        let usable = partition.size() / 10 * 9;
        if *needed > usable {
            return Err(ImageError::TooSmall {
                partition: id.clone(),
                needed: *needed,
                available: partition.size(),
            });
        }
    }
    Ok(())
}

/// Fails before the disk file exists when its folder lacks room for the content.
fn check_free_space(sizes: &[(String, u64)], disk: &Path) -> Result<(), ImageError> {
    let folder = disk.parent().unwrap_or(Path::new("."));
    let stat = nix::sys::statvfs::statvfs(folder).map_err(std::io::Error::from)?;
    let free = stat.blocks_available() * stat.fragment_size();
    let needed: u64 = sizes.iter().map(|(_, bytes)| bytes).sum();
    if needed > free {
        return Err(ImageError::NoSpace {
            path: folder.to_path_buf(),
            needed,
            free,
        });
    }
    Ok(())
}

fn create_filesystem(
    tools: &dyn Tools,
    partition: &PartitionPlan,
    tree: Option<&Path>,
    disk: &Path,
    disk_inside: &Path,
) -> Result<(), ImageError> {
    let Some(fs_type) = partition.fs_type.as_deref() else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    match fs_type {
        "ext2" | "ext3" | "ext4" => make_ext(tools, partition, fs_type, tree, disk_inside)?,
        "fat16" | "fat32" | "vfat" => make_fat(tools, partition, tree, disk_inside)?,
        "swap" => make_swap(tools, partition, disk)?,
        "xfs" => crate::xfs::make_xfs(tools, partition, tree, disk)?,
        other => {
            return Err(ImageError::Unsupported {
                message: format!(
                    "partition `{}`: file system `{other}` cannot be created yet; use ext4, \
                     xfs, fat32 or swap",
                    partition.id
                ),
            })
        }
    }
    tracing::info!(partition = %partition.id, fs_type, elapsed = ?started.elapsed(), "created a file system");
    Ok(())
}

fn make_ext(
    tools: &dyn Tools,
    partition: &PartitionPlan,
    fs_type: &str,
    tree: Option<&Path>,
    disk_inside: &Path,
) -> Result<(), ImageError> {
    let mut command = tools.command(&format!("mkfs.{fs_type}"));
    command.args(["-F", "-q", "-b", "4096", "-U", &partition.fs_uuid]);
    if let Some(label) = &partition.label {
        command.args(["-L", label]);
    }
    command.args(["-E", &format!("offset={},root_owner=0:0", partition.start)]);
    if let Some(tree) = tree {
        command.arg("-d").arg(tools.path(tree)?);
    }
    command.arg(disk_inside);
    command.arg(format!("{}k", partition.size() / 1024));
    oic_chroot::command::run(&mut command)?;
    Ok(())
}

/// Sectors per cluster for a FAT file system of `bytes`: the largest of 8, 4, 2 and 1 that
/// gives FAT32 at least 65,525 clusters, or FAT16 at most 65,524.
fn cluster_sectors(bytes: u64, fat_bits: u32) -> Option<u64> {
    let clusters = |sectors: u64| bytes / SECTOR / sectors;
    if fat_bits == 32 {
        [8, 4, 2, 1]
            .into_iter()
            .find(|&s| clusters(s) >= 65_525 + 16)
    } else {
        [1, 2, 4, 8, 16, 32, 64]
            .into_iter()
            .find(|&s| clusters(s) <= 65_524)
    }
}

fn make_fat(
    tools: &dyn Tools,
    partition: &PartitionPlan,
    tree: Option<&Path>,
    disk_inside: &Path,
) -> Result<(), ImageError> {
    let bits = if partition.fs_type.as_deref() == Some("fat16") {
        16
    } else {
        32
    };
    let sectors =
        cluster_sectors(partition.size(), bits).ok_or_else(|| ImageError::Unsupported {
            message: format!(
            "partition `{}`: {} bytes are too few for FAT{bits}: make it at least 33 MiB or use \
             fat16",
            partition.id,
            partition.size()
        ),
        })?;
    let mut command = tools.command("mkfs.fat");
    command.args([
        "-F",
        &bits.to_string(),
        "-S",
        "512",
        "-s",
        &sectors.to_string(),
    ]);
    command.arg(format!("--offset={}", partition.start / SECTOR));
    command.args(["-i", &partition.fs_uuid.replace('-', "")]);
    if let Some(label) = &partition.label {
        command.args(["-n", label]);
    }
    command.arg(disk_inside);
    command.arg((partition.size() / 1024).to_string());
    oic_chroot::command::run(&mut command)?;

    let Some(tree) = tree else {
        return Ok(());
    };
    let entries: Vec<PathBuf> = fs_err::read_dir(tree)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    if entries.is_empty() {
        return Ok(());
    }
    let image = format!("{}@@{}", disk_inside.display(), partition.start);
    let mut command = tools.command("mcopy");
    command.env("MTOOLS_SKIP_CHECK", "1");
    command.args(["-s", "-p", "-m", "-Q", "-i", &image]);
    for entry in &entries {
        command.arg(tools.path(entry)?);
    }
    command.arg("::/");
    oic_chroot::command::run(&mut command)?;
    Ok(())
}

/// Writes a swap signature: `mkswap` on a scratch file the size of the partition, whose first
/// 64 KiB are then copied into the disk. Swap is never enabled on the build host.
fn make_swap(tools: &dyn Tools, partition: &PartitionPlan, disk: &Path) -> Result<(), ImageError> {
    use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
    let scratch = disk.with_extension(format!("swap-{}", partition.id));
    let file = fs_err::File::create(&scratch)?;
    file.set_len(partition.size())?;
    drop(file);
    let result = (|| {
        let mut command = tools.command("mkswap");
        command.args(["-U", &partition.fs_uuid]);
        if let Some(label) = &partition.label {
            command.args(["-L", label]);
        }
        command.arg(tools.path(&scratch)?);
        oic_chroot::command::run(&mut command)?;

        let mut header = vec![0_u8; 64 * 1024];
        fs_err::File::open(&scratch)?.read_exact(&mut header)?;
        let mut target = fs_err::OpenOptions::new().write(true).open(disk)?;
        target.seek(SeekFrom::Start(partition.start))?;
        target.write_all(&header)?;
        Ok::<(), ImageError>(())
    })();
    let _ = fs_err::remove_file(&scratch);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(id: &str, mount_point: Option<&str>, fs_type: &str) -> PartitionPlan {
        PartitionPlan {
            id: id.to_owned(),
            number: 1,
            start: 1 << 20,
            end: 2 << 20,
            type_code: "0FC63DAF-8483-4772-8E79-3D69D8477DE4".to_owned(),
            attributes: Vec::new(),
            fs_type: Some(fs_type.to_owned()),
            label: None,
            mount_point: mount_point.map(str::to_owned),
            mount_options: None,
            fs_uuid: format!("uuid-{id}"),
            part_uuid: String::new(),
        }
    }

    #[test]
    fn required_tools_follow_file_systems() {
        let plan = DiskPlan {
            size: 0,
            table: TableType::Gpt,
            disk_id: String::new(),
            partitions: vec![
                partition("esp", Some("/boot/efi"), "fat32"),
                partition("root", Some("/"), "ext4"),
                partition("home", Some("/home"), "ext4"),
                partition("swap", None, "swap"),
            ],
        };
        assert_eq!(
            required_tools(&plan),
            ["sfdisk", "mkfs.fat", "mcopy", "mkfs.ext4", "mkswap"]
        );
    }

    #[test]
    fn fstab_orders_root_first_and_swap_last() {
        let plan = DiskPlan {
            size: 0,
            table: TableType::Gpt,
            disk_id: String::new(),
            partitions: vec![
                partition("swap", Some("none"), "swap"),
                partition("var-log", Some("/var/log"), "ext4"),
                partition("esp", Some("/boot/efi"), "fat32"),
                partition("data", None, "ext4"),
                partition("var", Some("/var"), "xfs"),
                partition("root", Some("/"), "ext4"),
            ],
        };
        let lines: Vec<String> = fstab(&plan)
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        assert_eq!(
            lines,
            [
                "UUID=uuid-root\t/\text4\tdefaults\t0\t1",
                "UUID=uuid-var\t/var\txfs\tdefaults\t0\t0",
                "UUID=uuid-esp\t/boot/efi\tvfat\tdefaults\t0\t2",
                "UUID=uuid-var-log\t/var/log\text4\tdefaults\t0\t2",
                "UUID=uuid-swap\tnone\tswap\tsw\t0\t0",
            ]
        );
    }

    #[test]
    fn uuids_are_stable_and_distinct() {
        let first = derived_uuid("seed", "fs:root");
        assert_eq!(first, derived_uuid("seed", "fs:root"));
        assert_ne!(first, derived_uuid("seed", "fs:esp"));
        assert_ne!(first, derived_uuid("other", "fs:root"));
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "4");
        assert_eq!(volume_id("seed", "esp").len(), 9);
    }

    #[test]
    fn fat_cluster_sizes_keep_fat32_valid() {
        assert_eq!(cluster_sectors(128 << 20, 32), Some(2));
        assert_eq!(cluster_sectors(512 << 20, 32), Some(8));
        assert_eq!(cluster_sectors(40 << 20, 32), Some(1));
        assert_eq!(cluster_sectors(16 << 20, 32), None);
        assert_eq!(cluster_sectors(16 << 20, 16), Some(1));
    }
}
