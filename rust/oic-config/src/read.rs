//! Typed reading of [`Node`] trees, collecting every problem instead of stopping at the first.

use crate::diag::{Diagnostics, Loc};
use crate::yaml::{Key, Node, Value};

/// A value together with the position it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Spanned<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Self { value, loc }
    }
}

impl<T: serde::Serialize> serde::Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

/// Joins a key to a key path: `disk` + `size` gives `disk.size`.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a list index to a key path: `disk.partitions` + 1 gives `disk.partitions[1]`.
pub fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The entries of one mapping, checked against the keys it may hold.
pub struct MapReader<'n> {
    entries: &'n [(Key, Node)],
    pub path: String,
    pub loc: Loc,
}

impl<'n> MapReader<'n> {
    /// Opens `node` as a mapping whose keys must be among `allowed`. Unknown keys are reported
    /// with the closest allowed key as a suggestion. Returns `None` when `node` is not a mapping.
    pub fn open(
        node: &'n Node,
        path: &str,
        allowed: &[&str],
        diagnostics: &mut Diagnostics,
    ) -> Option<Self> {
        let Value::Map(entries) = &node.value else {
            let message = format!("Expected a mapping, found {}", node.kind());
            diagnostics.push(&node.loc, path, message);
            return None;
        };

        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                diagnostics.push(
                    &key.loc,
                    &child(path, &key.name),
                    unknown_key_message(key, allowed),
                );
            }
        }
        Some(Self {
            entries,
            path: path.to_owned(),
            loc: node.loc.clone(),
        })
    }

    /// Returns the node under `key`, if present and not null.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, node)| node)
            .filter(|node| node.value != Value::Null)
    }

    pub fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// Reports a required key that is missing.
    pub fn require<T>(
        &self,
        key: &str,
        value: Option<T>,
        diagnostics: &mut Diagnostics,
    ) -> Option<T> {
        if value.is_none() && self.get(key).is_none() {
            diagnostics.push(&self.loc, &self.path_of(key), "Missing required key");
        }
        value
    }

    pub fn string(&self, key: &str, diagnostics: &mut Diagnostics) -> Option<Spanned<String>> {
        self.get(key)
            .and_then(|node| string(node, &self.path_of(key), diagnostics))
    }

    pub fn integer(&self, key: &str, diagnostics: &mut Diagnostics) -> Option<Spanned<i64>> {
        self.get(key)
            .and_then(|node| integer(node, &self.path_of(key), diagnostics))
    }

    pub fn boolean(&self, key: &str, diagnostics: &mut Diagnostics) -> Option<Spanned<bool>> {
        self.get(key)
            .and_then(|node| boolean(node, &self.path_of(key), diagnostics))
    }

    pub fn strings(&self, key: &str, diagnostics: &mut Diagnostics) -> Vec<Spanned<String>> {
        self.list(key, diagnostics, |node, path, diagnostics| {
            string(node, path, diagnostics)
        })
    }

    /// Reads a list under `key`, converting each item with `read`.
    pub fn list<T>(
        &self,
        key: &str,
        diagnostics: &mut Diagnostics,
        mut read: impl FnMut(&'n Node, &str, &mut Diagnostics) -> Option<T>,
    ) -> Vec<T> {
        let Some(node) = self.get(key) else {
            return Vec::new();
        };
        let path = self.path_of(key);
        let Value::Seq(items) = &node.value else {
            diagnostics.push(
                &node.loc,
                &path,
                format!("Expected a list, found {}", node.kind()),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(index, node)| read(node, &item(&path, index), diagnostics))
            .collect()
    }
}

fn unknown_key_message(key: &Key, allowed: &[&str]) -> String {
    let closest = allowed
        .iter()
        .map(|candidate| (edit_distance(&key.name, candidate), *candidate))
        .min()
        .filter(|(distance, _)| *distance <= 2 || key.name.eq_ignore_ascii_case(allowed[0]));
    match closest {
        Some((_, candidate)) => format!("Unknown key `{}`: did you mean `{candidate}`?", key.name),
        None => format!(
            "Unknown key `{}`: expected one of {}",
            key.name,
            allowed.join(", ")
        ),
    }
}

/// Computes the Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Reads a scalar as a string. Plain numbers and booleans are accepted as their text.
pub fn string(node: &Node, path: &str, diagnostics: &mut Diagnostics) -> Option<Spanned<String>> {
    match &node.value {
        Value::Scalar { text, .. } => Some(Spanned::new(text.clone(), node.loc.clone())),
        _ => {
            let message = format!("Expected a string, found {}", node.kind());
            diagnostics.push(&node.loc, path, message);
            None
        }
    }
}

/// Reads a plain scalar as a decimal integer.
pub fn integer(node: &Node, path: &str, diagnostics: &mut Diagnostics) -> Option<Spanned<i64>> {
    if let Value::Scalar {
        text,
        quoted: false,
    } = &node.value
    {
        if let Ok(value) = text.replace('_', "").parse::<i64>() {
            return Some(Spanned::new(value, node.loc.clone()));
        }
    }
    let found = match &node.value {
        Value::Scalar { text, .. } => format!("`{text}`"),
        _ => node.kind().to_owned(),
    };
    diagnostics.push(
        &node.loc,
        path,
        format!("Expected an integer, found {found}"),
    );
    None
}

/// Reads `true` or `false`. YAML 1.1 spellings such as `yes` are rejected with a hint, because
/// YAML 1.2 reads them as strings and the two readings would disagree.
pub fn boolean(node: &Node, path: &str, diagnostics: &mut Diagnostics) -> Option<Spanned<bool>> {
    if let Value::Scalar {
        text,
        quoted: false,
    } = &node.value
    {
        match text.as_str() {
            "true" | "True" | "TRUE" => return Some(Spanned::new(true, node.loc.clone())),
            "false" | "False" | "FALSE" => return Some(Spanned::new(false, node.loc.clone())),
            _ => {}
        }
    }
    let found = match &node.value {
        Value::Scalar { text, .. } => format!("`{text}`"),
        _ => node.kind().to_owned(),
    };
    diagnostics.push(
        &node.loc,
        path,
        format!("Expected true or false, found {found}"),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tree(text: &str) -> Node {
        crate::yaml::parse_str(text, &Arc::from("t.yml"))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn unknown_key_suggests_closest() {
        let node = tree("hostnme: x\n");
        let mut diagnostics = Diagnostics::default();
        MapReader::open(
            &node,
            "systemConfig",
            &["hostname", "packages"],
            &mut diagnostics,
        );
        assert_eq!(
            diagnostics.to_string(),
            "t.yml:1:1: systemConfig.hostnme: Unknown key `hostnme`: did you mean `hostname`?"
        );
    }

    #[test]
    fn wrong_types_are_all_reported() {
        let node = tree("a: [1]\nb: x\nc: yes\n");
        let mut diagnostics = Diagnostics::default();
        let map = MapReader::open(&node, "", &["a", "b", "c"], &mut diagnostics).unwrap();
        assert!(map.string("a", &mut diagnostics).is_none());
        assert!(map.integer("b", &mut diagnostics).is_none());
        assert!(map.boolean("c", &mut diagnostics).is_none());
        assert_eq!(diagnostics.len(), 3);
        assert!(diagnostics
            .to_string()
            .contains("c: Expected true or false, found `yes`"));
    }

    #[test]
    fn edit_distance_counts_changes() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
