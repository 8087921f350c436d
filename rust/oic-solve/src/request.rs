//! Package requests: plain names with an optional version constraint, and globs.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use oic_deb::relation::ArchQualifier;
use oic_deb::version::compare_part;
use oic_deb::{Constraint, Relation};

use crate::error::SolveError;
use crate::universe::Universe;
use crate::SolveRequest;

/// One requested package: a name or a glob, with an optional version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// A package name, or a glob in which `*` matches any run of characters and `?` one.
    pub pattern: String,
    pub constraint: Option<Constraint>,
}

impl Request {
    /// Requests the package (or virtual package) `name` at any version.
    pub fn name(name: &str) -> Self {
        Self {
            pattern: name.to_owned(),
            constraint: None,
        }
    }

    /// Parses `name`, `name (>= 1.0)`, `name=1.0` or a glob such as `linux-image-*-amd64`.
    pub fn parse(text: &str) -> Result<Self, SolveError> {
        let text = text.trim();
        let invalid = |reason: String| SolveError::InvalidRequest {
            text: text.to_owned(),
            reason,
        };
        let (pattern, constraint_text) = match (text.split_once('('), text.split_once('=')) {
            (Some((pattern, rest)), _) => {
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| invalid("`(` is not closed".to_owned()))?;
                (pattern.trim(), Some(inner.trim().to_owned()))
            }
            (None, Some((pattern, version))) => (pattern.trim(), Some(format!("= {version}"))),
            (None, None) => (text, None),
        };
        // Parse through a relation on a placeholder name, because a glob is no valid name.
        let placeholder = match &constraint_text {
            Some(constraint) => format!("placeholder ({constraint})"),
            None => "placeholder".to_owned(),
        };
        let relation =
            oic_deb::parse_relation(&placeholder).map_err(|error| invalid(error.to_string()))?;
        let valid = !pattern.is_empty()
            && pattern
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.*?[]!^".contains(c));
        if !valid {
            return Err(invalid("the package name or glob is invalid".to_owned()));
        }
        Ok(Self {
            pattern: pattern.to_owned(),
            constraint: relation.constraint,
        })
    }

    pub fn is_glob(&self) -> bool {
        oic_deb::glob::is_glob(&self.pattern)
    }

    fn relation(&self, name: &str) -> Relation {
        Relation {
            name: name.into(),
            arch: ArchQualifier::None,
            constraint: self.constraint.clone(),
            arch_restrictions: Box::default(),
        }
    }
}

/// Returns the kernel flavour of a package name: the name without its version-like parts.
///
/// The name is split at `-`, every part that starts with a digit (`6.1.0`, `47`) is dropped and
/// the rest is joined again, so `linux-image-6.1.0-47-amd64` and `linux-image-6.1.0-48-amd64`
/// are both `linux-image-amd64`, while `linux-image-6.1.0-47-cloud-amd64` is
/// `linux-image-cloud-amd64`.
pub fn kernel_flavour(name: &str) -> String {
    name.split('-')
        .filter(|part| !part.starts_with(|c: char| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join("-")
}

/// Tells whether `name` matches `pattern`: `*` matches any run, `?` one character and `[...]` a
/// class, as in template package lists and `allowPackages`.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    oic_deb::glob::glob_match(pattern, name)
}

/// Turns the requests and the essential set into the relations the solver must satisfy.
pub(crate) fn expand(
    universe: &Universe,
    request: &SolveRequest,
) -> Result<Vec<Relation>, SolveError> {
    let mut relations = Vec::new();
    let essential = request.essential.iter().map(|name| Request::name(name));
    for item in request.requests.iter().cloned().chain(essential) {
        if item.is_glob() {
            let names = expand_glob(
                universe,
                &item,
                request.options.allow_multiple_kernel_flavours,
            )?;
            relations.extend(names.iter().map(|name| item.relation(name)));
        } else if universe.knows(&item.pattern) {
            relations.push(item.relation(&item.pattern));
        } else {
            return Err(SolveError::NotFound {
                name: item.pattern.clone(),
            });
        }
    }
    Ok(relations)
}

/// Expands a glob to the newest matching name of each kernel flavour.
fn expand_glob(
    universe: &Universe,
    request: &Request,
    allow_multiple_flavours: bool,
) -> Result<Vec<String>, SolveError> {
    let mut flavours: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for name in universe.names() {
        if glob_matches(&request.pattern, name) && newest_match(universe, request, name).is_some() {
            flavours.entry(kernel_flavour(name)).or_default().push(name);
        }
    }
    if flavours.is_empty() {
        return Err(SolveError::NoMatch {
            pattern: request.pattern.clone(),
        });
    }
    if flavours.len() > 1 && !allow_multiple_flavours {
        return Err(SolveError::SeveralFlavours {
            pattern: request.pattern.clone(),
            flavours: flavours.into_keys().collect(),
        });
    }
    let chosen = flavours
        .into_values()
        .map(|names| {
            let newest = names
                .into_iter()
                .max_by(|a, b| compare_names(universe, request, a, b))
                .expect("every flavour has a name");
            newest.to_owned()
        })
        .collect::<Vec<_>>();
    tracing::debug!(pattern = %request.pattern, ?chosen, "expanded glob");
    Ok(chosen)
}

/// The preferred installable package of `name` that satisfies the request's constraint.
fn newest_match<'u>(
    universe: &'u Universe,
    request: &Request,
    name: &str,
) -> Option<&'u crate::UniversePackage> {
    universe
        .versions_of(name)
        .iter()
        .map(|&index| universe.get(index))
        .filter(|candidate| candidate.pin_priority >= 0)
        .find(|candidate| {
            request
                .constraint
                .as_ref()
                .is_none_or(|constraint| constraint.matches(&candidate.package.version))
        })
}

