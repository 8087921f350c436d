//! XFS partitions. `mkfs.xfs` cannot fill a file system from a folder, so the file system is
//! made in a scratch file the size of the partition and loop-mounted on the build host. `cp -a`
//! fills it, keeping owners, modes, hard links, extended attributes and holes. It is then
//! unmounted and copied into the disk at the partition's offset without writing its holes.
//!
//! The mount uses `-o loop`, whose loop device the kernel detaches when the mount goes away.
//! The mount is released on return, on error, and by the signal thread on SIGINT and SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Command;

use oic_chroot::signals::{self, MountRegistration};

use crate::disk::{PartitionPlan, Tools};
use crate::error::ImageError;

/// A mounted scratch file system, unmounted when dropped.
struct ScratchMount {
    target: PathBuf,
    _registration: MountRegistration,
}

impl Drop for ScratchMount {
    fn drop(&mut self) {
        if let Err(error) = oic_chroot::mountinfo::unmount(&self.target) {
            tracing::error!(%error, target = %self.target.display(), "failed to release a mount");
        }
    }
}

/// Creates the XFS file system of `partition` inside `disk`, filled from `tree`.
pub fn make_xfs(
    tools: &dyn Tools,
    partition: &PartitionPlan,
    tree: Option<&Path>,
    disk: &Path,
) -> Result<(), ImageError> {
    let scratch = disk.with_extension(format!("xfs-{}", partition.id));
    let mount_point = disk.with_extension(format!("mnt-{}", partition.id));
    let result = fill_scratch(tools, partition, tree, &scratch, &mount_point)
        .and_then(|()| copy_into_disk(&scratch, disk, partition.start));
    let _ = fs_err::remove_file(&scratch);
    let _ = fs_err::remove_dir(&mount_point);
    result
}

fn fill_scratch(
    tools: &dyn Tools,
    partition: &PartitionPlan,
    tree: Option<&Path>,
    scratch: &Path,
    mount_point: &Path,
) -> Result<(), ImageError> {
    let file = fs_err::File::create(scratch)?;
    file.set_len(partition.size())?;
    drop(file);

    let mut command = tools.command("mkfs.xfs");
    command.args(["-f", "-q", "-m", &format!("uuid={}", partition.fs_uuid)]);
    if let Some(label) = &partition.label {
        command.args(["-L", label]);
    }
    command.arg(tools.path(scratch)?);
    oic_chroot::command::run(&mut command)?;

    let Some(tree) = tree else {
        return Ok(());
    };
    fs_err::create_dir_all(mount_point)?;
    let mounted = mount_scratch(scratch, mount_point)?;
    let mut copy = Command::new("cp");
    copy.args(["-a", "--sparse=always"]);
    copy.arg(format!("{}/.", tree.display()));
    copy.arg(mount_point);
    oic_chroot::command::run(&mut copy)?;
    drop(mounted);
    Ok(())
}

/// Mounts `scratch` through a loop device that the kernel detaches with the mount.
fn mount_scratch(scratch: &Path, mount_point: &Path) -> Result<ScratchMount, ImageError> {
    signals::install();
    let registration = signals::register_mount(mount_point.to_path_buf());
    let mut command = Command::new("mount");
    command.args(["-t", "xfs", "-o", "loop,nosuid,nodev"]);
    command.arg(scratch).arg(mount_point);
    match oic_chroot::command::run(&mut command) {
        Ok(_) => Ok(ScratchMount {
            target: mount_point.to_path_buf(),
            _registration: registration,
        }),
        Err(error) => Err(error.into()),
    }
}

/// Copies `scratch` into `disk` at `offset`, skipping its holes, so that the disk stays sparse.
fn copy_into_disk(scratch: &Path, disk: &Path, offset: u64) -> Result<(), ImageError> {
    let mut command = Command::new("dd");
    command.arg(format!("if={}", scratch.display()));
    command.arg(format!("of={}", disk.display()));
    command.args([
        "bs=1M",
        "conv=sparse,notrunc",
        "oflag=seek_bytes",
        "status=none",
    ]);
    command.arg(format!("seek={offset}"));
    oic_chroot::command::run(&mut command)?;
    Ok(())
}
