//! Configuration of an installed image root: hostname, users, additional files, configuration
//! scripts, SSH host keys and machine-id. Every command runs inside the root through chroot(8)
//! while the root's mounts are in place.

use std::path::{Path, PathBuf};

use oic_chroot::dpkg::chroot_command;
use serde::Serialize;

use crate::error::ImageError;
use crate::paths;

/// One user account of the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSettings {
    pub name: String,
    pub uid: Option<i64>,
    /// A crypt(3) hash or a locked marker; plain text when `hash_algo` is set.
    pub password: Option<String>,
    /// `sha512`, `sha256` or `yescrypt`.
    pub hash_algo: Option<String>,
    pub groups: Vec<String>,
    pub sudo: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
}

/// A file copied from the build host into the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSettings {
    pub source: PathBuf,
    /// SHA256 of the source, so that the image root's manifest changes with its content.
    pub sha256: String,
    pub destination: String,
    /// Octal permissions, such as `0644`.
    pub mode: Option<String>,
}

/// The settings the configuration step applies to an installed root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RootSettings {
    pub hostname: Option<String>,
    pub users: Vec<UserSettings>,
    pub files: Vec<FileSettings>,
    /// Shell scripts run inside the image with `/bin/sh -c`, exactly as written.
    pub configurations: Vec<String>,
    /// The kernel command line, without `root=`.
    pub cmdline: String,
}

/// Applies `settings` to the installed root at `root`.
pub fn configure(root: &Path, settings: &RootSettings) -> Result<(), ImageError> {
    if let Some(hostname) = &settings.hostname {
        write_hostname(root, hostname)?;
    }

    for user in &settings.users {
        add_user(root, user)?;
    }

    for file in &settings.files {
        copy_file(root, file)?;
    }

    write_kernel_cmdline(root, &settings.cmdline)?;

    for (index, script) in settings.configurations.iter().enumerate() {
        run_configuration(root, index, script)?;
    }
    Ok(())
}

/// Removes what identifies one machine, so that every machine booted from the image gets its
/// own: the machine-id becomes empty (systemd fills it on first boot) and SSH host keys are
/// removed, with `ssh-keygen -A` run before the SSH server starts.
pub fn clear_identity(root: &Path) -> Result<(), ImageError> {
    paths::write_file(root, "etc/machine-id", b"", 0o444)?;
    let dbus_id = paths::resolve(root, Path::new("var/lib/dbus"))?.join("machine-id");
    if fs_err::symlink_metadata(&dbus_id).is_ok() {
        fs_err::remove_file(&dbus_id)?;
        fs_err::os::unix::fs::symlink("/etc/machine-id", &dbus_id)?;
    }

    remove_ssh_host_keys(root)?;
    for leftover in ["etc/resolv.conf.oic", "var/cache/oic-chroot"] {
        oic_chroot::mountinfo::remove_tree(&paths::resolve(root, Path::new(leftover))?)?;
    }
    Ok(())
}

fn write_hostname(root: &Path, hostname: &str) -> Result<(), ImageError> {
    paths::write_file(
        root,
        "etc/hostname",
        format!("{hostname}\n").as_bytes(),
        0o644,
    )?;
    let hosts = format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n"
    );
    paths::write_file(root, "etc/hosts", hosts.as_bytes(), 0o644)?;
    Ok(())
}

