//! A YAML reader that keeps the position of every node.
//!
//! Templates and configuration files are read into a small tree of [`Node`]s, not straight
//! through serde. Every problem in a file must be reported at once with its line and column, and
//! serde stops at the first one. The reader also rejects what a template never
//! needs and an attacker could abuse: duplicate keys, alias expansion beyond a node budget, deep
//! nesting, several documents, custom tags and files over a size limit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::{Diagnostics, Loc};

/// The largest file accepted. Templates are a few kilobytes, so this leaves room for long package
/// lists.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The largest number of nodes after aliases are expanded.
pub const MAX_NODES: usize = 100_000;

/// The deepest nesting of sequences and mappings.
pub const MAX_DEPTH: usize = 64;

/// A YAML node with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A scalar as written. `quoted` is true for single- and double-quoted and block scalars, whose
    /// text is always a string.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

impl Node {
    /// Returns a short description of the node's type for messages, such as `a mapping`.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    fn count(&self) -> usize {
        match &self.value {
            Value::Null | Value::Scalar { .. } => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(_, node)| node.count()).sum::<usize>(),
        }
    }
}

/// Reads a file, stopping one byte past [`MAX_FILE_BYTES`] so that a huge file costs no more
/// memory than the limit before [`parse_bytes`] rejects it.
pub fn read_limited(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;

    let file = fs_err::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads a whole file's bytes into a tree. `Ok(None)` means the file contains no document.
pub fn parse_bytes(bytes: &[u8], source: &Arc<str>) -> Result<Option<Node>, Diagnostics> {
    let text = decode(bytes, source)?;
    parse_str(text, source)
}

fn decode<'a>(bytes: &'a [u8], source: &Arc<str>) -> Result<&'a str, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    if bytes.len() > MAX_FILE_BYTES {
        let message = format!(
            "File is larger than the limit of {MAX_FILE_BYTES} bytes: a template or \
             configuration file never needs to be this large"
        );
        diagnostics.push(&Loc::new(source, 1, 1), "", message);
        return Err(diagnostics);
    }

    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) => {
            let valid = &bytes[..error.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = valid
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |at| at + 1);
            let column = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count()
                + 1;
            let message = format!(
                "Invalid UTF-8 at byte {}: save the file as UTF-8",
                error.valid_up_to()
            );
            diagnostics.push(&Loc::new(source, line, column), "", message);
            Err(diagnostics)
        }
    }
}

/// Reads YAML text into a tree. `Ok(None)` means the text contains no document.
pub fn parse_str(text: &str, source: &Arc<str>) -> Result<Option<Node>, Diagnostics> {
    let mut builder = TreeBuilder::new(source);
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => {
                if builder.on_event(event, span).is_err() {
                    break;
                }
            }
            Err(error) => {
                let marker = error.marker();
                let loc = Loc::new(source, marker.line(), marker.col() + 1);
                builder
                    .diagnostics
                    .push(&loc, "", format!("Invalid YAML: {}", error.info()));
                break;
            }
        }
    }

    if builder.diagnostics.is_empty() {
        Ok(builder.root)
    } else {
        Err(builder.diagnostics)
    }
}

/// A collection being built: a sequence, or a mapping with its pending key.
enum Frame {
    Seq {
        loc: Loc,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        loc: Loc,
        anchor: usize,
        entries: Vec<(Key, Node)>,
        key: Option<Key>,
    },
}

struct TreeBuilder {
    source: Arc<str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    documents: usize,
    nodes: usize,
    diagnostics: Diagnostics,
}

/// Marks that reading stopped at an error already recorded.
struct Stop;

impl TreeBuilder {
    fn new(source: &Arc<str>) -> Self {
        Self {
            source: Arc::clone(source),
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            documents: 0,
            nodes: 0,
            diagnostics: Diagnostics::default(),
        }
    }

    fn loc(&self, span: Span) -> Loc {
        Loc::new(&self.source, span.start.line(), span.start.col() + 1)
    }

