//! The chroot environment of an RPM provider, installed by the host's `rpm --root` from
//! repositories of real packages (rpmbuild, rpmsign, `createrepo_c`) served on 127.0.0.1. Needs
//! root for mounts and chroot, python3, rpm, createrepo-c, gpg and a static `/bin/busybox`,
//! which the test package `bash` ships as the root's shell.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use oic_build::{prepare_chroot, rpm_set, ChrootReport, PackageSet, PackagesOptions};
use oic_chroot::mountinfo::mounts_under;
use oic_chroot::{install_rpm_root, RpmChrootPackage, RpmInstall};
use oic_config::config::{Origin, ProviderOverride};
use oic_config::provider::KeyRef;
use oic_config::{CheckedTemplate, Config, Repository};
use oic_pkgcache::NoReporter;
use oic_testkit::{BuiltRpmRepo, HttpServer, RpmRepo};
use serde_json::json;

const PROVIDER: &str = "azure-linux-azl3-x86_64";

/// The repository variants: the base set, one where `xfsprogs` has a newer version, and one
/// where that newer `xfsprogs` has a failing `%post`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Base,
    Changed,
    FailingPost,
}

/// Returns the repository spec of `variant`: a filesystem package, a busybox shell, the
/// provider's build tools and the dependencies that exercise rpm's rules.
fn spec(variant: Variant) -> serde_json::Value {
    let mut xfsprogs = json!({"name": "xfsprogs", "requires": ["filesystem"]});
    if variant != Variant::Base {
        xfsprogs["version"] = json!("2.0");
    }
    if variant == Variant::FailingPost {
        xfsprogs["post"] = json!("echo xfsprogs setup failed >&2\nexit 3");
    }
    let packages = vec![
        json!({"name": "filesystem",
               "directories": ["/usr", "/usr/bin", "/usr/share", "/etc", "/var", "/var/lib",
                               "/var/log"],
               "symlinks": {"/bin": "usr/bin"}}),
        json!({"name": "bash", "arch": "x86_64", "requires": ["filesystem"],
               "provides": ["/bin/sh"],
               "host_files": {"/usr/bin/busybox": "/bin/busybox"},
               "symlinks": {"/usr/bin/sh": "busybox", "/usr/bin/cat": "busybox",
                            "/usr/bin/head": "busybox"}}),
        // A file dependency on a path that primary.xml lists.
        json!({"name": "dosfstools", "requires": ["/usr/bin/busybox"]}),
        json!({"name": "e2fsprogs", "arch": "x86_64",
               "requires": ["(libext2fs or libext2fs-compat)", "filesystem"]}),
        json!({"name": "libext2fs", "arch": "x86_64", "requires": ["filesystem"]}),
        // The %post needs a file of the dependency, so it fails when installed before it.
        json!({"name": "mtools", "requires": ["mtools-data", "/bin/sh"],
               "post": "cat /usr/share/mtools/catalog > /var/log/mtools-post"}),
        json!({"name": "mtools-data", "requires": ["filesystem"],
               "files": {"/usr/share/mtools/catalog": "mtools catalog\n"}}),
        // The %post reads /proc, so it fails unless proc is mounted in the root.
        json!({"name": "util-linux", "arch": "x86_64", "requires": ["/bin/sh", "e2fsprogs"],
               "post": "head -c 64 /proc/self/stat > /var/log/util-linux-post"}),
        xfsprogs,
        json!({"name": "grub2-efi-binary", "arch": "x86_64", "requires": ["filesystem"]}),
        json!({"name": "systemd-boot", "arch": "x86_64", "requires": ["filesystem"]}),
        json!({"name": "foreign", "sign": "other"}),
    ];
    json!({"packages": packages})
}

/// The names the build-tools set resolves to in the base variant.
const TOOLS_SET: [&str; 11] = [
    "bash",
    "dosfstools",
    "e2fsprogs",
    "filesystem",
    "grub2-efi-binary",
    "libext2fs",
    "mtools",
    "mtools-data",
    "systemd-boot",
    "util-linux",
    "xfsprogs",
];

