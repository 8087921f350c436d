//! Installation of a resolved RPM set into an empty root with the host's `rpm --root`.
//!
//! The steps: the repositories' public keys go into the root's rpm database, then one `rpm
//! --install` transaction installs every package with proc, sys, /dev, devpts and run mounted,
//! because rpm chroots into the root to run scriptlets. Afterwards `rpm --query --all` in the
//! root must list exactly the requested packages.
//!
//! The database lives in `/var/lib/rpm` of the root, with the sqlite backend. Both are given on
//! the command line, because Debian's rpm 4.18 sets `%_dbpath` to `~/.rpmdb`, while upstream rpm
//! and the distributions built with it use `/var/lib/rpm`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::error::ChrootError;
use crate::mounts::ChrootMounts;

/// The rpm database folder inside the root.
pub const DBPATH: &str = "/var/lib/rpm";

/// The name rpm gives the database entries of imported public keys.
const PUBKEY_NAME: &str = "gpg-pubkey";

/// A package of a resolved RPM set with its verified file in the package cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmChrootPackage {
    pub name: String,
    /// The epoch, `None` when the package has none. rpm treats a missing epoch as 0, and so do
    /// [`Self::nevra`] and the check after installation. `oic_build::rpm_set` gives `None` for
    /// epoch 0 too, because primary.xml writes 0 for packages without an epoch.
    pub epoch: Option<u64>,
    pub version: String,
    pub release: String,
    pub arch: String,
    /// The verified `.rpm` file.
    pub file: PathBuf,
    /// The checksum type of `checksum` as primary.xml names it: `sha256`, `sha512`, ...
    pub checksum_type: String,
    /// The hex checksum of `file` that the package cache verified.
    pub checksum: String,
}

impl RpmChrootPackage {
    /// Returns `name-epoch:version-release.arch` with the epoch always present, as
    /// `rpm --query --queryformat` prints it with `%{EPOCHNUM}`.
    pub fn nevra(&self) -> String {
        format!(
            "{}-{}:{}-{}.{}",
            self.name,
            self.epoch.unwrap_or(0),
            self.version,
            self.release,
            self.arch
        )
    }

    /// Returns the checksum the manifest records: the hex SHA256, or `TYPE:HEX` for another
    /// checksum type.
    pub fn manifest_checksum(&self) -> String {
        if self.checksum_type == "sha256" {
            return self.checksum.clone();
        }
        format!("{}:{}", self.checksum_type, self.checksum)
    }

    /// Returns `[epoch:]version-release`, the version the manifest records.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(epoch) => format!("{epoch}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }
}

/// Settings of an RPM installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmInstall {
    /// ASCII-armored public keys, imported into the root's rpm database before the
    /// transaction.
    pub keys: Vec<PathBuf>,
    /// Makes rpm reject every package without a valid signature by one of `keys`. When false,
    /// rpm checks no signature at all (`--nosignature`): rpm applies the option to the whole
    /// transaction, so one repository with `gpgCheck: false` turns the check off for every
    /// package.
    pub check_signatures: bool,
}

/// Installs `packages` (already in install order) into the empty folder `root`.
///
/// The keys are imported first, then one rpm transaction installs the files in the order given,
/// with the mounts of [`ChrootMounts`] in place while scriptlets run. rpm sorts the transaction
/// again by the packages' `Requires`, so the order given decides only between packages that do
/// not depend on each other. The mounts are released on every exit path. Afterwards the root's
/// database must list exactly `packages`, imported keys aside.
pub fn install_rpm_root(
    root: &Path,
    packages: &[RpmChrootPackage],
    install: &RpmInstall,
) -> Result<(), ChrootError> {
    let root = std::path::absolute(root)?;
    check_inputs(&root, packages, install)?;

    let started = Instant::now();
    import_keys(&root, &install.keys)?;
    let mounts = ChrootMounts::mount(&root)?;
    run_transaction(&root, packages, install)?;
    mounts.release();
    tracing::info!(
        packages = packages.len(),
        elapsed = ?started.elapsed(),
        "installed the RPM packages"
    );

    check_installed(&root, packages)
}

