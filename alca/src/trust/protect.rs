//! Second line of defence: inside the container the config files the config actually loaded
//! (`.alca.toml` and the files it extends or includes under the project), the repository's
//! `.git/config` and `.git/hooks/`, and `.alca/` are mounted read-only over the workspace, so
//! the agent cannot edit them from inside. The digest check of `up` stays the real guard: a
//! file the agent creates later (say `.alca.local.toml`) is caught there.
//!
//! The runtime (root) resolves a bind source again at every start, following symlinks, and the
//! agent can write the workspace. So a source is only ever a path the config loaded or a fixed
//! name, checked right before the container is created: every component below the project
//! root a real directory, the last one a regular file (or directory for `.alca/` and
//! `.git/hooks/`), never a symlink, and never a path the exclude patterns hide.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::exclude::ExcludeMatcher;
use crate::project::STATE_DIR;
use crate::runtime::BindMount;

/// Files and directories of the repository whose content host-side git executes
/// (`core.fsmonitor`, `core.hooksPath`, aliases, filters, hooks).
pub const GIT_PROTECTED: [(&str, Kind); 2] =
    [(".git/config", Kind::File), (".git/hooks", Kind::Dir)];

/// What a protected path must be on the host for it to be mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Read-only bind mounts that cover the project's config inside the container at `workdir`.
/// `sources` are the config files actually loaded; `exclude` the `workdir_exclude` patterns
/// (a loaded file the view hides is never mounted back in).
pub fn read_only_mounts(
    root: &Path,
    workdir: &str,
    sources: &[PathBuf],
    exclude: &[String],
) -> Vec<BindMount> {
    let hidden = ExcludeMatcher::compile(exclude).ok();
    candidates(root, sources)
        .into_iter()
        .filter(|(rel, kind, _)| {
            let dir = *kind == Kind::Dir;
            hidden.as_ref().is_some_and(|m| !m.is_excluded(rel, dir)) && plain(root, rel, *kind)
        })
        .map(|(rel, _, recursive)| mount(root, workdir, &rel, recursive))
        .collect()
}

/// Every path [`read_only_mounts`] may cover, whether it exists yet or not, relative to
/// `root`: the view pins them (see `ExcludeMatcher::pin`) so the agent cannot move a
/// directory above one of them and leave a symlink where the runtime looks next time.
pub fn pinned(root: &Path, sources: &[PathBuf]) -> Vec<PathBuf> {
    candidates(root, sources)
        .into_iter()
        .map(|(rel, _, _)| rel)
        .collect()
}

/// `(relative path, kind, recursive mount)` of the loaded config files under `root`, the
/// repository's git config and hooks, and `.alca/` (not recursive: views live below it).
fn candidates(root: &Path, sources: &[PathBuf]) -> Vec<(PathBuf, Kind, bool)> {
    let files: BTreeSet<PathBuf> = sources
        .iter()
        .filter_map(|s| relative_to(root, s))
        .filter(|rel| !rel.as_os_str().is_empty())
        .collect();
    let mut out: Vec<(PathBuf, Kind, bool)> = files
        .into_iter()
        .map(|rel| (rel, Kind::File, true))
        .collect();
    out.extend(
        GIT_PROTECTED
            .iter()
            .map(|(rel, kind)| (PathBuf::from(rel), *kind, true)),
    );
    out.push((PathBuf::from(STATE_DIR), Kind::Dir, false));
    out
}

