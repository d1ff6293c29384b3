//! `alca experimental reload`: recreate the project's existing container with the current
//! configuration, as the Go original's `experimental reload` does (its runtime Reload: down,
//! then up); processes running in the container end. Rules, views and trust go through `up`.

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::UpArgs;
use crate::lifecycle::find_container;
use crate::project::{self, State};

/// The Go original's warning before an experimental command (internal/cli/experimental.go).
const EXPERIMENTAL_WARNING: &str = "Warning: EXPERIMENTAL COMMAND\nThis feature is experimental \
     and may change or be removed in future versions.\nUse with caution in production \
     environments.\n";

pub fn run() -> anyhow::Result<ExitCode> {
    eprintln!("{EXPERIMENTAL_WARNING}");
    let root = project::find_root_from_cwd()?;
    let not_up = "container not found: run `alca up` first to create the container";
    let Some(state) = State::load(&root)? else {
        bail!(not_up);
    };
    match find_container(&state)? {
        Some((_, Some(_))) => {}
        _ => bail!(not_up),
    }
    crate::lifecycle::bring_up::bring_up(&UpArgs {
        force: false,
        quiet: false,
        trust: false,
        recreate: true,
    })?;
    Ok(ExitCode::SUCCESS)
}