/// Rejects a root that is not an empty folder, an empty or duplicated set, and missing files.
fn check_inputs(
    root: &Path,
    packages: &[RpmChrootPackage],
    install: &RpmInstall,
) -> Result<(), ChrootError> {
    let not_empty = fs_err::read_dir(root)?.next().is_some();
    if not_empty {
        return Err(ChrootError::Check {
            root: root.to_path_buf(),
            message: "the folder is not empty: RPM packages install only into an empty folder"
                .to_owned(),
        });
    }
    if packages.is_empty() {
        return Err(ChrootError::PackageSet {
            message: "no RPM packages to install".to_owned(),
        });
    }
    let mut seen = BTreeMap::new();
    for package in packages {
        if let Some(previous) = seen.insert(package.nevra(), &package.file) {
            return Err(ChrootError::PackageSet {
                message: format!(
                    "package {} is listed twice: `{}` and `{}`",
                    package.nevra(),
                    previous.display(),
                    package.file.display()
                ),
            });
        }
        if !package.file.is_file() {
            return Err(ChrootError::PackageSet {
                message: format!(
                    "the file of package {} is missing: `{}`; fetch the packages first",
                    package.nevra(),
                    package.file.display()
                ),
            });
        }
    }
    if install.check_signatures && install.keys.is_empty() {
        return Err(ChrootError::PackageSet {
            message: "signature checks are on but no public key is given: add the \
                      repositories' keys or turn the checks off"
                .to_owned(),
        });
    }
    Ok(())
}

/// Returns an rpm command for the database of `root`, with a fixed environment.
pub fn rpm_command(root: &Path) -> Command {
    let mut command = Command::new("rpm");
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .env("HOME", "/root")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", DBPATH])
        .args(["--define", "_db_backend sqlite"]);
    command
}

/// Imports every key into the root's database, which creates the database.
fn import_keys(root: &Path, keys: &[PathBuf]) -> Result<(), ChrootError> {
    if keys.is_empty() {
        crate::command::run(rpm_command(root).arg("--initdb"))?;
        return Ok(());
    }
    for key in keys {
        crate::command::run(rpm_command(root).arg("--import").arg(key))?;
    }
    tracing::debug!(
        keys = keys.len(),
        "imported the public keys into the rpm database"
    );
    Ok(())
}

/// Installs every package in one transaction.
fn run_transaction(
    root: &Path,
    packages: &[RpmChrootPackage],
    install: &RpmInstall,
) -> Result<(), ChrootError> {
    let mut command = rpm_command(root);
    command.arg("--install");
    if install.check_signatures {
        // rpm 4.18 defaults to `digest`, which accepts a package whose signing key is missing.
        command.args(["--define", "_pkgverify_level signature"]);
    } else {
        command.arg("--nosignature");
    }
    command.args(packages.iter().map(|package| &package.file));
    let output = crate::command::run(&mut command)?;
    check_scriptlets(&command, &output)
}

/// Fails when a scriptlet failed. rpm 4.18 only warns about a failed `%post` and still exits
/// with status 0, but the root would lack what the scriptlet should have done.
fn check_scriptlets(command: &Command, output: &str) -> Result<(), ChrootError> {
    let failures: Vec<&str> = output
        .lines()
        .filter(|line| line.contains(" scriptlet failed"))
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    let line = crate::command::command_line(command);
    tracing::error!(command = %line, failures = ?failures, "scriptlets failed");
    Err(ChrootError::Command {
        command: line,
        status: "exit status: 0, with failed scriptlets".to_owned(),
        output: output.to_owned(),
    })
}

/// Compares the root's database with `packages` and names every difference.
fn check_installed(root: &Path, packages: &[RpmChrootPackage]) -> Result<(), ChrootError> {
    let installed = installed_nevras(root)?;
    let expected: Vec<String> = packages.iter().map(RpmChrootPackage::nevra).collect();
    let differences = set_differences(&installed, &expected);
    if differences.is_empty() {
        return Ok(());
    }
    Err(ChrootError::Check {
        root: root.to_path_buf(),
        message: format!(
            "the rpm database differs from the resolved set: {}",
            differences.join("; ")
        ),
    })
}

