//! Parses an uncompressed primary.xml and resolves a request against it, printing the time of
//! each step. `bench/rpm-primary.sh` runs the release build of this example.
//!
//! Usage: `resolve_primary PRIMARY.xml NAME...`

use std::io::BufReader;
use std::process::ExitCode;
use std::time::Instant;

use oic_rpm::{parse_primary, solve, RpmCandidate, RpmSolveRequest, RpmUniverse};

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let Some((path, names)) = arguments.split_first() else {
        eprintln!("usage: resolve_primary PRIMARY.xml NAME...");
        return ExitCode::from(2);
    };

    let started = Instant::now();
    let file = match fs_err::File::open(path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let packages = match parse_primary(BufReader::with_capacity(1 << 20, file), path) {
        Ok(packages) => packages,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let parsed = started.elapsed();

    let started = Instant::now();
    let count = packages.len();
    let candidates = packages
        .into_iter()
        .map(|package| RpmCandidate {
            package,
            repository: "bench".to_owned(),
            priority: 500,
        })
        .collect();
    let universe = RpmUniverse::new(candidates);
    let indexed = started.elapsed();

    let started = Instant::now();
    let request = RpmSolveRequest {
        requests: names.to_vec(),
        essential: Vec::new(),
    };
    let resolution = match solve(&universe, &request) {
        Ok(resolution) => resolution,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let solved = started.elapsed();

    println!(
        "{count} packages: parse {:.0} ms, index {:.0} ms, solve {:.0} ms, {} chosen, {} edges",
        parsed.as_secs_f64() * 1000.0,
        indexed.as_secs_f64() * 1000.0,
        solved.as_secs_f64() * 1000.0,
        resolution.packages.len(),
        resolution.edges.len()
    );
    ExitCode::SUCCESS
}
