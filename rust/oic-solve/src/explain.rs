//! Readable explanations of unsatisfiable requests, built from resolvo's conflict graph.
//!
//! The graph has the requests as edges out of a root node, dependencies as edges from a package
//! to each candidate (or to a sink node when there is none), and conflicts as edges between
//! packages. The explanation walks it from the root, one indented line per step, so every
//! chain reads from the requested package down to the package that is missing or conflicts.

use std::collections::HashSet;

use oic_deb::relation::ArchQualifier;
use oic_deb::Relation;
use resolvo::conflict::{ConflictCause, ConflictEdge, ConflictGraph, ConflictNode};
use resolvo::{Requirement, SolvableId};

use crate::provider::{package_index, DebProvider, SetKind};
use crate::resolution::format_group;

/// Lines past this many are summarised, so a conflict in a large universe stays readable.
const MAX_LINES: usize = 200;

/// Explains why the problem behind `graph` has no solution.
pub(crate) fn explain(graph: &ConflictGraph<SolvableId>, provider: &DebProvider<'_>) -> String {
    let mut explainer = Explainer {
        provider,
        nodes: graph.graph.node_weights().copied().collect(),
        edges: graph
            .graph
            .raw_edges()
            .iter()
            .map(|edge| (edge.source().index(), edge.target().index(), edge.weight))
            .collect(),
        lines: Vec::new(),
        visited: HashSet::new(),
        reported: HashSet::new(),
    };
    let root = graph.root_node.index();
    explainer.visited.insert(root);
    explainer.explain_node(root, 0);
    explainer.report_remaining_conflicts();

    let mut lines = explainer.lines;
    if lines.len() > MAX_LINES {
        let hidden = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("... and {hidden} more lines"));
    }
    lines.join("\n")
}

struct Explainer<'p, 'u> {
    provider: &'p DebProvider<'u>,
    nodes: Vec<ConflictNode<SolvableId>>,
    edges: Vec<(usize, usize, ConflictEdge<SolvableId>)>,
    lines: Vec<String>,
    visited: HashSet<usize>,
    /// Conflict edges already written.
    reported: HashSet<usize>,
}

impl Explainer<'_, '_> {
    fn push(&mut self, depth: usize, line: &str) {
        self.lines.push(format!("{}{line}", "  ".repeat(depth)));
    }

    fn label(&self, node: usize) -> String {
        match self.nodes[node] {
            ConflictNode::Solvable(solvable) => self
                .provider
                .universe()
                .get(package_index(solvable))
                .label(),
            ConflictNode::Root => "the request".to_owned(),
            ConflictNode::UnresolvedDependency => "a missing package".to_owned(),
            ConflictNode::Excluded(_) => "an excluded package".to_owned(),
        }
    }

    fn explain_node(&mut self, node: usize, depth: usize) {
        self.report_conflicts_at(node, depth);
        for (requirement, targets) in self.requirements_of(node) {
            self.explain_requirement(node, requirement, &targets, depth);
        }
    }

    /// Writes the conflicts that keep `node` out of the solution: `Conflicts` and `Breaks`
    /// aimed at it, exclusions, and other versions of the same name.
    fn report_conflicts_at(&mut self, node: usize, depth: usize) {
        for index in 0..self.edges.len() {
            let (source, target, edge) = self.edges[index];
            let ConflictEdge::Conflict(cause) = edge else {
                continue;
            };
            let touches = match cause {
                ConflictCause::Excluded => source == node,
                _ => target == node,
            };
            if touches && self.reported.insert(index) {
                let line = self.conflict_line(source, target, cause);
                self.push(depth, &line);
            }
        }
    }

    /// Writes conflicts whose target the walk never reached, so none is left out.
    fn report_remaining_conflicts(&mut self) {
        for index in 0..self.edges.len() {
            let (source, target, edge) = self.edges[index];
            if let ConflictEdge::Conflict(cause) = edge {
                if self.reported.insert(index) {
                    let line = self.conflict_line(source, target, cause);
                    self.push(0, &line);
                }
            }
        }
    }

