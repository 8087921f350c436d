//! Creation, reuse, restore and fault recovery of a real chroot environment from the test
//! mirror's bookworm packages, with dpkg in a real chroot.
//!
//! These tests need root (mounts, chroot, mknod) and the prepared mirror
//! (`python -m os_image_composer.testing.mirror prepare`); without either they print why and
//! pass. One environment of the `tools` set is created once and shared: its snapshot seeds the
//! other tests. Five tests create an environment each (about 25 s each on 2 cores), because
//! their fault must end in a fresh creation.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oic_chroot::mirror::{mirror_packages, PackageSet};
use oic_chroot::mountinfo::{mounts_under, release_stale_mounts, remove_tree};
use oic_chroot::{
    ensure, ChrootEnv, ChrootError, ChrootOptions, ChrootPackage, Manifest, Outcome,
    ProviderInputs, RepositoryInputs,
};

const MIRROR: &str = "/var/cache/os-image-composer-testdata/debian-bookworm/debian";
const PROVIDER: &str = "debian-debian12-x86_64";
const BIN: &str = env!("CARGO_BIN_EXE_oic-chroot");

/// Returns whether the test can run, and prints the reason when it cannot.
fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for mounts and chroot");
        return false;
    }
    if !Path::new(MIRROR).join("pool").is_dir() {
        eprintln!("skipped: the test mirror is missing (python -m os_image_composer.testing.mirror prepare)");
        return false;
    }
    true
}

/// A work folder under /var/tmp. Dropping it releases what a failed test left mounted and then
/// removes it, so no test can delete through a mount.
struct WorkDir(tempfile::TempDir);

/// Prefix of the shared environment's folder, followed by the test process id.
const FIXTURE_PREFIX: &str = "oic-chroot-test-fixture-";

impl WorkDir {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("oic-chroot-test-")
            .tempdir_in("/var/tmp")
            .unwrap();
        Self(dir)
    }

    /// Returns the folder of the shared environment. A static is never dropped, so this folder
    /// outlives the test process, and the next run removes the folders of finished processes.
    fn for_fixture() -> Self {
        for entry in std::fs::read_dir("/var/tmp")
            .unwrap()
            .filter_map(Result::ok)
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(FIXTURE_PREFIX) else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                release_stale_mounts(&entry.path()).unwrap();
                remove_tree(&entry.path()).unwrap();
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("{FIXTURE_PREFIX}{}", std::process::id()))
            .rand_bytes(0)
            .tempdir_in("/var/tmp")
            .unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn provider_dir(&self) -> PathBuf {
        self.path().join(PROVIDER)
    }

    fn root(&self) -> PathBuf {
        self.provider_dir().join("chrootenv")
    }

    fn build_dir(&self) -> PathBuf {
        self.provider_dir().join("chrootbuild")
    }

    fn assert_no_mounts(&self) {
        let mounts = mounts_under(self.path()).unwrap();
        assert!(
            mounts.is_empty(),
            "mounts left under the work folder: {mounts:?}"
        );
    }

    /// Copies the shared environment's snapshot and its manifest into this work folder.
    fn seed_snapshot(&self) {
        let fixture = fixture();
        std::fs::create_dir_all(self.build_dir()).unwrap();
        for name in ["chrootenv.tar.gz", "chrootenv.manifest.json"] {
            std::fs::copy(
                fixture.work.build_dir().join(name),
                self.build_dir().join(name),
            )
            .unwrap();
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = release_stale_mounts(self.path());
        let _ = remove_tree(self.path());
    }
}

fn options(work: &Path, keys: &[&str]) -> ChrootOptions {
    ChrootOptions {
        work_dir: work.to_path_buf(),
        provider: ProviderInputs {
            id: PROVIDER.to_owned(),
            repositories: vec![RepositoryInputs {
                url: format!("file://{MIRROR}"),
                suite: "bookworm".to_owned(),
                components: vec!["main".to_owned()],
                key_fingerprints: keys.iter().map(|&key| key.to_owned()).collect(),
            }],
        },
        snapshot: true,
    }
}

