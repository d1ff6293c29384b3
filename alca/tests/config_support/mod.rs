//! Shared helpers of the config integration tests: a temporary project with files and a fixed
//! environment, loaded through the public `alca::config` API.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use alca::config::{self, ConfigError, Loaded};

/// A temporary project directory plus the environment its config is expanded with.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

impl Project {
    /// An empty project; `HOME` is `/home/tester`, `DATA` is `/srv/data`.
    pub fn new() -> Project {
        let env = [("HOME", "/home/tester"), ("DATA", "/srv/data")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
            env,
        }
    }

    /// A project whose `.alca.toml` is `text`.
    pub fn with(text: &str) -> Project {
        let p = Project::new();
        p.write(".alca.toml", text);
        p
    }

    /// The canonical project root.
    pub fn root(&self) -> PathBuf {
        fs::canonicalize(self.dir.path()).expect("canonical root")
    }

    /// Canonical absolute path of `rel` inside the project.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Writes `rel` (creating parent directories).
    pub fn write(&self, rel: &str, text: &str) -> &Project {
        let path = self.dir.path().join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
        self
    }

    pub fn set_env(&mut self, k: &str, v: &str) -> &mut Project {
        self.env.insert(k.into(), v.into());
        self
    }

    pub fn load(&self) -> Result<Loaded, ConfigError> {
        config::load_with_env(self.dir.path(), &self.env)
    }

    /// Loads and expects success.
    pub fn ok(&self) -> Loaded {
        match self.load() {
            Ok(l) => l,
            Err(e) => panic!("expected the config to load, got: {e}"),
        }
    }

    /// Loads and expects an error; returns its message.
    pub fn err(&self) -> String {
        match self.load() {
            Ok(l) => panic!("expected an error, loaded: {:?}", l.config),
            Err(e) => e.to_string(),
        }
    }

    /// The error message with the project root replaced by `<root>`.
    pub fn err_rel(&self) -> String {
        self.err()
            .replace(&self.root().display().to_string(), "<root>")
    }
}

/// Asserts `haystack` contains `needle`, showing both on failure.
pub fn assert_has(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected to find\n  {needle}\nin\n  {haystack}"
    );
}

/// Path helper for expected mount sources.
pub fn p(s: &str) -> &Path {
    Path::new(s)
}
