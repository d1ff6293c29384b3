//! Loading `.alca.toml` (with `extends`/`includes`) into one validated [`Config`].
//!
//! Pipeline: `files` resolves the extends/includes graph into an ordered file list, `parse`
//! reads each file into its raw serde form, `layer` checks it, `merge` stacks the layers and
//! `finish` applies defaults and whole-config checks.

pub mod either;
pub mod env;
pub mod error;
pub mod fields;
pub mod files;
pub mod finish;
pub mod layer;
pub mod merge;
pub mod model;
pub mod parse;
pub mod raw;
pub mod schema;

pub use env::{EnvSource, HostEnv};
pub use fields::envs::{reexpand as reexpand_env, DEFAULT_ENTER_ENVS};
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

/// Loads and validates `<project_root>/.alca.toml` with every file it extends or includes,
/// expanding variables from the host environment.
pub fn load(project_root: &Path) -> Result<Loaded, ConfigError> {
    load_with_env(project_root, &HostEnv)
}

/// [`load`] with an explicit environment (tests, or callers that snapshot the environment).
pub fn load_with_env(project_root: &Path, env: &dyn EnvSource) -> Result<Loaded, ConfigError> {
    load_file(&project_root.join(CONFIG_FILE), env)
}

/// Loads a config starting at an arbitrary file (the project root is not assumed).
pub fn load_file(file: &Path, env: &dyn EnvSource) -> Result<Loaded, ConfigError> {
    let set = files::resolve(file, env)?;
    let mut warnings = Vec::new();
    let mut merged: Option<layer::Layer> = None;
    for path in &set.order {
        let parsed = &set.parsed[path];
        warnings.extend(parsed.warnings.iter().cloned());
        let l = layer::from_raw(&parsed.raw, path, env)?;
        merged = Some(match merged {
            None => l,
            Some(base) => merge::merge(base, l),
        });
    }
    let config = finish::finish(merged.unwrap_or_default(), file)?;
    Ok(Loaded { config, warnings })
}
