//! Compiles `workdir_exclude` / mount `exclude` patterns into one matcher with gitignore
//! semantics relative to the source root, so every engine hides exactly the same paths.
//!
//! Each pattern for files also hides the copies host editors and tools leave next to an
//! excluded file, which hold its content ([`ARTEFACTS`]: `.X.swp`, `X~`, `#X#`, …). The
//! temporary file of a host `sed -i` (a random `sedXXXXXX` name) cannot be told from any
//! other file; docs/security.md says so.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// A pattern that cannot be compiled; the message names the pattern and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("exclude pattern {index} is empty; remove it or write a gitignore pattern such as `**/.env`")]
    Empty { index: usize },
    #[error("exclude pattern `{pattern}` contains a NUL byte; remove it")]
    Nul { pattern: String },
    #[error("exclude pattern `{pattern}` is not a valid gitignore pattern: {reason}")]
    Invalid { pattern: String, reason: String },
}

/// Decides, from a path relative to the source root, whether it is hidden.
#[derive(Debug, Clone)]
pub struct ExcludeMatcher {
    gitignore: Gitignore,
    /// Paths (relative to the root) hidden regardless of the patterns, with everything below.
    hidden: Vec<PathBuf>,
    /// True when no pattern depends on more than the entry's own name, so moving a directory
    /// cannot change whether anything below it is excluded.
    name_only: bool,
    /// Paths (relative to the root) the runtime bind-mounts read-only over the view: neither
    /// they nor a directory above them may be renamed or removed through the view, or the
    /// agent could put a symlink at the path the runtime resolves again at the next start.
    pinned: Vec<PathBuf>,
}

/// `(prefix, suffix)` around an excluded name `X` for the files editors and tools write
/// next to it with its content: vim swap and undo files, emacs and vim backups, emacs
/// auto-save and lock files, nano's save file, `.bak`/`.orig`/`.tmp` copies.
pub const ARTEFACTS: [(&str, &str); 13] = [
    (".", ".swp"),
    (".", ".swo"),
    (".", ".swn"),
    (".", ".swx"),
    (".", ".un~"),
    ("", "~"),
    ("\\#", "#"),
    (".#", ""),
    ("", ".save"),
    ("", ".bak"),
    ("", ".orig"),
    ("", ".tmp"),
    ("", ".swp"),
];

/// The artefact patterns of `pattern` (none for negations, comments and directory patterns,
/// whose whole subtree is hidden already).
pub fn artefact_patterns(pattern: &str) -> Vec<String> {
    let p = pattern.trim_end();
    if p.starts_with('!') || p.starts_with('#') || p.ends_with('/') || p.is_empty() {
        return Vec::new();
    }
    let (dir, name) = match p.rfind('/') {
        Some(i) => p.split_at(i + 1),
        None => ("", p),
    };
    if name == "**" {
        return Vec::new();
    }
    ARTEFACTS
        .iter()
        .map(|(pre, post)| format!("{dir}{pre}{name}{post}"))
        .collect()
}

impl ExcludeMatcher {
    /// Compiles the patterns in order (later `!negations` win, as in `.gitignore`), each
    /// followed by its [`artefact_patterns`].
    pub fn compile(patterns: &[String]) -> Result<Self, PatternError> {
        let mut builder = GitignoreBuilder::new("");
        for (index, pattern) in patterns.iter().enumerate() {
            check_pattern(index, pattern)?;
            let lines = std::iter::once(pattern.clone()).chain(artefact_patterns(pattern));
            for line in lines {
                builder
                    .add_line(None, &line)
                    .map_err(|err| PatternError::Invalid {
                        pattern: pattern.clone(),
                        reason: err.to_string(),
                    })?;
            }
        }
        let gitignore = builder.build().map_err(|err| PatternError::Invalid {
            pattern: patterns.join(", "),
            reason: err.to_string(),
        })?;
        Ok(ExcludeMatcher {
            gitignore,
            hidden: Vec::new(),
            name_only: patterns.iter().all(|p| is_name_only(p)),
            pinned: Vec::new(),
        })
    }

