//! The repository's git config state for `alca status`: host git run in the project executes
//! what `.git/config` names (`core.fsmonitor`, `core.hooksPath`, aliases, filters, …), and
//! the agent can write the workspace. The file is read with `git config --file`, which runs
//! nothing.

use std::path::Path;
use std::process::{Command, Stdio};

use super::protect::{plain, Kind};

/// Config keys (lower case, as `git config --list` prints them) whose value git runs as a
/// program, or that pull in more config.
const RUNS_PROGRAMS: [&str; 14] = [
    "core.fsmonitor",
    "core.hookspath",
    "core.sshcommand",
    "core.editor",
    "core.pager",
    "core.askpass",
    "core.gitproxy",
    "diff.external",
    "credential.helper",
    "include.path",
    "sequence.editor",
    "gpg.program",
    "uploadpack.packobjectshook",
    "merge.tool",
];

/// Key prefixes and suffixes of the same kind (`alias.x`, `filter.x.clean`, `includeif.*`).
fn runs_program(key: &str) -> bool {
    RUNS_PROGRAMS.contains(&key)
        || key.starts_with("alias.")
        || key.starts_with("includeif.")
        || (key.starts_with("filter.")
            && (key.ends_with(".clean") || key.ends_with(".smudge") || key.ends_with(".process")))
        || (key.starts_with("diff.") && (key.ends_with(".textconv") || key.ends_with(".command")))
        || (key.starts_with("merge.") && key.ends_with(".driver"))
}

/// One line for `alca status` about `.git/config` and `.git/hooks/` at `root`.
pub fn status_line(root: &Path) -> String {
    if !root.join(".git").exists() {
        return "no repository".into();
    }
    if !plain(root, Path::new(".git/config"), Kind::File) {
        return ".git/config is missing or a symlink: not protected inside the container; \
                check it before running git on the host"
            .into();
    }
    let hooks = if plain(root, Path::new(".git/hooks"), Kind::Dir) {
        "config and hooks read-only inside the container"
    } else {
        "config read-only inside the container (.git/hooks is missing or a symlink)"
    };
    let keys = program_keys(&root.join(".git/config"));
    if keys.is_empty() {
        format!("{hooks}; sets nothing that runs a program")
    } else {
        format!(
            "{hooks}; sets {} (host git runs these; check them)",
            keys.join(", ")
        )
    }
}

/// Keys of the config file at `path` whose value git may run.
pub fn program_keys(path: &Path) -> Vec<String> {
    let out = Command::new("git")
        .args(["config", "--no-includes", "--null", "--list", "--file"])
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        return vec!["(unreadable)".into()];
    };
    let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split('\0')
        .filter_map(|entry| entry.split('\n').next())
        .filter(|key| runs_program(key))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(status_line(root), "no repository");
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        std::fs::write(
            root.join(".git/config"),
            "[core]\n\tbare = false\n\tfsmonitor = touch /tmp/x\n[alias]\n\tst = !sh\n\
             [filter \"lfs\"]\n\tclean = x\n",
        )
        .unwrap();
        let line = status_line(root);
        assert!(line.contains("core.fsmonitor, filter.lfs.clean"), "{line}");
        assert!(line.contains("alias.st"), "{line}");
        std::fs::write(root.join(".git/config"), "[core]\n\tbare = false\n").unwrap();
        assert!(status_line(root).ends_with("sets nothing that runs a program"));
    }
}
