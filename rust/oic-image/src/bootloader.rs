//! Bootloaders of EFI images: GRUB built with `grub-mkimage` from the image's own modules, or
//! systemd-boot with Boot Loader Specification entries. Both boot the kernel of the resolved
//! set, found through dpkg's file list of that package, with the template's command line.

use std::fmt::Write as _;
use std::path::Path;

use oic_chroot::dpkg::chroot_command;
use serde::Serialize;

use crate::disk::DiskPlan;
use crate::error::ImageError;
use crate::paths;

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
    let info = paths::resolve(root, Path::new("var/lib/dpkg/info"))?;
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

/// Returns the file name of the removable-media EFI binary, GRUB's target and systemd-boot's
/// suffix for `arch`.
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
    let modules = paths::resolve(root, &Path::new("usr/lib/grub").join(target))?;
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

    copy_modules(root, &modules, &format!("boot/grub/{target}"))?;
    let config = grub_config(boot, settings, kernel, cmdline, prefix);
    paths::write_file(root, "boot/grub/grub.cfg", config.as_bytes(), 0o644)?;
    write_grub_defaults(root, &settings.cmdline)?;

    let early = format!(
        "search --no-floppy --fs-uuid --set=root {uuid}\nset prefix=($root){prefix}\n\
         configfile $prefix/grub.cfg\n",
        uuid = boot.fs_uuid
    );
    let early_path = paths::write_file(root, "tmp/oic-grub-early.cfg", early.as_bytes(), 0o644)?;
    let output = "/tmp/oic-grub.efi";
    let mut command = chroot_command(root, "grub-mkimage");
    command.args(["--format", target, "--output", output, "--prefix", prefix]);
    command.args(["--config", "/tmp/oic-grub-early.cfg"]);
    command.args(GRUB_MODULES);
    let result = oic_chroot::command::run(&mut command);
    let _ = fs_err::remove_file(&early_path);
    result?;

    let built = paths::resolve(root, Path::new(output))?;
    let binary_bytes = fs_err::read(&built)?;
    fs_err::remove_file(&built)?;
    paths::write_file(esp, &format!("EFI/BOOT/{binary}"), &binary_bytes, 0o644)?;
    tracing::info!(kernel = %kernel.release, "installed GRUB");
    Ok(())
}

/// Writes the GRUB menu: one entry for the resolved kernel, on the serial console when the
/// command line uses one.
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
    let text = format!(
        "# Written by os-image-composer.\nGRUB_CMDLINE_LINUX=\"{}\"\n",
        cmdline.replace('"', "\\\"")
    );
    paths::write_file(
        root,
        "etc/default/grub.d/50-os-image-composer.cfg",
        text.as_bytes(),
        0o644,
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
    let relative = format!("usr/lib/systemd/boot/efi/systemd-boot{suffix}.efi");
    let source = paths::resolve(root, Path::new(&relative))?;
    if !source.is_file() {
        return Err(ImageError::Unsupported {
            message: format!(
                "the image has no `{}`: add `systemd-boot` to systemConfig.packages",
                source.strip_prefix(root).unwrap_or(&source).display()
            ),
        });
    }
    let loader = fs_err::read(&source)?;
    paths::write_file(esp, &format!("EFI/BOOT/{binary}"), &loader, 0o644)?;
    paths::write_file(
        esp,
        &format!("EFI/systemd/systemd-boot{suffix}.efi"),
        &loader,
        0o644,
    )?;

    let token = &settings.entry_name;
    let release = &kernel.release;
    let image = fs_err::read(paths::resolve(
        root,
        &Path::new("boot").join(kernel.image()),
    )?)?;
    let initrd = fs_err::read(paths::resolve(
        root,
        &Path::new("boot").join(kernel.initrd()),
    )?)?;
    paths::write_file(esp, &format!("{token}/{release}/linux"), &image, 0o644)?;
    paths::write_file(esp, &format!("{token}/{release}/initrd"), &initrd, 0o644)?;

    let entry = format!("{token}-{release}.conf");
    let entry_text = format!(
        "title {token}\nversion {release}\nlinux /{token}/{release}/linux\n\
         initrd /{token}/{release}/initrd\noptions {cmdline}\n"
    );
    paths::write_file(
        esp,
        &format!("loader/entries/{entry}"),
        entry_text.as_bytes(),
        0o644,
    )?;
    let loader_conf = format!("default {entry}\ntimeout 1\nconsole-mode keep\n");
    paths::write_file(esp, "loader/loader.conf", loader_conf.as_bytes(), 0o644)?;
    paths::write_file(
        root,
        "etc/kernel/entry-token",
        format!("{token}\n").as_bytes(),
        0o644,
    )?;
    tracing::info!(kernel = %kernel.release, "installed systemd-boot");
    Ok(())
}

/// Copies the regular files of the folder `modules` to `target` inside the image, as
/// grub-install does, so that `insmod` works in the booted system.
fn copy_modules(root: &Path, modules: &Path, target: &str) -> Result<(), ImageError> {
    for entry in fs_err::read_dir(modules)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let bytes = fs_err::read(entry.path())?;
        let name = entry.file_name();
        let relative = format!("{target}/{}", name.to_string_lossy());
        paths::write_file(root, &relative, &bytes, 0o644)?;
    }
    Ok(())
}