    fn conflict_line(
        &self,
        source: usize,
        target: usize,
        cause: ConflictCause<SolvableId>,
    ) -> String {
        let (source_label, target_label) = (self.label(source), self.label(target));
        match cause {
            ConflictCause::Constrains(set) => {
                let set = self.provider.version_set(set);
                match set.kind {
                    SetKind::Unhit { breaks: true, .. } => format!(
                        "{target_label} is broken by {source_label} (Breaks: {})",
                        set.relation
                    ),
                    _ => format!(
                        "{source_label} conflicts with {target_label} (Conflicts: {})",
                        set.relation
                    ),
                }
            }
            ConflictCause::ForbidMultipleInstances => format!(
                "{source_label} and {target_label} cannot both be installed, because only one \
                 version of a package can be installed"
            ),
            ConflictCause::Excluded => match self.nodes[target] {
                ConflictNode::Excluded(reason) => {
                    let reason = self.provider.display_reason(reason);
                    format!("{source_label} is never installed, because {reason}")
                }
                _ => format!("{source_label} is excluded"),
            },
            ConflictCause::Locked(_) => format!("{target_label} is locked"),
        }
    }

    /// Groups the outgoing dependency edges of `node` by requirement, in graph order.
    fn requirements_of(&self, node: usize) -> Vec<(Requirement, Vec<usize>)> {
        let mut groups: Vec<(Requirement, Vec<usize>)> = Vec::new();
        for &(source, target, edge) in &self.edges {
            let ConflictEdge::Requires(requirement) = edge else {
                continue;
            };
            if source != node {
                continue;
            }
            match groups.iter_mut().find(|(known, _)| *known == requirement) {
                Some((_, targets)) => targets.push(target),
                None => groups.push((requirement, vec![target])),
            }
        }
        groups
    }

    fn explain_requirement(
        &mut self,
        node: usize,
        requirement: Requirement,
        targets: &[usize],
        depth: usize,
    ) {
        let alternatives = self.provider.alternatives(requirement);
        let text = format_group(&alternatives);
        let head = match self.nodes[node] {
            ConflictNode::Root => format!("{text} is requested"),
            _ => format!("{} depends on {text}", self.label(node)),
        };
        let unresolved = targets
            .iter()
            .any(|&target| self.nodes[target] == ConflictNode::UnresolvedDependency);
        if unresolved {
            let reasons: Vec<String> = alternatives.iter().map(|r| self.availability(r)).collect();
            self.push(depth, &format!("{head}, but {}", reasons.join("; ")));
            return;
        }

        self.push(depth, &head);
        for relation in &alternatives {
            if !self.has_match(relation) {
                let line = self.availability(relation);
                self.push(depth + 1, &line);
            }
        }
        for &target in targets {
            if self.visited.insert(target) {
                self.explain_node(target, depth + 1);
            }
        }
    }

    fn has_match(&self, relation: &Relation) -> bool {
        let universe = self.provider.universe();
        let direct = universe
            .versions_of(&relation.name)
            .iter()
            .any(|&index| universe.satisfies_directly(&universe.get(index).package, relation));
        direct
            || universe.providers_of(&relation.name).any(|provider| {
                universe.versions_of(provider).iter().any(|&index| {
                    universe.satisfies_by_provides(&universe.get(index).package, relation)
                })
            })
    }

    /// Says what the universe offers for a relation that nothing satisfies.
    fn availability(&self, relation: &Relation) -> String {
        let universe = self.provider.universe();
        let versions: Vec<String> = universe
            .versions_of(&relation.name)
            .iter()
            .map(|&index| universe.get(index).package.version.to_string())
            .collect();
        let providers: Vec<String> = universe
            .providers_of(&relation.name)
            .flat_map(|name| universe.versions_of(name))
            .map(|&index| universe.get(index).label())
            .collect();
        let name = &relation.name;
        if !versions.is_empty() {
            let verb = if versions.len() == 1 { "is" } else { "are" };
            let mut line = format!("only {name} {} {verb} available", versions.join(", "));
            if relation.arch == ArchQualifier::Any {
                line.push_str(", and `:any` needs Multi-Arch: allowed");
            }
            line
        } else if !providers.is_empty() {
            format!(
                "{name} is a virtual package, and no provider satisfies {relation}: {} \
                 provide it",
                providers.join(", ")
            )
        } else {
            format!("no package called or providing {name} is available")
        }
    }
}