    /// Also hides `rel` (and everything below it) whatever the patterns say; used for the
    /// view's own state directory when it lives inside the source.
    pub fn hide(mut self, rel: PathBuf) -> Self {
        self.hidden.push(rel);
        self
    }

    /// Pins `rel`: it and every directory above it can no longer be renamed or removed.
    pub fn pin(mut self, rel: PathBuf) -> Self {
        self.pinned.push(rel);
        self
    }

    /// Whether renaming or removing `rel` would move a pinned path (or `rel` is one).
    pub fn holds_pinned(&self, rel: &Path) -> bool {
        self.pinned.iter().any(|p| p.starts_with(rel))
    }

    /// Whether `rel` (relative to the source root, no leading `/`) or one of its parent
    /// directories is excluded. `is_dir` matters for directory-only patterns (`secrets/`).
    pub fn is_excluded(&self, rel: &Path, is_dir: bool) -> bool {
        if rel.as_os_str().is_empty() {
            return false;
        }
        if rel.has_root() {
            return true;
        }
        if self.hidden.iter().any(|h| rel.starts_with(h)) {
            return true;
        }
        self.gitignore
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
    }

    /// True when moving directory `old` can never change the exclusion of anything below it,
    /// so the engine does not need to inspect the subtree before the rename: every pattern
    /// looks at names only and no always-hidden path lies inside `old`.
    pub fn rename_keeps_descendants(&self, old: &Path) -> bool {
        self.name_only && !self.hidden.iter().any(|h| h.starts_with(old))
    }
}

fn check_pattern(index: usize, pattern: &str) -> Result<(), PatternError> {
    if pattern.trim().is_empty() {
        return Err(PatternError::Empty { index });
    }
    if pattern.contains('\0') {
        return Err(PatternError::Nul {
            pattern: pattern.to_string(),
        });
    }
    Ok(())
}

