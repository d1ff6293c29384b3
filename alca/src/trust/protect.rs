//! Second line of defence: inside the container the config files (`.alca.toml`, `.alca*.toml`,
//! included files under the project) and `.alca/` are mounted read-only over the workspace, so
//! the agent cannot edit them from inside. The digest check of `up` stays the real guard: a
//! file the agent creates later (say `.alca.local.toml`) is caught there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::CONFIG_FILE;
use crate::project::STATE_DIR;
use crate::runtime::BindMount;

/// Read-only bind mounts that cover the project's config inside the container at `workdir`.
pub fn read_only_mounts(root: &Path, workdir: &str, sources: &[PathBuf]) -> Vec<BindMount> {
    let mut rels: BTreeSet<PathBuf> = config_files_in_root(root);
    rels.insert(PathBuf::from(CONFIG_FILE));
    rels.extend(sources.iter().filter_map(|s| relative_to(root, s)));
    let mut mounts: Vec<BindMount> = rels
        .into_iter()
        .filter(|rel| root.join(rel).is_file())
        .map(|rel| mount(root, workdir, &rel, true))
        .collect();
    if root.join(STATE_DIR).is_dir() {
        mounts.push(mount(root, workdir, Path::new(STATE_DIR), false));
    }
    mounts
}

/// `.alca*.toml` files directly in the project root.
fn config_files_in_root(root: &Path) -> BTreeSet<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .map(|e| PathBuf::from(e.file_name()))
        .filter(|name| {
            let name = name.to_string_lossy();
            name.starts_with(".alca") && name.ends_with(".toml")
        })
        .collect()
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
    use std::fs;

    #[test]
    fn covers_root_configs_included_files_and_the_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            ".alca.toml",
            ".alca.local.toml",
            "README.md",
            "conf/extra.toml",
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
        let got: Vec<(String, bool, bool)> = read_only_mounts(root, "/workspace/", &sources)
            .into_iter()
            .map(|m| {
                assert_eq!(
                    m.source,
                    root.join(m.target.trim_start_matches("/workspace/"))
                );
                (m.target, m.readonly, m.recursive)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("/workspace/.alca.local.toml".to_string(), true, true),
                ("/workspace/.alca.toml".to_string(), true, true),
                ("/workspace/conf/extra.toml".to_string(), true, true),
                ("/workspace/.alca".to_string(), true, false),
            ]
        );
    }
}
