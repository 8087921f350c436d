//! Reuse, restore or creation of a provider's chroot environment, under its lock.
//!
//! Layout below `{work_dir}/{provider-id}/`:
//!
//! - `chrootenv/`: the environment, usable when `chrootenv.manifest.json` matches the inputs.
//! - `chrootenv.partial/`: an environment being created or restored, renamed to `chrootenv/`
//!   when complete. A killed run leaves it behind and the next run removes it.
//! - `chrootbuild/chrootenv.tar.gz` and `chrootbuild/chrootenv.manifest.json`: the snapshot
//!   and its manifest with the tarball's size and SHA256, written after the tarball.
//! - `.chroot.lock`: exclusive while the environment is checked, created or snapshotted,
//!   shared while a [`ChrootEnv`] is alive. `.mount.lock`: exclusive while mounted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::error::ChrootError;
use crate::lock::FileLock;
use crate::manifest::{Manifest, ProviderInputs};
use crate::mountinfo::{release_stale_mounts, remove_tree};
use crate::mounts::ChrootMounts;
use crate::rpm::{install_rpm_root, RpmChrootPackage, RpmInstall};
use crate::{dpkg, extract, snapshot, ChrootPackage};

/// Where and for what the environment is built.
#[derive(Debug, Clone)]
pub struct ChrootOptions {
    /// The work folder; the environment lives in `{work_dir}/{provider.id}/`.
    pub work_dir: PathBuf,
    pub provider: ProviderInputs,
    /// Writes `chrootbuild/chrootenv.tar.gz` when it is missing or stale.
    pub snapshot: bool,
}

/// How [`ensure`] obtained the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Reused,
    Restored,
    Created,
}

impl Outcome {
    /// The lowercase name, for logs and the benchmark's output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reused => "reused",
            Self::Restored => "restored",
            Self::Created => "created",
        }
    }
}

/// Paths of one provider's environment.
#[derive(Debug, Clone)]
struct Layout {
    provider_dir: PathBuf,
}

impl Layout {
    fn root(&self) -> PathBuf {
        self.provider_dir.join("chrootenv")
    }
    fn partial(&self) -> PathBuf {
        self.provider_dir.join("chrootenv.partial")
    }
    fn manifest(&self) -> PathBuf {
        self.provider_dir.join("chrootenv.manifest.json")
    }
    fn tarball(&self) -> PathBuf {
        self.provider_dir.join("chrootbuild/chrootenv.tar.gz")
    }
    fn snapshot_manifest(&self) -> PathBuf {
        self.provider_dir
            .join("chrootbuild/chrootenv.manifest.json")
    }
}

/// A ready chroot environment. It holds the provider's lock in shared mode, so no other run
/// rebuilds the environment while this value lives.
#[derive(Debug)]
pub struct ChrootEnv {
    layout: Layout,
    outcome: Outcome,
    _lock: FileLock,
}

impl ChrootEnv {
    /// The chroot directory.
    pub fn root(&self) -> PathBuf {
        self.layout.root()
    }

    /// The snapshot tarball's path (it may not exist when snapshots are off).
    pub fn tarball(&self) -> PathBuf {
        self.layout.tarball()
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Mounts proc, sys, /dev, /dev/pts and /run for commands. Only one run of the provider
    /// holds the mounts at a time; others wait.
    pub fn mount(&self) -> Result<MountedChroot, ChrootError> {
        let lock = FileLock::exclusive(
            &self.layout.provider_dir.join(".mount.lock"),
            "waiting for another build to release the chroot mounts",
        )?;
        release_stale_mounts(&self.layout.provider_dir)?;
        let mounts = ChrootMounts::mount(&self.root())?;
        Ok(MountedChroot {
            mounts,
            _lock: lock,
        })
    }
}

/// A chroot environment with its mounts, released when dropped.
#[derive(Debug)]
pub struct MountedChroot {
    mounts: ChrootMounts,
    _lock: FileLock,
}

impl MountedChroot {
    /// Returns a command that runs `program` inside the chroot with a fixed environment.
    pub fn command(&self, program: &str) -> Command {
        dpkg::chroot_command(self.mounts.root(), program)
    }

