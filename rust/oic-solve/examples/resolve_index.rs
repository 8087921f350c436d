//! Parses one uncompressed `Packages` index and resolves a request against it, printing the time
//! of each step. It measures the parser and the solver without the command line, the metadata
//! download and the signature check.
//!
//! Usage: `resolve_index PACKAGES NAME...`. The essential set is added to the request the way the
//! `debian-debian12-x86_64` provider defines it: every package with `Essential: yes` or
//! `Priority: required`, plus `usr-is-merged`.

use std::process::ExitCode;
use std::time::Instant;

use oic_solve::{solve, Request, SolveRequest, Universe, UniversePackage};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: resolve_index PACKAGES NAME...");
        return ExitCode::from(2);
    };
    let names: Vec<String> = args.collect();

    let started = Instant::now();
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("failed to open {path}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let packages = match oic_deb::read_packages(file) {
        Ok(packages) => packages,
        Err(error) => {
            eprintln!("{path} is not a valid Packages index: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stanzas = packages.len();
    let parsed = started.elapsed();

    let started = Instant::now();
    let mut candidates = Vec::new();
    UniversePackage::extend_from_index(&mut candidates, packages, "bookworm", 500);
    let universe = Universe::new(candidates, "amd64");
    let indexed = started.elapsed();

    let started = Instant::now();
    let request = SolveRequest {
        requests: names.iter().map(|name| Request::name(name)).collect(),
        essential: essential_names(&universe),
        ..SolveRequest::default()
    };
    let resolution = match solve(&universe, &request) {
        Ok(resolution) => resolution,
        Err(error) => {
            eprintln!("the request cannot be resolved: {error}");
            return ExitCode::FAILURE;
        }
    };
    let solved = started.elapsed();

    println!(
        "{stanzas} stanzas, {} packages chosen; read and parse {parsed:?}, index {indexed:?}, \
         solve {solved:?}",
        resolution.packages.len()
    );
    ExitCode::SUCCESS
}

fn essential_names(universe: &Universe) -> Vec<String> {
    let mut names: Vec<String> = universe
        .packages()
        .iter()
        .map(|candidate| &candidate.package)
        .filter(|package| package.essential || package.priority.as_deref() == Some("required"))
        .map(|package| package.name.clone())
        .collect();
    if universe.knows("usr-is-merged") {
        names.push("usr-is-merged".to_owned());
    }
    names.sort_unstable();
    names.dedup();
    names
}
