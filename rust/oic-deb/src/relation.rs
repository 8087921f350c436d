//! Package relations as written in control files: `a (>= 1.0) | b:any, c [amd64]`.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::version::{Version, VersionError};

/// The package name of a relation. Clones share one text, so the relations that a parser built
/// with one [`NameInterner`] keep each distinct name once. The bookworm main index for amd64 has
/// about 412,000 relations on far fewer distinct names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<str>);

impl Name {
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        *self == *other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

/// The names and constraint versions of parsed relations, so that a parser stores each distinct
/// text once. In the bookworm main index for amd64, 217,000 version constraints use 16,000
/// distinct versions.
#[derive(Debug, Default)]
pub struct NameInterner {
    names: HashSet<Name>,
    versions: HashSet<Arc<str>>,
    /// Texts that parsers on other threads share, looked up before this interner's own. It is
    /// read-only while any interner refers to it.
    shared: Option<Arc<NameInterner>>,
}

impl NameInterner {
    /// Creates an interner that takes the texts of `shared` before adding its own.
    pub(crate) fn with_shared(shared: Arc<NameInterner>) -> Self {
        Self {
            shared: Some(shared),
            ..Self::default()
        }
    }

    /// Moves the texts that `interners` added into `shared`, which they all refer to. Where two
    /// of them added the same text, the copy of the first is kept for later lookups.
    pub(crate) fn merge_into_shared(shared: &mut Arc<NameInterner>, interners: Vec<NameInterner>) {
        let mut added = Vec::with_capacity(interners.len());
        for mut interner in interners {
            interner.shared = None;
            added.push((interner.names, interner.versions));
        }
        let target = Arc::get_mut(shared).expect("no other interner refers to the shared one");
        // `extend` keeps an element that the set contains already.
        for (names, versions) in added {
            target.names.extend(names);
            target.versions.extend(versions);
        }
    }

    /// Returns the shared copy of `name`, adding it on first use.
    pub fn intern(&mut self, name: &str) -> Name {
        let shared = self
            .shared
            .as_deref()
            .and_then(|shared| shared.names.get(name));
        if let Some(known) = shared.or_else(|| self.names.get(name)) {
            return known.clone();
        }
        let added = Name::new(name);
        self.names.insert(added.clone());
        added
    }

    /// Returns the shared copy of the version text `version`, adding it on first use.
    fn intern_version(&mut self, version: &str) -> Arc<str> {
        let shared = self
            .shared
            .as_deref()
            .and_then(|shared| shared.versions.get(version));
        if let Some(known) = shared.or_else(|| self.versions.get(version)) {
            return Arc::clone(known);
        }
        let added: Arc<str> = Arc::from(version);
        self.versions.insert(Arc::clone(&added));
        added
    }
}

/// A version comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

/// A version constraint such as `>= 1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub op: Op,
    pub version: Version,
}

impl Constraint {
    /// Tells whether `version` satisfies the constraint.
    pub fn matches(&self, version: &Version) -> bool {
        let ordering = version.cmp(&self.version);
        match self.op {
            Op::Lt => ordering.is_lt(),
            Op::Le => ordering.is_le(),
            Op::Eq => ordering.is_eq(),
            Op::Ge => ordering.is_ge(),
            Op::Gt => ordering.is_gt(),
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.version)
    }
}

/// The architecture qualifier after a package name: `name:any`, `name:native`, `name:amd64`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ArchQualifier {
    #[default]
    None,
    Any,
    Native,
    Named(Name),
}

/// One relation: a package name with an optional qualifier, constraint and architecture list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: Name,
    pub arch: ArchQualifier,
    pub constraint: Option<Constraint>,
    /// Architectures the relation applies to, as in `[amd64 !i386]`; empty means all. A boxed
    /// slice, because it is 8 bytes smaller than a vector in each of hundreds of thousands of
    /// relations.
    pub arch_restrictions: Box<[String]>,
}

