//! A binary package as a `Packages` index describes it.

use crate::relation::{Alternatives, Relation};
use crate::version::Version;

/// The `Multi-Arch` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

/// A binary package stanza of a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Option<String>,
    pub section: Option<String>,
    /// The source package name, without the version some stanzas give in parentheses.
    pub source: Option<String>,
    pub depends: Vec<Alternatives>,
    pub pre_depends: Vec<Alternatives>,
    pub recommends: Vec<Alternatives>,
    pub suggests: Vec<Alternatives>,
    pub conflicts: Vec<Relation>,
    pub breaks: Vec<Relation>,
    pub provides: Vec<Relation>,
    pub replaces: Vec<Relation>,
    /// The pool path relative to the repository root.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// In KiB, as the index gives it.
    pub installed_size: Option<u64>,
}

impl Package {
    /// Creates a package with no relations and no file, for tests and synthetic indexes.
    pub fn new(name: &str, version: Version, architecture: &str) -> Self {
        Self {
            name: name.to_owned(),
            version,
            architecture: architecture.to_owned(),
            multi_arch: MultiArch::No,
            essential: false,
            priority: None,
            section: None,
            source: None,
            depends: Vec::new(),
            pre_depends: Vec::new(),
            recommends: Vec::new(),
            suggests: Vec::new(),
            conflicts: Vec::new(),
            breaks: Vec::new(),
            provides: Vec::new(),
            replaces: Vec::new(),
            filename: String::new(),
            size: 0,
            sha256: String::new(),
            installed_size: None,
        }
    }
}
