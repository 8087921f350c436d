//! The packages a resolution chooses from, indexed by name and by capability.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::dependency::Dependency;
use crate::package::RpmPackage;

/// A package of one repository, with that repository's priority.
#[derive(Clone, Debug)]
pub struct RpmCandidate {
    pub package: RpmPackage,
    /// The id of the repository the package comes from.
    pub repository: String,
    /// The repository's priority: the highest wins, then the newest EVR. A negative priority
    /// means the package is never installed.
    pub priority: i32,
}

impl RpmCandidate {
    /// Returns `name-[epoch:]version-release.arch`.
    pub fn label(&self) -> String {
        self.package.nevra()
    }
}

/// The candidate packages of a resolution.
///
/// Capabilities are indexed from each package's name, its `Provides` entries and the files that
/// primary.xml lists for it, plus the files that [`RpmUniverse::add_file`] adds from
/// filelists.xml, so a lookup costs one hash probe.
#[derive(Debug, Default)]
pub struct RpmUniverse {
    candidates: Vec<RpmCandidate>,
    /// Package indices by package name, the preferred candidate first.
    by_name: HashMap<String, Vec<usize>>,
    /// Package indices by capability or file path, each package once.
    providers: HashMap<String, Vec<usize>>,
}

impl RpmUniverse {
    /// Indexes `candidates`.
    pub fn new(candidates: Vec<RpmCandidate>) -> Self {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut providers: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, candidate) in candidates.iter().enumerate() {
            let package = &candidate.package;
            by_name.entry(package.name.clone()).or_default().push(index);
            let capabilities = std::iter::once(&package.name)
                .chain(package.provides.iter().map(|provide| &provide.name))
                .chain(&package.files);
            for capability in capabilities {
                let entry = providers.entry(capability.clone()).or_default();
                if entry.last() != Some(&index) {
                    entry.push(index);
                }
            }
        }
        for versions in by_name.values_mut() {
            versions.sort_by(|&a, &b| preference(&candidates[a], &candidates[b]).then(a.cmp(&b)));
        }
        Self {
            candidates,
            by_name,
            providers,
        }
    }

    pub fn candidates(&self) -> &[RpmCandidate] {
        &self.candidates
    }

    pub fn get(&self, index: usize) -> &RpmCandidate {
        &self.candidates[index]
    }

    /// Returns the packages named `name`, the preferred one first.
    pub fn versions_of(&self, name: &str) -> &[usize] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// Returns the packages that provide the capability or file `name`, in any version.
    pub fn providers_of(&self, name: &str) -> &[usize] {
        self.providers.get(name).map_or(&[], Vec::as_slice)
    }

    /// Returns whether some package provides `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.providers.contains_key(name)
    }

    /// Returns the package names in the index.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Adds `path` to the files of the package at `index`, as read from filelists.xml. Returns
    /// whether the package did not list it yet.
    pub fn add_file(&mut self, index: usize, path: &str) -> bool {
        let files = &mut self.candidates[index].package.files;
        if files.iter().any(|file| file == path) {
            return false;
        }
        files.push(path.to_owned());
        let providers = self.providers.entry(path.to_owned()).or_default();
        if !providers.contains(&index) {
            providers.push(index);
        }
        true
    }

    /// Returns the installable packages that satisfy `dependency`.
    pub fn matching<'s>(&'s self, dependency: &'s Dependency) -> impl Iterator<Item = usize> + 's {
        self.providers_of(&dependency.name)
            .iter()
            .copied()
            .filter(move |&index| {
                let candidate = &self.candidates[index];
                candidate.priority >= 0 && candidate.package.satisfies(dependency)
            })
    }
}

/// Orders two candidates by preference: the higher repository priority, then the newer EVR.
pub(crate) fn preference(a: &RpmCandidate, b: &RpmCandidate) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| b.package.evr.cmp(&a.package.evr))
}
