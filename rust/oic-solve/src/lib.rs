//! The dependency solver of the packages stage: given the candidate packages of the configured
//! repositories, it chooses the set of Debian packages an image installs.
//!
//! The model follows apt where the product needs it:
//!
//! - `Depends` and `Pre-Depends` must be satisfied. Alternatives are tried in order, but one that
//!   is already in the solution satisfies the group without adding another package.
//! - A relation on a name is satisfied by the real package or by a package that provides it. A
//!   versioned relation needs a versioned `Provides: name (= version)`.
//! - `Conflicts` and `Breaks` both keep the packages they hit out of the solution, including the
//!   providers of a virtual name, but a package never conflicts with itself.
//! - One native architecture plus `all`. `name:any` needs `Multi-Arch: allowed` on the target.
//! - Candidates are tried by highest pin priority, then newest version. A negative pin priority
//!   means never install.
//! - `Recommends` are ignored unless [`SolveOptions::with_recommends`] is set, and then they are
//!   installed when they can be.

mod error;
mod explain;
mod provider;
mod request;
mod resolution;
mod universe;

use std::collections::HashSet;
use std::time::Instant;

use resolvo::{ConditionalRequirement, Problem, SolvableId, Solver, UnsolvableOrCancelled};

pub use error::SolveError;
pub use request::{glob_matches, kernel_flavour, Request};
pub use resolution::{DependencyEdge, DependencyKind, Resolution};
pub use universe::{Universe, UniversePackage};

use provider::{package_index, solvable_id, DebProvider};

/// Switches of the solver; both are off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SolveOptions {
    /// Installs the `Recommends` of chosen packages when they can be installed.
    pub with_recommends: bool,
    /// Lets one glob request install several kernel flavours, such as `-amd64` and
    /// `-cloud-amd64`, instead of failing.
    pub allow_multiple_kernel_flavours: bool,
}

/// What to install.
#[derive(Debug, Clone, Default)]
pub struct SolveRequest {
    pub requests: Vec<Request>,
    /// Names that every image installs, such as the packages marked `Essential: yes`.
    pub essential: Vec<String>,
    pub options: SolveOptions,
}

/// Chooses the packages that satisfy `request` from `universe`.
pub fn solve<'u>(
    universe: &'u Universe,
    request: &SolveRequest,
) -> Result<Resolution<'u>, SolveError> {
    let started = Instant::now();
    let roots = request::expand(universe, request)?;
    let mut solver = Solver::new(DebProvider::new(universe));
    let requirements: Vec<ConditionalRequirement> = roots
        .iter()
        .filter_map(|relation| {
            solver
                .provider()
                .requirement_for(std::slice::from_ref(relation))
        })
        .map(ConditionalRequirement::from)
        .collect();

    let mut soft: Vec<SolvableId> = Vec::new();
    let mut tried: HashSet<usize> = HashSet::new();
    let chosen = loop {
        let problem = Problem::new()
            .requirements(requirements.clone())
            .soft_requirements(soft.clone());
        let solution = match solver.solve(problem) {
            Ok(solution) => solution,
            Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
                let graph = conflict.graph(&solver);
                let explanation = explain::explain(&graph, solver.provider());
                return Err(SolveError::Unsatisfiable { explanation });
            }
            Err(UnsolvableOrCancelled::Cancelled(_)) => {
                unreachable!("the provider never cancels")
            }
        };
        let chosen: Vec<usize> = solution.into_iter().map(package_index).collect();
        if !request.options.with_recommends {
            break chosen;
        }
        let wanted = recommended(universe, &chosen, &mut tried);
        if wanted.is_empty() {
            break chosen;
        }
        soft.extend(wanted.into_iter().map(solvable_id));
    };

    tracing::debug!(
        packages = chosen.len(),
        clauses = solver.clause_count(),
        elapsed = ?started.elapsed(),
        "solved"
    );
    Ok(Resolution::new(
        universe,
        &chosen,
        request.options.with_recommends,
    ))
}

/// Picks, for every `Recommends` group of the chosen packages that nothing satisfies yet, the
/// first candidate not tried before. The solver installs it if it can, and the next round tries
/// the following candidate of a group that is still unsatisfied.
fn recommended(universe: &Universe, chosen: &[usize], tried: &mut HashSet<usize>) -> Vec<usize> {
    let chosen_names: HashSet<&str> = chosen
        .iter()
        .map(|&index| universe.get(index).package.name.as_str())
        .collect();
    let is_chosen = |index: usize| chosen.contains(&index);
    let mut wanted = Vec::new();
    let mut wanted_names = HashSet::new();
    for &index in chosen {
        for group in &universe.get(index).package.recommends {
            let candidates = group_candidates(universe, group);
            if candidates.iter().any(|&candidate| is_chosen(candidate)) {
                continue;
            }
            let next = candidates.into_iter().find(|&candidate| {
                let name = universe.get(candidate).package.name.as_str();
                !tried.contains(&candidate) && !chosen_names.contains(name)
            });
            if let Some(candidate) = next {
                tried.insert(candidate);
                if wanted_names.insert(universe.get(candidate).package.name.as_str()) {
                    wanted.push(candidate);
                }
            }
        }
    }
    wanted
}

/// The packages that satisfy one group, in the order the solver would try them.
fn group_candidates(universe: &Universe, group: &[oic_deb::Relation]) -> Vec<usize> {
    let mut candidates = Vec::new();
    for relation in group
        .iter()
        .filter(|r| r.applies_to(universe.native_arch()))
    {
        let usable = |index: &usize| universe.get(*index).pin_priority >= 0;
        candidates.extend(
            universe
                .versions_of(&relation.name)
                .iter()
                .filter(|&&index| {
                    usable(&index)
                        && universe.satisfies_directly(&universe.get(index).package, relation)
                }),
        );
        for provider in universe.providers_of(&relation.name) {
            candidates.extend(universe.versions_of(provider).iter().filter(|&&index| {
                usable(&index)
                    && universe.satisfies_by_provides(&universe.get(index).package, relation)
            }));
        }
    }
    candidates
}
