//! `alca network-helper status`: whether the helper is installed, whether and how the daemon
//! runs, and whether the current project's rules are applied (Go original wording).

use std::path::Path;

use alca_contract::client::Client;
use alca_contract::shipped::{DAEMON_PATH, FILES};

use super::package::{core_files, packaged};
use crate::network::helper::{container_state, HelperGuard};
use crate::project::{find_root_from_cwd, State};

/// Files without which the daemon cannot be reached (the package's, when it installed them).
fn missing_files() -> Vec<&'static str> {
    let core = if packaged() {
        core_files()
    } else {
        [DAEMON_PATH, FILES[0].path, FILES[1].path]
    };
    core.into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect()
}

fn daemon_line(client: Option<&Client>) -> String {
    let Some(client) = client else {
        return "not running (system D-Bus unreachable)".into();
    };
    match client.daemon_pid() {
        Ok(Some(_)) => match client.launcher() {
            Ok(launcher) => {
                let protection = client
                    .table_protection()
                    .unwrap_or_else(|e| format!("unknown ({})", e.message()));
                format!("running ({launcher})\nTables: {protection}")
            }
            Err(e) => format!("running (not answering: {})", e.message()),
        },
        Ok(None) => "not running".into(),
        Err(e) => format!("unknown ({})", e.message()),
    }
}

/// The `Rules applied` value: for the project around the current directory, or outside a
/// project for every project of the caller, with their count (the Go original prints
/// "Rules applied: Yes (N rule files)" wherever it runs). `None` when it cannot be known.
fn rules_line(client: Option<&Client>, installed: bool) -> Option<String> {
    let Ok(root) = find_root_from_cwd() else {
        if !installed {
            return Some("No".into());
        }
        return Some(match client?.list() {
            Ok(projects) => applied_summary(projects.iter().filter(|p| p.applied).count()),
            Err(e) => format!("Unknown ({})", e.message()),
        });
    };
    let state = State::load(&root).ok().flatten();
    let Some(state) = state else {
        return Some("No (the project has not been started with `alca up`)".into());
    };
    if !installed {
        return Some("No".into());
    }
    let client = client?;
    Some(match client.status(&state.id) {
        Ok(s) => crate::network::applied_line(&s),
        Err(e) => format!("Unknown ({})", e.message()),
    })
}

/// `Yes (N projects)` or `No`.
fn applied_summary(count: usize) -> String {
    match count {
        0 => "No".into(),
        1 => "Yes (1 project)".into(),
        n => format!("Yes ({n} projects)"),
    }
}

/// The helper container's report, when it exists.
fn container_status(running: bool) {
    let name = alca_contract::helper_protocol::CONTAINER_NAME;
    println!("Installed: Yes (helper container {name})");
    let guard = HelperGuard::new();
    let daemon = match (running, guard.version()) {
        (false, _) => "not running (helper container stopped)".to_string(),
        (true, Ok(v)) => format!("running (helper container, alca-netd {v})"),
        (true, Err(e)) => format!("running (helper container, not answering: {})", e.message()),
    };
    println!("Daemon: {daemon}");
    let Some(root) = find_root_from_cwd().ok() else {
        return;
    };
    let line = match State::load(&root).ok().flatten() {
        None => "No (the project has not been started with `alca up`)".to_string(),
        Some(_) if !running => "No".into(),
        Some(state) => match guard.status(&state.id) {
            Ok(s) => crate::network::applied_line(&s),
            Err(e) => format!("Unknown ({})", e.message()),
        },
    };
    println!("Rules applied: {line}");
}

pub fn run() -> anyhow::Result<()> {
    if let Some(running) = container_state() {
        container_status(running == "true");
        return Ok(());
    }
    if cfg!(target_os = "macos") {
        println!("Installed: No");
        println!();
        println!("Run `alca network-helper install` (no sudo) to install the helper container.");
        return Ok(());
    }
    let missing = missing_files();
    let installed = missing.is_empty();
    println!("Installed: {}", if installed { "Yes" } else { "No" });
    if !installed && missing.len() < 3 {
        println!("  missing: {}", missing.join(", "));
    }
    let client = Client::connect().ok();
    println!("Daemon: {}", daemon_line(client.as_ref()));
    if let Some(line) = rules_line(client.as_ref(), installed) {
        println!("Rules applied: {line}");
    }
    if !installed {
        println!();
        println!("Run `sudo alca network-helper install` to install the network helper.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go internal/cli/network_helper.go: "Rules applied: Yes (%d rule files)" / "Rules
    /// applied: No", printed outside a project too; here counted in projects.
    #[test]
    fn the_summary_counts_applied_projects() {
        assert_eq!(applied_summary(0), "No");
        assert_eq!(applied_summary(1), "Yes (1 project)");
        assert_eq!(applied_summary(3), "Yes (3 projects)");
    }
}
