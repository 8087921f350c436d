//! The RPM dependency solver: chooses the packages an image installs from an [`RpmUniverse`].
//!
//! The rules are rpm's, as dnf applies them when it installs into an empty root:
//!
//! - Every `Requires` must be satisfied by a package name, a `Provides` entry or a file that
//!   primary.xml lists, or that [`crate::add_file_provides`] added from filelists.xml.
//!   Versioned entries compare with [`crate::Constraint::overlaps`], and an unversioned
//!   `Provides` satisfies every versioned `Requires` of its name.
//! - Rich dependencies with `and` and `or`, nested in any way, are expanded into clauses of
//!   alternatives. Other operators make the package uninstallable, with the reason.
//! - `Conflicts` keeps every package that provides a matching capability out of the solution,
//!   except the declaring package itself.
//! - `Obsoletes` keeps the packages of that name and EVR range out of the solution.
//! - One package per name. Candidates are tried by repository priority (highest first), then
//!   by EVR (newest first).
//!
//! A dependency that no package satisfies fails the resolution with the chain from the
//! requested package to it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::time::Instant;

use resolvo::{ConditionalRequirement, Problem, Solver, UnsolvableOrCancelled};

use crate::dependency::{Comparison, Constraint, Dependency};
use crate::error::RpmError;
use crate::provider::{clause_text, clauses_of, package_index, provider_names, RpmProvider};
use crate::universe::{RpmCandidate, RpmUniverse};
use crate::version::Evr;

/// The packages to install.
#[derive(Debug, Clone, Default)]
pub struct RpmSolveRequest {
    /// Capabilities as rpm's command line takes them: `name`, `name >= 1.0`, `/usr/bin/tool`,
    /// or a glob over package names such as `kernel-*`.
    pub requests: Vec<String>,
    /// Names that every image installs. Names that no package provides are skipped.
    pub essential: Vec<String>,
}

/// A dependency edge: the package at `from` needs the one at `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmEdge {
    pub from: usize,
    pub to: usize,
    /// Set for `Requires(pre)` and similar, which order the installation.
    pub pre: bool,
    /// The requirement as rpm prints it, such as `libfoo >= 2` or `(a or b)`.
    pub requirement: String,
    /// The capability or file when `to` satisfies the requirement through it rather than by
    /// its package name.
    pub provided: Option<String>,
}

/// The chosen packages, sorted by name, with the edges between them.
#[derive(Debug)]
pub struct RpmResolution<'u> {
    pub packages: Vec<&'u RpmCandidate>,
    pub edges: Vec<RpmEdge>,
}

/// Chooses the packages that satisfy `request` from `universe`.
pub fn solve<'u>(
    universe: &'u RpmUniverse,
    request: &RpmSolveRequest,
) -> Result<RpmResolution<'u>, RpmError> {
    let started = Instant::now();
    let roots = root_clauses(universe, request)?;
    let mut solver = Solver::new(RpmProvider::new(universe));
    let requirements: Vec<ConditionalRequirement> = roots
        .iter()
        .map(|clause| ConditionalRequirement::from(solver.provider().requirement_for(clause)))
        .collect();
    let problem = Problem::new().requirements(requirements);
    let chosen: Vec<usize> = match solver.solve(problem) {
        Ok(solution) => solution.into_iter().map(package_index).collect(),
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            if let Some(missing) = find_missing(universe, &roots) {
                return Err(missing);
            }
            let message = conflict.display_user_friendly(&solver).to_string();
            return Err(RpmError::Unsolvable { message });
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => unreachable!("the provider never cancels"),
    };
    tracing::debug!(
        packages = chosen.len(),
        clauses = solver.clause_count(),
        elapsed = ?started.elapsed(),
        "solved"
    );
    Ok(RpmResolution::new(universe, &chosen))
}