/// Creates the user with `useradd`, or changes an existing one (such as `root`) with `usermod`,
/// then sets the password and writes the sudoers entry.
fn add_user(root: &Path, user: &UserSettings) -> Result<(), ImageError> {
    check_user_tools(root, user)?;
    let passwd = fs_err::read_to_string(paths::resolve(root, Path::new("etc/passwd"))?)?;
    let exists = passwd
        .lines()
        .any(|line| line.split(':').next() == Some(user.name.as_str()));
    let mut command = if exists {
        let mut command = chroot_command(root, "usermod");
        if !user.groups.is_empty() {
            command.arg("--append");
        }
        command
    } else {
        let mut command = chroot_command(root, "useradd");
        command.args(["--create-home", "--user-group"]);
        command
    };
    if let Some(uid) = user.uid {
        command.args(["--uid", &uid.to_string()]);
    }
    if let Some(shell) = &user.shell {
        command.args(["--shell", shell]);
    }
    if let Some(home) = &user.home {
        // useradd spells it --home-dir and usermod --home: both take -d.
        command.args(["-d", home]);
    }
    let groups = ensure_groups(root, &user.groups, &user.name)?;
    if !groups.is_empty() {
        command.args(["--groups", &groups.join(",")]);
    }
    command.arg(&user.name);
    let changes = user.uid.is_some() || user.shell.is_some() || user.home.is_some();
    if !exists || changes || !groups.is_empty() {
        oic_chroot::command::run(&mut command)?;
    }

    set_password(root, user)?;

    if user.sudo {
        write_sudoers(root, &user.name)?;
    }
    Ok(())
}

/// Fails with the name of the first tool that configuring `user` runs inside the image and the
/// image lacks, before any of them runs.
fn check_user_tools(root: &Path, user: &UserSettings) -> Result<(), ImageError> {
    let setting = format!("systemConfig.users `{}`", user.name);
    for tool in ["useradd", "usermod"] {
        require_tool(root, tool, &setting)?;
    }
    if !user.groups.is_empty() {
        require_tool(root, "groupadd", &setting)?;
    }
    if user.password.is_some() {
        require_tool(root, "chpasswd", &setting)?;
    }
    Ok(())
}