/// True when `rel` (relative, no `..`) is reached from `root` through real directories only
/// and is itself a `kind`, not a symlink: what the runtime will resolve is what was checked.
pub fn plain(root: &Path, rel: &Path, kind: Kind) -> bool {
    let mut at = root.to_path_buf();
    let parts: Vec<Component> = rel.components().collect();
    if parts.is_empty() || parts.iter().any(|c| !matches!(c, Component::Normal(_))) {
        return false;
    }
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(meta) = fs::symlink_metadata(&at) else {
            return false;
        };
        let last = i + 1 == parts.len();
        let ok = if !last || kind == Kind::Dir {
            meta.file_type().is_dir()
        } else {
            meta.file_type().is_file()
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `path` relative to `root` (also when one of them is reached through a symlink).
fn relative_to(root: &Path, path: &Path) -> Option<PathBuf> {
    if let Ok(rel) = path.strip_prefix(root) {
        return Some(rel.to_path_buf());
    }
    let (root, path) = (root.canonicalize().ok()?, path.canonicalize().ok()?);
    path.strip_prefix(&root).ok().map(Path::to_path_buf)
}

fn mount(root: &Path, workdir: &str, rel: &Path, recursive: bool) -> BindMount {
    BindMount {
        source: root.join(rel),
        target: format!("{}/{}", workdir.trim_end_matches('/'), rel.display()),
        readonly: true,
        recursive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn targets(mounts: &[BindMount]) -> Vec<(String, bool, bool)> {
        mounts
            .iter()
            .map(|m| (m.target.clone(), m.readonly, m.recursive))
            .collect()
    }

    #[test]
    fn covers_loaded_configs_git_and_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            ".alca.toml",
            ".alca.local.toml",
            "README.md",
            "conf/extra.toml",
            ".git/config",
            ".git/hooks/pre-commit",
        ] {
            fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            fs::write(root.join(f), "").unwrap();
        }
        fs::create_dir(root.join(".alca")).unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        let sources = vec![
            root.join(".alca.toml"),
            root.join("conf/extra.toml"),
            outside.path().to_path_buf(),
        ];
        let mounts = read_only_mounts(root, "/workspace/", &sources, &[]);
        for m in &mounts {
            assert_eq!(
                m.source,
                root.join(m.target.trim_start_matches("/workspace/"))
            );
        }
        assert_eq!(
            targets(&mounts),
            [
                ("/workspace/.alca.toml".to_string(), true, true),
                ("/workspace/conf/extra.toml".to_string(), true, true),
                ("/workspace/.git/config".to_string(), true, true),
                ("/workspace/.git/hooks".to_string(), true, true),
                ("/workspace/.alca".to_string(), true, false),
            ],
            ".alca.local.toml is not loaded, so it is not mounted (trust catches it)"
        );
    }

    /// Issue #22 item 1: `.alcax.toml -> /etc/shadow` or `-> .env`, and symlinked parents.
    #[test]
    fn symlinks_and_excluded_files_are_never_mounted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let secret = tempfile::NamedTempFile::new().unwrap();
        fs::write(root.join(".alca.toml"), "").unwrap();
        fs::write(root.join(".env"), "A=\"1\"").unwrap();
        symlink(secret.path(), root.join(".alcax.toml")).unwrap();
        symlink(root.join(".env"), root.join(".alcay.toml")).unwrap();
        fs::create_dir(root.join("real")).unwrap();
        fs::write(root.join("real/x.toml"), "").unwrap();
        symlink(root.join("real"), root.join("conf")).unwrap();
        fs::create_dir(root.join(".git")).unwrap();
        symlink(secret.path(), root.join(".git/config")).unwrap();
        symlink("/", root.join(".git/hooks")).unwrap();
        symlink("/", root.join(".alca")).unwrap();
        let sources = vec![
            root.join(".alca.toml"),
            root.join(".alcax.toml"),
            root.join(".alcay.toml"),
            root.join("conf/x.toml"),
            // What resolving the glob `./.alca*.toml` gives for `.alcay.toml`.
            root.join(".env"),
        ];
        let mounts = read_only_mounts(root, "/w", &sources, &["**/.env".into()]);
        assert_eq!(
            targets(&mounts),
            [("/w/.alca.toml".to_string(), true, true)]
        );
        assert!(!plain(root, Path::new("../x"), Kind::File));
        assert!(!plain(root, Path::new(""), Kind::Dir));
        assert!(plain(root, Path::new("real/x.toml"), Kind::File));
        assert!(!plain(root, Path::new("real"), Kind::File));
    }
}