    /// Bind-mounts the host folder `source` at `relative` inside the chroot until the mounts
    /// are released.
    pub fn bind(
        &mut self,
        source: &Path,
        relative: &str,
        read_only: bool,
    ) -> Result<(), ChrootError> {
        self.mounts.bind(source, relative, read_only)
    }

    /// Runs `program` with `args` inside the chroot and returns its output.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, ChrootError> {
        crate::command::run(self.command(program).args(args))
    }
}

/// The packages of an environment and the tool that installs them.
#[derive(Debug, Clone, Copy)]
pub enum EnvPackages<'a> {
    /// `.deb` packages, extracted and then installed by dpkg inside the root.
    Deb(&'a [ChrootPackage]),
    /// `.rpm` packages in install order, installed by the host's `rpm --root`.
    Rpm {
        packages: &'a [RpmChrootPackage],
        install: &'a RpmInstall,
    },
}

impl EnvPackages<'_> {
    fn manifest(self, provider: &ProviderInputs) -> Manifest {
        match self {
            Self::Deb(packages) => Manifest::new(provider, packages),
            Self::Rpm { packages, .. } => Manifest::for_rpm(provider, packages),
        }
    }

    fn len(self) -> usize {
        match self {
            Self::Deb(packages) => packages.len(),
            Self::Rpm { packages, .. } => packages.len(),
        }
    }

    /// Installs the packages into the empty folder `root`.
    fn install(self, root: &Path) -> Result<(), ChrootError> {
        match self {
            Self::Deb(packages) => install_root(root, packages, false),
            Self::Rpm { packages, install } => install_rpm_root(root, packages, install),
        }
    }
}

/// Returns the provider's environment for `packages`: reused when its manifest matches,
/// else restored from a matching snapshot that verifies, else created. Writes the snapshot
/// when `options.snapshot` is set and it is missing or stale. Another run of the same
/// provider waits for this one and then reuses its result.
///
/// Reuse needs only the shared lock. Anything else takes the exclusive lock, which waits until
/// no other [`ChrootEnv`] of the provider is alive, so a process that holds one and calls
/// `ensure` for changed inputs blocks forever.
pub fn ensure(
    options: &ChrootOptions,
    packages: &[ChrootPackage],
) -> Result<ChrootEnv, ChrootError> {
    ensure_packages(options, EnvPackages::Deb(packages))
}

/// Like [`ensure`] for an RPM provider: `packages` in install order, installed by
/// [`install_rpm_root`] with `install`.
pub fn ensure_rpm(
    options: &ChrootOptions,
    packages: &[RpmChrootPackage],
    install: &RpmInstall,
) -> Result<ChrootEnv, ChrootError> {
    ensure_packages(options, EnvPackages::Rpm { packages, install })
}

/// Like [`ensure`] for packages of either format. The manifest, snapshot, locks and the
/// `chrootenv.partial/` folder follow the same rules for both.
pub fn ensure_packages(
    options: &ChrootOptions,
    packages: EnvPackages<'_>,
) -> Result<ChrootEnv, ChrootError> {
    let started = Instant::now();
    let layout = Layout {
        provider_dir: options.work_dir.join(&options.provider.id),
    };
    fs_err::create_dir_all(&layout.provider_dir)?;
    let expected = packages.manifest(&options.provider);
    let lock = FileLock::shared(&layout.provider_dir.join(".chroot.lock"), WAITING)?;
    let outcome = if is_current(&layout, &expected, options.snapshot) {
        tracing::debug!(root = %layout.root().display(), "reusing the chroot environment");
        release_unheld_mounts(&layout)?;
        Outcome::Reused
    } else {
        lock.upgrade(WAITING)?;
        let outcome = update(&layout, &expected, options.snapshot, packages)?;
        lock.downgrade()?;
        outcome
    };
    tracing::info!(
        provider = %options.provider.id,
        outcome = outcome.as_str(),
        elapsed = ?started.elapsed(),
        "chroot environment ready"
    );
    Ok(ChrootEnv {
        layout,
        outcome,
        _lock: lock,
    })
}