impl Relation {
    /// Tells whether the relation applies on `arch`, given its `[...]` list.
    pub fn applies_to(&self, arch: &str) -> bool {
        if self.arch_restrictions.is_empty() {
            return true;
        }
        let negated = self.arch_restrictions.iter().all(|a| a.starts_with('!'));
        if negated {
            !self.arch_restrictions.iter().any(|a| &a[1..] == arch)
        } else {
            self.arch_restrictions.iter().any(|a| a == arch)
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.arch {
            ArchQualifier::None => {}
            ArchQualifier::Any => f.write_str(":any")?,
            ArchQualifier::Native => f.write_str(":native")?,
            ArchQualifier::Named(arch) => write!(f, ":{arch}")?,
        }
        if let Some(constraint) = &self.constraint {
            write!(f, " ({constraint})")?;
        }
        Ok(())
    }
}

/// Alternatives separated by `|`: any one of them satisfies the dependency.
pub type Alternatives = Vec<Relation>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelationError {
    #[error("Invalid relation `{text}`: {reason}")]
    Syntax { text: String, reason: String },
    #[error("Invalid relation `{text}`: {source}")]
    Version { text: String, source: VersionError },
}

/// Parses a comma-separated list of `|`-separated alternatives, as in `Depends`.
///
/// The vectors are allocated with their exact length, because a parsed index keeps hundreds of
/// thousands of them.
pub fn parse_relations(text: &str) -> Result<Vec<Alternatives>, RelationError> {
    parse_relations_with(text, &mut NameInterner::default())
}

/// Parses a list as [`parse_relations`] does, taking names from `names`.
pub fn parse_relations_with(
    text: &str,
    names: &mut NameInterner,
) -> Result<Vec<Alternatives>, RelationError> {
    let mut groups = Vec::with_capacity(count_byte(text, b',') + 1);
    for group in text.split(',').map(str::trim) {
        if group.is_empty() {
            continue;
        }
        let mut alternatives = Vec::with_capacity(count_byte(group, b'|') + 1);
        for relation in group.split('|') {
            alternatives.push(parse_relation_with(relation, names)?);
        }
        groups.push(alternatives);
    }
    groups.shrink_to_fit();
    Ok(groups)
}

fn count_byte(text: &str, byte: u8) -> usize {
    text.bytes().filter(|&found| found == byte).count()
}

/// Parses a comma-separated list without alternatives, as in `Provides` or `Conflicts`.
pub fn parse_relation_list(text: &str) -> Result<Vec<Relation>, RelationError> {
    parse_relation_list_with(text, &mut NameInterner::default())
}

/// Parses a list as [`parse_relation_list`] does, taking names from `names`.
pub fn parse_relation_list_with(
    text: &str,
    names: &mut NameInterner,
) -> Result<Vec<Relation>, RelationError> {
    let groups = parse_relations_with(text, names)?;
    let mut relations = Vec::with_capacity(groups.len());
    for mut group in groups {
        if group.len() != 1 {
            let text = group
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" | ");
            return Err(RelationError::Syntax {
                text,
                reason: "alternatives are not allowed here".into(),
            });
        }
        relations.push(group.remove(0));
    }
    Ok(relations)
}

/// Parses one relation: `name[:arch] [(op version)] [[archs]] [<profiles>...]`.
pub fn parse_relation(text: &str) -> Result<Relation, RelationError> {
    parse_relation_with(text, &mut NameInterner::default())
}

