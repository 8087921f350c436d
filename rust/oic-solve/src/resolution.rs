//! The chosen packages, the dependency graph between them and its Graphviz rendering.

use std::collections::HashMap;
use std::fmt::Write as _;

use oic_deb::{Alternatives, Relation};

use crate::universe::{Universe, UniversePackage};

/// The field a dependency edge comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DependencyKind {
    PreDepends,
    Depends,
    Recommends,
}

impl DependencyKind {
    pub fn field(self) -> &'static str {
        match self {
            DependencyKind::PreDepends => "Pre-Depends",
            DependencyKind::Depends => "Depends",
            DependencyKind::Recommends => "Recommends",
        }
    }
}

/// An edge of the dependency graph: `from` needs `to`, which the solver chose to satisfy one
/// dependency group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyEdge {
    /// Index into [`Resolution::packages`] of the depending package.
    pub from: usize,
    /// Index into [`Resolution::packages`] of the package that satisfies the dependency.
    pub to: usize,
    pub kind: DependencyKind,
    /// The dependency group as the control file writes it, such as `a (>= 1) | b`.
    pub relation: String,
    /// The virtual name when `to` satisfies the dependency through its `Provides`.
    pub provided: Option<String>,
}

/// The packages an image installs and why.
#[derive(Debug, Clone)]
pub struct Resolution<'u> {
    /// The chosen packages, sorted by name.
    pub packages: Vec<&'u UniversePackage>,
    /// The dependency edges, sorted by depending package, field and target.
    pub edges: Vec<DependencyEdge>,
}

impl<'u> Resolution<'u> {
    /// Builds the resolution of the chosen package indexes of `universe`.
    pub(crate) fn new(universe: &'u Universe, chosen: &[usize], with_recommends: bool) -> Self {
        let mut chosen = chosen.to_vec();
        chosen.sort_by(|&a, &b| {
            universe
                .get(a)
                .package
                .name
                .cmp(&universe.get(b).package.name)
        });
        let packages: Vec<&UniversePackage> = chosen.iter().map(|&i| universe.get(i)).collect();
        let position: HashMap<&str, usize> = packages
            .iter()
            .enumerate()
            .map(|(position, candidate)| (candidate.package.name.as_str(), position))
            .collect();

        let mut edges = Vec::new();
        for (from, candidate) in packages.iter().enumerate() {
            let package = &candidate.package;
            let mut groups: Vec<(DependencyKind, &Alternatives)> = Vec::new();
            groups.extend(
                package
                    .pre_depends
                    .iter()
                    .map(|g| (DependencyKind::PreDepends, g)),
            );
            groups.extend(package.depends.iter().map(|g| (DependencyKind::Depends, g)));
            if with_recommends {
                groups.extend(
                    package
                        .recommends
                        .iter()
                        .map(|g| (DependencyKind::Recommends, g)),
                );
            }
            for (kind, group) in groups {
                let Some((to, provided)) = satisfier(universe, &packages, &position, group) else {
                    continue;
                };
                edges.push(DependencyEdge {
                    from,
                    to,
                    kind,
                    relation: format_group(group),
                    provided,
                });
            }
        }
        edges.sort_by_key(|edge| (edge.from, edge.kind, edge.to));
        Self { packages, edges }
    }

    /// The chosen package called `name`.
    pub fn get(&self, name: &str) -> Option<&'u UniversePackage> {
        self.packages
            .iter()
            .copied()
            .find(|candidate| candidate.package.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The names of the chosen packages, sorted.
    pub fn names(&self) -> Vec<&'u str> {
        self.packages
            .iter()
            .map(|candidate| candidate.package.name.as_str())
            .collect()
    }

    /// Writes the dependency graph in Graphviz DOT. Nodes are in name order and edges in the
    /// order of [`Resolution::edges`], so equal resolutions give equal text.
    pub fn to_dot(&self) -> String {
        let mut dot = String::from("digraph packages {\n");
        for candidate in &self.packages {
            let package = &candidate.package;
            let label = format!("{}\n{}", package.name, package.version);
            let _ = writeln!(dot, "  {} [label={}];", quote(&package.name), quote(&label));
        }
        for edge in &self.edges {
            let from = &self.packages[edge.from].package.name;
            let to = &self.packages[edge.to].package.name;
            let mut label = edge.relation.clone();
            if let Some(provided) = &edge.provided {
                let _ = write!(label, " [via {provided}]");
            }
            let style = match edge.kind {
                DependencyKind::PreDepends => "bold",
                DependencyKind::Depends => "solid",
                DependencyKind::Recommends => "dashed",
            };
            let _ = writeln!(
                dot,
                "  {} -> {} [label={}, style={style}];",
                quote(from),
                quote(to),
                quote(&label)
            );
        }
        dot.push_str("}\n");
        dot
    }
}

/// Finds the chosen package that satisfies a dependency group: the first alternative that a
/// chosen package satisfies, the real package before providers.
fn satisfier(
    universe: &Universe,
    packages: &[&UniversePackage],
    position: &HashMap<&str, usize>,
    group: &[Relation],
) -> Option<(usize, Option<String>)> {
    let native = universe.native_arch();
    for relation in group.iter().filter(|relation| relation.applies_to(native)) {
        if let Some(&to) = position.get(relation.name.as_str()) {
            if universe.satisfies_directly(&packages[to].package, relation) {
                return Some((to, None));
            }
        }
        for provider in universe.providers_of(&relation.name) {
            if let Some(&to) = position.get(provider) {
                if universe.satisfies_by_provides(&packages[to].package, relation) {
                    return Some((to, Some(relation.name.to_string())));
                }
            }
        }
    }
    None
}

pub(crate) fn format_group(group: &[Relation]) -> String {
    group
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Quotes a DOT identifier, escaping `"` and `\` and writing newlines as `\n`.
fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}
