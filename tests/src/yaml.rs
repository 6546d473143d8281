//! A tiny YAML emitter for config values built as JSON.
//!
//! Block style for maps and lists, double-quoted (JSON-escaped) strings, so the output is
//! what a person would write by hand and reads the same in any YAML 1.2 parser.

use serde_json::Value;

/// Renders `value` (a map at the top level) as block YAML.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(&mut out, value, 0);
    out
}

fn emit(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                out.push_str(&pad);
                out.push_str(&key_text(key));
                out.push(':');
                if is_block(v) {
                    out.push('\n');
                    emit(out, v, indent + 2);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(v));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_block(item) {
                    // Render the item one level deeper, then turn its first indent into "- ".
                    let mut inner = String::new();
                    emit(&mut inner, item, indent + 2);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&inner[indent + 2..]);
                } else {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        // JSON's number, bool, null and double-quoted string syntax is valid YAML.
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::to_yaml;
    use serde_json::json;

    // Keys are in alphabetical order so the expectation holds whether or not serde_json's
    // `preserve_order` feature is on in the workspace.
    #[test]
    fn renders_nested_blocks() {
        let v = json!({
            "auth": {"keys": [{"models": ["*"]}]},
            "models": [
                {"deployments": [{"provider": "p", "weight": 1}], "fallbacks": [], "name": "a"},
                "plain"
            ],
            "server": {"listen": "127.0.0.1:1", "threads": 2}
        });
        let expected = "\
auth:
  keys:
    - models:
        - \"*\"
models:
  - deployments:
      - provider: \"p\"
        weight: 1
    fallbacks: []
    name: \"a\"
  - \"plain\"
server:
  listen: \"127.0.0.1:1\"
  threads: 2
";
        assert_eq!(to_yaml(&v), expected);
    }
}
