//! Disk layout checks: partitions inside the disk, clear of the partition tables, in order, not
//! overlapping and aligned to 1 MiB.

use serde::Serialize;

use crate::diag::{Diagnostics, Loc};
use crate::read::{child, item, Spanned};
use crate::size::{format_size, parse_size, MIB};
use crate::template::{Disk, Partition};

/// Bytes at the end of a GPT disk that hold the backup header and the backup partition entries:
/// one 512-byte header sector plus 32 sectors of 128 entries of 128 bytes.
pub const GPT_BACKUP_BYTES: u64 = 33 * 512;

/// Partitions start and end on this boundary.
pub const ALIGNMENT: u64 = MIB;

/// The largest disk an MBR partition table can address with 512-byte sectors.
pub const MBR_MAX_BYTES: u64 = (1 << 32) * 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableType {
    Gpt,
    Mbr,
}

/// A checked partition with its byte range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLayout {
    pub id: String,
    pub start: u64,
    /// The first byte after the partition.
    pub end: u64,
    pub fs_type: Option<String>,
    pub mount_point: Option<String>,
}

/// A checked disk layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskLayout {
    pub size: u64,
    pub table: TableType,
    pub partitions: Vec<PartitionLayout>,
}

const PATH: &str = "disk";

/// Checks a disk section and computes its layout. Problems go to `diagnostics`; the layout is
/// returned only when there are none.
pub fn check_disk(disk: &Disk, diagnostics: &mut Diagnostics) -> Option<DiskLayout> {
    let before = diagnostics.len();
    let size = disk_size(disk, diagnostics);
    let table = table_type(disk, diagnostics);
    if disk.partitions.is_empty() {
        diagnostics.push(
            &disk.loc,
            &child(PATH, "partitions"),
            "A raw image needs at least one partition",
        );
    }
    let (Some(size), Some(table)) = (size, table) else {
        return None;
    };

    let last_usable = match table {
        TableType::Gpt => (size - GPT_BACKUP_BYTES) / ALIGNMENT * ALIGNMENT,
        TableType::Mbr => size / ALIGNMENT * ALIGNMENT,
    };
    if table == TableType::Mbr && size > MBR_MAX_BYTES {
        let message = format!(
            "Disk size {} is larger than the 2TiB an MBR table can address: use \
             partitionTableType: gpt",
            format_size(size)
        );
        diagnostics.push(&disk.loc, &child(PATH, "size"), message);
    }
    if table == TableType::Mbr && disk.partitions.len() > 4 {
        let message = format!(
            "An MBR table holds at most 4 primary partitions, found {}: use \
             partitionTableType: gpt",
            disk.partitions.len()
        );
        diagnostics.push(&disk.loc, &child(PATH, "partitions"), message);
    }

    let mut partitions = Vec::new();
    let mut previous_end = 0;
    let count = disk.partitions.len();
    for (index, partition) in disk.partitions.iter().enumerate() {
        let path = item(&child(PATH, "partitions"), index);
        let bounds = Bounds {
            size,
            last_usable,
            table,
            previous_end,
            is_last: index + 1 == count,
        };
        let (layout, end) = check_partition(partition, &path, &bounds, diagnostics);
        // A partition with other problems still occupies its range, so later ones are checked
        // for overlap against it.
        previous_end = previous_end.max(end.unwrap_or(0));
        partitions.extend(layout);
    }

    (diagnostics.len() == before).then_some(DiskLayout {
        size,
        table,
        partitions,
    })
}

fn disk_size(disk: &Disk, diagnostics: &mut Diagnostics) -> Option<u64> {
    let path = child(PATH, "size");
    let Some(size) = &disk.size else {
        diagnostics.push(
            &disk.loc,
            &path,
            "Missing required key: a raw image needs a disk size",
        );
        return None;
    };
    let bytes = match parse_size(&size.value) {
        Ok(bytes) => bytes,
        Err(message) => {
            diagnostics.push(&size.loc, &path, message);
            return None;
        }
    };
    if bytes < 8 * MIB || bytes % ALIGNMENT != 0 {
        let message = format!(
            "Disk size `{}` ({bytes} bytes) must be a whole number of MiB and at least 8MiB, \
             such as {}",
            size.value,
            format_size((bytes / MIB).max(8) * MIB)
        );
        diagnostics.push(&size.loc, &path, message);
        return None;
    }
    Some(bytes)
}

fn table_type(disk: &Disk, diagnostics: &mut Diagnostics) -> Option<TableType> {
    let path = child(PATH, "partitionTableType");
    match disk
        .partition_table_type
        .as_ref()
        .map(|t| (t.value.as_str(), &t.loc))
    {
        None | Some(("gpt", _)) => Some(TableType::Gpt),
        Some(("mbr" | "msdos" | "dos", _)) => Some(TableType::Mbr),
        Some((other, loc)) => {
            let message = format!("Unknown partition table type `{other}`: use gpt or mbr");
            diagnostics.push(loc, &path, message);
            None
        }
    }
}

struct Bounds {
    size: u64,
    last_usable: u64,
    table: TableType,
    previous_end: u64,
    is_last: bool,
}

