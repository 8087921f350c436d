//! Disks written with the host's own tools (sfdisk, mkfs.ext4, mkfs.fat, mtools, mkswap,
//! mkfs.xfs), then read back with sfdisk, debugfs, mtools, blkid and a loop mount of the XFS
//! partition. XFS and the loop mount need root; those cases are skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use oic_config::validate::TableType;
use oic_image::disk::{self, DiskPlan, PartitionPlan, Tools};
use oic_image::ImageError;

const MIB: u64 = 1 << 20;

/// Runs the tools on the host, where every path is its own.
struct HostTools;

impl Tools for HostTools {
    fn command(&self, program: &str) -> Command {
        Command::new(program)
    }

    fn path(&self, path: &Path) -> Result<PathBuf, ImageError> {
        Ok(path.to_path_buf())
    }
}

fn partition(id: &str, number: usize, range: (u64, u64), fs_type: &str) -> PartitionPlan {
    let type_code = match fs_type {
        "fat32" => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
        "swap" => "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
        _ => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    };
    PartitionPlan {
        id: id.to_owned(),
        number,
        start: range.0 * MIB,
        end: range.1 * MIB,
        type_code: type_code.to_owned(),
        attributes: Vec::new(),
        fs_type: Some(fs_type.to_owned()),
        label: Some(id.to_uppercase()),
        mount_point: None,
        mount_options: None,
        fs_uuid: if fs_type == "fat32" {
            "1234-ABCD".to_owned()
        } else {
            disk::derived_uuid("test", id)
        },
        part_uuid: disk::derived_uuid("test", &format!("part-{id}")),
    }
}

fn output(command: &mut Command) -> String {
    let result = command.output().expect("the tool runs");
    assert!(
        result.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    String::from_utf8_lossy(&result.stdout).into_owned()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let target = root.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, content).unwrap();
    }
}

fn plan(partitions: Vec<PartitionPlan>, size_mib: u64, table: TableType) -> DiskPlan {
    DiskPlan {
        size: size_mib * MIB,
        table,
        disk_id: disk::derived_uuid("test", "disk"),
        partitions,
    }
}

#[test]
fn gpt_disk_holds_each_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let trees = dir.path().join("trees");
    write_tree(
        &trees.join("esp"),
        &[("EFI/BOOT/BOOTX64.EFI", "efi binary")],
    );
    write_tree(
        &trees.join("root"),
        &[("etc/hostname", "disk-test\n"), ("usr/bin/tool", "x")],
    );
    let mut partitions = vec![
        partition("esp", 1, (1, 41), "fat32"),
        partition("root", 2, (41, 141), "ext4"),
        partition("swap", 3, (141, 157), "swap"),
    ];
    if is_root() {
        write_tree(&trees.join("data"), &[("srv/data.txt", "on xfs\n")]);
        partitions.push(partition("data", 4, (157, 477), "xfs"));
    }
    let plan = plan(partitions, 480, TableType::Gpt);
    let image = dir.path().join("disk.raw");

    disk::write_disk(&HostTools, &plan, &trees, &image).unwrap();

    let metadata = std::fs::metadata(&image).unwrap();
    assert_eq!(metadata.len(), 480 * MIB);
    let table = output(Command::new("sfdisk").arg("--json").arg(&image));
    assert!(table.contains("\"label\": \"gpt\""), "{table}");
    assert!(table.contains("\"name\": \"root\""), "{table}");
    assert!(
        table.contains(&plan.partitions[1].part_uuid.to_uppercase()),
        "{table}"
    );

    let root_fs = format!("{}?offset={}", image.display(), 41 * MIB);
    let hostname = output(Command::new("debugfs").args(["-R", "cat /etc/hostname", &root_fs]));
    assert_eq!(hostname, "disk-test\n");
    let probe = output(
        Command::new("blkid")
            .args(["-p", "-O", &(41 * MIB).to_string()])
            .arg(&image),
    );
    assert!(probe.contains(&plan.partitions[1].fs_uuid), "{probe}");
    assert!(probe.contains("TYPE=\"ext4\""), "{probe}");

    let esp = format!("{}@@{}", image.display(), MIB);
    let listing = output(Command::new("mdir").env("MTOOLS_SKIP_CHECK", "1").args([
        "-i",
        &esp,
        "-b",
        "::/EFI/BOOT",
    ]));
    assert!(listing.contains("BOOTX64.EFI"), "{listing}");
    let probe = output(
        Command::new("blkid")
            .args(["-p", "-O", &MIB.to_string()])
            .arg(&image),
    );
    assert!(probe.contains("UUID=\"1234-ABCD\""), "{probe}");
    assert!(probe.contains("LABEL=\"ESP\""), "{probe}");

    let probe = output(
        Command::new("blkid")
            .args(["-p", "-O", &(141 * MIB).to_string()])
            .arg(&image),
    );
    assert!(probe.contains("TYPE=\"swap\""), "{probe}");
    assert!(probe.contains(&plan.partitions[2].fs_uuid), "{probe}");

    if is_root() {
        check_xfs(&image, dir.path(), &plan.partitions[3]);
    }
}

