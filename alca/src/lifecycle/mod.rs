//! The steps commands share, so that no command calls another: finding the project and its
//! config and state, reaching the runtime that holds its container, progress lines, tearing a
//! project's container, network and rules down, and (in the submodules) bringing it up, the
//! trust gate, the helper offer and the isolation check.

pub mod bring_up;
pub mod helper_offer;
pub mod isolation_check;
#[cfg(test)]
mod test_fakes;
pub mod trust_gate;
pub mod up_decision;
pub mod up_executor;
pub mod up_steps;

use std::fmt::Display;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{self, Config};
use crate::network::NetworkGuard;
use crate::project::{self, State};
use crate::runtime::select::connect;
use crate::runtime::{ContainerInfo, Runtime, RuntimeKind};

/// Progress lines (`→ step`, `✓ done`) on stdout, silenced by `-q`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub quiet: bool,
}

impl Progress {
    pub fn step(&self, msg: impl Display) {
        if !self.quiet {
            println!("→ {msg}");
        }
    }

    pub fn done(&self, msg: impl Display) {
        if !self.quiet {
            println!("✓ {msg}");
        }
    }
}

/// Prints a warning on stderr (never silenced).
pub fn warn(msg: impl Display) {
    eprintln!("alca: warning: {msg}");
}

/// The project around the current directory: its root and loaded config.
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
}

impl Project {
    /// Finds the root from the current directory and loads its config, printing warnings.
    pub fn open() -> anyhow::Result<Project> {
        let root = project::find_root_from_cwd()?;
        let config = load_config(&root)?;
        Ok(Project { root, config })
    }
}

/// Loads `<root>/.alca.toml`, printing its warnings on stderr.
pub fn load_config(root: &Path) -> anyhow::Result<Config> {
    let loaded = config::load(root)?;
    for w in &loaded.warnings {
        warn(w);
    }
    Ok(loaded.config)
}

/// The runtime kind recorded in state at the last `up`, if any.
pub fn recorded_kind(state: &State) -> Option<RuntimeKind> {
    state.runtime.as_deref().and_then(RuntimeKind::from_name)
}

/// The runtime recorded for a project and its container there (`None`: no longer exists).
pub type Found = (Box<dyn Runtime>, Option<ContainerInfo>);

/// The project's container in the runtime recorded in state; `Ok(None)` when nothing was
/// recorded.
pub fn find_container(state: &State) -> anyhow::Result<Option<Found>> {
    let Some(kind) = recorded_kind(state) else {
        return Ok(None);
    };
    let runtime = connect(kind);
    let info = runtime
        .container(&state.container_name())
        .with_context(|| format!("cannot inspect container {}", state.container_name()))?;
    Ok(Some((runtime, info)))
}

/// Refusal text when the container was created for another directory than `root`.
pub fn moved_message(info: &ContainerInfo, root: &Path) -> Option<String> {
    let created_for = info.project_path()?;
    if created_for == root {
        return None;
    }
    Some(format!(
        "container {} was created for the project at {}, but this project is at {} (the \
         project was moved or copied together with .alca/state.json). Run `alca up -f` here to \
         recreate it for this location",
        info.name,
        created_for.display(),
        root.display()
    ))
}

/// Stops and removes the container, then its network and rules. Rules are removed last so
/// the container never runs without them; a guard failure is returned for the caller to word.
pub fn teardown(
    runtime: &dyn Runtime,
    container: &str,
    project_id: &str,
    guard: Option<&dyn NetworkGuard>,
) -> anyhow::Result<Result<(), anyhow::Error>> {
    runtime
        .stop(container)
        .with_context(|| format!("cannot stop container {container}"))?;
    runtime
        .remove(container)
        .with_context(|| format!("cannot remove container {container}"))?;
    runtime
        .remove_network(container)
        .with_context(|| format!("cannot remove network {container}"))?;
    Ok(match guard {
        Some(g) => g.remove(project_id),
        None => Ok(()),
    })
}