/// Turns the request into clauses: one per request, and one per essential name that some
/// package provides.
fn root_clauses(
    universe: &RpmUniverse,
    request: &RpmSolveRequest,
) -> Result<Vec<Vec<Dependency>>, RpmError> {
    let mut roots = Vec::new();
    for text in &request.requests {
        roots.push(request_clause(universe, text)?);
    }
    for name in &request.essential {
        if universe.knows(name) {
            roots.push(vec![Dependency::unversioned(name)]);
        } else {
            tracing::debug!(name, "essential package not in the repositories: skipped");
        }
    }
    Ok(roots)
}

/// Parses one request. A glob becomes a clause over every matching package name.
fn request_clause(universe: &RpmUniverse, text: &str) -> Result<Vec<Dependency>, RpmError> {
    let text = text.trim();
    if oic_repo::glob::is_glob(text) {
        let mut names: Vec<&str> = universe
            .names()
            .filter(|name| oic_repo::glob::glob_match(text, name))
            .collect();
        if names.is_empty() {
            return Err(RpmError::NotFound {
                name: text.to_owned(),
            });
        }
        names.sort_unstable();
        return Ok(names.into_iter().map(Dependency::unversioned).collect());
    }
    let dependency = parse_request(text);
    if universe.matching(&dependency).next().is_none() {
        return Err(RpmError::NotFound {
            name: text.to_owned(),
        });
    }
    Ok(vec![dependency])
}

/// Parses `name [operator evr]`.
pub(crate) fn parse_request(text: &str) -> Dependency {
    let mut parts = text.split_whitespace();
    let name = parts.next().unwrap_or_default();
    let constraint = match (parts.next().and_then(Comparison::from_symbol), parts.next()) {
        (Some(comparison), Some(evr)) => Some(Constraint {
            comparison,
            evr: Evr::parse(evr),
        }),
        _ => None,
    };
    Dependency {
        name: name.to_owned(),
        constraint,
    }
}

/// A package reached from the request, and the step that reached it.
struct Step {
    package: usize,
    /// The index of the step whose package requires this one, `None` for a requested package.
    parent: Option<usize>,
}

/// Looks for a requirement that no package satisfies, reachable from the request through the
/// preferred candidate of every requirement, and returns the error with its chain.
fn find_missing(universe: &RpmUniverse, roots: &[Vec<Dependency>]) -> Option<RpmError> {
    let mut steps: Vec<Step> = Vec::new();
    let mut queue = VecDeque::new();
    let mut seen = HashSet::new();
    for clause in roots {
        if let Some(package) = preferred(universe, clause) {
            if seen.insert(package) {
                steps.push(Step {
                    package,
                    parent: None,
                });
                queue.push_back(steps.len() - 1);
            }
        }
    }
    while let Some(step) = queue.pop_front() {
        let package = &universe.get(steps[step].package).package;
        for requirement in &package.requires {
            let Ok(clauses) = clauses_of(&requirement.expression) else {
                continue;
            };
            for clause in clauses {
                let Some(next) = preferred(universe, &clause) else {
                    return Some(missing_error(universe, &steps, step, &clause));
                };
                if seen.insert(next) {
                    steps.push(Step {
                        package: next,
                        parent: Some(step),
                    });
                    queue.push_back(steps.len() - 1);
                }
            }
        }
    }
    None
}

/// Returns the package the solver tries first for a clause, `None` when nothing satisfies it.
fn preferred(universe: &RpmUniverse, clause: &[Dependency]) -> Option<usize> {
    clause.iter().find_map(|dependency| {
        let name = *provider_names(universe, dependency).first()?;
        universe
            .versions_of(name)
            .iter()
            .copied()
            .find(|&index| universe.get(index).package.satisfies(dependency))
    })
}

fn missing_error(
    universe: &RpmUniverse,
    steps: &[Step],
    last: usize,
    clause: &[Dependency],
) -> RpmError {
    let mut chain = Vec::new();
    let mut cursor = Some(last);
    while let Some(step) = cursor {
        chain.push(universe.get(steps[step].package).label());
        cursor = steps[step].parent;
    }
    chain.reverse();
    let dependency = clause_text(clause);
    chain.push(dependency.clone());
    RpmError::MissingDependency {
        package: universe.get(steps[last].package).label(),
        dependency,
        chain: chain.join(" -> "),
        hint: missing_hint(universe, clause),
    }
}

