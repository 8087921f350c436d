//! Bootloaders of EFI images: GRUB built with `grub-mkimage` from the image's own modules, or
//! systemd-boot with Boot Loader Specification entries. Both boot the kernel of the resolved
//! set, found through dpkg's file list of that package, with the template's command line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use oic_chroot::dpkg::chroot_command;
use serde::Serialize;

use crate::disk::DiskPlan;
use crate::error::ImageError;

/// The bootloader section of the template, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootloaderSettings {
    /// `grub` or `systemd-boot`.
    pub provider: String,
    /// `efi` or `legacy`.
    pub boot_type: String,
    /// `x86_64` or `aarch64`.
    pub arch: String,
    /// The kernel command line, without `root=`.
    pub cmdline: String,
    /// The name of boot menu entries and of the ESP folder with systemd-boot's kernels.
    pub entry_name: String,
}

/// The kernel the image boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// The package that installs it.
    pub package: String,
    /// The release, as in `/boot/vmlinuz-{release}` and `/usr/lib/modules/{release}`.
    pub release: String,
}

impl Kernel {
    fn image(&self) -> String {
        format!("vmlinuz-{}", self.release)
    }

    fn initrd(&self) -> String {
        format!("initrd.img-{}", self.release)
    }
}

/// Finds the kernel installed by the packages named `candidates` (the resolved packages whose
/// names start with `linux-image-`), from their dpkg file lists in `root`. More than one
/// kernel is an error, because the template's kernel section must name one.
pub fn find_kernel(root: &Path, candidates: &[String]) -> Result<Kernel, ImageError> {
    let info = root.join("var/lib/dpkg/info");
    let mut kernels = Vec::new();
    for package in candidates {
        let list = [
            format!("{package}.list"),
            format!("{package}:amd64.list"),
            format!("{package}:arm64.list"),
        ]
        .into_iter()
        .map(|name| info.join(name))
        .find(|path| path.is_file());
        let Some(list) = list else {
            continue;
        };
        for line in fs_err::read_to_string(&list)?.lines() {
            if let Some(release) = line.strip_prefix("/boot/vmlinuz-") {
                kernels.push(Kernel {
                    package: package.clone(),
                    release: release.to_owned(),
                });
            }
        }
    }
    match kernels.len() {
        1 => Ok(kernels.remove(0)),
        0 => Err(ImageError::Unsupported {
            message: format!(
                "no package of the resolved set installs a kernel in /boot (looked at: {}): \
                 add a kernel package such as `linux-image-amd64` to systemConfig.kernel.packages",
                if candidates.is_empty() {
                    "none".to_owned()
                } else {
                    candidates.join(", ")
                }
            ),
        }),
        _ => Err(ImageError::Unsupported {
            message: format!(
                "the resolved set installs {} kernels ({}): name one kernel package in \
                 systemConfig.kernel.packages",
                kernels.len(),
                kernels
                    .iter()
                    .map(|kernel| kernel.release.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// Installs the bootloader: files for the EFI system partition go to `esp`, the rest into the
/// image root `root`.
pub fn install(
    root: &Path,
    esp: &Path,
    plan: &DiskPlan,
    settings: &BootloaderSettings,
    kernel: &Kernel,
) -> Result<(), ImageError> {
    if settings.boot_type != "efi" {
        return Err(ImageError::Unsupported {
            message: format!(
                "systemConfig.bootloader.bootType `{}` cannot be built yet: use `efi`",
                settings.boot_type
            ),
        });
    }
    let root_partition = plan.root().ok_or_else(|| ImageError::Unsupported {
        message: "the disk has no partition mounted at `/`".to_owned(),
    })?;
    let mut cmdline = format!("root=UUID={}", root_partition.fs_uuid);
    if !settings.cmdline.trim().is_empty() {
        cmdline.push(' ');
        cmdline.push_str(settings.cmdline.trim());
    }
    match settings.provider.as_str() {
        "grub" => install_grub(root, esp, plan, settings, kernel, &cmdline),
        "systemd-boot" => install_systemd_boot(root, esp, settings, kernel, &cmdline),
        other => Err(ImageError::Unsupported {
            message: format!("bootloader `{other}` is unknown: use `grub` or `systemd-boot`"),
        }),
    }
}

/// The file names of the removable-media EFI binary and of GRUB's target for `arch`.
fn efi_names(arch: &str) -> Result<(&'static str, &'static str, &'static str), ImageError> {
    match arch {
        "x86_64" => Ok(("BOOTX64.EFI", "x86_64-efi", "x64")),
        "aarch64" => Ok(("BOOTAA64.EFI", "arm64-efi", "aa64")),
        other => Err(ImageError::Unsupported {
            message: format!("no EFI bootloader for architecture `{other}`"),
        }),
    }
}

/// GRUB modules built into the EFI binary, so that it needs no module files to find and read
/// the boot file system and start Linux.
const GRUB_MODULES: &[&str] = &[
    "part_gpt",
    "part_msdos",
    "fat",
    "ext2",
    "xfs",
    "btrfs",
    "normal",
    "linux",
    "boot",
    "search",
    "search_fs_uuid",
    "search_label",
    "configfile",
    "echo",
    "test",
    "ls",
    "cat",
    "gzio",
    "all_video",
    "efi_gop",
    "serial",
    "terminal",
    "sleep",
    "reboot",
    "halt",
];

fn install_grub(
    root: &Path,
    esp: &Path,
    plan: &DiskPlan,
    settings: &BootloaderSettings,
    kernel: &Kernel,
    cmdline: &str,
) -> Result<(), ImageError> {
    let (binary, target, _) = efi_names(&settings.arch)?;
    let modules = root.join("usr/lib/grub").join(target);
    if !modules.is_dir() {
        return Err(ImageError::Unsupported {
            message: format!(
                "the image has no GRUB modules in /usr/lib/grub/{target}: add the GRUB EFI \
                 package (grub-efi-amd64 on x86_64) to systemConfig.packages"
            ),
        });
    }
    let boot = plan.boot().ok_or_else(|| ImageError::Unsupported {
        message: "the disk has no partition mounted at `/` or `/boot`".to_owned(),
    })?;
    let prefix = if boot.mount_point.as_deref() == Some("/boot") {
        "/grub"
    } else {
        "/boot/grub"
    };

    let grub_dir = root.join("boot/grub");
    fs_err::create_dir_all(&grub_dir)?;
    copy_tree(&modules, &grub_dir.join(target))?;
    fs_err::write(
        grub_dir.join("grub.cfg"),
        grub_config(boot, settings, kernel, cmdline, prefix),
    )?;
    write_grub_defaults(root, &settings.cmdline)?;

    let early = root.join("tmp/oic-grub-early.cfg");
    fs_err::write(
        &early,
        format!(
            "search --no-floppy --fs-uuid --set=root {uuid}\nset prefix=($root){prefix}\n\
             configfile $prefix/grub.cfg\n",
            uuid = boot.fs_uuid
        ),
    )?;
    let output = "/tmp/oic-grub.efi";
    let mut command = chroot_command(root, "grub-mkimage");
    command.args(["--format", target, "--output", output, "--prefix", prefix]);
    command.args(["--config", "/tmp/oic-grub-early.cfg"]);
    command.args(GRUB_MODULES);
    let result = oic_chroot::command::run(&mut command);
    let _ = fs_err::remove_file(&early);
    result?;

    let efi_boot = esp.join("EFI/BOOT");
    fs_err::create_dir_all(&efi_boot)?;
    fs_err::rename(
        root.join(output.trim_start_matches('/')),
        efi_boot.join(binary),
    )?;
    tracing::info!(kernel = %kernel.release, "installed GRUB");
    Ok(())
}

/// The GRUB menu: one entry for the resolved kernel, the serial console when the command line
/// uses one.
fn grub_config(
    boot: &crate::disk::PartitionPlan,
    settings: &BootloaderSettings,
    kernel: &Kernel,
    cmdline: &str,
    prefix: &str,
) -> String {
    let dir = prefix.trim_end_matches("/grub");
    let mut text = String::from("# Written by os-image-composer.\nset timeout=1\nset default=0\n");
    if settings.cmdline.contains("console=ttyS0") {
        text.push_str(
            "serial --unit=0 --speed=115200\nterminal_input serial console\n\
             terminal_output serial console\n",
        );
    }
    let _ = write!(
        text,
        "\nmenuentry '{name}' {{\n\
         \tsearch --no-floppy --fs-uuid --set=root {uuid}\n\
         \techo 'Loading Linux {release}'\n\
         \tlinux {dir}/{image} {cmdline}\n\
         \tinitrd {dir}/{initrd}\n}}\n",
        name = settings.entry_name,
        uuid = boot.fs_uuid,
        release = kernel.release,
        image = kernel.image(),
        initrd = kernel.initrd(),
    );
    text
}

/// Keeps the command line for `update-grub` in the booted system.
fn write_grub_defaults(root: &Path, cmdline: &str) -> Result<(), ImageError> {
    let dir = root.join("etc/default/grub.d");
    fs_err::create_dir_all(&dir)?;
    fs_err::write(
        dir.join("50-os-image-composer.cfg"),
        format!(
            "# Written by os-image-composer.\nGRUB_CMDLINE_LINUX=\"{}\"\n",
            cmdline.replace('"', "\\\"")
        ),
    )?;
    Ok(())
}

fn install_systemd_boot(
    root: &Path,
    esp: &Path,
    settings: &BootloaderSettings,
    kernel: &Kernel,
    cmdline: &str,
) -> Result<(), ImageError> {
    let (binary, _, suffix) = efi_names(&settings.arch)?;
    let source = root.join(format!("usr/lib/systemd/boot/efi/systemd-boot{suffix}.efi"));
    if !source.is_file() {
        return Err(ImageError::Unsupported {
            message: format!(
                "the image has no `{}`: add `systemd-boot` to systemConfig.packages",
                source.strip_prefix(root).unwrap_or(&source).display()
            ),
        });
    }
    for target in [
        esp.join("EFI/BOOT").join(binary),
        esp.join(format!("EFI/systemd/systemd-boot{suffix}.efi")),
    ] {
        fs_err::create_dir_all(target.parent().unwrap_or(esp))?;
        fs_err::copy(&source, &target)?;
    }

    let token = &settings.entry_name;
    let kernel_dir = esp.join(token).join(&kernel.release);
    fs_err::create_dir_all(&kernel_dir)?;
    fs_err::copy(
        root.join("boot").join(kernel.image()),
        kernel_dir.join("linux"),
    )?;
    fs_err::copy(
        root.join("boot").join(kernel.initrd()),
        kernel_dir.join("initrd"),
    )?;

    let entries = esp.join("loader/entries");
    fs_err::create_dir_all(&entries)?;
    let entry = format!("{token}-{}.conf", kernel.release);
    fs_err::write(
        entries.join(&entry),
        format!(
            "title {token}\nversion {release}\nlinux /{token}/{release}/linux\n\
             initrd /{token}/{release}/initrd\noptions {cmdline}\n",
            release = kernel.release
        ),
    )?;
    fs_err::write(
        esp.join("loader/loader.conf"),
        format!("default {entry}\ntimeout 1\nconsole-mode keep\n"),
    )?;
    let kernel_etc = root.join("etc/kernel");
    fs_err::create_dir_all(&kernel_etc)?;
    fs_err::write(kernel_etc.join("entry-token"), format!("{token}\n"))?;
    tracing::info!(kernel = %kernel.release, "installed systemd-boot");
    Ok(())
}

/// Copies the regular files of `source` into `target` (created when missing).
fn copy_tree(source: &Path, target: &Path) -> Result<(), ImageError> {
    fs_err::create_dir_all(target)?;
    for entry in fs_err::read_dir(source)? {
        let entry = entry?;
        let path: PathBuf = entry.path();
        if entry.file_type()?.is_file() {
            fs_err::copy(&path, target.join(entry.file_name()))?;
        }
    }
    Ok(())
}