const WAITING: &str = "waiting for another build of this provider to finish its chroot environment";

/// Releases mounts that a killed run left, unless a live run holds the mounts. Mounts exist
/// only under the exclusive `.chroot.lock`, which the caller's shared lock excludes, or under
/// `.mount.lock`.
fn release_unheld_mounts(layout: &Layout) -> Result<(), ChrootError> {
    if let Some(_mount_lock) = FileLock::try_exclusive(&layout.provider_dir.join(".mount.lock"))? {
        release_stale_mounts(&layout.provider_dir)?;
    }
    Ok(())
}

/// Whether the environment and, when `snapshot` is set, its snapshot match `expected`, checked
/// without changing anything.
fn is_current(layout: &Layout, expected: &Manifest, snapshot: bool) -> bool {
    let environment = layout.root().is_dir()
        && Manifest::read(&layout.manifest())
            .ok()
            .flatten()
            .is_some_and(|recorded| recorded.differences(expected).is_empty());
    environment && (!snapshot || snapshot_is_current(layout, expected))
}

/// Reuses, restores or creates the environment and writes the snapshot, under the exclusive
/// lock.
fn update(
    layout: &Layout,
    expected: &Manifest,
    snapshot: bool,
    packages: EnvPackages<'_>,
) -> Result<Outcome, ChrootError> {
    // No live run holds mounts here while this run holds the exclusive lock.
    release_stale_mounts(&layout.provider_dir)?;
    remove_tree(&layout.partial())?;
    let outcome = if current_matches(layout, expected)? {
        tracing::debug!(root = %layout.root().display(), "reusing the chroot environment");
        Outcome::Reused
    } else if try_restore(layout, expected)? {
        Outcome::Restored
    } else {
        create(layout, packages)?;
        Outcome::Created
    };
    if outcome != Outcome::Reused {
        expected.write(&layout.manifest())?;
    }
    if snapshot {
        ensure_snapshot(layout, expected)?;
    }
    Ok(outcome)
}

/// Whether `chrootenv/` exists with a manifest that matches `expected`. Otherwise it logs why and
/// removes the environment and its manifest.
fn current_matches(layout: &Layout, expected: &Manifest) -> Result<bool, ChrootError> {
    let root = layout.root();
    let exists = fs_err::symlink_metadata(&root).is_ok();
    let recorded = match Manifest::read(&layout.manifest()) {
        Ok(recorded) => recorded,
        Err(error) => {
            tracing::warn!(%error, "ignoring an unreadable manifest");
            None
        }
    };
    let reason = match (&recorded, exists) {
        (Some(recorded), true) => {
            let changes = recorded.differences(expected);
            if changes.is_empty() {
                return Ok(true);
            }
            changes.join("; ")
        }
        (None, true) => "its manifest is missing (an earlier run was interrupted)".to_owned(),
        (_, false) => {
            tracing::debug!(root = %root.display(), "no chroot environment yet");
            String::new()
        }
    };
    if exists {
        tracing::info!(root = %root.display(), "rebuilding the chroot environment: {reason}");
    }
    let _ = fs_err::remove_file(layout.manifest());
    remove_tree(&root)?;
    Ok(false)
}

/// Restores the snapshot into `chrootenv/` when its manifest matches `expected` and the tarball
/// verifies. Returns whether it did.
fn try_restore(layout: &Layout, expected: &Manifest) -> Result<bool, ChrootError> {
    let recorded = Manifest::read(&layout.snapshot_manifest()).unwrap_or(None);
    let Some(recorded) = recorded else {
        tracing::debug!("no snapshot to restore");
        return Ok(false);
    };
    let changes = recorded.differences(expected);
    if !changes.is_empty() {
        tracing::info!("not restoring the snapshot: {}", changes.join("; "));
        return Ok(false);
    }
    let Some(record) = &recorded.snapshot else {
        return Ok(false);
    };
    let started = Instant::now();
    let partial = layout.partial();
    match snapshot::restore_snapshot(&layout.tarball(), record, &partial) {
        Ok(()) => {}
        Err(error) => {
            tracing::warn!(%error, "not restoring the snapshot; creating the environment instead");
            remove_tree(&partial)?;
            return Ok(false);
        }
    }
    fs_err::rename(&partial, layout.root())?;
    tracing::info!(elapsed = ?started.elapsed(), "restored the chroot environment from its snapshot");
    Ok(true)
}

