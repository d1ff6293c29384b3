//! Construction of [`ConfigError`] messages in one shape: `<file>: <field>: <problem>; <fix>`.

use std::fmt::Display;
use std::path::Path;

use super::ConfigError;

impl ConfigError {
    /// An error about `field` (dotted path such as `mounts[2].target`) in `file`.
    pub fn at(file: &Path, field: &str, problem: impl Display, fix: impl Display) -> ConfigError {
        ConfigError(format!("{}: {field}: {problem}; {fix}", file.display()))
    }

    /// An error about a whole file (unreadable, bad syntax, include cycle, …).
    pub fn file(file: &Path, problem: impl Display, fix: impl Display) -> ConfigError {
        ConfigError(format!("{}: {problem}; {fix}", file.display()))
    }

    /// The message text.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Where in which file a value was declared; used to word errors found after merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: std::path::PathBuf,
    pub field: String,
}

impl Origin {
    pub fn new(file: &Path, field: impl Into<String>) -> Origin {
        Origin {
            file: file.to_path_buf(),
            field: field.into(),
        }
    }

    /// An error about this value.
    pub fn err(&self, problem: impl Display, fix: impl Display) -> ConfigError {
        ConfigError::at(&self.file, &self.field, problem, fix)
    }

    /// The origin of a sub-field (`mounts[1]` + `target` → `mounts[1].target`).
    pub fn child(&self, name: &str) -> Origin {
        Origin::new(&self.file, format!("{}.{name}", self.field))
    }
}
