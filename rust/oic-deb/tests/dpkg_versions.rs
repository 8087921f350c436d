//! Checks the version order against `dpkg --compare-versions` on versions from real indexes.

mod common;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use oic_deb::{parse_packages, Package, Version};

/// Pairs of neighbours in the sorted list of distinct versions.
const NEIGHBOUR_PAIRS: usize = 3_000;
/// Pairs of versions drawn at random from that list.
const RANDOM_PAIRS: usize = 2_000;
/// Pairs of a bookworm version and a newer suite's version of the same package.
const MAX_SAME_PACKAGE_PAIRS: usize = 1_000;
const MIN_PAIRS: usize = 5_000;

/// A small deterministic generator (xorshift64*), so a failing pair shows up on every run.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        usize::try_from(value).unwrap() % bound
    }
}

#[test]
fn every_index_version_parses() {
    let names = std::iter::once(common::BOOKWORM_PACKAGES).chain(common::UPDATE_PACKAGES);
    for name in names {
        let Some(text) = common::read_list(name) else {
            continue;
        };
        let mut count = 0;
        for line in text.lines() {
            if let Some(version) = line.strip_prefix("Version: ") {
                assert!(Version::parse(version).is_ok(), "{version}");
                count += 1;
            }
        }
        assert!(count > 0, "{name} has no Version field");
    }
}

#[test]
fn order_matches_dpkg() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        println!("skipped: `dpkg` is not installed");
        return;
    }
    let Some(text) = common::read_list(common::BOOKWORM_PACKAGES) else {
        return;
    };
    let bookworm = parse_packages(&text).unwrap();
    let newer: Vec<Package> = common::UPDATE_PACKAGES
        .iter()
        .filter_map(|name| common::read_list(name))
        .flat_map(|text| parse_packages(&text).unwrap())
        .collect();

    let sorted = sorted_versions(bookworm.iter().chain(&newer));
    let mut pairs = neighbour_pairs(&sorted);
    pairs.extend(random_pairs(&sorted));
    pairs.extend(same_package_pairs(&bookworm, &newer));
    assert!(pairs.len() >= MIN_PAIRS, "only {} pairs", pairs.len());

    let answers = dpkg_compare(&pairs);
    assert_eq!(answers.len(), pairs.len());
    let mut mismatches = Vec::new();
    for ((a, b), expected) in pairs.iter().zip(answers) {
        let ours = Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap());
        if ours != expected {
            mismatches.push(format!("{a} vs {b}: dpkg {expected:?}, oic-deb {ours:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    println!("{} pairs agree with dpkg", pairs.len());
}

/// Collects the distinct version strings of the packages and of their relations, sorted by
/// `Version`'s order.
fn sorted_versions<'a>(packages: impl Iterator<Item = &'a Package>) -> Vec<String> {
    let mut texts = BTreeSet::new();
    for package in packages {
        texts.insert(package.version.as_str().to_owned());
        let relations = package
            .depends
            .iter()
            .chain(&package.pre_depends)
            .flatten()
            .chain(&package.breaks)
            .chain(&package.conflicts);
        for relation in relations {
            if let Some(constraint) = &relation.constraint {
                texts.insert(constraint.version.as_str().to_owned());
            }
        }
    }

    let mut versions: Vec<Version> = texts
        .iter()
        .map(|text| Version::parse(text).unwrap())
        .collect();
    versions.sort();
    versions
        .iter()
        .map(|version| version.as_str().to_owned())
        .collect()
}

/// Takes neighbours at an even stride, plus every neighbour pair that compares equal though
/// written differently.
fn neighbour_pairs(sorted: &[String]) -> Vec<(String, String)> {
    let stride = (sorted.len() / NEIGHBOUR_PAIRS).max(1);
    let mut pairs = Vec::new();
    for (index, window) in sorted.windows(2).enumerate() {
        let equal = Version::parse(&window[0]).unwrap() == Version::parse(&window[1]).unwrap();
        if index % stride == 0 || equal {
            pairs.push((window[0].clone(), window[1].clone()));
        }
    }
    pairs
}

fn random_pairs(sorted: &[String]) -> Vec<(String, String)> {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    (0..RANDOM_PAIRS)
        .map(|_| {
            let a = &sorted[random.below(sorted.len())];
            let b = &sorted[random.below(sorted.len())];
            (a.clone(), b.clone())
        })
        .collect()
}

fn same_package_pairs(bookworm: &[Package], newer: &[Package]) -> Vec<(String, String)> {
    let by_name: BTreeMap<&str, &str> = bookworm
        .iter()
        .map(|package| (package.name.as_str(), package.version.as_str()))
        .collect();
    newer
        .iter()
        .filter_map(|package| {
            let old = by_name.get(package.name.as_str())?;
            let new = package.version.as_str();
            (*old != new).then(|| (new.to_owned(), (*old).to_owned()))
        })
        .take(MAX_SAME_PACKAGE_PAIRS)
        .collect()
}

/// Asks dpkg to order every pair, in two `sh` processes that read pairs from their input.
fn dpkg_compare(pairs: &[(String, String)]) -> Vec<Ordering> {
    let (first, second) = pairs.split_at(pairs.len() / 2);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| dpkg_compare_in_one_shell(first));
        let mut answers = dpkg_compare_in_one_shell(second);
        let mut all = first.join().unwrap();
        all.append(&mut answers);
        all
    })
}

fn dpkg_compare_in_one_shell(pairs: &[(String, String)]) -> Vec<Ordering> {
    let script = r#"while read -r a b; do
        if dpkg --compare-versions "$a" lt "$b"; then echo lt
        elif dpkg --compare-versions "$a" eq "$b"; then echo eq
        else echo gt; fi
    done"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("`sh` starts");

    let mut input = String::new();
    for (a, b) in pairs {
        writeln!(input, "{a} {b}").unwrap();
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));

    let stdout = BufReader::new(child.stdout.take().unwrap());
    let answers = stdout
        .lines()
        .map(|line| match line.unwrap().as_str() {
            "lt" => Ordering::Less,
            "eq" => Ordering::Equal,
            "gt" => Ordering::Greater,
            other => panic!("unexpected dpkg output `{other}`"),
        })
        .collect();

    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    answers
}
