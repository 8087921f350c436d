//! The resolvo dependency provider over an [`RpmUniverse`].
//!
//! Every resolvo name is a package name and every solvable is one package, so resolvo installs
//! at most one package of a name, as rpm does for packages that are not install-only. A
//! capability has no resolvo name of its own: a requirement on `cap` becomes the union of, for
//! each package name `p` that provides `cap`, the version set "packages named `p` that satisfy
//! the requirement".

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, NameId, Requirement, SolvableId, SolverCache, StringId,
    VersionSetId, VersionSetUnionId,
};

use crate::dependency::Dependency;
use crate::rich::Expression;
use crate::universe::{preference, RpmUniverse};

/// The largest number of clauses one rich dependency may expand to. `(a and b) or (c and d)`
/// expands to 4.
const MAX_CLAUSES: usize = 256;

/// The rule by which a version set selects the packages of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SetKind {
    /// Packages that satisfy the dependency: by name, `Provides` or a listed file.
    Satisfying,
    /// Packages that a `Conflicts` entry does not hit. `allowed` is the declaring package,
    /// because rpm ignores a package's conflicts with itself.
    NotConflicting { allowed: usize },
    /// Packages that an `Obsoletes` entry does not hit. Obsoletes match package names and
    /// EVRs only, never `Provides`, as in rpm 4.18 and libsolv.
    NotObsoleted { allowed: usize },
}

/// A version set: a package name, the dependency it came from and how it applies.
#[derive(Debug, Clone)]
pub(crate) struct VersionSet {
    pub name: NameId,
    pub dependency: Dependency,
    pub kind: SetKind,
}

/// Interned names, version sets, unions and strings. resolvo reads them through `&self`, so
/// they live behind a `RefCell`.
#[derive(Default)]
struct Tables {
    names: Vec<String>,
    name_ids: HashMap<String, NameId>,
    sets: Vec<VersionSet>,
    set_ids: HashMap<(NameId, String, SetKind), VersionSetId>,
    unions: Vec<Vec<VersionSetId>>,
    union_ids: HashMap<Vec<VersionSetId>, VersionSetUnionId>,
    strings: Vec<String>,
}

pub(crate) struct RpmProvider<'u> {
    universe: &'u RpmUniverse,
    solvable_names: Vec<NameId>,
    tables: RefCell<Tables>,
}

pub(crate) fn solvable_id(index: usize) -> SolvableId {
    SolvableId::from_raw(u32::try_from(index).expect("fewer than 2^32 packages"))
}

pub(crate) fn package_index(solvable: SolvableId) -> usize {
    solvable.into_raw() as usize
}

/// Expands a requirement into clauses, each satisfied by any one of its entries: `(a or (b and
/// c))` becomes `[a, b]` and `[a, c]`. Returns the reason for an unsupported expression.
pub(crate) fn clauses_of(expression: &Expression) -> Result<Vec<Vec<Dependency>>, String> {
    match expression {
        Expression::Atom(dependency) => Ok(vec![vec![dependency.clone()]]),
        Expression::And(operands) => {
            let mut clauses = Vec::new();
            for operand in operands {
                clauses.extend(clauses_of(operand)?);
            }
            Ok(clauses)
        }
        Expression::Or(operands) => {
            let mut clauses = vec![Vec::new()];
            for operand in operands {
                clauses = distribute(&clauses, &clauses_of(operand)?)?;
            }
            Ok(clauses)
        }
        Expression::Unsupported { text, reason } => Err(format!("`{text}`: {reason}")),
    }
}

/// Returns every clause of `left` joined with every clause of `right`.
fn distribute(
    left: &[Vec<Dependency>],
    right: &[Vec<Dependency>],
) -> Result<Vec<Vec<Dependency>>, String> {
    if left.len() * right.len() > MAX_CLAUSES {
        return Err(format!(
            "it expands to more than {MAX_CLAUSES} clauses of alternatives"
        ));
    }
    let mut joined = Vec::with_capacity(left.len() * right.len());
    for one in left {
        for two in right {
            joined.push(one.iter().chain(two).cloned().collect());
        }
    }
    Ok(joined)
}

/// Returns a clause as rpm prints it: one entry, or `(a or b)`.
pub(crate) fn clause_text(clause: &[Dependency]) -> String {
    match clause {
        [single] => single.to_string(),
        _ => {
            let entries: Vec<String> = clause.iter().map(ToString::to_string).collect();
            format!("({})", entries.join(" or "))
        }
    }
}

