//! Installation of the package set with dpkg inside the chroot, in the order dpkg needs.
//!
//! 1. The essential packages (`Essential: yes` and what they depend on) are extracted by
//!    [`crate::extract`], so that the chroot has a shell, dpkg and their libraries.
//! 2. `dpkg --install --force-depends` installs them properly: base-passwd, base-files, dpkg and
//!    libc6 one at a time, then the rest in one call.
//! 3. The other packages are unpacked in layers. A package whose `Pre-Depends` are in the set
//!    goes into a later layer than those packages and everything they depend on, which are
//!    configured before that layer is unpacked.
//! 4. `dpkg --configure -a` configures everything.
//!
//! A `policy-rc.d` that exits 101 keeps services from starting. When initramfs-tools is in the
//! set, `update-initramfs` is diverted to a no-op during installation and run once at the end.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use oic_deb::{Alternatives, Package};

use crate::command::run;
use crate::error::ChrootError;
use crate::ChrootPackage;

/// Packages that `dpkg --install` installs alone and first, in this order.
const FIRST_PACKAGES: [&str; 4] = ["base-passwd", "base-files", "dpkg", "libc6"];

/// Where the archives are placed inside the chroot while dpkg reads them.
const DEBS_DIR: &str = "var/cache/oic-chroot/debs";

const POLICY_RC_D: &str = "usr/sbin/policy-rc.d";
const UPDATE_INITRAMFS: &str = "/usr/sbin/update-initramfs";
const UPDATE_INITRAMFS_DIVERTED: &str = "/usr/sbin/update-initramfs.oic-chroot";

/// Common dpkg options: no fsync per file, because a failed creation is redone from scratch.
const DPKG_OPTIONS: [&str; 2] = ["--force-unsafe-io", "--force-depends"];

/// Returns a command that runs `program` inside `root` through chroot(8), with a fixed
/// environment.
pub fn chroot_command(root: &Path, program: &str) -> Command {
    let mut command = Command::new("chroot");
    command
        .arg(root)
        .arg(program)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .env("HOME", "/root")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("DEBCONF_NONINTERACTIVE_SEEN", "true");
    command
}

/// Name lookup over the package set: real names and `Provides`.
struct SetIndex<'a> {
    packages: &'a [ChrootPackage],
    by_name: HashMap<&'a str, usize>,
    providers: HashMap<&'a str, Vec<usize>>,
}

impl<'a> SetIndex<'a> {
    fn new(packages: &'a [ChrootPackage]) -> Self {
        let mut by_name = HashMap::new();
        let mut providers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, entry) in packages.iter().enumerate() {
            by_name.insert(entry.package.name.as_str(), index);
            for provided in &entry.package.provides {
                providers
                    .entry(provided.name.as_str())
                    .or_default()
                    .push(index);
            }
        }
        Self {
            packages,
            by_name,
            providers,
        }
    }

    fn package(&self, index: usize) -> &'a Package {
        &self.packages[index].package
    }

    /// The package of the set that satisfies `group`: the first alternative present by name,
    /// else its first provider.
    fn satisfier(&self, group: &Alternatives) -> Option<usize> {
        group.iter().find_map(|relation| {
            let name = relation.name.as_str();
            self.by_name.get(name).copied().or_else(|| {
                self.providers
                    .get(name)
                    .and_then(|list| list.first().copied())
            })
        })
    }

    /// The packages that `index` depends on through `Depends` and `Pre-Depends`.
    fn dependencies(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let package = self.package(index);
        package
            .pre_depends
            .iter()
            .chain(&package.depends)
            .filter_map(|group| self.satisfier(group))
    }

    /// `start` and everything it depends on, transitively.
    fn closure(&self, start: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = start.into_iter().collect();
        while let Some(index) = stack.pop() {
            if seen.insert(index) {
                stack.extend(self.dependencies(index));
            }
        }
        seen
    }
}

/// The order of installation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Installed with `dpkg --install`, one call per entry, after extraction by this crate.
    pub install: Vec<Vec<usize>>,
    /// Unpacked with `dpkg --unpack`, one call per layer.
    pub layers: Vec<Layer>,
}

/// Packages unpacked together, and those to configure before.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Layer {
    pub configure_first: Vec<usize>,
    pub unpack: Vec<usize>,
}

