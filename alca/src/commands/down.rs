//! `alca down [--force]`: run the `pre_down` hook, stop and remove the project's container,
//! its runtime network and its network rules; `.alca/state.json` stays (the id is kept).

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::DownArgs;
use crate::config::Config;
use crate::hooks::{self, Hook, HookContext};
use crate::lifecycle::trust_gate::approved_config;
use crate::lifecycle::{find_container, load_config, moved_message, teardown, warn, Progress};
use crate::network::guard_select::connect_guard;
use crate::network::netspec_build::isolation_required;
use crate::project::{self, State};

pub fn run(args: &DownArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress { quiet: false };
    let root = project::find_root_from_cwd()?;
    // A broken config must not prevent taking the container down.
    let config = match load_config(&root) {
        Ok(c) => Some(c),
        Err(e) => {
            warn(format!("{e:#}; the pre_down hook is skipped"));
            None
        }
    };
    let Some(state) = State::load(&root)? else {
        stop_views(&root);
        println!("Nothing to take down: this project was never brought up (no .alca/state.json).");
        return Ok(ExitCode::SUCCESS);
    };
    let Some((runtime, info)) = find_container(&state)? else {
        stop_views(&root);
        println!("Nothing to take down: no container was recorded for this project.");
        return Ok(ExitCode::SUCCESS);
    };
    let name = state.container_name();
    if let Some(info) = &info {
        if let Some(msg) = moved_message(info, &root) {
            if !args.force {
                bail!("{msg}. Use `alca down --force` to remove it anyway");
            }
        }
    }
    if info.is_some() {
        pre_down(config.as_ref(), &root, &name, &state.id);
        progress.step(format!("Stopping and removing container {name}"));
    }
    let guard = connect_guard();
    if let Err(e) = teardown(runtime.as_ref(), &name, &state.id, Some(guard.as_ref()))? {
        if config.as_ref().is_none_or(isolation_required) {
            warn(format!(
                "the project's network rules were not removed: {e:#}"
            ));
        }
    }
    // The resolver of network.internet-access wherever the guard runs it, after the rules
    // that sent DNS to it.
    if let Err(e) = guard.stop_resolver(&root, &state.id) {
        warn(format!(
            "the project's DNS resolver could not be stopped: {e:#}"
        ));
    }
    stop_views(&root);
    if info.is_some() {
        progress.done(format!("Container {name} removed"));
    } else {
        progress.done(format!(
            "Container {name} was already gone; network cleaned up"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Stops every filtered view of the project (the workspace always has one on Linux), also
/// when there is no state or container left to take down.
fn stop_views(root: &std::path::Path) {
    if let Err(e) = crate::exclude::project_views::stop_all(root) {
        warn(format!("the filtered view could not be stopped: {e}"));
    }
    // The DNS resolver of network.internet-access, after the rules that sent DNS to it.
    if let Err(e) = crate::network::resolver_process::stop(root) {
        warn(format!(
            "the project's DNS resolver could not be stopped: {e:#}"
        ));
    }
}

/// Runs `hooks.pre_down`; a failure only warns (the container goes down anyway).
fn pre_down(config: Option<&Config>, root: &std::path::Path, name: &str, id: &str) {
    let Some(cmd) = config.and_then(|c| c.hooks.pre_down.as_ref()) else {
        return;
    };
    // A host command the agent may have added: run only what the user approved.
    let approved = approved_config(root);
    if approved.as_ref().and_then(|a| a.hooks.pre_down.as_ref()) != Some(cmd) {
        warn(format!(
            "hooks.pre_down ({cmd:?}) is not approved on this machine, so it was skipped; \
             review it with `alca trust`"
        ));
        return;
    }
    let ctx = HookContext {
        project_dir: root,
        container: name,
        project_id: id,
    };
    if let Err(e) = hooks::run(Hook::PreDown, cmd, &ctx, false) {
        warn(format!("{e}; continuing with `down`"));
    }
}