/// Checks one partition. Returns its layout when it has no problems, and its end when that could
/// be read.
fn check_partition(
    partition: &Partition,
    path: &str,
    bounds: &Bounds,
    diagnostics: &mut Diagnostics,
) -> (Option<PartitionLayout>, Option<u64>) {
    let start = offset(
        partition.start.as_ref(),
        &partition.loc,
        &child(path, "start"),
        diagnostics,
    );
    let end = partition_end(partition, path, bounds, diagnostics);
    let (Some(start), Some(end)) = (start, end) else {
        return (None, end);
    };
    let id = partition
        .id
        .as_ref()
        .map_or_else(|| format!("#{path}"), |id| id.value.clone());
    let start_loc = partition.start.as_ref().map_or(&partition.loc, |s| &s.loc);
    let end_loc = partition.end.as_ref().map_or(&partition.loc, |e| &e.loc);

    let problems = [
        (
            start < ALIGNMENT,
            start_loc,
            "start",
            first_mib_message(start),
        ),
        (
            start % ALIGNMENT != 0,
            start_loc,
            "start",
            alignment_message("Start", start),
        ),
        (
            end % ALIGNMENT != 0,
            end_loc,
            "end",
            alignment_message("End", end),
        ),
        (end <= start, end_loc, "end", order_message(start, end)),
        (
            start < bounds.previous_end,
            start_loc,
            "start",
            overlap_message(start, bounds.previous_end),
        ),
        (
            end > bounds.last_usable,
            end_loc,
            "end",
            outside_message(end, bounds),
        ),
        (
            is_small_fat32(partition, start, end),
            end_loc,
            "end",
            fat32_message(start, end),
        ),
    ];
    let mut ok = true;
    for (failed, loc, key, message) in problems {
        if failed {
            diagnostics.push(loc, &child(path, key), message);
            ok = false;
        }
    }

    let layout = ok.then(|| PartitionLayout {
        id,
        start,
        end,
        fs_type: partition.fs_type.as_ref().map(|f| f.value.clone()),
        mount_point: partition.mount_point.as_ref().map(|m| m.value.clone()),
    });
    (layout, Some(end))
}

fn offset(
    value: Option<&Spanned<String>>,
    loc: &Loc,
    path: &str,
    diagnostics: &mut Diagnostics,
) -> Option<u64> {
    let Some(value) = value else {
        diagnostics.push(loc, path, "Missing required key");
        return None;
    };
    match parse_size(&value.value) {
        Ok(bytes) => Some(bytes),
        Err(message) => {
            diagnostics.push(&value.loc, path, message);
            None
        }
    }
}

/// Reads a partition's end; `0` means the rest of the disk and is allowed only on the last one.
fn partition_end(
    partition: &Partition,
    path: &str,
    bounds: &Bounds,
    diagnostics: &mut Diagnostics,
) -> Option<u64> {
    let end = offset(
        partition.end.as_ref(),
        &partition.loc,
        &child(path, "end"),
        diagnostics,
    )?;
    if end != 0 {
        return Some(end);
    }
    if !bounds.is_last {
        let loc = partition.end.as_ref().map_or(&partition.loc, |e| &e.loc);
        let message = "End 0 (the rest of the disk) is allowed only on the last partition";
        diagnostics.push(loc, &child(path, "end"), message);
        return None;
    }
    Some(bounds.last_usable)
}

/// FAT32 needs at least 65,525 clusters. With the smallest cluster of 512 bytes, the clusters, two
/// FATs and the reserved sectors take just over 32MiB.
pub const FAT32_MIN_BYTES: u64 = 33 * MIB;

fn is_small_fat32(partition: &Partition, start: u64, end: u64) -> bool {
    let is_fat32 = partition
        .fs_type
        .as_ref()
        .is_some_and(|f| f.value == "fat32");
    is_fat32 && end > start && end - start < FAT32_MIN_BYTES
}

fn fat32_message(start: u64, end: u64) -> String {
    format!(
        "A {} partition is too small for FAT32, which needs at least {}: make it larger or \
         use fsType: fat16",
        format_size(end.saturating_sub(start)),
        format_size(FAT32_MIN_BYTES)
    )
}

fn first_mib_message(start: u64) -> String {
    format!(
        "Start {} overlaps the partition table in the first MiB: start at 1MiB or later",
        format_size(start)
    )
}

fn alignment_message(bound: &str, bytes: u64) -> String {
    let down = bytes / ALIGNMENT * ALIGNMENT;
    if down == 0 {
        return format!(
            "{bound} {} is not aligned to 1MiB: use 1MiB",
            format_size(bytes)
        );
    }
    format!(
        "{bound} {} is not aligned to 1MiB: use {} or {}",
        format_size(bytes),
        format_size(down),
        format_size(down + ALIGNMENT)
    )
}

fn order_message(start: u64, end: u64) -> String {
    format!(
        "End {} is not after start {}",
        format_size(end),
        format_size(start)
    )
}

fn overlap_message(start: u64, previous_end: u64) -> String {
    format!(
        "Start {} overlaps the previous partition, which ends at {}: partitions must be in \
         order and must not overlap",
        format_size(start),
        format_size(previous_end)
    )
}

fn outside_message(end: u64, bounds: &Bounds) -> String {
    match bounds.table {
        TableType::Gpt if end <= bounds.size => format!(
            "End {} reaches into the GPT backup header in the last {} bytes of the {} disk: \
             end at {} or use end: \"0\" for the rest of the disk",
            format_size(end),
            GPT_BACKUP_BYTES,
            format_size(bounds.size),
            format_size(bounds.last_usable)
        ),
        _ => format!(
            "End {} is beyond the end of the {} disk: make the disk larger or the partition \
             smaller",
            format_size(end),
            format_size(bounds.size)
        ),
    }
}