/// Returns the `name-epoch:version-release.arch` of every package in the root's database,
/// without the entries of imported keys.
pub fn installed_nevras(root: &Path) -> Result<Vec<String>, ChrootError> {
    let format = "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n";
    let mut command = rpm_command(root);
    command.args(["--query", "--all", "--queryformat", format]);
    let output = crate::command::run(&mut command)?;
    let prefix = format!("{PUBKEY_NAME}-");
    // Debian's rpm adds a warning about installing without alien to the output.
    let nevras = output
        .lines()
        .filter(|line| !line.starts_with(&prefix) && !line.starts_with("rpm: "))
        .map(str::to_owned)
        .collect();
    Ok(nevras)
}

/// Describes what `installed` lacks and has beyond `expected`.
fn set_differences(installed: &[String], expected: &[String]) -> Vec<String> {
    let count = |list: &[String]| {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for item in list {
            *counts.entry(item.clone()).or_default() += 1;
        }
        counts
    };
    let mut balance = count(expected);
    for (item, number) in count(installed) {
        *balance.entry(item).or_default() -= number;
    }
    let missing: Vec<&str> = balance
        .iter()
        .filter(|(_, number)| **number > 0)
        .map(|(item, _)| item.as_str())
        .collect();
    let extra: Vec<&str> = balance
        .iter()
        .filter(|(_, number)| **number < 0)
        .map(|(item, _)| item.as_str())
        .collect();
    let mut differences = Vec::new();
    if !missing.is_empty() {
        differences.push(format!("not installed: {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        differences.push(format!("installed but not requested: {}", extra.join(", ")));
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, epoch: Option<u64>) -> RpmChrootPackage {
        RpmChrootPackage {
            name: name.to_owned(),
            epoch,
            version: "1.0".to_owned(),
            release: "2.azl3".to_owned(),
            arch: "x86_64".to_owned(),
            file: PathBuf::from(format!("/cache/{name}.rpm")),
            checksum_type: "sha256".to_owned(),
            checksum: "00".to_owned(),
        }
    }

    #[test]
    fn nevra_always_has_epoch() {
        assert_eq!(package("bash", None).nevra(), "bash-0:1.0-2.azl3.x86_64");
        assert_eq!(package("tool", Some(3)).nevra(), "tool-3:1.0-2.azl3.x86_64");
    }

    #[test]
    fn evr_omits_missing_epoch() {
        assert_eq!(package("bash", None).evr(), "1.0-2.azl3");
        assert_eq!(package("tool", Some(3)).evr(), "3:1.0-2.azl3");
    }

    #[test]
    fn differences_name_missing_and_extra() {
        let installed = ["a-0:1-1.noarch".to_owned(), "c-0:1-1.noarch".to_owned()];
        let expected = ["a-0:1-1.noarch".to_owned(), "b-0:1-1.noarch".to_owned()];
        assert_eq!(
            set_differences(&installed, &expected),
            [
                "not installed: b-0:1-1.noarch",
                "installed but not requested: c-0:1-1.noarch"
            ]
        );
    }

    #[test]
    fn equal_sets_have_no_differences() {
        let installed = ["b-0:1-1.noarch".to_owned(), "a-0:1-1.noarch".to_owned()];
        let expected = ["a-0:1-1.noarch".to_owned(), "b-0:1-1.noarch".to_owned()];
        assert!(set_differences(&installed, &expected).is_empty());
    }

    #[test]
    fn failed_scriptlet_is_an_error() {
        let command = Command::new("rpm");
        let output =
            "bad-1.0-1\nwarning: %post(bad-1.0-1.noarch) scriptlet failed, exit status 1\n";
        let error = check_scriptlets(&command, output).unwrap_err();
        assert!(
            error.to_string().contains("%post(bad-1.0-1.noarch)"),
            "{error}"
        );
    }

    #[test]
    fn clean_output_passes_scriptlet_check() {
        let command = Command::new("rpm");
        assert!(check_scriptlets(&command, "good-1.0-1\n").is_ok());
    }

    #[test]
    fn non_empty_root_is_rejected() {
        let root = tempfile::tempdir().unwrap();
        fs_err::write(root.path().join("leftover"), b"x").unwrap();
        let install = RpmInstall {
            keys: Vec::new(),
            check_signatures: false,
        };
        let error = install_rpm_root(root.path(), &[package("bash", None)], &install).unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
    }
}