/// Loop-mounts the XFS partition read-only and reads the file back.
fn check_xfs(image: &Path, dir: &Path, partition: &PartitionPlan) {
    let probe = output(
        Command::new("blkid")
            .args(["-p", "-O", &partition.start.to_string()])
            .arg(image),
    );
    assert!(probe.contains("TYPE=\"xfs\""), "{probe}");
    assert!(probe.contains(&partition.fs_uuid), "{probe}");
    let mount_point = dir.join("mnt");
    std::fs::create_dir(&mount_point).unwrap();
    let options = format!(
        "loop,ro,offset={},sizelimit={}",
        partition.start,
        partition.size()
    );
    output(
        Command::new("mount")
            .args(["-t", "xfs", "-o", &options])
            .arg(image)
            .arg(&mount_point),
    );
    let content = std::fs::read_to_string(mount_point.join("srv/data.txt"));
    output(Command::new("umount").arg(&mount_point));
    assert_eq!(content.unwrap(), "on xfs\n");
    let loops = output(Command::new("losetup").arg("-a"));
    assert!(!loops.contains(&image.display().to_string()), "{loops}");
}

#[test]
fn mbr_disk_marks_the_active_partition() {
    let dir = tempfile::tempdir().unwrap();
    let mut boot = partition("boot", 1, (1, 41), "fat32");
    boot.type_code = "ef".to_owned();
    boot.attributes = vec![2];
    let mut root = partition("root", 2, (41, 99), "ext4");
    root.type_code = "83".to_owned();
    let plan = plan(vec![boot, root], 100, TableType::Mbr);
    let image = dir.path().join("disk.raw");

    disk::write_disk(&HostTools, &plan, &dir.path().join("trees"), &image).unwrap();

    let table = output(Command::new("sfdisk").arg("--dump").arg(&image));
    assert!(table.contains("label: dos"), "{table}");
    assert!(table.contains("type=ef, bootable"), "{table}");
    assert!(table.contains("type=83"), "{table}");
}

#[test]
fn content_larger_than_partition_fails_with_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let trees = dir.path().join("trees");
    let big = "x".repeat(6 * 1024 * 1024);
    write_tree(&trees.join("root"), &[("big", big.as_str())]);
    let plan = plan(
        vec![partition("root", 1, (1, 6), "ext4")],
        8,
        TableType::Gpt,
    );
    let image = dir.path().join("disk.raw");

    let error = disk::write_disk(&HostTools, &plan, &trees, &image).unwrap_err();

    let message = error.to_string();
    assert!(
        message.contains("Partition `root` is too small"),
        "{message}"
    );
    assert!(message.contains("the partition has 5242880"), "{message}");
    assert!(
        !image.exists(),
        "the disk file was created before the check"
    );
}

#[test]
fn unknown_file_system_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        vec![partition("data", 1, (1, 6), "btrfs")],
        8,
        TableType::Gpt,
    );

    let error =
        disk::write_disk(&HostTools, &plan, dir.path(), &dir.path().join("d.raw")).unwrap_err();

    assert!(
        error
            .to_string()
            .contains("file system `btrfs` cannot be created yet"),
        "{error}"
    );
}