/// Returns the `tools` set resolved from the mirror, once per test binary.
fn packages() -> &'static [ChrootPackage] {
    static PACKAGES: OnceLock<Vec<ChrootPackage>> = OnceLock::new();
    PACKAGES
        .get_or_init(|| mirror_packages(Path::new(MIRROR), "bookworm", PackageSet::Tools).unwrap())
}

/// Serializes the tests that mount the shared environment or check that it has no mounts.
static FIXTURE_MOUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock_fixture_mounts() -> std::sync::MutexGuard<'static, ()> {
    FIXTURE_MOUNTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shared environment, created in this process with its snapshot.
struct Fixture {
    env: ChrootEnv,
    first_outcome: Outcome,
    work: WorkDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let work = WorkDir::for_fixture();
        let env = ensure(&options(work.path(), &[]), packages()).unwrap();
        Fixture {
            first_outcome: env.outcome(),
            env,
            work,
        }
    })
}

/// Runs the binary's `ensure` on `work` and returns its output.
fn run_ensure(work: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["ensure", "--set", "tools", "--mirror", MIRROR, "--work-dir"])
        .arg(work)
        .args(extra)
        .output()
        .unwrap()
}

/// Returns the outcome the binary printed, after checking that it succeeded.
fn outcome_of(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "oic-chroot failed:\n{stderr}");
    let start = stdout.find(r#""outcome":""#).expect("an outcome") + 11;
    stdout[start..].split('"').next().unwrap().to_owned()
}

