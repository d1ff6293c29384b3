//! `mounts` entries (`"src:dst[:ro]"` or `{source, target, readonly, exclude}`) and the
//! path rules shared with `workdir`: absolute container paths, host paths expanded and resolved
//! against the declaring file's directory.

use std::path::{Component, Path, PathBuf};

use crate::config::either::StrOrTable;
use crate::config::env::{expand_path, EnvSource};
use crate::config::error::Origin;
use crate::config::model::Mount;
use crate::config::raw::RawMount;
use crate::config::ConfigError;

/// Checks one mount declared at `origin` in a file living in `dir`.
pub fn mount(
    raw: &StrOrTable<RawMount>,
    origin: &Origin,
    dir: &Path,
    env: &dyn EnvSource,
) -> Result<Mount, ConfigError> {
    let table = match raw {
        StrOrTable::Str(s) => parse_short(s, origin)?,
        StrOrTable::Table(t) => t.clone(),
    };
    let source = host_path(&table.source, &origin.child("source"), dir, env)?;
    let target = container_path(&table.target, &origin.child("target"))?;
    let exclude = patterns(&table.exclude, &origin.child("exclude"))?;
    Ok(Mount {
        source,
        target,
        readonly: table.readonly,
        exclude,
    })
}

/// Parses `"source:target"`, `"source:target:ro"` or `"source:target:rw"`.
fn parse_short(s: &str, origin: &Origin) -> Result<RawMount, ConfigError> {
    let (rest, readonly) = match s.rsplit_once(':') {
        Some((rest, "ro")) => (rest, true),
        Some((rest, "rw")) => (rest, false),
        _ => (s, false),
    };
    let bad = || {
        origin.err(
            format!("{s:?} is not a mount"),
            "write it as \"source:target\" or \"source:target:ro\" (e.g. \"~/.gitconfig:/root/.gitconfig:ro\")",
        )
    };
    let (source, target) = rest.rsplit_once(':').ok_or_else(bad)?;
    if source.is_empty() || target.is_empty() {
        return Err(bad());
    }
    Ok(RawMount {
        source: source.to_string(),
        target: target.to_string(),
        readonly,
        exclude: Vec::new(),
    })
}

/// Expands `~` and `$VAR` in a host path, resolves it against `dir` and, when it exists,
/// canonicalises it: the runtime is handed (and trust records) the path a symlink pointed to
/// at load time, so swapping a symlink later changes the recorded source, a widening.
pub fn host_path(
    raw: &str,
    origin: &Origin,
    dir: &Path,
    env: &dyn EnvSource,
) -> Result<PathBuf, ConfigError> {
    if raw.trim().is_empty() {
        return Err(origin.err(
            "the host path is empty",
            "set it to a host directory or file (relative paths start at this file's directory)",
        ));
    }
    let expanded = expand_path(raw, env).map_err(|e| {
        origin.err(
            e,
            "set the variable in the host environment or change the path",
        )
    })?;
    let path = normalize(&dir.join(expanded));
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// Removes `.` and `..` components without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Checks an absolute container path and strips trailing slashes (`/x/` → `/x`).
pub fn container_path(raw: &str, origin: &Origin) -> Result<String, ConfigError> {
    if !raw.starts_with('/') {
        return Err(origin.err(
            format!("{raw:?} is not an absolute path"),
            "write the container path starting with \"/\" (e.g. \"/workspace\")",
        ));
    }
    if raw.contains('\0') || raw.split('/').any(|c| c == "..") {
        return Err(origin.err(
            format!("{raw:?} contains \"..\" or a NUL byte"),
            "write a plain absolute container path",
        ));
    }
    let trimmed = raw.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(origin.err(
            "\"/\" is the container's root directory",
            "choose a directory such as \"/workspace\"",
        ));
    }
    Ok(trimmed.to_string())
}

/// Checks gitignore-style exclude patterns (non-empty).
pub fn patterns(raw: &[String], origin: &Origin) -> Result<Vec<String>, ConfigError> {
    for (i, p) in raw.iter().enumerate() {
        if p.trim().is_empty() {
            return Err(
                Origin::new(&origin.file, format!("{}[{i}]", origin.field)).err(
                    "empty exclude pattern",
                    "remove it or write a pattern such as \"**/.env\"",
                ),
            );
        }
    }
    Ok(raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<String, String> {
        [("HOME".to_string(), "/home/u".to_string())].into()
    }

    fn check(s: &str) -> Result<Mount, ConfigError> {
        let o = Origin::new(Path::new("/p/.alca.toml"), "mounts[0]");
        mount(&StrOrTable::Str(s.into()), &o, Path::new("/p"), &env())
    }

    #[test]
    fn short_forms() {
        let m = check("~/.ssh:/root/.ssh:ro").unwrap();
        assert_eq!(m.source, PathBuf::from("/home/u/.ssh"));
        assert_eq!(m.target, "/root/.ssh");
        assert!(m.readonly);
        let m = check("./cache/../data:/data/").unwrap();
        assert_eq!(m.source, PathBuf::from("/p/data"));
        assert_eq!(m.target, "/data");
        assert!(!m.readonly);
    }

    #[test]
    fn short_form_errors() {
        let e = check("nocolon").unwrap_err().0;
        assert!(
            e.starts_with("/p/.alca.toml: mounts[0]: \"nocolon\" is not a mount"),
            "{e}"
        );
        let e = check("a:relative").unwrap_err().0;
        assert!(
            e.contains("mounts[0].target: \"relative\" is not an absolute path"),
            "{e}"
        );
        let e = check("$NOPE/x:/x").unwrap_err().0;
        assert!(
            e.contains("mounts[0].source: undefined environment variable: $NOPE"),
            "{e}"
        );
    }
}
