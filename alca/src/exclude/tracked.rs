//! Host side: excluded files the container can still read through git. A file hidden by
//! `workdir_exclude` but tracked by the repository, or present in its history, is readable
//! from `.git` inside the container; `up` and `status` warn and name the fix.
//!
//! Git runs with the repository's executable settings switched off (`core.fsmonitor`,
//! `core.hooksPath`, external diff, pager): the repository is agent-writable content.

use std::path::Path;
use std::process::{Command, Stdio};

use super::ExcludeMatcher;

/// The options that keep host git from running anything a repository config names.
pub const SAFE_GIT: [&str; 10] = [
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "diff.external=",
    "-c",
    "core.pager=cat",
    "-c",
    "protocol.allow=never",
];

/// Excluded paths git knows about at `root`: `(tracked now, only in history)`.
pub fn excluded_in_git(root: &Path, patterns: &[String]) -> (Vec<String>, Vec<String>) {
    if patterns.is_empty() || !root.join(".git").exists() {
        return (Vec::new(), Vec::new());
    }
    let Ok(matcher) = ExcludeMatcher::compile(patterns) else {
        return (Vec::new(), Vec::new());
    };
    let hidden = |list: Vec<String>| -> Vec<String> {
        let mut out: Vec<String> = list
            .into_iter()
            .filter(|p| !p.is_empty() && matcher.is_excluded(Path::new(p), false))
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let tracked = hidden(git_lines(root, &["ls-files", "-z"]));
    let ever = hidden(git_lines(
        root,
        &[
            "log",
            "--all",
            "--no-renames",
            "--diff-filter=A",
            "--name-only",
            "--format=",
            "-z",
        ],
    ));
    let history = ever.into_iter().filter(|p| !tracked.contains(p)).collect();
    (tracked, history)
}

/// Warning lines for [`excluded_in_git`], empty when git knows no excluded path.
pub fn warnings(root: &Path, patterns: &[String]) -> Vec<String> {
    let (tracked, history) = excluded_in_git(root, patterns);
    let mut out = Vec::new();
    if !tracked.is_empty() {
        out.push(format!(
            "excluded but tracked by git, so readable inside the container through .git: {}. \
             Fix: `git rm --cached <file>`, commit, and rotate the secret",
            tracked.join(", ")
        ));
    }
    if !history.is_empty() {
        out.push(format!(
            "excluded but present in git history, so readable inside the container through \
             .git: {}. Fix: rewrite the history (git filter-repo --invert-paths --path <file>) \
             and rotate the secret",
            history.join(", ")
        ));
    }
    out
}

fn git_lines(root: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new("git")
        .args(SAFE_GIT)
        .arg("-C")
        .arg(root)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split(['\0', '\n'])
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn tracked_and_historic_excluded_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q"]);
        std::fs::write(d.join(".env"), "A=1").unwrap();
        std::fs::create_dir(d.join("app")).unwrap();
        std::fs::write(d.join("app/id.key"), "k").unwrap();
        std::fs::write(d.join("main.rs"), "").unwrap();
        git(d, &["add", "-A"]);
        git(d, &["commit", "-q", "-m", "one"]);
        git(d, &["rm", "-q", "--cached", "app/id.key"]);
        git(d, &["commit", "-q", "-m", "two"]);
        let patterns = vec!["**/.env".to_string(), "**/*.key".to_string()];
        let (tracked, history) = excluded_in_git(d, &patterns);
        assert_eq!(tracked, [".env"]);
        assert_eq!(history, ["app/id.key"]);
        let w = warnings(d, &patterns);
        assert!(w[0].contains("git rm --cached"), "{w:?}");
        assert!(w[1].contains("filter-repo"), "{w:?}");
        assert!(warnings(d, &[]).is_empty());
    }
}