/// Creates the environment in `chrootenv.partial/` and renames it to `chrootenv/`.
fn create(layout: &Layout, packages: EnvPackages<'_>) -> Result<(), ChrootError> {
    let started = Instant::now();
    let partial = layout.partial();
    fs_err::create_dir(&partial)?;
    packages.install(&partial)?;
    fs_err::rename(&partial, layout.root())?;
    tracing::info!(packages = packages.len(), elapsed = ?started.elapsed(), "created the chroot environment");
    Ok(())
}

/// Installs `packages` into the empty folder `root`: merged-/usr links, the essential packages
/// extracted natively, then dpkg inside the root with proc, sys, /dev and run mounted for the
/// duration. The image root of a build is made the same way. With `defer_initramfs`,
/// `update-initramfs` stays diverted until [`dpkg::finish_initramfs`] runs.
pub fn install_root(
    root: &Path,
    packages: &[ChrootPackage],
    defer_initramfs: bool,
) -> Result<(), ChrootError> {
    let architecture = dpkg::architecture(packages).ok_or_else(|| ChrootError::PackageSet {
        message: "no package with an architecture other than `all`".to_owned(),
    })?;
    dpkg::create_merged_usr(root, architecture)?;
    let plan = dpkg::Plan::new(packages);
    let extracted: Vec<PathBuf> = plan
        .extracted()
        .into_iter()
        .map(|position| packages[position].deb.clone())
        .collect();

    let step = Instant::now();
    extract::extract_debs(root, &extracted)?;
    tracing::info!(packages = extracted.len(), elapsed = ?step.elapsed(), "extracted the essential packages");

    dpkg::prepare(root)?;
    let mounts = ChrootMounts::mount(root)?;
    dpkg::install(root, packages, &plan, defer_initramfs)?;
    dpkg::check(root, packages)?;
    mounts.release();
    Ok(())
}

/// Whether the snapshot manifest matches `expected` and the tarball has the recorded size. The
/// SHA256 is checked only before a restore, because reading the tarball costs too much on
/// every reuse.
fn snapshot_is_current(layout: &Layout, expected: &Manifest) -> bool {
    let Some(recorded) = Manifest::read(&layout.snapshot_manifest()).ok().flatten() else {
        return false;
    };
    let size = fs_err::metadata(layout.tarball())
        .map(|metadata| metadata.len())
        .ok();
    let recorded_size = recorded.snapshot.as_ref().map(|record| record.size);
    recorded.differences(expected).is_empty() && size.is_some() && size == recorded_size
}

/// Writes the snapshot unless one matching `expected` exists with the recorded size.
fn ensure_snapshot(layout: &Layout, expected: &Manifest) -> Result<(), ChrootError> {
    let tarball = layout.tarball();
    let manifest_path = layout.snapshot_manifest();
    if snapshot_is_current(layout, expected) {
        tracing::debug!(tarball = %tarball.display(), "the snapshot is current");
        return Ok(());
    }
    // Removed first, so that a manifest never describes a tarball written after it.
    match fs_err::remove_file(&manifest_path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
        _ => {}
    }
    let started = Instant::now();
    let record = snapshot::write_snapshot(&layout.root(), &tarball)?;
    let mut manifest = expected.clone();
    manifest.snapshot = Some(record);
    manifest.write(&manifest_path)?;
    tracing::info!(
        tarball = %tarball.display(),
        bytes = manifest.snapshot.as_ref().map_or(0, |record| record.size),
        elapsed = ?started.elapsed(),
        "wrote the snapshot"
    );
    Ok(())
}