/// Starts the binary's `ensure` on `work` in the background.
fn spawn_ensure(work: &Path) -> Child {
    Command::new(BIN)
        .args(["ensure", "--set", "tools", "--mirror", MIRROR, "--work-dir"])
        .arg(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `ready` until it holds, then kills `child` with SIGKILL.
fn kill_when(mut child: Child, what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before {what}"
        );
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Checks the environment at `root` with dpkg: audit clean and exactly the resolved set.
fn assert_environment_complete(root: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new("chroot")
            .arg(root)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?} failed");
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(run(&["dpkg", "--audit"]), "");
    let mut listed: Vec<String> = run(&["dpkg-query", "-W", "-f", "${Package}\\n"])
        .lines()
        .map(str::to_owned)
        .collect();
    listed.sort();
    let mut expected: Vec<String> = packages().iter().map(|p| p.package.name.clone()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

#[test]
fn creation_installs_resolved_set() {
    if !can_run() {
        return;
    }
    let fixture = fixture();
    let _serial = lock_fixture_mounts();
    assert_eq!(fixture.first_outcome, Outcome::Created);
    assert_environment_complete(&fixture.env.root());
    assert!(!fixture.env.root().join("usr/sbin/policy-rc.d").exists());
    assert!(fixture.env.tarball().is_file());
    fixture.work.assert_no_mounts();
}

#[test]
fn reuse_is_fast() {
    if !can_run() {
        return;
    }
    let fixture = fixture();
    let started = Instant::now();
    let env = ensure(&options(fixture.work.path(), &[]), packages()).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(env.outcome(), Outcome::Reused);
    assert!(elapsed < Duration::from_secs(1), "reuse took {elapsed:?}");
}

#[test]
fn mounted_chroot_has_private_dev() {
    if !can_run() {
        return;
    }
    let fixture = fixture();
    let _serial = lock_fixture_mounts();
    {
        let mounted = fixture.env.mount().unwrap();
        let mounts = mounts_under(&fixture.env.root()).unwrap();
        assert_eq!(mounts.len(), 5, "{mounts:?}");
        let listing = mounted.run("ls", &["/dev"]).unwrap();
        let mut names: Vec<&str> = listing.split_whitespace().collect();
        names.sort_unstable();
        let expected = [
            "console", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
            "stdout", "tty", "urandom", "zero",
        ];
        assert_eq!(names, expected);
        mounted
            .run(
                "sh",
                &["-c", "echo ok > /dev/null && test -c /dev/pts/ptmx"],
            )
            .unwrap();
    }
    fixture.work.assert_no_mounts();
}

#[test]
fn panic_releases_mounts() {
    if !can_run() {
        return;
    }
    let fixture = fixture();
    let _serial = lock_fixture_mounts();
    let result = std::panic::catch_unwind(|| {
        let _mounted = fixture.env.mount().unwrap();
        panic!("a failing step");
    });
    assert!(result.is_err());
    fixture.work.assert_no_mounts();
}

/// Starts `oic-chroot hold` on a fresh root, sends `signal` once it has mounted, and checks the
/// exit status and that nothing stays mounted.
fn check_signal_releases_mounts(signal: nix::sys::signal::Signal) {
    let work = WorkDir::new();
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut child = Command::new(BIN)
        .args(["hold", "--root"])
        .arg(&root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "mounted");
    assert_eq!(mounts_under(&root).unwrap().len(), 5);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + signal as i32));
    work.assert_no_mounts();
}

#[test]
fn sigterm_releases_mounts() {
    if !can_run() {
        return;
    }
    check_signal_releases_mounts(nix::sys::signal::Signal::SIGTERM);
}

#[test]
fn sigint_releases_mounts() {
    if !can_run() {
        return;
    }
    check_signal_releases_mounts(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn removal_rejects_mount_inside() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    let inner = work.path().join("tree/mnt");
    std::fs::create_dir_all(&inner).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &inner,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    std::fs::write(inner.join("kept"), b"x").unwrap();
    let error = remove_tree(&work.path().join("tree")).unwrap_err();
    assert!(
        matches!(error, ChrootError::MountedInside { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&inner.display().to_string()),
        "{error}"
    );
    assert!(inner.join("kept").exists());
    release_stale_mounts(work.path()).unwrap();
    work.assert_no_mounts();
}

#[test]
fn leftover_mounts_are_released() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    work.seed_snapshot();
    assert_eq!(outcome_of(&run_ensure(work.path(), &[])), "restored");
    // What a run killed while mounted leaves: the mounts, one stacked twice.
    let root = work.root();
    let tmpfs = |target: &Path| {
        nix::mount::mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
    };
    tmpfs(&root.join("proc"));
    tmpfs(&root.join("run"));
    tmpfs(&root.join("run"));
    std::fs::create_dir_all(root.join("run/nested")).unwrap();
    tmpfs(&root.join("run/nested"));
    assert_eq!(mounts_under(work.path()).unwrap().len(), 4);

    let output = run_ensure(work.path(), &[]);

    assert_eq!(outcome_of(&output), "reused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("releasing a mount left by an earlier run"),
        "{stderr}"
    );
    work.assert_no_mounts();
}

#[test]
fn kill_during_creation_recovers() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    let status = work
        .provider_dir()
        .join("chrootenv.partial/var/lib/dpkg/status");
    let child = spawn_ensure(work.path());
    // dpkg has written its status file: packages are being installed with the mounts in place.
    kill_when(child, "dpkg to start", || {
        std::fs::metadata(&status).is_ok_and(|metadata| metadata.len() > 0)
    });

    let output = run_ensure(work.path(), &[]);

    assert_eq!(outcome_of(&output), "created");
    assert_environment_complete(&work.root());
    assert!(!work.provider_dir().join("chrootenv.partial").exists());
    work.assert_no_mounts();
}

#[test]
fn kill_during_snapshot_recovers() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    work.seed_snapshot();
    assert_eq!(outcome_of(&run_ensure(work.path(), &[])), "restored");
    std::fs::remove_file(work.build_dir().join("chrootenv.tar.gz")).unwrap();
    std::fs::remove_file(work.build_dir().join("chrootenv.manifest.json")).unwrap();
    let child = spawn_ensure(work.path());
    let build_dir = work.build_dir();
    kill_when(child, "the snapshot to be written", || {
        std::fs::read_dir(&build_dir).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".chrootenv.tar.gz.partial-")
                    && entry
                        .metadata()
                        .is_ok_and(|metadata| metadata.len() > 1 << 20)
            })
        })
    });
    assert!(!work.build_dir().join("chrootenv.tar.gz").exists());

    let output = run_ensure(work.path(), &[]);

    assert_eq!(outcome_of(&output), "reused");
    let manifest = Manifest::read(&work.build_dir().join("chrootenv.manifest.json"))
        .unwrap()
        .unwrap();
    let record = manifest
        .snapshot
        .expect("the snapshot manifest records the tarball");
    oic_chroot::snapshot::verify_snapshot(&work.build_dir().join("chrootenv.tar.gz"), &record)
        .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(work.build_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    work.assert_no_mounts();
}

