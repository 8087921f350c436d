//! Creates, snapshots or restores a chroot environment from a local mirror. The benchmark
//! (`bench/chroot.sh`) and the fault tests run it; the product's command line comes later.
//!
//! ```text
//! oic-chroot ensure   --work-dir DIR --mirror DIR [--set essential|tools|bootable]
//!                     [--provider-id ID] [--key FINGERPRINT] [--no-snapshot]
//! oic-chroot snapshot --root DIR --tarball FILE
//! oic-chroot restore  --tarball FILE --target DIR
//! oic-chroot list     --mirror DIR [--set essential|tools|bootable]
//! oic-chroot hold     --root DIR
//! ```
//!
//! `hold` mounts the chroot's file systems, prints `mounted` and sleeps for a minute. The tests
//! stop it with a signal to check that the mounts are released.
//!
//! Each command prints one JSON line on success with the elapsed seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use oic_chroot::mirror::{mirror_packages, PackageSet};
use oic_chroot::snapshot::{restore_snapshot, sha256_file, write_snapshot};
use oic_chroot::{ensure, ChrootError, ChrootOptions, ProviderInputs, RepositoryInputs};

const USAGE: &str = "usage: oic-chroot ensure --work-dir DIR --mirror DIR [--set SET] \
[--provider-id ID] [--key FINGERPRINT] [--no-snapshot]
       oic-chroot snapshot --root DIR --tarball FILE
       oic-chroot restore --tarball FILE --target DIR
       oic-chroot list --mirror DIR [--set SET]
       oic-chroot hold --root DIR
SET is essential, tools (default) or bootable.";

/// Parsed command-line options.
#[derive(Debug, Default)]
struct Args {
    command: String,
    work_dir: Option<PathBuf>,
    mirror: Option<PathBuf>,
    set: Option<String>,
    provider_id: Option<String>,
    key: Option<String>,
    no_snapshot: bool,
    root: Option<PathBuf>,
    tarball: Option<PathBuf>,
    target: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut words = std::env::args().skip(1);
    let mut args = Args {
        command: words.next().ok_or("missing command")?,
        ..Args::default()
    };
    while let Some(word) = words.next() {
        if word == "--no-snapshot" {
            args.no_snapshot = true;
            continue;
        }
        let value = words
            .next()
            .ok_or_else(|| format!("{word} needs a value"))?;
        match word.as_str() {
            "--work-dir" => args.work_dir = Some(value.into()),
            "--mirror" => args.mirror = Some(value.into()),
            "--set" => args.set = Some(value),
            "--provider-id" => args.provider_id = Some(value),
            "--key" => args.key = Some(value),
            "--root" => args.root = Some(value.into()),
            "--tarball" => args.tarball = Some(value.into()),
            "--target" => args.target = Some(value.into()),
            _ => return Err(format!("unknown option {word}")),
        }
    }
    Ok(args)
}

fn required<T: Clone>(value: Option<&T>, name: &str) -> Result<T, String> {
    value.cloned().ok_or_else(|| format!("{name} is required"))
}

fn package_set(args: &Args) -> Result<PackageSet, String> {
    let name = args.set.as_deref().unwrap_or("tools");
    PackageSet::from_name(name).ok_or_else(|| format!("unknown package set {name}"))
}

fn run(args: &Args) -> Result<String, String> {
    let started = Instant::now();
    let error = |error: ChrootError| error.to_string();
    let detail = match args.command.as_str() {
        "ensure" => {
            let mirror = required(args.mirror.as_ref(), "--mirror")?;
            let packages =
                mirror_packages(&mirror, "bookworm", package_set(args)?).map_err(error)?;
            let options = ChrootOptions {
                work_dir: required(args.work_dir.as_ref(), "--work-dir")?,
                provider: ProviderInputs {
                    id: args
                        .provider_id
                        .clone()
                        .unwrap_or_else(|| "debian-debian12-x86_64".to_owned()),
                    repositories: vec![RepositoryInputs {
                        url: format!("file://{}", mirror.display()),
                        suite: "bookworm".to_owned(),
                        components: vec!["main".to_owned()],
                        key_fingerprints: args.key.iter().cloned().collect(),
                    }],
                },
                snapshot: !args.no_snapshot,
            };
            let ensure_started = Instant::now();
            let env = ensure(&options, &packages).map_err(error)?;
            format!(
                r#""outcome":"{}","packages":{},"root":{:?},"ensure_seconds":{:.6}"#,
                env.outcome().as_str(),
                packages.len(),
                env.root().display().to_string(),
                ensure_started.elapsed().as_secs_f64()
            )
        }
        "snapshot" => {
            let root = required(args.root.as_ref(), "--root")?;
            let tarball = required(args.tarball.as_ref(), "--tarball")?;
            let record = write_snapshot(&root, &tarball).map_err(error)?;
            format!(r#""bytes":{},"sha256":"{}""#, record.size, record.sha256)
        }
        "restore" => {
            let tarball = required(args.tarball.as_ref(), "--tarball")?;
            let target = required(args.target.as_ref(), "--target")?;
            let record = oic_chroot::manifest::SnapshotRecord {
                size: fs_err::metadata(&tarball).map_err(|e| e.to_string())?.len(),
                sha256: sha256_file(&tarball).map_err(error)?,
            };
            restore_snapshot(&tarball, &record, &target).map_err(error)?;
            r#""restored":true"#.to_owned()
        }
        "list" => {
            let mirror = required(args.mirror.as_ref(), "--mirror")?;
            let packages =
                mirror_packages(&mirror, "bookworm", package_set(args)?).map_err(error)?;
            let mut names: Vec<&str> = packages.iter().map(|p| p.package.name.as_str()).collect();
            names.sort_unstable();
            return Ok(names.join("\n"));
        }
        "hold" => {
            let root = required(args.root.as_ref(), "--root")?;
            let _mounts = oic_chroot::mounts::ChrootMounts::mount(&root).map_err(error)?;
            println!("mounted");
            std::thread::sleep(std::time::Duration::from_secs(60));
            r#""held":true"#.to_owned()
        }
        other => return Err(format!("unknown command {other}")),
    };
    Ok(format!(
        r#"{{"command":"{}",{detail},"seconds":{:.3}}}"#,
        args.command,
        started.elapsed().as_secs_f64()
    ))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("oic-chroot: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("oic-chroot: {message}");
            ExitCode::FAILURE
        }
    }
}
