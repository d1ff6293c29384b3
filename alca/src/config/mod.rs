//! Loading `.alca.toml` (with `extends`/`includes`) into one validated [`Config`].

pub mod model;

pub use model::*;

use std::path::Path;

/// File name of a project's main config.
pub const CONFIG_FILE: &str = ".alca.toml";

/// A loaded project config plus the non-fatal findings (unknown keys, …) to print.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// A config error; its message names the file, the field and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Loads and validates `<project_root>/.alca.toml` with every file it extends or includes.
pub fn load(project_root: &Path) -> Result<Loaded, ConfigError> {
    Err(ConfigError(format!(
        "{}: config loading is not implemented yet",
        project_root.join(CONFIG_FILE).display()
    )))
}
