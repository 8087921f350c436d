//! Times `parse_packages` on a decompressed `Packages` file.
//!
//! Usage: `cargo run --release -p oic-deb --example parse_index -- PACKAGES [RUNS]`

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: parse_index PACKAGES [RUNS]");
    let runs: usize = args
        .next()
        .map_or(5, |runs| runs.parse().expect("RUNS is a number"));
    let text = std::fs::read_to_string(&path).expect("the Packages file is readable UTF-8");

    for run in 1..=runs {
        let start = Instant::now();
        let packages = oic_deb::parse_packages(&text).expect("the index parses");
        let elapsed = start.elapsed();
        println!(
            "run {run}: {} packages from {} bytes in {:.1} ms",
            packages.len(),
            text.len(),
            elapsed.as_secs_f64() * 1000.0
        );
    }
}
