//! The packages the solver may choose from, indexed by name and by provided name.

use std::cmp::Ordering;
use std::sync::Arc;

use oic_deb::relation::ArchQualifier;
use oic_deb::{MultiArch, Name, Package, Relation};

/// The number of packages [`UniversePackage::extend_from_index`] moves between two shrinks of the
/// source array.
const MOVE_BLOCK: usize = 4096;

/// A package of a repository index together with where it comes from.
#[derive(Debug, Clone)]
pub struct UniversePackage {
    /// The package, boxed so that moving an index into the universe copies a pointer per package
    /// instead of the whole value.
    pub package: Box<Package>,
    /// The id of the repository whose index lists the package, shared by all its packages.
    pub repository: Arc<str>,
    /// The apt pin priority of that repository. A negative priority means never install.
    pub pin_priority: i32,
}

impl UniversePackage {
    pub fn new(package: Package, repository: &str, pin_priority: i32) -> Self {
        Self::with_shared_id(package, Arc::from(repository), pin_priority)
    }

    fn with_shared_id(package: Package, repository: Arc<str>, pin_priority: i32) -> Self {
        Self {
            package: Box::new(package),
            repository,
            pin_priority,
        }
    }

    /// Moves the packages of one repository index to the end of `target`, in index order.
    ///
    /// The packages are moved from the end of `packages` into boxes, and the buffer of
    /// `packages` shrinks every [`MOVE_BLOCK`] packages. The memory of the whole array (about
    /// 26 MB for Debian's main index) is therefore not needed twice.
    pub fn extend_from_index(
        target: &mut Vec<UniversePackage>,
        mut packages: Vec<Package>,
        repository: &str,
        pin_priority: i32,
    ) {
        let start = target.len();
        let repository: Arc<str> = Arc::from(repository);
        target.reserve_exact(packages.len());
        while let Some(package) = packages.pop() {
            let shared_id = Arc::clone(&repository);
            target.push(Self::with_shared_id(package, shared_id, pin_priority));
            if packages.len() % MOVE_BLOCK == 0 {
                packages.shrink_to_fit();
            }
        }
        target[start..].reverse();
    }

    /// The package's `name version`, as messages show it.
    pub fn label(&self) -> String {
        format!("{} {}", self.package.name, self.package.version)
    }
}

/// All candidate packages for one native architecture.
///
/// Packages of other architectures are dropped when the universe is built: an image has one
/// architecture, and `all` packages count as native.
#[derive(Debug)]
pub struct Universe {
    packages: Vec<UniversePackage>,
    native_arch: String,
    /// Indexes into `packages`, sorted by package name and then in preference order, so the
    /// versions of one name are a contiguous slice. A sorted array takes a fraction of the memory
    /// of a map with a key and a vector per name.
    by_name: Vec<usize>,
    /// Pairs of a provided name and the index of one package that provides it, one pair per
    /// name of a providing package. Sorted by provided name and then in the order the solver tries
    /// the providers. Like `by_name`, it replaces a map with a vector of names per key.
    providers: Vec<(Name, usize)>,
}

impl Universe {
    /// Indexes `packages` for `native_arch` (for example `amd64`).
    pub fn new(packages: impl IntoIterator<Item = UniversePackage>, native_arch: &str) -> Self {
        let mut ignored = 0_usize;
        let packages: Vec<UniversePackage> = packages
            .into_iter()
            .filter(|candidate| {
                let arch = candidate.package.architecture.as_str();
                let keep = arch == native_arch || arch == "all";
                ignored += usize::from(!keep);
                keep
            })
            .collect();
        if ignored > 0 {
            tracing::debug!(
                ignored,
                native_arch,
                "ignored packages of other architectures"
            );
        }

        let mut by_name: Vec<usize> = (0..packages.len()).collect();
        by_name.sort_unstable_by(|&a, &b| {
            let name = |index: usize| packages[index].package.name.as_str();
            name(a)
                .cmp(name(b))
                .then_with(|| preference(&packages[a], &packages[b]))
                .then(a.cmp(&b))
        });

        let mut universe = Self {
            packages,
            native_arch: native_arch.to_owned(),
            by_name,
            providers: Vec::new(),
        };
        universe.providers = universe.index_providers();
        universe
    }