impl<'u> RpmProvider<'u> {
    pub fn new(universe: &'u RpmUniverse) -> Self {
        let mut tables = Tables::default();
        let solvable_names = universe
            .candidates()
            .iter()
            .map(|candidate| tables.intern_name(&candidate.package.name))
            .collect();
        Self {
            universe,
            solvable_names,
            tables: RefCell::new(tables),
        }
    }

    fn version_set(&self, id: VersionSetId) -> VersionSet {
        self.tables.borrow().sets[id.0 as usize].clone()
    }

    /// Builds the requirement for one clause of alternatives. Within an entry the package
    /// names are ordered by [`provider_names`].
    pub fn requirement_for(&self, clause: &[Dependency]) -> Requirement {
        let mut tables = self.tables.borrow_mut();
        let mut sets = Vec::new();
        for dependency in clause {
            let names = provider_names(self.universe, dependency);
            if names.is_empty() {
                sets.push(tables.intern_set(&dependency.name, dependency, SetKind::Satisfying));
            }
            for name in names {
                sets.push(tables.intern_set(name, dependency, SetKind::Satisfying));
            }
        }
        let mut seen = std::collections::HashSet::new();
        sets.retain(|set| seen.insert(*set));
        match sets.as_slice() {
            [single] => Requirement::Single(*single),
            _ => Requirement::Union(tables.intern_union(sets)),
        }
    }

    /// Builds the constraints of one `Conflicts` entry of package `declaring`: for every name
    /// that provides the entry, the packages the entry does not hit.
    fn conflict_constraints(&self, declaring: usize, entry: &Dependency) -> Vec<VersionSetId> {
        let universe = self.universe;
        let mut names: Vec<&str> = universe
            .providers_of(&entry.name)
            .iter()
            .map(|&index| universe.get(index).package.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        let mut tables = self.tables.borrow_mut();
        let kind = SetKind::NotConflicting { allowed: declaring };
        names
            .into_iter()
            .map(|name| tables.intern_set(name, entry, kind))
            .collect()
    }

    fn dependencies_of(&self, index: usize) -> Dependencies {
        let package = &self.universe.get(index).package;
        let mut known = KnownDependencies::default();
        for requirement in &package.requires {
            let clauses = match clauses_of(&requirement.expression) {
                Ok(clauses) => clauses,
                Err(reason) => {
                    let reason = format!("its dependency {reason}");
                    return Dependencies::Unknown(self.intern_string(reason));
                }
            };
            for clause in clauses {
                let requirement = self.requirement_for(&clause);
                known
                    .requirements
                    .push(ConditionalRequirement::from(requirement));
            }
        }
        for entry in &package.conflicts {
            known
                .constrains
                .extend(self.conflict_constraints(index, entry));
        }
        for entry in &package.obsoletes {
            if !self.universe.versions_of(&entry.name).is_empty() {
                let kind = SetKind::NotObsoleted { allowed: index };
                let set = self
                    .tables
                    .borrow_mut()
                    .intern_set(&entry.name, entry, kind);
                known.constrains.push(set);
            }
        }
        Dependencies::Known(known)
    }

    fn matches(&self, set: &VersionSet, index: usize) -> bool {
        let package = &self.universe.get(index).package;
        match set.kind {
            SetKind::Satisfying => package.satisfies(&set.dependency),
            SetKind::NotConflicting { allowed } => {
                allowed == index || !package.satisfies(&set.dependency)
            }
            SetKind::NotObsoleted { allowed } => {
                allowed == index || !obsoletes_package(&set.dependency, package)
            }
        }
    }

    fn intern_string(&self, text: String) -> StringId {
        let mut tables = self.tables.borrow_mut();
        tables.strings.push(text);
        StringId(u32::try_from(tables.strings.len() - 1).expect("fewer than 2^32 strings"))
    }
}

/// Returns the names of the packages that satisfy `dependency`, in the order the solver tries
/// them: names that no other candidate obsoletes first (so a request for a replaced package
/// installs its replacement, as dnf does), then the package named like the dependency, then by
/// the priority of the best candidate, then alphabetically.
pub(crate) fn provider_names<'u>(
    universe: &'u RpmUniverse,
    dependency: &Dependency,
) -> Vec<&'u str> {
    let mut best: HashMap<&'u str, usize> = HashMap::new();
    for index in universe.matching(dependency) {
        let name = universe.get(index).package.name.as_str();
        best.entry(name).or_insert(universe.versions_of(name)[0]);
    }
    let obsoleted = |name: &str| {
        best.iter().any(|(&other, &index)| {
            other != name
                && universe.get(index).package.obsoletes.iter().any(|entry| {
                    entry.name == name
                        && universe.versions_of(name).iter().any(|&version| {
                            obsoletes_package(entry, &universe.get(version).package)
                        })
                })
        })
    };
    let mut names: Vec<(bool, bool, i32, &'u str)> = best
        .iter()
        .map(|(&name, &index)| {
            let priority = universe.get(index).priority;
            (obsoleted(name), name != dependency.name, -priority, name)
        })
        .collect();
    names.sort_unstable();
    names.into_iter().map(|(.., name)| name).collect()
}