impl Plan {
    /// Plans the installation of `packages`.
    pub fn new(packages: &[ChrootPackage]) -> Self {
        let index = SetIndex::new(packages);
        let essential = index.closure(
            packages
                .iter()
                .enumerate()
                .filter(|(_, entry)| entry.package.essential)
                .map(|(position, _)| position),
        );
        let mut install = Vec::new();
        for name in FIRST_PACKAGES {
            if let Some(&position) = index.by_name.get(name) {
                if essential.contains(&position) {
                    install.push(vec![position]);
                }
            }
        }
        let first: HashSet<usize> = install.iter().flatten().copied().collect();
        let rest: Vec<usize> = essential
            .iter()
            .copied()
            .filter(|p| !first.contains(p))
            .collect();
        if !rest.is_empty() {
            install.push(rest);
        }
        let layers = layers(&index, &essential);
        Self { install, layers }
    }

    /// The packages this crate extracts before dpkg runs.
    pub fn extracted(&self) -> Vec<usize> {
        self.install.iter().flatten().copied().collect()
    }
}

/// Splits the packages outside `installed` into unpack layers that respect `Pre-Depends`.
fn layers(index: &SetIndex<'_>, installed: &BTreeSet<usize>) -> Vec<Layer> {
    let remaining: Vec<usize> = (0..index.packages.len())
        .filter(|position| !installed.contains(position))
        .collect();
    // What must be configured before a package is unpacked: its pre-dependencies outside the
    // installed set, with their dependency closure.
    let before: HashMap<usize, BTreeSet<usize>> = remaining
        .iter()
        .map(|&position| {
            let targets = index
                .package(position)
                .pre_depends
                .iter()
                .filter_map(|group| index.satisfier(group))
                .filter(|target| !installed.contains(target) && *target != position);
            let mut closure = index.closure(targets);
            closure.retain(|member| !installed.contains(member) && *member != position);
            (position, closure)
        })
        .collect();
    let mut depth: HashMap<usize, usize> = HashMap::new();
    for &position in &remaining {
        layer_of(position, &before, &mut depth, &mut HashSet::new());
    }
    let max_depth = depth.values().copied().max().unwrap_or(0);
    let mut result: Vec<Layer> = (0..=max_depth).map(|_| Layer::default()).collect();
    for &position in &remaining {
        result[depth[&position]].unpack.push(position);
    }
    let mut configured: HashSet<usize> = HashSet::new();
    for layer in &mut result {
        let mut needed: BTreeSet<usize> = BTreeSet::new();
        for position in &layer.unpack {
            needed.extend(
                before[position]
                    .iter()
                    .filter(|&&member| !configured.contains(&member)),
            );
        }
        configured.extend(needed.iter().copied());
        layer.configure_first = needed.into_iter().collect();
    }
    result.retain(|layer| !layer.unpack.is_empty());
    result
}

/// The layer of `position`: one more than the deepest package that must be configured before
/// it. A cycle through `Pre-Depends` puts its members in one layer.
fn layer_of(
    position: usize,
    before: &HashMap<usize, BTreeSet<usize>>,
    depth: &mut HashMap<usize, usize>,
    visiting: &mut HashSet<usize>,
) -> usize {
    if let Some(&known) = depth.get(&position) {
        return known;
    }
    if !visiting.insert(position) {
        return 0;
    }
    let mut layer = 0;
    for &member in &before[&position] {
        layer = layer.max(layer_of(member, before, depth, visiting) + 1);
    }
    visiting.remove(&position);
    depth.insert(position, layer);
    layer
}

/// Creates bookworm's merged-/usr symlinks (`bin`, `sbin`, `lib` and the architecture's extra
/// library directories pointing into `usr/`) before anything is extracted.
pub fn create_merged_usr(root: &Path, architecture: &str) -> Result<(), ChrootError> {
    let mut dirs = vec!["bin", "sbin", "lib"];
    // The same extra directories as debootstrap's merged-/usr setup for these architectures.
    match architecture {
        "amd64" => dirs.extend(["lib32", "lib64", "libx32"]),
        "i386" => dirs.extend(["lib64", "libx32"]),
        "mips64el" | "mipsel" => dirs.extend(["lib32", "lib64", "libo32"]),
        "ppc64el" | "s390x" => dirs.push("lib64"),
        _ => {}
    }
    for dir in dirs {
        fs_err::create_dir_all(root.join("usr").join(dir))?;
        fs_err::os::unix::fs::symlink(Path::new("usr").join(dir), root.join(dir))?;
    }
    Ok(())
}