/// Explains why nothing satisfies a clause: the versions that exist, or for a file that no
/// package lists it.
fn missing_hint(universe: &RpmUniverse, clause: &[Dependency]) -> String {
    let mut hint = String::new();
    for dependency in clause {
        let available: Vec<String> = universe
            .providers_of(&dependency.name)
            .iter()
            .map(|&index| universe.get(index).label())
            .collect();
        if !available.is_empty() {
            let _ = write!(
                hint,
                "; `{}` is provided only by {}",
                dependency.name,
                available.join(", ")
            );
        } else if dependency.is_file() {
            let _ = write!(
                hint,
                "; no package lists the file `{}` in primary.xml or filelists.xml",
                dependency.name
            );
        }
    }
    hint
}

impl<'u> RpmResolution<'u> {
    fn new(universe: &'u RpmUniverse, chosen: &[usize]) -> Self {
        let mut packages: Vec<&RpmCandidate> =
            chosen.iter().map(|&index| universe.get(index)).collect();
        packages.sort_by(|a, b| a.package.name.cmp(&b.package.name));
        let edges = edges_of(&packages);
        Self { packages, edges }
    }

    /// Returns the graph in Graphviz DOT: one node per package, labelled with its EVR, and one
    /// edge per requirement, bold for `Requires(pre)`.
    pub fn to_dot(&self) -> String {
        let mut dot = String::from("digraph packages {\n");
        for candidate in &self.packages {
            let package = &candidate.package;
            let label = format!("{}\n{}", package.name, package.evr);
            let _ = writeln!(dot, "  {} [label={}];", quote(&package.name), quote(&label));
        }
        for edge in &self.edges {
            let from = &self.packages[edge.from].package.name;
            let to = &self.packages[edge.to].package.name;
            let mut label = edge.requirement.clone();
            if let Some(provided) = &edge.provided {
                let _ = write!(label, " [via {provided}]");
            }
            let style = if edge.pre { "bold" } else { "solid" };
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

/// Links every requirement clause of a chosen package to the chosen package that satisfies it:
/// the first entry that a chosen package satisfies. A package's requirements on itself give no
/// edge.
fn edges_of(packages: &[&RpmCandidate]) -> Vec<RpmEdge> {
    let mut by_capability: HashMap<&str, Vec<usize>> = HashMap::new();
    for (position, candidate) in packages.iter().enumerate() {
        let package = &candidate.package;
        let capabilities = std::iter::once(&package.name)
            .chain(package.provides.iter().map(|provide| &provide.name))
            .chain(&package.files);
        for capability in capabilities {
            by_capability.entry(capability).or_default().push(position);
        }
    }
    let mut edges = Vec::new();
    let mut seen = HashSet::new();
    for (from, candidate) in packages.iter().enumerate() {
        for requirement in &candidate.package.requires {
            let Ok(clauses) = clauses_of(&requirement.expression) else {
                continue;
            };
            for clause in clauses {
                let found = clause.iter().find_map(|dependency| {
                    let positions = by_capability.get(dependency.name.as_str())?;
                    let to = positions
                        .iter()
                        .copied()
                        .find(|&to| packages[to].package.satisfies(dependency))?;
                    Some((to, dependency))
                });
                let Some((to, dependency)) = found else {
                    continue;
                };
                if to == from || !seen.insert((from, to)) {
                    continue;
                }
                let provided =
                    (packages[to].package.name != dependency.name).then(|| dependency.name.clone());
                edges.push(RpmEdge {
                    from,
                    to,
                    pre: requirement.pre,
                    requirement: clause_text(&clause),
                    provided,
                });
            }
        }
    }
    edges
}

/// Returns `text` as a DOT string literal.
fn quote(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}
