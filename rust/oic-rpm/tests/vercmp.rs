//! Compares [`rpmvercmp`] and [`Evr`] ordering with the host's rpm on thousands of pairs.
//!
//! The versions come from the host's apt package lists, as Debian version strings with `:` and
//! `-` replaced so that rpm reads each as one version. A generator adds strings with digits,
//! letters, leading zeros, `.`, `_`, `+`, `~` and `^`. rpm compares all pairs in one call of
//! `rpm --eval` with a Lua loop, so the test costs one process.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::process::Command;

use oic_rpm::{rpmvercmp, Evr};

/// A small deterministic generator, so that a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap() % bound
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len())]
    }
}

/// Version strings from the host's apt lists, sampled to about `count`.
fn debian_versions(count: usize) -> Vec<String> {
    let output = Command::new("apt-cache")
        .arg("dumpavail")
        .output()
        .expect("apt-cache runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let all: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("Version: "))
        .map(|version| version.replace([':', '-'], "."))
        .collect();
    let step = (all.len() / count).max(1);
    all.into_iter().step_by(step).collect()
}

fn crafted_versions(random: &mut Lcg, count: usize) -> Vec<String> {
    let segments = [
        "0",
        "1",
        "2",
        "9",
        "10",
        "007",
        "00",
        "123456789012345678901",
        "a",
        "b",
        "Z",
        "rc",
        "git",
        "beta",
        "p",
    ];
    let separators = [".", ".", ".", "_", "+", "~", "^", "", "~~", "^~"];
    (0..count)
        .map(|_| {
            let mut version = String::new();
            for _ in 0..=random.next(5) {
                version.push_str(random.pick(&segments));
                version.push_str(random.pick(&separators));
            }
            if version.is_empty() {
                version.push('1');
            }
            version
        })
        .collect()
}

/// Returns rpm's comparison of every pair, as printed by `rpm.vercmp`.
fn rpm_compare(pairs: &[(String, String)]) -> Vec<Ordering> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pairs.txt");
    let mut text = String::new();
    for (a, b) in pairs {
        writeln!(text, "{a}\t{b}").unwrap();
    }
    std::fs::write(&input, text).unwrap();
    let script = format!(
        "%{{lua: for line in io.lines(\"{}\") do local a, b = line:match(\"^(.-)\\t(.*)$\") \
         print(rpm.vercmp(a, b) .. \"\\n\") end}}",
        input.display()
    );
    let output = Command::new("rpm")
        .arg("--eval")
        .arg(script)
        .output()
        .expect("rpm is installed (Debian package `rpm`)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Ordering> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|value| value.parse::<i32>().unwrap().cmp(&0))
        .collect();
    assert_eq!(
        results.len(),
        pairs.len(),
        "rpm printed one result per pair"
    );
    results
}

fn make_pairs(versions: &[String], random: &mut Lcg, count: usize) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = versions
        .windows(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    while pairs.len() < count {
        let a = &versions[random.next(versions.len())];
        let b = &versions[random.next(versions.len())];
        pairs.push((a.clone(), b.clone()));
    }
    pairs
}

fn mismatches(
    pairs: &[(String, String)],
    expected: &[Ordering],
    compare: impl Fn(&str, &str) -> Ordering,
) -> Vec<String> {
    pairs
        .iter()
        .zip(expected)
        .filter_map(|((a, b), expected)| {
            let actual = compare(a, b);
            (actual != *expected)
                .then(|| format!("{a:?} vs {b:?}: rpm {expected:?}, ours {actual:?}"))
        })
        .collect()
}

#[test]
fn rpmvercmp_matches_rpm() {
    let mut random = Lcg(0x5eed);
    let mut versions = debian_versions(2500);
    versions.extend(crafted_versions(&mut random, 2500));
    let pairs = make_pairs(&versions, &mut random, 8000);
    let expected = rpm_compare(&pairs);
    let wrong = mismatches(&pairs, &expected, rpmvercmp);
    assert!(
        wrong.is_empty(),
        "{} of {} pairs differ:\n{}",
        wrong.len(),
        pairs.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}

#[test]
fn evr_order_matches_rpm() {
    let mut random = Lcg(0xe7a);
    let bases = crafted_versions(&mut random, 300);
    let epochs = ["", "", "0:", "1:", "2:", "10:", "01:"];
    let releases = [
        "", "-1", "-2", "-1.azl3", "-2.azl3", "-1~beta", "-1^post", "-10.el9",
    ];
    let versions: Vec<String> = (0..1500)
        .map(|_| {
            let base = &bases[random.next(bases.len())];
            format!("{}{base}{}", random.pick(&epochs), random.pick(&releases))
        })
        .collect();
    let pairs = make_pairs(&versions, &mut random, 4000);
    let expected = rpm_compare(&pairs);
    let wrong = mismatches(&pairs, &expected, |a, b| Evr::parse(a).cmp(&Evr::parse(b)));
    assert!(
        wrong.is_empty(),
        "{} of {} pairs differ:\n{}",
        wrong.len(),
        pairs.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}
