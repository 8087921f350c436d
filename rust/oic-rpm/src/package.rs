//! The package model read from primary.xml.

use std::fmt;

use crate::checksum::Checksum;
use crate::dependency::Dependency;
use crate::error::RpmError;
use crate::rich::Expression;
use crate::version::Evr;

/// One `Requires` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub expression: Expression,
    /// Set for `Requires(pre)` and similar (`pre="1"` in primary.xml): the dependency must be
    /// installed before this package's scripts run.
    pub pre: bool,
}

/// A binary package as primary.xml describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    pub arch: String,
    pub evr: Evr,
    /// The path of the file relative to the repository root (`location href`).
    pub location: String,
    /// The `xml:base` of the location, when the file lives under another URL.
    pub location_base: Option<String>,
    /// The size of the `.rpm` file in bytes.
    pub size: u64,
    pub installed_size: u64,
    /// The checksum of the `.rpm` file.
    pub checksum: Checksum,
    /// Whether the checksum is the package's identity (`pkgid="YES"`).
    pub pkgid: bool,
    pub source_rpm: Option<String>,
    pub requires: Vec<Requirement>,
    pub provides: Vec<Dependency>,
    pub conflicts: Vec<Dependency>,
    pub obsoletes: Vec<Dependency>,
    /// The files that primary.xml lists for this package, and those that
    /// [`crate::add_file_provides`] found in filelists.xml. `createrepo_c` lists in primary.xml
    /// only the files under `/etc/`, `*bin/` and `/usr/lib/sendmail`.
    pub files: Vec<String>,
}

impl RpmPackage {
    /// Returns `name-[epoch:]version-release.arch`, as rpm prints a package: the epoch only
    /// when it is not 0.
    pub fn nevra(&self) -> String {
        let mut evr = self.evr.clone();
        if evr.epoch_or_zero().bytes().all(|digit| digit == b'0') {
            evr.epoch = None;
        }
        format!("{}-{evr}.{}", self.name, self.arch)
    }

    /// Returns an error for the first requirement that uses an unsupported rich dependency.
    pub fn check_dependencies(&self) -> Result<(), RpmError> {
        for requirement in &self.requires {
            if let Some((text, reason)) = requirement.expression.unsupported() {
                return Err(RpmError::RichDependency {
                    package: self.nevra(),
                    expression: text.to_owned(),
                    reason: reason.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Returns whether the package provides `dependency`: by a `Provides` entry, by its own
    /// name and version, or, for a path, by a file it lists.
    pub fn satisfies(&self, dependency: &Dependency) -> bool {
        if dependency.is_file() && self.files.contains(&dependency.name) {
            return true;
        }
        if self.name == dependency.name {
            let own = Dependency {
                name: self.name.clone(),
                constraint: Some(crate::dependency::Constraint {
                    comparison: crate::dependency::Comparison::Equal,
                    evr: self.evr.clone(),
                }),
            };
            if dependency.is_satisfied_by(&own) {
                return true;
            }
        }
        self.provides
            .iter()
            .any(|provide| dependency.is_satisfied_by(provide))
    }
}

impl fmt::Display for RpmPackage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.nevra())
    }
}