/// `**/x`, `x`, `x/`, `!x`: patterns matched against the entry's name alone.
fn is_name_only(pattern: &str) -> bool {
    let mut p = pattern.trim_end();
    if p.starts_with('#') {
        return true;
    }
    p = p.strip_prefix('!').unwrap_or(p);
    while let Some(rest) = p.strip_prefix("**/") {
        p = rest;
    }
    let p = p.strip_suffix('/').unwrap_or(p);
    !p.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> ExcludeMatcher {
        let owned: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        ExcludeMatcher::compile(&owned).expect("patterns compile")
    }

    fn spec_defaults() -> ExcludeMatcher {
        matcher(&[
            "**/.env",
            "**/.env.*",
            "**/secrets/",
            "**/*.key",
            "node_modules/",
        ])
    }

    #[test]
    fn env_files_excluded_at_any_depth() {
        let m = spec_defaults();
        assert!(m.is_excluded(Path::new(".env"), false));
        assert!(m.is_excluded(Path::new("a/b/.env"), false));
        assert!(m.is_excluded(Path::new(".env.local"), false));
        assert!(m.is_excluded(Path::new("deep/x/.env.production"), false));
        assert!(!m.is_excluded(Path::new(".envrc"), false));
        assert!(!m.is_excluded(Path::new("env"), false));
    }

    #[test]
    fn directory_only_pattern_hides_directories_and_their_content() {
        let m = spec_defaults();
        assert!(m.is_excluded(Path::new("secrets"), true));
        assert!(m.is_excluded(Path::new("app/secrets"), true));
        assert!(m.is_excluded(Path::new("app/secrets/db.txt"), false));
        assert!(
            !m.is_excluded(Path::new("secrets"), false),
            "a file named secrets is kept"
        );
        assert!(!m.is_excluded(Path::new("secretsafe/x"), false));
    }

    #[test]
    fn key_files_and_node_modules() {
        let m = spec_defaults();
        assert!(m.is_excluded(Path::new("id.key"), false));
        assert!(m.is_excluded(Path::new("certs/server.key"), false));
        assert!(!m.is_excluded(Path::new("server.keys"), false));
        assert!(m.is_excluded(Path::new("node_modules"), true));
        assert!(m.is_excluded(Path::new("web/node_modules/react/index.js"), false));
        assert!(!m.is_excluded(Path::new("src/main.rs"), false));
    }

    #[test]
    fn anchored_patterns_are_relative_to_the_root() {
        let m = matcher(&["/build", "config/prod.toml"]);
        assert!(m.is_excluded(Path::new("build"), true));
        assert!(!m.is_excluded(Path::new("src/build"), true));
        assert!(m.is_excluded(Path::new("config/prod.toml"), false));
        assert!(!m.is_excluded(Path::new("x/config/prod.toml"), false));
        assert!(!m.rename_keeps_descendants(Path::new("src")));
    }

    #[test]
    fn negation_re_includes_a_file() {
        let m = matcher(&["*.key", "!public.key"]);
        assert!(m.is_excluded(Path::new("private.key"), false));
        assert!(!m.is_excluded(Path::new("public.key"), false));
    }

    #[test]
    fn root_is_never_excluded_and_absolute_paths_always_are() {
        let m = matcher(&["*"]);
        assert!(!m.is_excluded(Path::new(""), true));
        assert!(m.is_excluded(Path::new("/etc/passwd"), false));
    }

    #[test]
    fn hidden_paths_cover_their_subtree() {
        let m = matcher(&[]).hide(PathBuf::from(".alca/view-work"));
        assert!(m.is_excluded(Path::new(".alca/view-work"), true));
        assert!(m.is_excluded(Path::new(".alca/view-work/mnt"), true));
        assert!(!m.is_excluded(Path::new(".alca/state.json"), false));
        assert!(!m.rename_keeps_descendants(Path::new(".alca")));
        assert!(m.rename_keeps_descendants(Path::new("src")));
    }

    #[test]
    fn name_only_detection() {
        let dir = Path::new("d");
        assert!(spec_defaults().rename_keeps_descendants(dir));
        assert!(!matcher(&["a/b"]).rename_keeps_descendants(dir));
        assert!(matcher(&["**/x/", "!y", "# comment"]).rename_keeps_descendants(dir));
    }

    /// Issue #22 item 7: what host editors leave next to an excluded file holds its content.
    #[test]
    fn editor_and_tool_artefacts_of_excluded_names_are_hidden() {
        let m = spec_defaults();
        for rel in [
            ".env.swp",
            "..env.swp",
            "..env.swo",
            "a/..env.swp",
            ".env~",
            "#.env#",
            ".#.env",
            ".env.save",
            ".env.bak",
            ".env.orig",
            ".id.key.swp",
            "certs/server.key~",
            "certs/#server.key#",
            "..env.local.swp",
            "..env.un~",
        ] {
            assert!(m.is_excluded(Path::new(rel), false), "{rel} must be hidden");
        }
        for rel in ["README.md~", ".main.rs.swp", "#notes#", ".envrc~"] {
            assert!(!m.is_excluded(Path::new(rel), false), "{rel} stays visible");
        }
        let anchored = matcher(&["/config/prod.toml", "!public.key"]);
        assert!(anchored.is_excluded(Path::new("config/.prod.toml.swp"), false));
        assert!(!anchored.is_excluded(Path::new("x/config/.prod.toml.swp"), false));
        assert!(artefact_patterns("!public.key").is_empty());
        assert!(artefact_patterns("secrets/").is_empty());
    }

    #[test]
    fn bad_patterns_are_clear_errors() {
        let err = ExcludeMatcher::compile(&["".to_string()]).unwrap_err();
        assert!(err.to_string().contains("pattern 0 is empty"), "{err}");
        let err = ExcludeMatcher::compile(&["a\0b".to_string()]).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        let err = ExcludeMatcher::compile(&["a{b".to_string()]).unwrap_err();
        assert!(err.to_string().contains("`a{b`"), "{err}");
    }
}
