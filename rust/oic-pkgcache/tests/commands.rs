//! The cache commands on real files: info, clean, prune, verify and the lock they share.

mod common;

use std::fs::FileTimes;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::{build_repo, fetch, provider_dir, wanted, PROVIDER};
use oic_config::provider::KeyRef;
use oic_config::Repository;
use oic_pkgcache::{
    cache_info, clean, load_verify_index, prune, verify, write_dot, CacheLock, CleanOptions,
    CleanScope, PkgCacheError, PruneOptions, RedownloadReason, VerifyIndex, VerifyStatus,
};
use oic_repo::MetadataOptions;
use oic_testkit::HttpServer;

fn write(path: &Path, bytes: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, vec![b'x'; bytes]).unwrap();
}

/// Creates a work folder with a chroot, two snapshots and an image build for the provider.
fn fill_work_dir(work: &Path) {
    write(&work.join(PROVIDER).join("chrootenv/usr/bin/sh"), 100);
    write(
        &work.join(PROVIDER).join("chrootbuild/chrootenv.tar.zst"),
        40,
    );
    write(&work.join(PROVIDER).join("chrootbuild/other.tar.gz"), 2);
    write(&work.join(PROVIDER).join("chrootbuild/notes.txt"), 7);
    write(&work.join(PROVIDER).join("imagebuild/disk.raw"), 300);
}

#[test]
fn info_counts_each_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, work) = (dir.path().join("cache"), dir.path().join("work"));
    write(&provider_dir(&cache).join("a_1_amd64.deb"), 10);
    write(&provider_dir(&cache).join(".a_1_amd64.deb.part-1-1"), 5);
    write_dot(&cache, PROVIDER, "digraph {}\n").unwrap();
    write(
        &cache
            .join("metadata/v1")
            .join(PROVIDER)
            .join("repos/x/InRelease"),
        20,
    );
    fill_work_dir(&work);

    let info = cache_info(&cache, &work).unwrap();
    assert_eq!(info.providers.len(), 1);
    let provider = &info.providers[0];
    assert_eq!(provider.provider_id, PROVIDER);
    assert_eq!((provider.packages.files, provider.packages.bytes), (1, 10));
    assert_eq!(provider.chroot_env.bytes, 100);
    assert_eq!(
        (provider.snapshots.files, provider.snapshots.bytes),
        (2, 42)
    );
    assert_eq!(provider.image_builds.bytes, 300);
    assert_eq!(provider.metadata.bytes, 20);
    assert_eq!(info.metadata.bytes, 20);
    assert_eq!(info.total_bytes, 10 + 100 + 42 + 300 + 20);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["providers"][0]["packages"]["bytes"], 10);
}

