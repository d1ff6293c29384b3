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

/// Parses `"source:target"` or `"source:target:ro"`. As in the Go original (ParseMount,
/// internal/config/mount.go) a path cannot hold a `:`, so more parts are refused, and `ro` is
/// the only option (a mount is read-write without it).
fn parse_short(s: &str, origin: &Origin) -> Result<RawMount, ConfigError> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, readonly) = match parts.as_slice() {
        [source, target] => (*source, *target, false),
        [source, target, "ro"] => (*source, *target, true),
        [_, _, option] => {
            return Err(origin.err(
                format!("{option:?} in {s:?} is not a mount option"),
                "use \"source:target:ro\" for a read-only mount, or \"source:target\" (read-write)",
            ))
        }
        [_, _, _, ..] => {
            return Err(origin.err(
                format!("{s:?} is not a mount: it has more than three \":\"-separated parts"),
                "write it as \"source:target\" or \"source:target:ro\"; for a path that holds \":\" use the table form {source, target}",
            ))
        }
        _ => return Err(not_a_mount(s, origin)),
    };
    if source.is_empty() || target.is_empty() {
        return Err(not_a_mount(s, origin));
    }
    Ok(RawMount {
        source: source.to_string(),
        target: target.to_string(),
        readonly,
        exclude: Vec::new(),
    })
}

fn not_a_mount(s: &str, origin: &Origin) -> ConfigError {
    origin.err(
        format!("{s:?} is not a mount"),
        "write it as \"source:target\" or \"source:target:ro\" (e.g. \"~/.gitconfig:/root/.gitconfig:ro\")",
    )
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