/// Builds each variant once; each test serves its own copy.
fn built(variant: Variant) -> &'static (tempfile::TempDir, BuiltRpmRepo) {
    static BASE: OnceLock<(tempfile::TempDir, BuiltRpmRepo)> = OnceLock::new();
    static CHANGED: OnceLock<(tempfile::TempDir, BuiltRpmRepo)> = OnceLock::new();
    static FAILING: OnceLock<(tempfile::TempDir, BuiltRpmRepo)> = OnceLock::new();
    let cell = match variant {
        Variant::Base => &BASE,
        Variant::Changed => &CHANGED,
        Variant::FailingPost => &FAILING,
    };
    cell.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let repo = RpmRepo::build(&spec(variant), &root.path().join("repo")).unwrap();
        (root, repo)
    })
}

fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for mounts and chroot");
        return false;
    }
    true
}

struct Fixture {
    dir: tempfile::TempDir,
    /// The served repository, replaced by [`Fixture::serve`].
    root: PathBuf,
    /// The key of the served repository, at a path that stays the same across variants.
    key: PathBuf,
    server: HttpServer,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let key = dir.path().join("repo-key.asc");
        std::fs::create_dir(&root).unwrap();
        let server = HttpServer::serve(&root);
        let fixture = Self {
            dir,
            root,
            key,
            server,
        };
        fixture.serve(Variant::Base);
        fixture
    }

    /// Replaces the served repository and its key with `variant`.
    fn serve(&self, variant: Variant) {
        let repo = &built(variant).1;
        std::fs::remove_dir_all(&self.root).unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&repo.root)
            .arg(&self.root)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::copy(&repo.key_asc, &self.key).unwrap();
    }

    fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn provider_dir(&self) -> PathBuf {
        self.work_dir().join(PROVIDER)
    }

    fn env_root(&self) -> PathBuf {
        self.provider_dir().join("chrootenv")
    }

    fn config(&self) -> Config {
        self.config_with_check(true)
    }

    fn config_with_check(&self, gpg_check: bool) -> Config {
        let mut config = Config::default();
        config.cache_dir.value = self.dir.path().join("cache");
        config.work_dir.value = self.work_dir();
        let repository = Repository {
            name: "azl-test".to_owned(),
            url: Some(self.server.url().trim_end_matches('/').to_owned()),
            path: None,
            suite: None,
            components: Vec::new(),
            keys: vec![KeyRef::Path(self.key.clone())],
            priority: 500,
            gpg_check,
            allow_packages: Vec::new(),
        };
        let replacement = ProviderOverride {
            repositories: vec![repository],
            origin: Origin::Default,
        };
        config.providers.insert(PROVIDER.to_owned(), replacement);
        config
    }

    fn template(&self, config: &Config) -> CheckedTemplate {
        let text = "target: {os: azure-linux, dist: azl3, arch: x86_64, imageType: raw}\n\
                    systemConfig:\n  packages: [filesystem]\n";
        oic_config::check_template_bytes(
            text.as_bytes(),
            &Arc::from("t.yml"),
            Some(self.dir.path().to_path_buf()),
            config,
        )
        .unwrap_or_else(|error| panic!("template is invalid: {error}"))
    }

    /// Prepares the chroot environment and returns the report with the log lines written
    /// meanwhile.
    fn prepare(&self) -> (Result<ChrootReport, oic_build::BuildError>, String) {
        let config = self.config();
        let checked = self.template(&config);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer_logs = Arc::clone(&logs);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(Arc::clone(&writer_logs)))
            .finish();
        let result = tracing::subscriber::with_default(subscriber, || {
            prepare_chroot(
                &checked,
                &config,
                PackagesOptions::default(),
                Arc::new(NoReporter),
            )
        });
        let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        (result, text)
    }

    fn assert_no_mounts(&self) {
        let mounts = mounts_under(self.dir.path()).unwrap();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the host's rpm on the database of `root` with `args`.
fn query(root: &Path, args: &[&str]) -> String {
    let output = Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Returns the names of the packages in the root's database, keys aside.
fn installed_names(root: &Path) -> BTreeSet<String> {
    query(root, &["-qa", "--qf", "%{NAME}\\n"])
        .lines()
        .filter(|name| *name != "gpg-pubkey")
        .map(str::to_owned)
        .collect()
}

fn assert_environment_complete(root: &Path) {
    let expected: BTreeSet<String> = TOOLS_SET.iter().map(|&name| name.to_owned()).collect();
    assert_eq!(installed_names(root), expected);
    assert!(root.join("var/lib/rpm/rpmdb.sqlite").is_file());
    let post = std::fs::read_to_string(root.join("var/log/util-linux-post")).unwrap();
    // /proc/self/stat starts with the process id and the command name in brackets.
    assert!(post.contains(" (head) "), "{post}");
    let catalog = std::fs::read_to_string(root.join("var/log/mtools-post")).unwrap();
    assert_eq!(catalog, "mtools catalog\n");
}

#[test]
fn chroot_created_reused_restored() {
    if !can_run() {
        return;
    }
    let fixture = Fixture::new();

    let (created, _) = fixture.prepare();
    let created = created.unwrap();
    assert_eq!(created.outcome, "created");
    assert_eq!(created.packages, TOOLS_SET.len());
    assert_environment_complete(&fixture.env_root());
    fixture.assert_no_mounts();

    let (reused, logs) = fixture.prepare();
    assert_eq!(reused.unwrap().outcome, "reused");
    assert!(logs.contains("outcome=\"reused\""), "{logs}");

    std::fs::remove_dir_all(fixture.env_root()).unwrap();
    let (restored, _) = fixture.prepare();
    assert_eq!(restored.unwrap().outcome, "restored");
    assert_environment_complete(&fixture.env_root());
    fixture.assert_no_mounts();
}

#[test]
fn database_equals_ordered_set() {
    if !can_run() {
        return;
    }
    let fixture = Fixture::new();
    let config = fixture.config();
    let checked = fixture.template(&config);
    let set = rpm_set(
        &checked,
        &config,
        PackagesOptions::default(),
        PackageSet::BuildTools,
    )
    .unwrap();

    let (report, _) = fixture.prepare();
    report.unwrap();

    let format = "%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\\n";
    let installed: BTreeSet<String> = query(&fixture.env_root(), &["-qa", "--qf", format])
        .lines()
        .filter(|line| !line.starts_with("gpg-pubkey-"))
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = set.packages.iter().map(RpmChrootPackage::nevra).collect();
    assert_eq!(installed, expected);
    let pubkeys = query(&fixture.env_root(), &["-q", "gpg-pubkey"]);
    assert_eq!(pubkeys.lines().count(), 1, "{pubkeys}");
}

#[test]
fn install_order_puts_requirements_first() {
    if !can_run() {
        return;
    }
    let fixture = Fixture::new();
    let config = fixture.config();
    let checked = fixture.template(&config);

    let set = rpm_set(
        &checked,
        &config,
        PackagesOptions::default(),
        PackageSet::BuildTools,
    )
    .unwrap();

    let position = |name: &str| {
        set.packages
            .iter()
            .position(|package| package.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the set"))
    };
    assert!(position("mtools-data") < position("mtools"));
    assert!(position("filesystem") < position("bash"));
    assert!(position("libext2fs") < position("e2fsprogs"));
    assert!(position("e2fsprogs") < position("util-linux"));
    assert!(position("bash") < position("util-linux"));
    assert!(set.install.check_signatures);
    assert_eq!(set.install.keys.len(), 1);
}

#[test]
fn changed_package_rebuilds_chroot() {
    if !can_run() {
        return;
    }
    let fixture = Fixture::new();
    let (created, _) = fixture.prepare();
    assert_eq!(created.unwrap().outcome, "created");

    fixture.serve(Variant::Changed);
    let (rebuilt, logs) = fixture.prepare();

    assert_eq!(rebuilt.unwrap().outcome, "created");
    assert!(
        logs.contains("package xfsprogs changed: 1.0-1 -> 2.0-1"),
        "{logs}"
    );
    let version = query(
        &fixture.env_root(),
        &["-q", "--qf", "%{VERSION}", "xfsprogs"],
    );
    assert_eq!(version, "2.0");
    fixture.assert_no_mounts();
}

#[test]
fn failing_post_leaves_nothing() {
    if !can_run() {
        return;
    }
    let fixture = Fixture::new();
    let (created, _) = fixture.prepare();
    assert_eq!(created.unwrap().outcome, "created");

    fixture.serve(Variant::FailingPost);
    let (failed, _) = fixture.prepare();

    let message = failed.unwrap_err().to_string();
    assert!(
        message.contains("%post(xfsprogs-2.0-1.noarch)"),
        "{message}"
    );
    assert!(message.contains("xfsprogs setup failed"), "{message}");
    assert!(!fixture.env_root().exists());
    fixture.assert_no_mounts();
}

/// Returns the base repository's packages named `names`, as the installer takes them.
fn base_packages(names: &[&str]) -> Vec<RpmChrootPackage> {
    let repo = &built(Variant::Base).1;
    names
        .iter()
        .map(|&name| {
            let built = repo.package(name).unwrap();
            RpmChrootPackage {
                name: name.to_owned(),
                epoch: None,
                version: "1.0".to_owned(),
                release: "1".to_owned(),
                arch: built.arch.clone(),
                file: built.path.clone(),
                checksum_type: "sha256".to_owned(),
                checksum: built.sha256.clone(),
            }
        })
        .collect()
}

#[test]
fn rpm_rejects_unknown_signer() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let install = RpmInstall {
        keys: vec![built(Variant::Base).1.key_asc.clone()],
        check_signatures: true,
    };

    let packages = base_packages(&["filesystem", "foreign"]);
    let error = install_rpm_root(&root, &packages, &install).unwrap_err();

    let message = error.to_string();
    assert!(message.contains("foreign-1.0-1.noarch.rpm"), "{message}");
    assert!(message.contains("NOKEY"), "{message}");
    let mounts = mounts_under(dir.path()).unwrap();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
}

#[test]
fn database_mismatch_is_named() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let install = RpmInstall {
        keys: vec![built(Variant::Base).1.key_asc.clone()],
        check_signatures: true,
    };
    let mut packages = base_packages(&["filesystem"]);
    packages[0].version = "9.9".to_owned();

    let error = install_rpm_root(&root, &packages, &install).unwrap_err();

    let message = error.to_string();
    assert!(
        message.contains("not installed: filesystem-0:9.9-1.noarch"),
        "{message}"
    );
    assert!(
        message.contains("installed but not requested: filesystem-0:1.0-1.noarch"),
        "{message}"
    );
}

#[test]
fn missing_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut packages = base_packages(&["filesystem"]);
    packages[0].file = dir.path().join("absent.rpm");
    let install = RpmInstall {
        keys: Vec::new(),
        check_signatures: false,
    };

    let error = install_rpm_root(dir.path(), &packages, &install).unwrap_err();

    let message = error.to_string();
    assert!(message.contains("absent.rpm"), "{message}");
    assert!(message.contains("fetch the packages first"), "{message}");
}

#[test]
fn gpgcheck_off_turns_rpm_check_off() {
    if !can_run() {
        return;
    }
    let fixture = Fixture::new();
    let config = fixture.config_with_check(false);
    let checked = fixture.template(&config);

    let set = rpm_set(
        &checked,
        &config,
        PackagesOptions::default(),
        PackageSet::BuildTools,
    )
    .unwrap();

    assert!(!set.install.check_signatures);
    assert!(set.install.keys.is_empty(), "{:?}", set.install.keys);
}

#[test]
fn unchecked_install_accepts_unknown_signer() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let install = RpmInstall {
        keys: Vec::new(),
        check_signatures: false,
    };

    let packages = base_packages(&["filesystem", "foreign"]);
    install_rpm_root(&root, &packages, &install).unwrap();

    let expected: BTreeSet<String> = ["filesystem", "foreign"]
        .iter()
        .map(|&name| name.to_owned())
        .collect();
    assert_eq!(installed_names(&root), expected);
}
