//! `alca experimental sync check|resolve`: conflicts of the file-exclusion engine. The Linux
//! engine is a live filtered view of the project (one copy of every file), so there is never
//! anything to report or resolve; a syncing engine (Mutagen on macOS) reports through the same
//! trait.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::SyncCommand;
use crate::exclude::{self, project_views, Conflict, ViewEngine};
use crate::project;

/// Runs `sync check` or `sync resolve` for the project around the current directory.
pub fn run(command: &SyncCommand) -> anyhow::Result<ExitCode> {
    let root = project::find_root_from_cwd()?;
    let engine = exclude::engine_for_platform()?;
    let conflicts = all_conflicts(engine.as_ref(), &root)?;
    match command {
        SyncCommand::Check { template: Some(t) } => {
            print!("{}", super::sync_template::render(t, &conflicts)?);
            Ok(exit_for(&conflicts))
        }
        SyncCommand::Check { template: None } => print_check(engine.as_ref(), &conflicts),
        SyncCommand::Resolve => print_resolve(&conflicts),
    }
}

fn all_conflicts(engine: &dyn ViewEngine, root: &Path) -> anyhow::Result<Vec<Conflict>> {
    let mut found = Vec::new();
    for state_dir in project_views::view_dirs(root) {
        found.extend(engine.conflicts(&state_dir)?);
    }
    Ok(found)
}

fn print_check(engine: &dyn ViewEngine, conflicts: &[Conflict]) -> anyhow::Result<ExitCode> {
    if conflicts.is_empty() {
        println!("{}", engine.no_conflicts_message());
        return Ok(ExitCode::SUCCESS);
    }
    for c in conflicts {
        println!("conflict: {}: {}", c.path.display(), c.detail);
    }
    println!("run `alca experimental sync resolve` to resolve them");
    Ok(exit_for(conflicts))
}

/// 0 without conflicts, 1 with (the Go original's `sync check` exit codes).
fn exit_for(conflicts: &[Conflict]) -> ExitCode {
    if conflicts.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_resolve(conflicts: &[Conflict]) -> anyhow::Result<ExitCode> {
    if conflicts.is_empty() {
        println!("nothing to resolve (live filtered view)");
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::bail!(
        "{} conflict(s) need resolving, but this engine cannot resolve them automatically",
        conflicts.len()
    )
}