/// Returns whether an `Obsoletes` entry hits `package`: same name, and its EVR in the range.
pub(crate) fn obsoletes_package(entry: &Dependency, package: &crate::RpmPackage) -> bool {
    entry.name == package.name
        && entry
            .constraint
            .as_ref()
            .is_none_or(|constraint| constraint.contains(&package.evr))
}

impl Tables {
    fn intern_name(&mut self, name: &str) -> NameId {
        if let Some(id) = self.name_ids.get(name) {
            return *id;
        }
        let id = NameId::from_raw(u32::try_from(self.names.len()).expect("fewer than 2^32 names"));
        self.names.push(name.to_owned());
        self.name_ids.insert(name.to_owned(), id);
        id
    }

    fn intern_set(&mut self, name: &str, dependency: &Dependency, kind: SetKind) -> VersionSetId {
        let name = self.intern_name(name);
        let key = (name, dependency.to_string(), kind);
        if let Some(id) = self.set_ids.get(&key) {
            return *id;
        }
        let id = VersionSetId(u32::try_from(self.sets.len()).expect("fewer than 2^32 sets"));
        self.sets.push(VersionSet {
            name,
            dependency: dependency.clone(),
            kind,
        });
        self.set_ids.insert(key, id);
        id
    }

    fn intern_union(&mut self, sets: Vec<VersionSetId>) -> VersionSetUnionId {
        if let Some(id) = self.union_ids.get(&sets) {
            return *id;
        }
        let id = VersionSetUnionId(u32::try_from(self.unions.len()).expect("fewer than 2^32"));
        self.unions.push(sets.clone());
        self.union_ids.insert(sets, id);
        id
    }
}

impl Interner for RpmProvider<'_> {
    type NameId = NameId;
    type SolvableId = SolvableId;

    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        self.universe.get(package_index(solvable)).label()
    }

    fn display_name(&self, name: NameId) -> impl fmt::Display + '_ {
        self.tables.borrow().names[name.into_raw() as usize].clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl fmt::Display + '_ {
        let set = self.version_set(version_set);
        match set.kind {
            SetKind::Satisfying => format!("providing {}", set.dependency),
            SetKind::NotConflicting { .. } => format!("not conflicting with {}", set.dependency),
            SetKind::NotObsoleted { .. } => format!("not obsoleted by {}", set.dependency),
        }
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.tables.borrow().strings[string_id.0 as usize].clone()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.tables.borrow().sets[version_set.0 as usize].name
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.solvable_names[package_index(solvable)]
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.tables.borrow().unions[version_set_union.0 as usize]
            .clone()
            .into_iter()
    }

    fn resolve_condition(&self, _condition: ConditionId) -> Condition {
        unreachable!("the provider creates no conditional requirements")
    }
}

impl DependencyProvider for RpmProvider<'_> {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let set = self.version_set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|&solvable| self.matches(&set, package_index(solvable)) != inverse)
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates<SolvableId>> {
        let name = self.tables.borrow().names[name.into_raw() as usize].clone();
        let mut candidates = Candidates::default();
        for &index in self.universe.versions_of(&name) {
            let candidate = self.universe.get(index);
            // Excluded packages stay candidates so that conflict reports can name them.
            candidates.candidates.push(solvable_id(index));
            if candidate.priority < 0 {
                let reason = format!(
                    "the priority of repository {} is {}",
                    candidate.repository, candidate.priority
                );
                candidates
                    .excluded
                    .push((solvable_id(index), self.intern_string(reason)));
            }
        }
        Some(candidates)
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        let universe = self.universe;
        solvables.sort_by(|&a, &b| {
            let (a, b) = (package_index(a), package_index(b));
            preference(universe.get(a), universe.get(b)).then(a.cmp(&b))
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        self.dependencies_of(package_index(solvable))
    }
}
