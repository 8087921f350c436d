//! The resolvo dependency provider over a [`Universe`].
//!
//! Every resolvo name is a real package name, and every solvable is one package of the universe.
//! A virtual name has no resolvo name of its own: a dependency on `foo` becomes the union of the
//! version set "packages named `foo` that match" and, for each provider name `p`, the version set
//! "versions of `p` whose `Provides` satisfy the relation". That way resolvo's rule of one
//! solvable per name holds for real packages but never joins different providers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use oic_deb::Relation;
use resolvo::{
    Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies, DependencyProvider,
    Interner, KnownDependencies, NameId, Requirement, SolvableId, SolverCache, StringId,
    VersionSetId, VersionSetUnionId,
};

use crate::universe::{preference, Universe};

/// How a version set selects the solvables of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SetKind {
    /// Packages of that name that satisfy the relation themselves.
    Direct,
    /// Packages of that name whose `Provides` satisfy the relation.
    Provided,
    /// Packages of that name that a `Conflicts` (or, with `breaks`, a `Breaks`) relation does
    /// not hit. `allowed` is the declaring package when it carries that name, because a package
    /// never conflicts with itself.
    Unhit {
        breaks: bool,
        allowed: Option<usize>,
    },
}

/// A version set: a package name, the relation it came from and how it applies.
#[derive(Debug, Clone)]
pub(crate) struct VersionSet {
    pub name: NameId,
    pub relation: Relation,
    pub kind: SetKind,
}

/// Interned names, version sets, unions and strings. The solver asks for them through `&self`,
/// so they live behind a `RefCell`.
#[derive(Default)]
struct Tables {
    names: Vec<String>,
    name_ids: HashMap<String, NameId>,
    sets: Vec<VersionSet>,
    set_ids: HashMap<(NameId, String, SetKind), VersionSetId>,
    unions: Vec<Vec<VersionSetId>>,
    union_ids: HashMap<Vec<VersionSetId>, VersionSetUnionId>,
    strings: Vec<String>,
    /// The alternatives each requirement was built from, for messages.
    alternatives: HashMap<Requirement, Vec<Relation>>,
}

pub(crate) struct DebProvider<'u> {
    universe: &'u Universe,
    /// The name of each solvable, interned on the solver's first request for it, because the
    /// solver reads a small part of a large index.
    solvable_names: RefCell<Vec<Option<NameId>>>,
    tables: RefCell<Tables>,
}

pub(crate) fn solvable_id(index: usize) -> SolvableId {
    SolvableId::from_raw(u32::try_from(index).expect("fewer than 2^32 packages"))
}

pub(crate) fn package_index(solvable: SolvableId) -> usize {
    solvable.into_raw() as usize
}

impl<'u> DebProvider<'u> {
    pub fn new(universe: &'u Universe) -> Self {
        Self {
            universe,
            solvable_names: RefCell::new(vec![None; universe.packages().len()]),
            tables: RefCell::new(Tables::default()),
        }
    }

