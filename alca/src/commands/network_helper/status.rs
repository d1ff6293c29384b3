//! `alca network-helper status`: whether the helper is installed, whether and how the daemon
//! runs, and whether the current project's rules are applied (Go original wording).

use std::path::Path;

use alca_netd::client::Client;
use alca_netd::shipped::{DAEMON_PATH, FILES};

use crate::project::{find_root_from_cwd, State};

/// Files without which the daemon cannot be reached.
fn missing_files() -> Vec<&'static str> {
    let core = [DAEMON_PATH, FILES[0].path, FILES[1].path];
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
            Ok(launcher) => format!("running ({launcher})"),
            Err(e) => format!("running (not answering: {})", e.message()),
        },
        Ok(None) => "not running".into(),
        Err(e) => format!("unknown ({})", e.message()),
    }
}

/// `Some(line)` when the current directory is inside a project that has been up before.
fn rules_line(client: Option<&Client>, installed: bool) -> Option<String> {
    let root = find_root_from_cwd().ok()?;
    let state = State::load(&root).ok().flatten();
    let Some(state) = state else {
        return Some("No (the project has not been started with `alca up`)".into());
    };
    if !installed {
        return Some("No".into());
    }
    let client = client?;
    Some(match client.status(&state.id) {
        Ok(s) if s.applied => "Yes".into(),
        Ok(_) => "No".into(),
        Err(e) => format!("Unknown ({})", e.message()),
    })
}

pub fn run() -> anyhow::Result<()> {
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
