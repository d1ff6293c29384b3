//! `envs`: static values, whole-value `${HOST_VAR}` references (as the Go original: no
//! interpolation inside longer strings) and `{value, override_on_enter}` tables.

use std::collections::BTreeMap;

use crate::config::either::StrOrTable;
use crate::config::env::{is_ref_name, is_var_name, EnvSource};
use crate::config::error::Origin;
use crate::config::model::EnvVar;
use crate::config::raw::RawEnv;
use crate::config::ConfigError;

/// Environment variables the runtime re-sends on every `alca run` unless the config sets them.
pub const DEFAULT_ENTER_ENVS: [&str; 10] = [
    "TERM",
    "COLORTERM",
    "LANG",
    "LC_ALL",
    "LC_COLLATE",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_MONETARY",
    "LC_NUMERIC",
    "LC_TIME",
];

/// Checks and expands all `envs` of one file.
pub fn envs(
    raw: &BTreeMap<String, StrOrTable<RawEnv>>,
    file: &std::path::Path,
    env: &dyn EnvSource,
) -> Result<BTreeMap<String, EnvVar>, ConfigError> {
    raw.iter()
        .map(|(name, value)| {
            let origin = Origin::new(file, format!("envs.{name}"));
            Ok((name.clone(), env_var(name, value, &origin, env)?))
        })
        .collect()
}

fn env_var(
    name: &str,
    raw: &StrOrTable<RawEnv>,
    origin: &Origin,
    env: &dyn EnvSource,
) -> Result<EnvVar, ConfigError> {
    if !is_var_name(name) {
        return Err(origin.err(
            format!("{name:?} is not a valid environment variable name"),
            "use letters, digits and underscores, not starting with a digit (e.g. MY_TOKEN)",
        ));
    }
    let (template, override_on_enter, origin) = match raw {
        StrOrTable::Str(s) => (s.clone(), false, origin.clone()),
        StrOrTable::Table(t) => (t.value.clone(), t.override_on_enter, origin.child("value")),
    };
    let value = expand(&template, &origin, env)?;
    Ok(EnvVar {
        value,
        override_on_enter,
        template,
    })
}

/// Expands a whole-value `${VAR}` (unset → empty); other values are static.
pub fn expand(template: &str, origin: &Origin, env: &dyn EnvSource) -> Result<String, ConfigError> {
    match reference(template) {
        Reference::Static => Ok(template.to_string()),
        Reference::Var(var) => Ok(env.var(var).unwrap_or_default()),
        Reference::Invalid => Err(origin.err(
            format!("{template:?} mixes text with a ${{...}} reference"),
            "use either a static value or exactly \"${HOST_VAR}\" (no text around it)",
        )),
    }
}

/// Re-expands an env template (`EnvVar::template`) from `env` for `alca run`
/// (`override_on_enter`): a whole-value `${VAR}` gives the variable (unset → empty), anything
/// else is returned as written. Templates were validated at load, so this cannot fail.
pub fn reexpand(template: &str, env: &dyn EnvSource) -> String {
    match reference(template) {
        Reference::Var(var) => env.var(var).unwrap_or_default(),
        Reference::Static | Reference::Invalid => template.to_string(),
    }
}

enum Reference<'a> {
    Static,
    Var(&'a str),
    Invalid,
}

fn reference(s: &str) -> Reference<'_> {
    if !s.contains("${") {
        return Reference::Static;
    }
    match s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(name) if is_ref_name(name) => Reference::Var(name),
        _ => Reference::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn run(name: &str, v: &str) -> Result<EnvVar, ConfigError> {
        let env: HashMap<String, String> = [("EDITOR".to_string(), "vim".to_string())].into();
        let raw = BTreeMap::from([(name.to_string(), StrOrTable::Str(v.to_string()))]);
        envs(&raw, Path::new("/p/.alca.toml"), &env).map(|m| m[name].clone())
    }

    #[test]
    fn static_and_reference() {
        assert_eq!(run("A", "1").unwrap().value, "1");
        let e = run("E", "${EDITOR}").unwrap();
        assert_eq!(
            (e.value.as_str(), e.template.as_str()),
            ("vim", "${EDITOR}")
        );
        assert_eq!(run("U", "${UNSET_X}").unwrap().value, "");
        assert_eq!(run("D", "$EDITOR").unwrap().value, "$EDITOR");
    }

    #[test]
    fn reexpand_reads_the_current_environment() {
        let env: HashMap<String, String> = [("EDITOR".to_string(), "nano".to_string())].into();
        assert_eq!(reexpand("${EDITOR}", &env), "nano");
        assert_eq!(reexpand("${UNSET_Y}", &env), "");
        assert_eq!(reexpand("static", &env), "static");
    }

    /// Go internal/config/config.go: `envVarPattern` accepts `${MY-VAR}`; an `[envs.X]` table
    /// without `value` decodes to `EnvValue{Value: ""}`, an empty static value.
    #[test]
    fn hyphenated_references_and_tables_without_value() {
        let env: HashMap<String, String> = [("MY-VAR".to_string(), "v".to_string())].into();
        let raw = BTreeMap::from([
            ("A".to_string(), StrOrTable::Str("${MY-VAR}".to_string())),
            (
                "B".to_string(),
                StrOrTable::Table(RawEnv {
                    value: String::new(),
                    override_on_enter: true,
                }),
            ),
        ]);
        let got = envs(&raw, Path::new("/p/.alca.toml"), &env).unwrap();
        assert_eq!(got["A"].value, "v");
        assert_eq!(got["B"].value, "");
        assert!(got["B"].override_on_enter);
    }

    #[test]
    fn errors() {
        let e = run("G", "hello${NAME}").unwrap_err().0;
        assert!(e.contains("envs.G: \"hello${NAME}\" mixes text"), "{e}");
        let e = run("1BAD", "x").unwrap_err().0;
        assert!(
            e.contains("envs.1BAD: \"1BAD\" is not a valid environment variable name"),
            "{e}"
        );
    }
}