    fn fail(&mut self, loc: &Loc, message: impl Into<String>) -> Result<(), Stop> {
        self.diagnostics.push(loc, "", message);
        Err(Stop)
    }

    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<(), Stop> {
        let loc = self.loc(span);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return self.fail(&loc, "Several YAML documents in one file: keep only one");
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = scalar_node(text, style, tag.as_deref(), loc.clone());
                let node = match node {
                    Ok(node) => node,
                    Err(message) => return self.fail(&loc, message),
                };
                self.finish_node(node, anchor)
            }
            Event::Alias(anchor) => self.on_alias(anchor, &loc),
            Event::SequenceStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), &loc, "!!seq")?;
                self.push_frame(Frame::Seq {
                    loc,
                    anchor,
                    items: Vec::new(),
                })
            }
            Event::MappingStart(anchor, tag) => {
                self.check_collection_tag(tag.as_deref(), &loc, "!!map")?;
                self.push_frame(Frame::Map {
                    loc,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                })
            }
            Event::SequenceEnd | Event::MappingEnd => self.pop_frame(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
        }
    }

    fn check_collection_tag(
        &mut self,
        tag: Option<&saphyr_parser::Tag>,
        loc: &Loc,
        expected: &str,
    ) -> Result<(), Stop> {
        match tag {
            None => Ok(()),
            Some(tag) if tag_name(tag) == expected => Ok(()),
            Some(tag) => self.fail(loc, format!("Unsupported YAML tag `{}`", tag_name(tag))),
        }
    }

    fn push_frame(&mut self, frame: Frame) -> Result<(), Stop> {
        if self.stack.len() >= MAX_DEPTH {
            let loc = match &frame {
                Frame::Seq { loc, .. } | Frame::Map { loc, .. } => loc.clone(),
            };
            return self.fail(&loc, format!("Nesting deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn pop_frame(&mut self) -> Result<(), Stop> {
        let node_and_anchor = match self.stack.pop() {
            Some(Frame::Seq { loc, anchor, items }) => (
                Node {
                    value: Value::Seq(items),
                    loc,
                },
                anchor,
            ),
            Some(Frame::Map {
                loc,
                anchor,
                entries,
                ..
            }) => (
                Node {
                    value: Value::Map(entries),
                    loc,
                },
                anchor,
            ),
            None => return Ok(()),
        };
        self.finish_node(node_and_anchor.0, node_and_anchor.1)
    }

    fn on_alias(&mut self, anchor: usize, loc: &Loc) -> Result<(), Stop> {
        let Some(target) = self.anchors.get(&anchor) else {
            return self.fail(loc, "Alias to an unknown anchor");
        };
        let mut node = target.clone();
        node.loc = loc.clone();
        self.finish_node(node, 0)
    }

    /// Adds a completed node to its parent, or makes it the root.
    fn finish_node(&mut self, node: Node, anchor: usize) -> Result<(), Stop> {
        self.nodes += node.count();
        if self.nodes > MAX_NODES {
            let message = format!(
                "The document has more than {MAX_NODES} nodes, counting each alias as a copy \
                 of its anchor: a template never needs this many"
            );
            return self.fail(&node.loc, message);
        }
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }

        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                key: pending @ None,
                ..
            }) => {
                let name = match node.value {
                    Value::Scalar { text, .. } => text,
                    Value::Null => String::new(),
                    Value::Seq(_) | Value::Map(_) => {
                        return self.fail(&node.loc, "A mapping key must be a plain value");
                    }
                };
                *pending = Some(Key {
                    name,
                    loc: node.loc,
                });
                Ok(())
            }
            Some(Frame::Map { key, entries, .. }) => {
                let key = key
                    .take()
                    .expect("the match arm above handles a missing key");
                if key.name == "<<" {
                    return self.fail(&key.loc, "YAML merge keys (`<<`) are not supported");
                }
                if let Some((first, _)) = entries.iter().find(|(k, _)| k.name == key.name) {
                    let message = format!(
                        "Duplicate key `{}` (first defined at line {})",
                        key.name, first.loc.line
                    );
                    self.diagnostics.push(&key.loc, "", message);
                    return Ok(());
                }
                entries.push((key, node));
                Ok(())
            }
        }
    }
}

