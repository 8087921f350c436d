//! The install order of a resolved RPM set: every package after the packages it requires.
//!
//! The order is topological over the solver's edges. Dependency cycles are grouped as strongly
//! connected components, which are ordered among themselves like single packages. Inside a
//! cycle, packages follow their remaining requirements while they can. When every remaining
//! package waits for another one, the order is broken at the package with the smallest index
//! whose open requirements are all plain `Requires`; only when each one also waits through a
//! `Requires(pre)` does the smallest index go first. rpm breaks loops at plain requirements
//! too. Between independent packages the smaller index goes first, so with the solver's
//! name-sorted output the order is deterministic.

use std::collections::BTreeSet;

/// A dependency edge: the package at `from` requires the one at `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderEdge {
    pub from: usize,
    pub to: usize,
    /// Set for `Requires(pre)`, which must hold before the dependent package's scriptlets run.
    pub pre: bool,
}

/// Returns the indexes `0..count` in install order. Edges that name an index outside the range
/// and edges of a package to itself are ignored.
pub fn install_order(count: usize, edges: &[OrderEdge]) -> Vec<usize> {
    let edges: Vec<OrderEdge> = edges
        .iter()
        .copied()
        .filter(|edge| edge.from < count && edge.to < count && edge.from != edge.to)
        .collect();
    let mut requires: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); count];
    for edge in &edges {
        requires[edge.from].insert(edge.to);
    }
    let components = strongly_connected(&requires);
    let mut order = Vec::with_capacity(count);
    for component in order_components(&requires, &components) {
        order.extend(order_cycle(&components.members[component], &edges));
    }
    order
}

/// The strongly connected components of a graph.
struct Components {
    /// The component of each node.
    of: Vec<usize>,
    /// The nodes of each component, ascending.
    members: Vec<Vec<usize>>,
}