#[test]
fn clean_scopes_and_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, work) = (dir.path().join("cache"), dir.path().join("work"));
    write(&provider_dir(&cache).join("a_1_amd64.deb"), 10);
    write(&cache.join("pkgCache/other-provider/b_1_amd64.deb"), 5);
    write(
        &cache
            .join("metadata/v1")
            .join(PROVIDER)
            .join("repos/x/InRelease"),
        20,
    );
    fill_work_dir(&work);

    let dry = clean(
        &cache,
        &work,
        &CleanOptions {
            dry_run: true,
            ..CleanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(dry.removed.len(), 2);
    assert_eq!(dry.freed_bytes, 15);
    assert!(provider_dir(&cache).join("a_1_amd64.deb").exists());

    let one = CleanOptions {
        provider: Some(PROVIDER.to_owned()),
        ..CleanOptions::default()
    };
    let report = clean(&cache, &work, &one).unwrap();
    assert_eq!(report.freed_bytes, 10);
    assert!(!provider_dir(&cache).exists());
    assert!(cache.join("pkgCache/other-provider/b_1_amd64.deb").exists());
    assert!(work.join(PROVIDER).exists());

    let workspace = CleanOptions {
        scope: CleanScope::Workspace,
        ..CleanOptions::default()
    };
    assert_eq!(clean(&cache, &work, &workspace).unwrap().freed_bytes, 449);
    assert!(!work.join(PROVIDER).exists());

    let all = CleanOptions {
        scope: CleanScope::All,
        ..CleanOptions::default()
    };
    assert_eq!(clean(&cache, &work, &all).unwrap().freed_bytes, 25);
    assert!(!cache.join("metadata").exists());
    assert!(cache.join("pkgCache/.lock").exists());
}

#[test]
fn clean_keeps_symlink_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, work) = (dir.path().join("cache"), dir.path().join("work"));
    let outside = dir.path().join("outside");
    write(&outside.join("precious"), 10);
    std::fs::create_dir_all(work.join(PROVIDER).join("chrootenv")).unwrap();
    std::os::unix::fs::symlink(&outside, work.join(PROVIDER).join("chrootenv/home")).unwrap();
    std::fs::create_dir_all(cache.join("pkgCache")).unwrap();
    std::os::unix::fs::symlink(&outside, cache.join("pkgCache").join(PROVIDER)).unwrap();

    let all = CleanOptions {
        scope: CleanScope::All,
        ..CleanOptions::default()
    };
    clean(&cache, &work, &all).unwrap();
    assert!(outside.join("precious").exists());
    assert!(!work.join(PROVIDER).exists());
    assert!(cache
        .join("pkgCache")
        .join(PROVIDER)
        .symlink_metadata()
        .is_err());
}

#[test]
fn clean_rejects_tree_with_mount() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cache, work) = (dir.path().join("cache"), dir.path().join("work"));
    let proc_dir = work.join(PROVIDER).join("chrootenv/proc");
    std::fs::create_dir_all(&proc_dir).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "oic-test", proc_dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(mounted.success());

    let workspace = CleanOptions {
        scope: CleanScope::Workspace,
        ..CleanOptions::default()
    };
    let result = clean(&cache, &work, &workspace);
    let unmounted = Command::new("umount").arg(&proc_dir).status().unwrap();
    assert!(unmounted.success());

    let error = result.unwrap_err();
    assert!(
        matches!(&error, PkgCacheError::MountedTree { mount_point, .. } if *mount_point == proc_dir.canonicalize().unwrap()),
        "{error}"
    );
    assert!(error.to_string().contains("chrootenv/proc"), "{error}");
    assert!(proc_dir.exists());
    clean(&cache, &work, &workspace).unwrap();
    assert!(!work.join(PROVIDER).exists());
}

fn set_last_use(path: &Path, days_ago: u64) {
    let time = SystemTime::now() - Duration::from_secs(days_ago * 86_400);
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_times(FileTimes::new().set_accessed(time).set_modified(time))
        .unwrap();
}

#[test]
fn prune_removes_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let folder = provider_dir(&cache);
    for (name, days) in [
        ("old_1_amd64.deb", 90),
        ("mid_1_amd64.deb", 20),
        ("new_1_amd64.deb", 1),
    ] {
        write(&folder.join(name), 100);
        set_last_use(&folder.join(name), days);
    }
    write_dot(&cache, PROVIDER, "digraph {}\n").unwrap();

    let by_age = PruneOptions {
        older_than_days: Some(30),
        ..PruneOptions::default()
    };
    let report = prune(&cache, &by_age).unwrap();
    let removed: Vec<_> = report.removed.iter().map(|f| f.path.clone()).collect();
    assert_eq!(removed, [folder.join("old_1_amd64.deb")]);
    assert_eq!((report.kept_files, report.kept_bytes), (2, 200));

    let by_size = PruneOptions {
        max_size: Some(150),
        ..PruneOptions::default()
    };
    let report = prune(&cache, &by_size).unwrap();
    assert_eq!(report.removed[0].path, folder.join("mid_1_amd64.deb"));
    assert!(folder.join("new_1_amd64.deb").exists());
    assert!(folder.join("chrootpkgs.dot").exists());
}