#[test]
fn kill_during_restore_recovers() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    work.seed_snapshot();
    let child = spawn_ensure(work.path());
    let partial_usr = work.provider_dir().join("chrootenv.partial/usr");
    kill_when(child, "the restore to start", || partial_usr.exists());
    assert!(!work.root().exists());

    let output = run_ensure(work.path(), &[]);

    assert_eq!(outcome_of(&output), "restored");
    assert_environment_complete(&work.root());
    work.assert_no_mounts();
}

#[test]
fn truncated_snapshot_rebuilds() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    work.seed_snapshot();
    let tarball = work.build_dir().join("chrootenv.tar.gz");
    let size = std::fs::metadata(&tarball).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&tarball)
        .unwrap();
    file.set_len(size / 2).unwrap();

    let output = run_ensure(work.path(), &[]);

    assert_eq!(outcome_of(&output), "created");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("truncated or replaced"), "{stderr}");
    assert_environment_complete(&work.root());
    work.assert_no_mounts();
}

#[test]
fn changed_key_rebuilds() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    work.seed_snapshot();
    assert_eq!(outcome_of(&run_ensure(work.path(), &[])), "restored");

    let output = run_ensure(work.path(), &["--key", "0123456789ABCDEF"]);

    assert_eq!(outcome_of(&output), "created");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("key set changed for repository file://"),
        "{stderr}"
    );
    assert_environment_complete(&work.root());
    work.assert_no_mounts();
}

#[test]
fn changed_package_rebuilds() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    work.seed_snapshot();
    assert_eq!(outcome_of(&run_ensure(work.path(), &[])), "restored");
    // Records an older libc6 in both manifests, as if the mirror had moved on since.
    let libc6 = packages()
        .iter()
        .find(|p| p.package.name == "libc6")
        .unwrap();
    let current = libc6.package.version.to_string();
    for path in [
        work.provider_dir().join("chrootenv.manifest.json"),
        work.build_dir().join("chrootenv.manifest.json"),
    ] {
        let mut manifest = Manifest::read(&path).unwrap().unwrap();
        let record = manifest
            .packages
            .iter_mut()
            .find(|r| r.name == "libc6")
            .unwrap();
        record.version = "2.36-9+deb12u0".to_owned();
        manifest.write(&path).unwrap();
    }

    let output = run_ensure(work.path(), &[]);

    assert_eq!(outcome_of(&output), "created");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("package libc6 changed: 2.36-9+deb12u0 -> {current}");
    assert!(stderr.contains(&expected), "{stderr}");
    assert_environment_complete(&work.root());
    work.assert_no_mounts();
}

#[test]
fn concurrent_builds_create_once() {
    if !can_run() {
        return;
    }
    let work = WorkDir::new();
    work.seed_snapshot();
    let first = Command::new(BIN)
        .args(["ensure", "--set", "tools", "--mirror", MIRROR, "--work-dir"])
        .arg(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let second = Command::new(BIN)
        .args(["ensure", "--set", "tools", "--mirror", MIRROR, "--work-dir"])
        .arg(work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let mut outcomes: Vec<String> = outputs.iter().map(outcome_of).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["restored", "reused"]);
    let waited = outputs.iter().any(|output| {
        String::from_utf8_lossy(&output.stderr).contains("waiting for another build")
    });
    assert!(waited, "neither run logged that it waited");
    work.assert_no_mounts();
}