fn parse_relation_with(text: &str, names: &mut NameInterner) -> Result<Relation, RelationError> {
    let original = text.trim();
    let syntax = |reason: &str| RelationError::Syntax {
        text: original.to_owned(),
        reason: reason.to_owned(),
    };

    let name_end = original
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(original.len());
    let (qualified, mut rest) = original.split_at(name_end);
    let (name, arch) = match qualified.split_once(':') {
        Some((name, "any")) => (name, ArchQualifier::Any),
        Some((name, "native")) => (name, ArchQualifier::Native),
        Some((name, arch)) if !arch.is_empty() => (name, ArchQualifier::Named(Name::new(arch))),
        Some(_) => return Err(syntax("the architecture after `:` is empty")),
        None => (qualified, ArchQualifier::None),
    };
    if !is_package_name(name) {
        return Err(syntax("the package name is invalid"));
    }

    let mut constraint = None;
    let mut arch_restrictions = Box::default();
    rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('(') {
        let close = inner.find(')').ok_or_else(|| syntax("`(` is not closed"))?;
        constraint = Some(parse_constraint(&inner[..close], original, names)?);
        rest = inner[close + 1..].trim_start();
    }
    if let Some(inner) = rest.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(|| syntax("`[` is not closed"))?;
        arch_restrictions = inner[..close]
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        rest = inner[close + 1..].trim_start();
    }
    // Build profiles (`<!nocheck>`) only restrict build dependencies, which images never use.
    while let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>').ok_or_else(|| syntax("`<` is not closed"))?;
        rest = inner[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(syntax("unexpected text after the relation"));
    }
    Ok(Relation {
        name: names.intern(name),
        arch,
        constraint,
        arch_restrictions,
    })
}

fn parse_constraint(
    text: &str,
    original: &str,
    names: &mut NameInterner,
) -> Result<Constraint, RelationError> {
    let text = text.trim();
    let (op, version) = [
        ("<<", Op::Lt),
        ("<=", Op::Le),
        (">=", Op::Ge),
        (">>", Op::Gt),
        ("=", Op::Eq),
        ("<", Op::Le),
        (">", Op::Ge),
    ]
    .iter()
    .find_map(|(symbol, op)| text.strip_prefix(symbol).map(|version| (*op, version)))
    .ok_or_else(|| RelationError::Syntax {
        text: original.to_owned(),
        reason: "the version constraint has no operator".to_owned(),
    })?;
    let shared = |text: &str| names.intern_version(text);
    let version =
        Version::parse_shared(version.trim(), shared).map_err(|source| RelationError::Version {
            text: original.to_owned(),
            source,
        })?;
    Ok(Constraint { op, version })
}

/// Tells whether `name` is a valid Debian package name: lowercase letters, digits and `+-.`,
/// starting with a letter or digit, at least two characters.
pub fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_and_constraints_parse() {
        let groups =
            parse_relations("libc6 (>= 2.36), exim4 | mail-transport-agent, perl:any").unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0][0].name, "libc6");
        assert_eq!(
            groups[0][0].constraint.as_ref().unwrap().to_string(),
            ">= 2.36"
        );
        assert_eq!(groups[1].len(), 2);
        assert_eq!(groups[2][0].arch, ArchQualifier::Any);
    }

    #[test]
    fn constraint_matching() {
        let relation = parse_relation("oldlib (<< 2)").unwrap();
        let constraint = relation.constraint.unwrap();
        assert!(constraint.matches(&Version::parse("1.5").unwrap()));
        assert!(!constraint.matches(&Version::parse("2.1").unwrap()));
        assert!(!constraint.matches(&Version::parse("2").unwrap()));
    }

    #[test]
    fn arch_restrictions_and_profiles() {
        let relation = parse_relation("libfoo [!i386 !armel] <!nocheck>").unwrap();
        assert!(relation.applies_to("amd64"));
        assert!(!relation.applies_to("i386"));
        let relation = parse_relation("libbar [amd64]").unwrap();
        assert!(!relation.applies_to("arm64"));
    }

    #[test]
    fn obsolete_operators_mean_inclusive() {
        assert_eq!(
            parse_relation("pkg (< 1)").unwrap().constraint.unwrap().op,
            Op::Le
        );
        assert_eq!(
            parse_relation("pkg (> 1)").unwrap().constraint.unwrap().op,
            Op::Ge
        );
    }

    #[test]
    fn bad_relations_are_rejected() {
        for text in [
            "A", "a (>= )", "a (1.0)", "a (>= 1", "a [amd64", "a b", "a:",
        ] {
            assert!(parse_relation(text).is_err(), "{text}");
        }
        assert!(parse_relation_list("a | b").is_err());
    }
}