/// Orders two names of one flavour: higher pin priority, then newer version, then the name
/// compared like a version, so `-48-amd64` beats `-47-amd64` when the versions are equal.
fn compare_names(universe: &Universe, request: &Request, a: &str, b: &str) -> Ordering {
    let best_a = newest_match(universe, request, a).expect("only names with a match");
    let best_b = newest_match(universe, request, b).expect("only names with a match");
    best_a
        .pin_priority
        .cmp(&best_b.pin_priority)
        .then_with(|| best_a.package.version.cmp(&best_b.package.version))
        .then_with(|| compare_part(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_class_request_parses() {
        let request = Request::parse("lib[ab]foo").unwrap();
        assert!(request.is_glob());
        assert!(glob_matches(&request.pattern, "libafoo"));
        assert!(!glob_matches(&request.pattern, "libcfoo"));
    }

    #[test]
    fn glob_star_and_question_mark() {
        assert!(glob_matches(
            "linux-image-*-amd64",
            "linux-image-6.1.0-47-amd64"
        ));
        assert!(glob_matches(
            "linux-image-*-amd64",
            "linux-image-6.1.0-47-cloud-amd64"
        ));
        assert!(!glob_matches("linux-image-*-amd64", "linux-image-amd64"));
        assert!(!glob_matches(
            "linux-image-*-amd64",
            "linux-image-6.1.0-47-amd64-dbg"
        ));
        assert!(glob_matches("lib?", "liba"));
        assert!(!glob_matches("lib?", "lib"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn flavour_drops_version_parts() {
        assert_eq!(
            kernel_flavour("linux-image-6.1.0-47-amd64"),
            "linux-image-amd64"
        );
        assert_eq!(
            kernel_flavour("linux-image-6.1.0-48-amd64"),
            "linux-image-amd64"
        );
        assert_eq!(
            kernel_flavour("linux-image-6.1.0-47-cloud-amd64"),
            "linux-image-cloud-amd64"
        );
        assert_eq!(
            kernel_flavour("linux-image-6.1.0-47-rt-amd64"),
            "linux-image-rt-amd64"
        );
    }

    #[test]
    fn request_parse_forms() {
        let plain = Request::parse("openssh-server").unwrap();
        assert_eq!(plain.pattern, "openssh-server");
        assert!(plain.constraint.is_none());

        let versioned = Request::parse("libssl3 (>= 3.0.9)").unwrap();
        assert_eq!(versioned.pattern, "libssl3");
        assert_eq!(versioned.constraint.unwrap().to_string(), ">= 3.0.9");

        let pinned = Request::parse("foo=1.0-1").unwrap();
        assert_eq!(pinned.constraint.unwrap().to_string(), "= 1.0-1");

        let glob = Request::parse("linux-image-*-amd64").unwrap();
        assert!(glob.is_glob());
    }

    #[test]
    fn request_parse_rejects_invalid() {
        for text in ["", "Foo", "foo (>= 1", "foo (1.0)", "foo bar"] {
            assert!(Request::parse(text).is_err(), "{text}");
        }
    }
}