    fn index_providers(&self) -> Vec<(Name, usize)> {
        let mut providers: Vec<(Name, usize)> = Vec::new();
        for (index, candidate) in self.packages.iter().enumerate() {
            for provided in &candidate.package.provides {
                providers.push((provided.name.clone(), index));
            }
        }
        let name = |index: usize| self.packages[index].package.name.as_str();
        providers.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| name(a.1).cmp(name(b.1))));
        providers.dedup_by(|a, b| a.0 == b.0 && name(a.1) == name(b.1));
        providers.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.compare_providers(name(a.1), name(b.1)))
        });
        providers.shrink_to_fit();
        providers
    }

    /// Orders providers of one name: higher pin priority of their best version first, then the
    /// more important `Priority` field, then by name so the order is stable.
    fn compare_providers(&self, a: &str, b: &str) -> Ordering {
        let best = |name: &str| self.best(name).map_or(i32::MIN, |c| c.pin_priority);
        let rank = |name: &str| {
            self.best(name)
                .map_or(usize::MAX, |c| priority_rank(c.package.priority.as_deref()))
        };
        best(b)
            .cmp(&best(a))
            .then_with(|| rank(a).cmp(&rank(b)))
            .then_with(|| a.cmp(b))
    }

    fn best(&self, name: &str) -> Option<&UniversePackage> {
        self.versions_of(name)
            .first()
            .map(|&index| &self.packages[index])
    }

    pub fn native_arch(&self) -> &str {
        &self.native_arch
    }

    /// The packages of the native architecture and `all`.
    pub fn packages(&self) -> &[UniversePackage] {
        &self.packages
    }

    pub fn get(&self, index: usize) -> &UniversePackage {
        &self.packages[index]
    }

    /// Indexes of the packages called `name`, highest pin priority first, then newest version.
    pub fn versions_of(&self, name: &str) -> &[usize] {
        let name_at = |index: &usize| self.packages[*index].package.name.as_str();
        let start = self.by_name.partition_point(|index| name_at(index) < name);
        let length = self.by_name[start..].partition_point(|index| name_at(index) == name);
        &self.by_name[start..start + length]
    }

    /// Names of the packages whose `Provides` lists `name`, each once, in the order the solver
    /// tries them.
    pub fn providers_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.provider_entries(name)
            .iter()
            .map(|&(_, index)| self.packages[index].package.name.as_str())
    }

    fn provider_entries(&self, name: &str) -> &[(Name, usize)] {
        let start = self
            .providers
            .partition_point(|(provided, _)| provided.as_str() < name);
        let rest = &self.providers[start..];
        &rest[..rest.partition_point(|(provided, _)| provided.as_str() == name)]
    }

    /// Names of the real packages, each once, in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut previous: Option<&str> = None;
        self.by_name.iter().filter_map(move |&index| {
            let name = self.packages[index].package.name.as_str();
            let is_new = previous != Some(name);
            previous = Some(name);
            is_new.then_some(name)
        })
    }

    /// Tells whether any real package or provider answers to `name`.
    pub fn knows(&self, name: &str) -> bool {
        !self.versions_of(name).is_empty() || !self.provider_entries(name).is_empty()
    }

    /// Tells whether the package itself (not a `Provides` entry) satisfies `relation`.
    pub fn satisfies_directly(&self, package: &Package, relation: &Relation) -> bool {
        package.name == relation.name
            && self.arch_matches(package, &relation.arch)
            && relation
                .constraint
                .as_ref()
                .is_none_or(|constraint| constraint.matches(&package.version))
    }

    /// Tells whether a `Provides` entry of the package satisfies `relation`.
    ///
    /// A versioned relation needs a versioned `Provides: name (= version)` whose version
    /// matches. An unversioned `Provides` satisfies only unversioned relations.
    pub fn satisfies_by_provides(&self, package: &Package, relation: &Relation) -> bool {
        if !self.arch_matches(package, &relation.arch) {
            return false;
        }
        package.provides.iter().any(|provided| {
            provided.name == relation.name
                && match &relation.constraint {
                    None => true,
                    Some(wanted) => provided.constraint.as_ref().is_some_and(|given| {
                        given.op == oic_deb::Op::Eq && wanted.matches(&given.version)
                    }),
                }
        })
    }

    /// Tells whether a `Conflicts` or `Breaks` relation hits the package, directly or through
    /// its `Provides`. With a single architecture the qualifier of the relation plays no part.
    pub fn is_hit_by(&self, package: &Package, relation: &Relation) -> bool {
        let unqualified = Relation {
            arch: ArchQualifier::None,
            ..relation.clone()
        };
        self.satisfies_directly(package, &unqualified)
            || self.satisfies_by_provides(package, &unqualified)
    }

    /// Applies the architecture qualifier of a relation, following dpkg: `:any` needs
    /// `Multi-Arch: allowed` on the target, `:native` and `:ARCH` need that architecture, and
    /// `all` packages count as native.
    fn arch_matches(&self, package: &Package, qualifier: &ArchQualifier) -> bool {
        match qualifier {
            ArchQualifier::None | ArchQualifier::Native => true,
            ArchQualifier::Any => package.multi_arch == MultiArch::Allowed,
            ArchQualifier::Named(arch) => *arch == self.native_arch || arch == "all",
        }
    }
}

/// Orders two versions of one name: higher pin priority first, then the newer version.
pub(crate) fn preference(a: &UniversePackage, b: &UniversePackage) -> Ordering {
    b.pin_priority
        .cmp(&a.pin_priority)
        .then_with(|| b.package.version.cmp(&a.package.version))
}

/// Ranks the `Priority` field, most important first; a missing field ranks last.
fn priority_rank(priority: Option<&str>) -> usize {
    ["required", "important", "standard", "optional", "extra"]
        .iter()
        .position(|known| Some(*known) == priority)
        .unwrap_or(5)
}