    pub fn universe(&self) -> &'u Universe {
        self.universe
    }

    pub fn version_set(&self, id: VersionSetId) -> VersionSet {
        self.tables.borrow().sets[id.0 as usize].clone()
    }

    /// The alternatives a requirement was built from.
    pub fn alternatives(&self, requirement: Requirement) -> Vec<Relation> {
        self.tables
            .borrow()
            .alternatives
            .get(&requirement)
            .cloned()
            .unwrap_or_default()
    }

    /// Builds the requirement for one `Depends` group, or `None` when no alternative applies to
    /// the native architecture. Alternatives keep their order, and within one alternative the
    /// real package comes before the providers.
    pub fn requirement_for(&self, alternatives: &[Relation]) -> Option<Requirement> {
        let native = self.universe.native_arch();
        let applicable: Vec<Relation> = alternatives
            .iter()
            .filter(|relation| relation.applies_to(native))
            .cloned()
            .collect();
        if applicable.is_empty() {
            return None;
        }
        let mut tables = self.tables.borrow_mut();
        let mut sets = Vec::new();
        for relation in &applicable {
            sets.push(tables.intern_set(&relation.name, relation, SetKind::Direct));
            for provider in self.universe.providers_of(&relation.name) {
                if provider != relation.name {
                    sets.push(tables.intern_set(provider, relation, SetKind::Provided));
                }
            }
        }
        dedup_in_order(&mut sets);
        let requirement = match sets.as_slice() {
            [single] => Requirement::Single(*single),
            _ => Requirement::Union(tables.intern_union(sets)),
        };
        tables.alternatives.insert(requirement, applicable);
        Some(requirement)
    }

    /// Builds the constraints of one `Conflicts` or `Breaks` relation of package `declaring`: for
    /// the real name and every provider of it, the versions that the relation does not hit.
    fn constraints_for(
        &self,
        declaring: usize,
        relation: &Relation,
        breaks: bool,
    ) -> Vec<VersionSetId> {
        let own_name = &self.universe.get(declaring).package.name;
        let mut names: Vec<&str> = Vec::new();
        if !self.universe.versions_of(&relation.name).is_empty() {
            names.push(&relation.name);
        }
        names.extend(self.universe.providers_of(&relation.name));
        let mut tables = self.tables.borrow_mut();
        let mut sets: Vec<VersionSetId> = names
            .into_iter()
            .map(|name| {
                let allowed = (name == own_name).then_some(declaring);
                tables.intern_set(name, relation, SetKind::Unhit { breaks, allowed })
            })
            .collect();
        dedup_in_order(&mut sets);
        sets
    }

    fn dependencies_of(&self, index: usize) -> KnownDependencies {
        let package = &self.universe.get(index).package;
        let native = self.universe.native_arch();
        let mut known = KnownDependencies::default();
        for group in package.pre_depends.iter().chain(&package.depends) {
            if let Some(requirement) = self.requirement_for(group) {
                known
                    .requirements
                    .push(ConditionalRequirement::from(requirement));
            }
        }
        let conflicts = package.conflicts.iter().map(|relation| (relation, false));
        let breaks = package.breaks.iter().map(|relation| (relation, true));
        for (relation, is_breaks) in conflicts.chain(breaks) {
            if relation.applies_to(native) {
                known
                    .constrains
                    .extend(self.constraints_for(index, relation, is_breaks));
            }
        }
        known
    }

    fn matches(&self, set: &VersionSet, index: usize) -> bool {
        let package = &self.universe.get(index).package;
        match set.kind {
            SetKind::Direct => self.universe.satisfies_directly(package, &set.relation),
            SetKind::Provided => self.universe.satisfies_by_provides(package, &set.relation),
            SetKind::Unhit { allowed, .. } => {
                allowed == Some(index) || !self.universe.is_hit_by(package, &set.relation)
            }
        }
    }

    /// The text of an exclusion reason.
    pub fn display_reason(&self, reason: StringId) -> String {
        self.tables.borrow().strings[reason.0 as usize].clone()
    }

    fn intern_string(&self, text: String) -> StringId {
        let mut tables = self.tables.borrow_mut();
        tables.strings.push(text);
        StringId(u32::try_from(tables.strings.len() - 1).expect("fewer than 2^32 strings"))
    }
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

    fn intern_set(&mut self, name: &str, relation: &Relation, kind: SetKind) -> VersionSetId {
        let name = self.intern_name(name);
        let key = (name, relation.to_string(), kind);
        if let Some(id) = self.set_ids.get(&key) {
            return *id;
        }
        let id = VersionSetId(u32::try_from(self.sets.len()).expect("fewer than 2^32 sets"));
        self.sets.push(VersionSet {
            name,
            relation: relation.clone(),
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

fn dedup_in_order(sets: &mut Vec<VersionSetId>) {
    let mut seen = std::collections::HashSet::new();
    sets.retain(|set| seen.insert(*set));
}

impl Interner for DebProvider<'_> {
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
        match (set.kind, &set.relation.constraint) {
            (SetKind::Direct, Some(constraint)) => format!("{constraint}"),
            (SetKind::Direct, None) => "*".to_owned(),
            (SetKind::Provided, _) => format!("providing {}", set.relation),
            (SetKind::Unhit { .. }, _) => format!("not {}", set.relation),
        }
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.tables.borrow().strings[string_id.0 as usize].clone()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.tables.borrow().sets[version_set.0 as usize].name
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        let index = package_index(solvable);
        let mut names = self.solvable_names.borrow_mut();
        *names[index].get_or_insert_with(|| {
            let name = &self.universe.get(index).package.name;
            self.tables.borrow_mut().intern_name(name)
        })
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

impl DependencyProvider for DebProvider<'_> {
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
            if candidate.pin_priority < 0 {
                let reason = format!(
                    "the pin priority of repository {} is {}",
                    candidate.repository, candidate.pin_priority
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
        Dependencies::Known(self.dependencies_of(package_index(solvable)))
    }
}
