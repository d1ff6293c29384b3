//! What the CLI's view engine and the view server process agree on: the description of one
//! view (`<state_dir>/view.json`, written by the CLI and read by the server, so the server's
//! command line carries no paths or patterns), the name the view is mounted under and the line
//! the server prints once it is mounted.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ExcludeError, ExcludeMatcher};

/// Name the view is mounted under (`fuse.alca-view` in mountinfo). Deliberately not the
/// source path: the container can read its mountinfo.
pub const FS_NAME: &str = "alca-view";
/// Line the server prints on stdout once the view is mounted.
pub const READY_LINE: &str = "ready";

/// File name of the spec inside a view's state directory.
pub const SPEC_FILE: &str = "view.json";

/// What a view serves and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewSpec {
    /// Canonical source directory.
    pub source: PathBuf,
    /// Where the view is mounted (inside the state directory).
    pub mountpoint: PathBuf,
    /// gitignore-style patterns, relative to `source`.
    pub patterns: Vec<String>,
    /// Paths relative to `source` bind-mounted read-only over the view (see
    /// [`ExcludeMatcher::pin`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned: Vec<PathBuf>,
}

impl ViewSpec {
    /// The spec of the view of `source` kept in `state_dir`.
    pub fn new(source: PathBuf, patterns: &[String], state_dir: &Path) -> Self {
        ViewSpec {
            source,
            mountpoint: state_dir.join("mnt"),
            patterns: patterns.to_vec(),
            pinned: Vec::new(),
        }
    }

    /// The same spec with `pinned` paths.
    pub fn with_pinned(mut self, pinned: &[PathBuf]) -> Self {
        self.pinned = pinned.to_vec();
        self
    }

    /// The matcher the server applies: the patterns, plus the directory holding the views'
    /// state (`.alca/views`, with every view's mountpoint) when it lies inside the source, so
    /// no view serves itself or another view.
    pub fn matcher(&self) -> Result<ExcludeMatcher, ExcludeError> {
        let matcher = self
            .pinned
            .iter()
            .fold(ExcludeMatcher::compile(&self.patterns)?, |m, rel| {
                m.pin(rel.clone())
            });
        let state_dir = self.mountpoint.parent().unwrap_or(&self.mountpoint);
        let candidates = [state_dir.parent(), Some(state_dir)];
        let hidden = candidates.into_iter().flatten().find_map(|dir| {
            dir.strip_prefix(&self.source)
                .ok()
                .filter(|rel| !rel.as_os_str().is_empty())
        });
        Ok(match hidden {
            Some(rel) => matcher.hide(rel.to_path_buf()),
            None => matcher,
        })
    }

    pub fn write(&self, state_dir: &Path) -> Result<(), ExcludeError> {
        let path = state_dir.join(SPEC_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| ExcludeError::State {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        std::fs::write(&path, text)
            .map_err(|e| ExcludeError::io(format!("cannot write {}", path.display()), e))
    }

    /// Reads the spec at `path`; `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<ViewSpec>, ExcludeError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ExcludeError::io(
                    format!("cannot read {}", path.display()),
                    e,
                ))
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ExcludeError::State {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_inside_the_source_is_hidden() {
        let spec = ViewSpec::new(
            PathBuf::from("/p"),
            &["**/.env".to_string()],
            Path::new("/p/.alca/views/ab"),
        );
        let m = spec.matcher().expect("compiles");
        assert!(m.is_excluded(Path::new(".alca/views/ab/mnt"), true));
        assert!(m.is_excluded(Path::new(".alca/views/other/mnt"), true));
        assert!(!m.is_excluded(Path::new(".alca/state.json"), false));
        let direct = ViewSpec::new(PathBuf::from("/p"), &[], Path::new("/p/.view"));
        let m = direct.matcher().expect("compiles");
        assert!(m.is_excluded(Path::new(".view/mnt"), true));
        assert!(
            !m.is_excluded(Path::new("src"), true),
            "never the whole source"
        );
        assert!(
            !m.is_excluded(Path::new("x/.env"), false),
            "no patterns given"
        );
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = ViewSpec::new(PathBuf::from("/src"), &["a/".to_string()], dir.path());
        spec.write(dir.path()).expect("write");
        let back = ViewSpec::read(&dir.path().join(SPEC_FILE)).expect("read");
        assert_eq!(back, Some(spec));
        assert_eq!(
            ViewSpec::read(&dir.path().join("nope")).expect("read"),
            None
        );
        std::fs::write(dir.path().join(SPEC_FILE), "{").expect("write");
        let err = ViewSpec::read(&dir.path().join(SPEC_FILE)).unwrap_err();
        assert!(err.to_string().contains("alca down"), "{err}");
    }
}
