//! `alca experimental sync check --template`: the Go original's output template (Go
//! `text/template`, rendered by the gtmpl crate) over `.Count` and `.Conflicts` (each with
//! `.Path`, `.LocalState`, `.ContainerState`), with its `json` helper, whose keys are the Go
//! original's JSON names (docs/sync-conflicts.md "Custom Output with --template").

use std::collections::HashMap;

use gtmpl::{Context, Template, Value};
use gtmpl_value::{FuncError, Number};

use crate::exclude::Conflict;

/// Renders `template` over the conflicts; an invalid template is an error naming the flag.
pub fn render(template: &str, conflicts: &[Conflict]) -> anyhow::Result<String> {
    if let Some(at) = unclosed_action(template) {
        anyhow::bail!(
            "--template: invalid template: the action opened at byte {at} has no \"}}}}\""
        );
    }
    let mut tpl = Template::default();
    tpl.add_func("json", json);
    tpl.parse(template)
        .map_err(|e| anyhow::anyhow!("--template: invalid template: {e}"))?;
    tpl.render(&Context::from(data(conflicts)))
        .map_err(|e| anyhow::anyhow!("--template: {e}"))
}

/// The offset of a `{{` with no `}}` after it. gtmpl 0.7's lexer never ends on such a
/// template (it spins), so it is refused before parsing.
fn unclosed_action(template: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(open) = template[from..].find("{{") {
        let start = from + open;
        match template[start + 2..].find("}}") {
            Some(close) => from = start + 2 + close + 2,
            None => return Some(start),
        }
    }
    None
}

fn data(conflicts: &[Conflict]) -> Value {
    let list: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            object([
                ("Path", Value::String(c.path.display().to_string())),
                ("LocalState", Value::String(String::new())),
                ("ContainerState", Value::String(c.detail.clone())),
            ])
        })
        .collect();
    object([
        ("Count", Value::Number(Number::from(list.len() as u64))),
        ("Conflicts", Value::Array(list)),
    ])
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<HashMap<_, _>>(),
    )
}

/// `{{ json . }}`: indented JSON with the Go original's field names (`count`, `localState`…).
fn json(args: &[Value]) -> Result<Value, FuncError> {
    let [value] = args else {
        return Err(FuncError::ExactlyXArgs("json".into(), 1));
    };
    let text = serde_json::to_string_pretty(&to_json(value))
        .map_err(|e| FuncError::Generic(e.to_string()))?;
    Ok(Value::String(text))
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => n
            .as_u64()
            .map(serde_json::Value::from)
            .or_else(|| n.as_i64().map(serde_json::Value::from))
            .or_else(|| n.as_f64().map(serde_json::Value::from))
            .unwrap_or(serde_json::Value::Null),
        Value::Array(items) => items.iter().map(to_json).collect(),
        Value::Object(fields) | Value::Map(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| (go_json_name(k), to_json(&fields[k])))
                .collect::<serde_json::Map<_, _>>()
                .into()
        }
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
    }
}

/// The Go original's JSON tag of a field: its name with the first letter in lower case.
fn go_json_name(field: &str) -> String {
    let mut chars = field.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn one() -> Vec<Conflict> {
        vec![Conflict {
            path: PathBuf::from("src/main.rs"),
            detail: "modified".into(),
        }]
    }

    /// The examples of the Go original's docs/sync-conflicts.md.
    #[test]
    fn documented_examples_render() {
        assert_eq!(
            render("{{ .Count }} conflicts", &[]).unwrap(),
            "0 conflicts"
        );
        assert_eq!(
            render("{{ .Count }} conflicts", &one()).unwrap(),
            "1 conflicts"
        );
        assert_eq!(
            render(
                r#"{{ range .Conflicts }}{{ .Path }}{{ "\n" }}{{ end }}"#,
                &one()
            )
            .unwrap(),
            "src/main.rs\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render("{{ json . }}", &one()).unwrap()).unwrap();
        assert_eq!(json["count"], 1);
        assert_eq!(json["conflicts"][0]["path"], "src/main.rs");
        assert_eq!(json["conflicts"][0]["containerState"], "modified");
        let empty: serde_json::Value =
            serde_json::from_str(&render("{{ json . }}", &[]).unwrap()).unwrap();
        assert_eq!(empty, serde_json::json!({"conflicts": [], "count": 0}));
    }

    #[test]
    fn an_invalid_template_is_an_error() {
        for bad in [
            "{{ .Count ",
            "{{ .Count }} {{",
            "{{ .Count }",
            "{{ range .Conflicts }}",
        ] {
            let e = render(bad, &[]).unwrap_err().to_string();
            assert!(e.starts_with("--template: "), "{bad}: {e}");
        }
        assert_eq!(unclosed_action("a {{ .X }} b {{ c"), Some(13));
        assert_eq!(unclosed_action("{{ .X }}}}"), None);
    }
}