fn tag_name(tag: &saphyr_parser::Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

fn scalar_node(
    text: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&saphyr_parser::Tag>,
    loc: Loc,
) -> Result<Node, String> {
    let quoted = !matches!(style, ScalarStyle::Plain);
    if let Some(tag) = tag {
        let name = tag_name(tag);
        return match name.as_str() {
            "!!str" => Ok(Node {
                value: Value::Scalar {
                    text: text.into_owned(),
                    quoted: true,
                },
                loc,
            }),
            "!!null" => Ok(Node {
                value: Value::Null,
                loc,
            }),
            "!!int" | "!!float" | "!!bool" => Ok(Node {
                value: Value::Scalar {
                    text: text.into_owned(),
                    quoted: false,
                },
                loc,
            }),
            _ => Err(format!("Unsupported YAML tag `{name}`")),
        };
    }

    let is_null = !quoted && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL");
    let value = if is_null {
        Value::Null
    } else {
        Value::Scalar {
            text: text.into_owned(),
            quoted,
        }
    };
    Ok(Node { value, loc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn source() -> Arc<str> {
        Arc::from("t.yml")
    }

    fn parse(text: &str) -> Result<Option<Node>, Diagnostics> {
        parse_str(text, &source())
    }

    #[test]
    fn mapping_keeps_positions() {
        let root = parse("a: 1\nb:\n  - x\n").unwrap().unwrap();
        let Value::Map(entries) = root.value else {
            panic!("expected a mapping")
        };
        assert_eq!(entries[1].0.name, "b");
        assert_eq!(entries[1].0.loc.line, 2);
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("expected a list")
        };
        assert_eq!(items[0].loc.line, 3);
        assert_eq!(items[0].loc.column, 5);
    }

    #[test]
    fn duplicate_key_names_both_lines() {
        let error = parse("a: 1\nb: 2\na: 3\n").unwrap_err().to_string();
        assert_eq!(
            error,
            "t.yml:3:1: Duplicate key `a` (first defined at line 1)"
        );
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let previous = level - 1;
            let refs = vec![format!("*a{previous}"); 10].join(", ");
            writeln!(text, "a{level}: &a{level} [{refs}]").unwrap();
        }
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("more than 100000 nodes"), "{error}");
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let error = parse_bytes(b"a: 1\nb: \xff\n", &source())
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "t.yml:2:4: Invalid UTF-8 at byte 8: save the file as UTF-8"
        );
    }

    #[test]
    fn oversized_file_is_rejected() {
        let bytes = vec![b'#'; MAX_FILE_BYTES + 1];
        let error = parse_bytes(&bytes, &source()).unwrap_err().to_string();
        assert!(error.contains("larger than the limit"), "{error}");
    }

    #[test]
    fn empty_file_has_no_document() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let error = parse(&text).unwrap_err().to_string();
        assert!(error.contains("Nesting deeper"), "{error}");
    }

    #[test]
    fn second_document_is_rejected() {
        let error = parse("a: 1\n---\nb: 2\n").unwrap_err().to_string();
        assert!(error.contains("Several YAML documents"), "{error}");
    }

    #[test]
    fn custom_tag_is_rejected() {
        let error = parse("a: !python/object x\n").unwrap_err().to_string();
        assert!(error.contains("Unsupported YAML tag"), "{error}");
    }

    #[test]
    fn quoted_scalars_are_marked() {
        let root = parse("a: \"1\"\nb: 1\nc: ~\n").unwrap().unwrap();
        let Value::Map(entries) = root.value else {
            panic!("expected a mapping")
        };
        assert_eq!(
            entries[0].1.value,
            Value::Scalar {
                text: "1".into(),
                quoted: true
            }
        );
        assert_eq!(
            entries[1].1.value,
            Value::Scalar {
                text: "1".into(),
                quoted: false
            }
        );
        assert_eq!(entries[2].1.value, Value::Null);
    }
}
