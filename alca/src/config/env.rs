//! Host environment access for config expansion (`$VAR`, `${VAR}`, `~`), injectable for tests.

use std::collections::HashMap;

/// Where `$VAR` / `${VAR}` / `~` values come from.
pub trait EnvSource {
    /// The value of a variable, `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostEnv;

impl EnvSource for HostEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// `$NAME` / `${NAME}` is not set in the host environment.
    Undefined(String),
    /// `${` without a closing `}` or with an invalid name.
    Malformed(String),
    /// `~` used but `HOME` is unset.
    NoHome,
}

impl std::fmt::Display for ExpandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpandError::Undefined(n) => write!(f, "undefined environment variable: ${n}"),
            ExpandError::Malformed(s) => write!(f, "malformed variable reference {s:?}"),
            ExpandError::NoHome => f.write_str("`~` used but HOME is not set"),
        }
    }
}

/// True for names usable as environment variables: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_var_name(name: &str) -> bool {
    name_with(name, |_| false)
}

/// True for names allowed inside `${…}`: `[A-Za-z_][A-Za-z0-9_-]*`, the Go original's
/// `envVarPattern` (internal/config/config.go), so `${MY-VAR}` reads the variable `MY-VAR`.
pub fn is_ref_name(name: &str) -> bool {
    name_with(name, |c| c == '-')
}

/// `[A-Za-z_]` then `[A-Za-z0-9_]` or `also`.
fn name_with(name: &str, also: fn(char) -> bool) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || also(c))
}

/// Expands `$VAR` and `${VAR}` anywhere in `s`; `$$` is a literal `$`. Undefined → error.
pub fn expand_vars(s: &str, env: &dyn EnvSource) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = var_reference(after)?;
        match name {
            None => out.push('$'),
            Some(name) => out.push_str(&env.var(name).ok_or(ExpandError::Undefined(name.into()))?),
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses what follows a `$`: returns the variable name (None for a literal `$`) and the
/// number of bytes consumed after the `$`.
fn var_reference(after: &str) -> Result<(Option<&str>, usize), ExpandError> {
    if let Some(body) = after.strip_prefix('{') {
        let end = body
            .find('}')
            .ok_or_else(|| ExpandError::Malformed(format!("${{{body}")))?;
        let name = &body[..end];
        if !is_ref_name(name) {
            return Err(ExpandError::Malformed(format!("${{{name}}}")));
        }
        return Ok((Some(name), end + 2));
    }
    if after.starts_with('$') {
        return Ok((None, 1));
    }
    let len = after
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphanumeric() || c == '_') || (i == 0 && c.is_ascii_digit()))
        .map_or(after.len(), |(i, _)| i);
    if len == 0 {
        return Ok((None, 0));
    }
    Ok((Some(&after[..len]), len))
}

/// Replaces a leading `~` or `~/` with `$HOME`.
pub fn expand_tilde(s: &str, env: &dyn EnvSource) -> Result<String, ExpandError> {
    if s == "~" || s.starts_with("~/") {
        let home = env.var("HOME").filter(|h| !h.is_empty());
        let home = home.ok_or(ExpandError::NoHome)?;
        return Ok(format!("{home}{}", &s[1..]));
    }
    Ok(s.to_string())
}

/// `~` then `$VAR` expansion, as applied to host paths.
pub fn expand_path(s: &str, env: &dyn EnvSource) -> Result<String, ExpandError> {
    expand_vars(&expand_tilde(s, env)?, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("HOME", "/home/u"), ("A", "x"), ("EMPTY", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_both_forms_and_literals() {
        let e = env();
        assert_eq!(expand_vars("$A/${A}-$$-$", &e).unwrap(), "x/x-$-$");
        assert_eq!(expand_vars("${EMPTY}a", &e).unwrap(), "a");
        assert_eq!(expand_vars("$1", &e).unwrap(), "$1");
    }

    #[test]
    fn undefined_and_malformed_are_errors() {
        let e = env();
        assert_eq!(
            expand_vars("$NOPE/x", &e),
            Err(ExpandError::Undefined("NOPE".into()))
        );
        assert!(matches!(
            expand_vars("${A", &e),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand_vars("${a b}", &e),
            Err(ExpandError::Malformed(_))
        ));
    }

    /// Go internal/config/config.go `envVarPattern` (`^\$\{([a-zA-Z_][a-zA-Z0-9_-]*)\}$`) and
    /// os.Expand in StrictExpandEnv: `${MY-VAR}` names the variable `MY-VAR`.
    #[test]
    fn braced_names_may_contain_hyphens() {
        let mut e = env();
        e.insert("MY-VAR".into(), "v".into());
        assert_eq!(expand_vars("/a/${MY-VAR}/b", &e).unwrap(), "/a/v/b");
        assert_eq!(
            expand_vars("${a-b}", &env()),
            Err(ExpandError::Undefined("a-b".into()))
        );
        // Unbraced `$A-b` stops at the hyphen, as a shell does.
        assert_eq!(expand_vars("$A-b", &e).unwrap(), "x-b");
    }

    #[test]
    fn tilde_only_at_start() {
        let e = env();
        assert_eq!(expand_path("~/.ssh", &e).unwrap(), "/home/u/.ssh");
        assert_eq!(expand_path("~", &e).unwrap(), "/home/u");
        assert_eq!(expand_path("a/~", &e).unwrap(), "a/~");
        assert_eq!(expand_tilde("~", &HashMap::new()), Err(ExpandError::NoHome));
    }
}