/// Finds the strongly connected components with Tarjan's algorithm, iteratively so that long
/// dependency chains cannot overflow the stack.
fn strongly_connected(requires: &[BTreeSet<usize>]) -> Components {
    let count = requires.len();
    let adjacency: Vec<Vec<usize>> = requires
        .iter()
        .map(|set| set.iter().copied().collect())
        .collect();
    let mut index = vec![usize::MAX; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut of = vec![usize::MAX; count];
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut next_index = 0;

    for start in 0..count {
        if index[start] != usize::MAX {
            continue;
        }
        // Each frame is a node and the position of the next edge to follow.
        let mut frames = vec![(start, 0_usize)];
        index[start] = next_index;
        low[start] = next_index;
        next_index += 1;
        stack.push(start);
        on_stack[start] = true;

        while let Some(&mut (node, ref mut position)) = frames.last_mut() {
            if let Some(&next) = adjacency[node].get(*position) {
                *position += 1;
                if index[next] == usize::MAX {
                    index[next] = next_index;
                    low[next] = next_index;
                    next_index += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    frames.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(index[next]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    of[member] = members.len();
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                component.sort_unstable();
                members.push(component);
            }
        }
    }
    Components { of, members }
}

/// Orders the components so that each follows the components it requires, the one with the
/// smallest member first among those ready.
fn order_components(requires: &[BTreeSet<usize>], components: &Components) -> Vec<usize> {
    let count = components.members.len();
    let mut waiting_for = vec![BTreeSet::new(); count];
    let mut needed_by = vec![BTreeSet::new(); count];
    for (node, targets) in requires.iter().enumerate() {
        for &target in targets {
            let (from, to) = (components.of[node], components.of[target]);
            if from != to {
                waiting_for[from].insert(to);
                needed_by[to].insert(from);
            }
        }
    }
    let first_member = |component: usize| components.members[component][0];
    let mut ready: BTreeSet<(usize, usize)> = (0..count)
        .filter(|&component| waiting_for[component].is_empty())
        .map(|component| (first_member(component), component))
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some((_, component)) = ready.pop_first() {
        order.push(component);
        for &dependent in &needed_by[component] {
            waiting_for[dependent].remove(&component);
            if waiting_for[dependent].is_empty() {
                ready.insert((first_member(dependent), dependent));
            }
        }
    }
    order
}

/// Orders the members of one component, breaking its cycles by the rule in the module
/// documentation.
fn order_cycle(members: &[usize], edges: &[OrderEdge]) -> Vec<usize> {
    if members.len() == 1 {
        return members.to_vec();
    }
    let inside: BTreeSet<usize> = members.iter().copied().collect();
    let internal: Vec<OrderEdge> = edges
        .iter()
        .copied()
        .filter(|edge| inside.contains(&edge.from) && inside.contains(&edge.to))
        .collect();
    let mut remaining = inside;
    let mut order = Vec::with_capacity(members.len());
    while let Some(next) = next_in_cycle(&remaining, &internal) {
        remaining.remove(&next);
        order.push(next);
    }
    order
}

/// Picks the next member of a cycle: the first with no open requirement, else the first whose
/// open requirements are all plain, else the first.
fn next_in_cycle(remaining: &BTreeSet<usize>, internal: &[OrderEdge]) -> Option<usize> {
    let open = |node: usize| {
        internal
            .iter()
            .filter(move |edge| edge.from == node && remaining.contains(&edge.to))
    };
    remaining
        .iter()
        .copied()
        .find(|&node| open(node).next().is_none())
        .or_else(|| {
            remaining
                .iter()
                .copied()
                .find(|&node| open(node).all(|edge| !edge.pre))
        })
        .or_else(|| remaining.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(from: usize, to: usize) -> OrderEdge {
        OrderEdge {
            from,
            to,
            pre: false,
        }
    }

    fn position(order: &[usize], node: usize) -> usize {
        order.iter().position(|&item| item == node).unwrap()
    }

    #[test]
    fn dependencies_come_first() {
        // 0 requires 1, 1 requires 2.
        assert_eq!(install_order(3, &[edge(0, 1), edge(1, 2)]), [2, 1, 0]);
    }

    #[test]
    fn independent_packages_keep_index_order() {
        assert_eq!(install_order(3, &[]), [0, 1, 2]);
    }

    #[test]
    fn cycle_breaks_at_smallest_index() {
        // 1 and 2 require each other; 0 requires 1.
        let order = install_order(3, &[edge(0, 1), edge(1, 2), edge(2, 1)]);
        assert_eq!(order, [1, 2, 0]);
    }

    #[test]
    fn package_waiting_for_cycle_follows_it() {
        // 0 requires 3, and 3 and 4 form a cycle: 0 goes after both, though its index is least.
        let order = install_order(5, &[edge(0, 3), edge(3, 4), edge(4, 3)]);
        assert!(position(&order, 0) > position(&order, 3));
        assert!(position(&order, 0) > position(&order, 4));
        assert_eq!(order.len(), 5);
    }

    #[test]
    fn cycle_keeps_pre_requirement() {
        // 0 requires 1 plainly, 1 requires 0 through Requires(pre): 0 must come first.
        let edges = [
            edge(0, 1),
            OrderEdge {
                from: 1,
                to: 0,
                pre: true,
            },
        ];
        assert_eq!(install_order(2, &edges), [0, 1]);
    }

    #[test]
    fn self_and_outside_edges_are_ignored() {
        assert_eq!(install_order(2, &[edge(0, 0), edge(1, 7)]), [0, 1]);
    }

    #[test]
    fn long_chain_is_ordered() {
        let count = 100_000;
        let edges: Vec<OrderEdge> = (0..count - 1).map(|node| edge(node, node + 1)).collect();
        let order = install_order(count, &edges);
        let expected: Vec<usize> = (0..count).rev().collect();
        assert_eq!(order, expected);
    }
}