/// Prepares an empty dpkg database and the `policy-rc.d` that keeps services from starting.
pub fn prepare(root: &Path) -> Result<(), ChrootError> {
    use std::os::unix::fs::PermissionsExt as _;
    let dpkg = root.join("var/lib/dpkg");
    for dir in ["info", "updates", "triggers", "alternatives", "parts"] {
        fs_err::create_dir_all(dpkg.join(dir))?;
    }
    fs_err::write(dpkg.join("status"), "")?;
    fs_err::write(dpkg.join("available"), "")?;
    fs_err::create_dir_all(root.join("etc/dpkg/dpkg.cfg.d"))?;
    let policy = root.join(POLICY_RC_D);
    fs_err::create_dir_all(policy.parent().expect("policy-rc.d has a parent"))?;
    fs_err::write(
        &policy,
        "#!/bin/sh\n# Written by os-image-composer: no service starts.\nexit 101\n",
    )?;
    fs_err::set_permissions(&policy, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Places every archive under [`DEBS_DIR`] in the chroot, as a hard link when the file system
/// allows, and returns the paths dpkg sees.
fn stage_debs(root: &Path, packages: &[ChrootPackage]) -> Result<Vec<PathBuf>, ChrootError> {
    let dir = root.join(DEBS_DIR);
    fs_err::create_dir_all(&dir)?;
    packages
        .iter()
        .map(|entry| {
            let name = entry
                .deb
                .file_name()
                .ok_or_else(|| ChrootError::PackageSet {
                    message: format!("`{}` names no file", entry.deb.display()),
                })?;
            let staged = dir.join(name);
            if std::fs::hard_link(&entry.deb, &staged).is_err() {
                fs_err::copy(&entry.deb, &staged)?;
            }
            Ok(Path::new("/").join(DEBS_DIR).join(name))
        })
        .collect()
}

/// Runs dpkg with `args` and the archives at `positions` inside `root`.
fn dpkg(
    root: &Path,
    args: &[&str],
    debs: &[PathBuf],
    positions: &[usize],
) -> Result<(), ChrootError> {
    let mut command = chroot_command(root, "dpkg");
    command.args(args);
    command.args(positions.iter().map(|&position| debs[position].as_os_str()));
    run(&mut command).map(drop)
}

/// Installs `packages` into `root`, which holds the extracted essential packages and the
/// mounts. Returns after `dpkg --configure -a` and, unless `defer_initramfs` is set, the
/// initramfs. A deferred initramfs is built by [`finish_initramfs`].
pub fn install(
    root: &Path,
    packages: &[ChrootPackage],
    plan: &Plan,
    defer_initramfs: bool,
) -> Result<(), ChrootError> {
    let debs = stage_debs(root, packages)?;
    let names = |positions: &[usize]| -> Vec<&str> {
        positions
            .iter()
            .map(|&position| packages[position].package.name.as_str())
            .collect()
    };

    let started = Instant::now();
    for group in &plan.install {
        let args = [&["--install"][..], &DPKG_OPTIONS].concat();
        dpkg(root, &args, &debs, group)?;
    }
    tracing::info!(
        packages = plan.install.iter().map(Vec::len).sum::<usize>(),
        elapsed = ?started.elapsed(),
        "installed the essential packages"
    );

    let started = Instant::now();
    let initramfs = packages
        .iter()
        .any(|entry| entry.package.name == "initramfs-tools");
    if initramfs {
        divert_update_initramfs(root)?;
    }
    for layer in &plan.layers {
        if !layer.configure_first.is_empty() {
            let mut command = chroot_command(root, "dpkg");
            command.args(["--force-unsafe-io", "--configure"]);
            command.args(names(&layer.configure_first));
            run(&mut command)?;
        }
        let args = [&["--unpack"][..], &DPKG_OPTIONS].concat();
        dpkg(root, &args, &debs, &layer.unpack)?;
    }
    run(chroot_command(root, "dpkg").args(["--force-unsafe-io", "--configure", "-a"]))?;
    tracing::info!(
        packages = plan.layers.iter().map(|layer| layer.unpack.len()).sum::<usize>(),
        layers = plan.layers.len(),
        elapsed = ?started.elapsed(),
        "unpacked and configured the other packages"
    );

    if initramfs && !defer_initramfs {
        finish_initramfs(root)?;
    }
    fs_err::remove_file(root.join(POLICY_RC_D))?;
    fs_err::remove_dir_all(root.join("var/cache/oic-chroot"))?;
    Ok(())
}

/// Diverts `update-initramfs` away and puts a no-op in its place, so that the kernel and
/// initramfs-tools triggers do not build an initramfs each.
fn divert_update_initramfs(root: &Path) -> Result<(), ChrootError> {
    use std::os::unix::fs::PermissionsExt as _;
    run(chroot_command(root, "dpkg-divert").args([
        "--local",
        "--rename",
        "--divert",
        UPDATE_INITRAMFS_DIVERTED,
        "--add",
        UPDATE_INITRAMFS,
    ]))?;
    let stub = root.join(UPDATE_INITRAMFS.trim_start_matches('/'));
    fs_err::write(
        &stub,
        "#!/bin/sh\n# Written by os-image-composer: runs once at the end.\nexit 0\n",
    )?;
    fs_err::set_permissions(&stub, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Removes the no-op and the diversion, then builds the initramfs of every installed kernel
/// once. Does nothing when `update-initramfs` is not diverted.
pub fn finish_initramfs(root: &Path) -> Result<(), ChrootError> {
    if !root
        .join(UPDATE_INITRAMFS_DIVERTED.trim_start_matches('/'))
        .exists()
    {
        return Ok(());
    }
    fs_err::remove_file(root.join(UPDATE_INITRAMFS.trim_start_matches('/')))?;
    run(chroot_command(root, "dpkg-divert").args([
        "--local",
        "--rename",
        "--divert",
        UPDATE_INITRAMFS_DIVERTED,
        "--remove",
        UPDATE_INITRAMFS,
    ]))?;
    let modules = root.join("usr/lib/modules");
    let has_kernel = fs_err::read_dir(&modules).is_ok_and(|mut entries| entries.next().is_some());
    if has_kernel {
        let started = Instant::now();
        run(chroot_command(root, "update-initramfs").args(["-c", "-k", "all"]))?;
        tracing::info!(elapsed = ?started.elapsed(), "built the initramfs");
    }
    Ok(())
}

/// Checks that `dpkg --audit` reports nothing and that dpkg lists exactly `packages` as
/// installed.
pub fn check(root: &Path, packages: &[ChrootPackage]) -> Result<(), ChrootError> {
    let incomplete = |message: String| ChrootError::Check {
        root: root.to_path_buf(),
        message,
    };
    let audit = run(chroot_command(root, "dpkg").arg("--audit"))?;
    if !audit.trim().is_empty() {
        return Err(incomplete(format!("dpkg --audit reports:\n{audit}")));
    }
    let listed = run(chroot_command(root, "dpkg-query").args([
        "-W",
        "-f",
        "${Package}\\t${db:Status-Abbrev}\\n",
    ]))?;
    let mut installed = BTreeSet::new();
    for line in listed.lines() {
        let (name, status) = line.split_once('\t').unwrap_or((line, ""));
        if status.trim() != "ii" {
            return Err(incomplete(format!(
                "package {name} has status `{}`",
                status.trim()
            )));
        }
        installed.insert(name.to_owned());
    }
    let expected: BTreeSet<String> = packages
        .iter()
        .map(|entry| entry.package.name.clone())
        .collect();
    let missing: Vec<&String> = expected.difference(&installed).collect();
    let extra: Vec<&String> = installed.difference(&expected).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(incomplete(format!(
            "dpkg lists a different package set: missing {missing:?}, unexpected {extra:?}"
        )));
    }
    Ok(())
}

/// The architecture of the set: libc6's, else the first one that is not `all`.
pub fn architecture(packages: &[ChrootPackage]) -> Option<&str> {
    packages
        .iter()
        .find(|entry| entry.package.name == "libc6")
        .map(|entry| entry.package.architecture.as_str())
        .or_else(|| {
            packages
                .iter()
                .map(|entry| entry.package.architecture.as_str())
                .find(|&arch| arch != "all")
        })
}