#[test]
fn reuse_marks_file_as_used() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let base = format!("file://{}", repo.root.display());
    let files = wanted(&repo, &base);
    let cache = dir.path().join("cache");
    fetch(&cache, &files).unwrap();
    for file in &files {
        set_last_use(&provider_dir(&cache).join(&file.file_name), 60);
    }

    fetch(&cache, &files[..1]).unwrap();
    let by_age = PruneOptions {
        older_than_days: Some(30),
        ..PruneOptions::default()
    };
    let report = prune(&cache, &by_age).unwrap();
    assert_eq!(report.removed.len(), files.len() - 1);
    assert!(provider_dir(&cache).join(&files[0].file_name).exists());
}

#[test]
fn exclusive_lock_waits_for_builds() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let build = CacheLock::shared(&cache).unwrap();
    let started = Instant::now();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        drop(build);
    });

    let report = prune(&cache, &PruneOptions::default()).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(report.removed.is_empty());
    releaser.join().unwrap();
}

fn verify_fixture(cache: &Path) -> VerifyIndex {
    let folder = provider_dir(cache);
    let mut index = VerifyIndex::new();
    std::fs::create_dir_all(&folder).unwrap();
    for (name, content) in [("good_1_amd64.deb", "good"), ("bad_1_amd64.deb", "bad")] {
        std::fs::write(folder.join(name), content).unwrap();
        index.insert(name, 4, &oic_repo::cache::sha256_hex(b"good"));
    }
    std::fs::write(folder.join("stray_1_amd64.deb"), "x").unwrap();
    index
}

#[test]
fn verify_reports_ok_mismatched_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let index = verify_fixture(&cache);

    let report = verify(&cache, None, false, &index).unwrap();
    assert_eq!(report.ok, 1);
    assert_eq!(report.mismatched.len(), 1);
    assert_eq!(report.mismatched[0].file_name, "bad_1_amd64.deb");
    assert_eq!(
        report.mismatched[0].status,
        VerifyStatus::Mismatched {
            reason: RedownloadReason::Truncated
        }
    );
    assert_eq!(report.unknown.len(), 1);
    assert_eq!(report.unknown[0].file_name, "stray_1_amd64.deb");
    assert!(provider_dir(&cache).join("bad_1_amd64.deb").exists());

    let report = verify(&cache, Some(PROVIDER), true, &index).unwrap();
    assert!(report.mismatched[0].deleted);
    assert!(!provider_dir(&cache).join("bad_1_amd64.deb").exists());
    assert!(provider_dir(&cache).join("stray_1_amd64.deb").exists());
    assert!(verify(&cache, None, false, &index).unwrap().is_clean());
}

#[test]
fn verify_index_loads_offline() {
    let dir = tempfile::tempdir().unwrap();
    let repo = build_repo(dir.path());
    let server = HttpServer::serve(&repo.root);
    let cache = dir.path().join("cache");
    let repositories = [Repository {
        name: "test".to_owned(),
        url: Some(server.url().trim_end_matches('/').to_owned()),
        path: None,
        suite: Some(repo.codename.clone()),
        components: vec!["main".to_owned()],
        keys: vec![KeyRef::Path(repo.key_gpg.clone())],
        priority: 500,
        gpg_check: true,
        allow_packages: Vec::new(),
    }];
    let options = MetadataOptions {
        cache_dir: cache.clone(),
        provider_id: PROVIDER.to_owned(),
        architecture: "amd64".to_owned(),
        offline: false,
    };
    oic_repo::load_repositories_blocking(&repositories, &options).unwrap();
    let files = wanted(&repo, &server.url());
    fetch(&cache, &files).unwrap();
    drop(server);

    let index = load_verify_index(&repositories, &options).unwrap();
    assert_eq!(index.len(), files.len());
    let report = verify(&cache, Some(PROVIDER), false, &index).unwrap();
    assert_eq!(report.ok, files.len());
    assert!(report.unknown.is_empty());
}