/// Fails unless the image contains the program `tool`, which `setting` of the template needs.
/// A program given as an absolute path is looked up there, others in [`paths::PROGRAM_DIRS`].
pub fn require_tool(root: &Path, tool: &str, setting: &str) -> Result<(), ImageError> {
    if paths::has_program(root, tool)? {
        return Ok(());
    }
    Err(ImageError::MissingTool {
        tool: tool.to_owned(),
        setting: setting.to_owned(),
        searched: paths::program_candidates(tool)
            .iter()
            .map(|candidate| format!("/{}", candidate.display()))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Creates the groups of `requested` that the image lacks, as system groups, so that a template
/// can name a group no package provides. Returns `requested`.
fn ensure_groups(root: &Path, requested: &[String], user: &str) -> Result<Vec<String>, ImageError> {
    let group_file = fs_err::read_to_string(paths::resolve(root, Path::new("etc/group"))?)?;
    let known: Vec<&str> = group_file
        .lines()
        .filter_map(|line| line.split(':').next())
        .collect();
    for group in requested {
        if !known.contains(&group.as_str()) {
            tracing::info!(group, user, "creating a group that no package provides");
            oic_chroot::command::run(chroot_command(root, "groupadd").args(["--system", group]))?;
        }
    }
    Ok(requested.to_vec())
}

/// Sets the password: hashed inside the image when `hash_algo` is set, else as given.
fn set_password(root: &Path, user: &UserSettings) -> Result<(), ImageError> {
    let Some(password) = &user.password else {
        return Ok(());
    };
    let mut command = chroot_command(root, "chpasswd");
    match user.hash_algo.as_deref() {
        Some(algorithm) => {
            command.args(["--crypt-method", &crypt_method(algorithm)]);
        }
        None => {
            command.arg("--encrypted");
        }
    }
    crate::command::run_with_input(&mut command, &format!("{}:{password}\n", user.name))
}

fn crypt_method(algorithm: &str) -> String {
    match algorithm {
        "sha512" => "SHA512".to_owned(),
        "sha256" => "SHA256".to_owned(),
        other => other.to_uppercase(),
    }
}

fn write_sudoers(root: &Path, user: &str) -> Result<(), ImageError> {
    let entry = format!("{user} ALL=(ALL:ALL) ALL\n");
    paths::write_file(
        root,
        &format!("etc/sudoers.d/90-oic-{user}"),
        entry.as_bytes(),
        0o440,
    )?;
    if !paths::resolve(root, Path::new("usr/bin/sudo"))?.exists() {
        tracing::warn!(
            user,
            "`sudo: true` wrote a sudoers entry, but the image has no sudo: add `sudo` to \
             systemConfig.packages"
        );
    }
    Ok(())
}

/// Copies an additional file into the root, creating its parent folders. The destination is
/// resolved inside the image, so no symlink in the image leads the copy to a host path.
fn copy_file(root: &Path, file: &FileSettings) -> Result<(), ImageError> {
    if !file.source.is_file() {
        return Err(ImageError::Invalid {
            path: file.source.clone(),
            message: format!(
                "the additional file for `{}` does not exist or is not a regular file: fix \
                 `local` in systemConfig.additionalFiles",
                file.destination
            ),
        });
    }
    let mode = match &file.mode {
        Some(text) => parse_mode(text, &file.destination)?,
        None => 0o644,
    };
    let bytes = fs_err::read(&file.source)?;
    paths::write_file(root, &file.destination, &bytes, mode)?;
    Ok(())
}

fn parse_mode(text: &str, destination: &str) -> Result<u32, ImageError> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| ImageError::Invalid {
            path: PathBuf::from(destination),
            message: format!("permissions `{text}` are not an octal mode such as `0644`"),
        })
}

/// Writes `/etc/kernel/cmdline`, which kernel-install and systemd-boot read in the booted
/// system.
fn write_kernel_cmdline(root: &Path, cmdline: &str) -> Result<(), ImageError> {
    paths::write_file(
        root,
        "etc/kernel/cmdline",
        format!("{cmdline}\n").as_bytes(),
        0o644,
    )?;
    Ok(())
}

/// Runs one configuration script inside the image, passed to `/bin/sh -c` as one argument, so
/// that no shell on the build host expands it.
fn run_configuration(root: &Path, index: usize, script: &str) -> Result<(), ImageError> {
    require_tool(
        root,
        "/bin/sh",
        &format!("systemConfig.configurations[{index}]"),
    )?;
    let mut command = chroot_command(root, "/bin/sh");
    command.args(["-e", "-c", script]);
    let first_line = script.lines().next().unwrap_or_default();
    tracing::info!(index, script = first_line, "running a configuration script");
    match oic_chroot::command::run(&mut command) {
        Ok(output) => {
            tracing::debug!(index, output = %output, "configuration script finished");
            Ok(())
        }
        Err(oic_chroot::ChrootError::Command { status, output, .. }) => {
            Err(ImageError::Configuration {
                index,
                first_line: first_line.to_owned(),
                status,
                output,
            })
        }
        Err(error) => Err(error.into()),
    }
}

fn remove_ssh_host_keys(root: &Path) -> Result<(), ImageError> {
    let ssh = paths::resolve(root, Path::new("etc/ssh"))?;
    let Ok(entries) = fs_err::read_dir(&ssh) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("ssh_host_") {
            fs_err::remove_file(entry.path())?;
        }
    }
    let unit = paths::resolve(root, Path::new("usr/lib/systemd/system/ssh.service"))?;
    if unit.exists() {
        // A drop-in's ExecStartPre runs after the unit's own, and Debian's first checks the
        // configuration with `sshd -t`, which fails without keys: the list is reset and the
        // unit's own commands follow the key generation.
        let mut own = String::new();
        for line in fs_err::read_to_string(&unit)?.lines() {
            if line.starts_with("ExecStartPre=") {
                own.push_str(line);
                own.push('\n');
            }
        }
        let dropin = format!(
            "# Written by os-image-composer: the image contains no host keys, so every machine\n\
             # creates its own on first start.\n[Service]\nExecStartPre=\n\
             ExecStartPre=/usr/bin/ssh-keygen -A\n{own}"
        );
        paths::write_file(
            root,
            "etc/systemd/system/ssh.service.d/oic-host-keys.conf",
            dropin.as_bytes(),
            0o644,
        )?;
    }
    Ok(())
}
