//! Dependency entries (`Requires`, `Provides`, `Conflicts`, `Obsoletes`) and rpm's range overlap
//! rule.

use std::cmp::Ordering;
use std::fmt;

use crate::version::{rpmvercmp, Evr};

/// The comparison of a versioned entry, as the `flags` attribute of primary.xml spells it:
/// `LT`, `LE`, `EQ`, `GE`, `GT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Equal,
    GreaterOrEqual,
    Greater,
}

impl Comparison {
    /// Parses primary.xml's `flags` attribute.
    pub fn from_flags(flags: &str) -> Option<Self> {
        Some(match flags {
            "LT" => Self::Less,
            "LE" => Self::LessOrEqual,
            "EQ" => Self::Equal,
            "GE" => Self::GreaterOrEqual,
            "GT" => Self::Greater,
            _ => return None,
        })
    }

    /// Parses an operator of a spec file or a rich dependency: `<`, `<=`, `=`, `==`, `>=`, `>`.
    pub fn from_symbol(symbol: &str) -> Option<Self> {
        Some(match symbol {
            "<" => Self::Less,
            "<=" | "=<" => Self::LessOrEqual,
            "=" | "==" => Self::Equal,
            ">=" | "=>" => Self::GreaterOrEqual,
            ">" => Self::Greater,
            _ => return None,
        })
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Equal => "=",
            Self::GreaterOrEqual => ">=",
            Self::Greater => ">",
        }
    }

    fn has_less(self) -> bool {
        matches!(self, Self::Less | Self::LessOrEqual)
    }

    fn has_greater(self) -> bool {
        matches!(self, Self::Greater | Self::GreaterOrEqual)
    }

    fn has_equal(self) -> bool {
        matches!(self, Self::LessOrEqual | Self::Equal | Self::GreaterOrEqual)
    }
}

/// A version range: a comparison and the EVR it compares with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub comparison: Comparison,
    pub evr: Evr,
}

impl Constraint {
    /// Returns whether two ranges share a version, by the rule of rpm 4.18's `rpmverOverlap`.
    ///
    /// Epochs compare with a missing epoch as 0. When exactly one side has a release and the
    /// versions are equal, the ranges overlap if the side without a release includes equality:
    /// `Requires: foo >= 1.0` accepts `foo = 1.0-3`, and `Requires: foo = 1.0` accepts every
    /// release of 1.0.
    pub fn overlaps(&self, other: &Self) -> bool {
        let mut sense = self.evr.compare_epoch(&other.evr);
        if sense == Ordering::Equal {
            sense = rpmvercmp(&self.evr.version, &other.evr.version);
        }
        if sense == Ordering::Equal {
            match (&self.evr.release, &other.evr.release) {
                (Some(one), Some(two)) => sense = rpmvercmp(one, two),
                (Some(_), None) if other.comparison.has_equal() => return true,
                (None, Some(_)) if self.comparison.has_equal() => return true,
                _ => {}
            }
        }
        let (one, two) = (self.comparison, other.comparison);
        match sense {
            Ordering::Less => one.has_greater() || two.has_less(),
            Ordering::Greater => one.has_less() || two.has_greater(),
            Ordering::Equal => {
                (one.has_equal() && two.has_equal())
                    || (one.has_less() && two.has_less())
                    || (one.has_greater() && two.has_greater())
            }
        }
    }

    /// Returns whether a package of version `evr` falls in this range.
    pub fn contains(&self, evr: &Evr) -> bool {
        let exact = Self {
            comparison: Comparison::Equal,
            evr: evr.clone(),
        };
        self.overlaps(&exact)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.comparison.symbol(), self.evr)
    }
}

/// One entry of a dependency list: a name (a package name, a virtual capability or an
/// absolute file path) with an optional version range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub constraint: Option<Constraint>,
}

impl Dependency {
    pub fn unversioned(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            constraint: None,
        }
    }

    /// Returns whether the provide `provide` satisfies this requirement.
    ///
    /// As in rpm, an unversioned entry on either side matches every version, so
    /// `Provides: foo` satisfies `Requires: foo >= 2`.
    pub fn is_satisfied_by(&self, provide: &Dependency) -> bool {
        if self.name != provide.name {
            return false;
        }
        match (&self.constraint, &provide.constraint) {
            (Some(required), Some(provided)) => required.overlaps(provided),
            _ => true,
        }
    }

    /// Returns whether this entry names a file (an absolute path) rather than a capability.
    pub fn is_file(&self) -> bool {
        self.name.starts_with('/')
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.name)?;
        if let Some(constraint) = &self.constraint {
            write!(formatter, " {constraint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(comparison: Comparison, evr: &str) -> Constraint {
        Constraint {
            comparison,
            evr: Evr::parse(evr),
        }
    }

    #[test]
    fn missing_release_matches_any_release() {
        let required = range(Comparison::Equal, "1.0");
        assert!(required.contains(&Evr::parse("1.0-7")));
        assert!(range(Comparison::GreaterOrEqual, "1.0").contains(&Evr::parse("1.0-1")));
        assert!(!range(Comparison::Greater, "1.0").contains(&Evr::parse("1.0-1")));
        assert!(!range(Comparison::Equal, "1.0-2").contains(&Evr::parse("1.0-1")));
    }

    #[test]
    fn epochs_dominate() {
        assert!(range(Comparison::GreaterOrEqual, "1:0.5").contains(&Evr::parse("1:0.5-1")));
        assert!(!range(Comparison::GreaterOrEqual, "1:0.5").contains(&Evr::parse("9.0-1")));
        assert!(range(Comparison::Less, "1:0").contains(&Evr::parse("9.0-1")));
        assert!(range(Comparison::Equal, "0:2.0").contains(&Evr::parse("2.0-1")));
    }

    #[test]
    fn ranges_overlap() {
        let below = range(Comparison::Less, "2.0");
        let above = range(Comparison::GreaterOrEqual, "1.0");
        assert!(below.overlaps(&above));
        assert!(!range(Comparison::Less, "1.0").overlaps(&range(Comparison::Greater, "1.0")));
        assert!(range(Comparison::LessOrEqual, "1.0")
            .overlaps(&range(Comparison::GreaterOrEqual, "1.0")));
    }

    #[test]
    fn unversioned_provide_satisfies_versioned_require() {
        let required = Dependency {
            name: "foo".to_owned(),
            constraint: Some(range(Comparison::GreaterOrEqual, "2")),
        };
        assert!(required.is_satisfied_by(&Dependency::unversioned("foo")));
        assert!(!required.is_satisfied_by(&Dependency::unversioned("bar")));
    }
}
