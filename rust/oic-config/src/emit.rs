//! Writes YAML for display, such as the merged template of `validate --merged`.
//!
//! Strings are written as JSON strings, which YAML reads as double-quoted scalars, so no value
//! can change type or meaning on the way back in.

use serde_json::Value;

/// Renders a JSON value as block-style YAML.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => write_seq(items, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
    out
}

fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !key.starts_with(['-', '.']);
    if plain {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

fn is_nested(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn write_map(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (key, value) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&key_text(key));
        out.push(':');
        write_child(value, indent + 2, out);
    }
}

fn write_seq(items: &[Value], indent: usize, out: &mut String) {
    for value in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match value {
            Value::Object(map) if !map.is_empty() => {
                // The first key goes on the dash line, the rest line up under it.
                let mut nested = String::new();
                write_map(map, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(nested.trim_start());
            }
            _ => write_child(value, indent + 2, out),
        }
    }
}

fn write_child(value: &Value, indent: usize, out: &mut String) {
    if is_nested(value) {
        out.push('\n');
        match value {
            Value::Object(map) => write_map(map, indent, out),
            Value::Array(items) => write_seq(items, indent, out),
            _ => unreachable!("is_nested holds only for collections"),
        }
    } else {
        out.push(' ');
        out.push_str(&inline(value));
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn output_reads_back_equal() {
        let value = serde_json::json!({
            "image": {"name": "x", "version": "1.0"},
            "list": [{"a": "1", "b": ["p", "q"]}, "plain", "yes", "", "a: b # c"],
            "empty": [],
            "number": 3
        });
        let text = to_yaml(&value);
        let node = crate::yaml::parse_str(&text, &Arc::from("t"))
            .unwrap()
            .unwrap();
        assert_eq!(node_to_json(&node), value, "{text}");
    }

    fn node_to_json(node: &crate::yaml::Node) -> Value {
        use crate::yaml::Value as Y;
        match &node.value {
            Y::Null => Value::Null,
            Y::Scalar { text, quoted } => {
                if !quoted {
                    if let Ok(n) = text.parse::<i64>() {
                        return Value::from(n);
                    }
                }
                Value::String(text.clone())
            }
            Y::Seq(items) => Value::Array(items.iter().map(node_to_json).collect()),
            Y::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), node_to_json(v)))
                    .collect(),
            ),
        }
    }
}
