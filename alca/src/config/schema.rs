//! The published JSON schema of `.alca.toml`, generated from the raw types.
//!
//! `alca-config.schema.json` at the repository root is checked against the generated schema by
//! a unit test; regenerate it with `ALCA_BLESS=1 cargo test -p alca --lib config::schema`.

use serde_json::Value;

use super::raw::RawConfig;

/// Path `alca init` references in the `#:schema` line of new config files.
pub const SCHEMA_URL: &str =
    "https://raw.githubusercontent.com/bolasblack/alcatraz/refs/heads/master/alca-config.schema.json";

/// The schema as pretty-printed JSON with a trailing newline.
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(RawConfig).to_value();
    drop_nulls(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// TOML has no null: removes the `null` alternatives schemars emits for `Option` fields.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    map.insert("type".into(), only);
                }
            }
            unwrap_nullable_any_of(map);
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// `anyOf: [X, {type: null}]` → the keys of X merged into the parent.
fn unwrap_nullable_any_of(map: &mut serde_json::Map<String, Value>) {
    let Some(Value::Array(alts)) = map.get("anyOf") else {
        return;
    };
    let null = serde_json::json!({ "type": "null" });
    if alts.len() != 2 || !alts.contains(&null) {
        return;
    }
    let keep = alts.iter().find(|a| **a != null).cloned();
    map.remove("anyOf");
    if let Some(Value::Object(inner)) = keep {
        for (k, v) in inner {
            map.entry(k).or_insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("alca-config.schema.json")
    }

    #[test]
    fn committed_schema_is_up_to_date() {
        let generated = schema_json();
        let path = committed_path();
        if std::env::var_os("ALCA_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is out of date; regenerate with ALCA_BLESS=1 cargo test -p alca --lib config::schema",
            path.display()
        );
    }

    #[test]
    fn schema_describes_the_string_or_table_forms() {
        let v: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let props = &v["properties"];
        for key in [
            "image", "mounts", "envs", "caps", "ports", "network", "hooks", "extends", "includes",
        ] {
            assert!(props.get(key).is_some(), "missing {key}");
        }
        assert!(schema_json().contains("lan-access"));
        assert!(!schema_json().contains("\"null\""), "TOML has no null");
    }
}
