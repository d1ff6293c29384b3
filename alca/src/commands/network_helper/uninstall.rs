//! `alca network-helper uninstall`: stops the daemon, removes every `alca-` nftables table, the
//! saved state, the shipped files, the binary and group `alcatraz`, and undoes install's FUSE
//! host steps. The helper container (and
//! its volume and image) goes first when it exists; files a package installed are left to the
//! package manager.

use std::fs;
use std::path::Path;

use alca_contract::client::Client;
use alca_contract::shipped::{DAEMON_PATH, FILES, GROUP, STATE_DIR};
use anyhow::{bail, Context};

use super::package::{packaged, PACKAGED_DAEMON};
use super::system::{
    confirm, group_exists, remove_file, require_root, run_tool, stop_unmanaged_daemon,
    systemd_is_pid1, tool_output,
};
use crate::cli::HelperArgs;

fn plan() -> Vec<String> {
    let mut plan = vec![
        "Stop alca-netd".to_string(),
        "Delete every nftables table named alca-…".into(),
        format!("Remove {STATE_DIR}"),
    ];
    plan.extend(FILES.iter().map(|f| format!("Remove {}", f.path)));
    plan.push(format!("Remove {DAEMON_PATH}"));
    plan.extend(super::fuse_setup::revert_plan());
    plan.push(format!("Delete group {GROUP}"));
    plan
}

pub fn run(args: &HelperArgs) -> anyhow::Result<()> {
    if super::container::installed() {
        if !super::container::uninstall(args)? {
            return Ok(());
        }
        if !super::install::native_installed() {
            println!();
            println!("Network helper uninstalled successfully.");
            return Ok(());
        }
    }
    require_root("uninstall")?;
    if packaged() {
        return run_packaged(args);
    }
    println!("This will uninstall the network helper and remove all Alcatraz network rules:");
    if !confirm(args.yes, &plan())? {
        println!("Uninstallation cancelled.");
        return Ok(());
    }
    println!();
    let systemd = systemd_is_pid1();
    if systemd {
        disable_units();
    }
    // Remove activation first so nothing starts the daemon again while we clean up.
    for file in FILES {
        if remove_file(Path::new(file.path))? {
            println!("Removed {}", file.path);
        }
    }
    let client = Client::connect().ok();
    if let Some(client) = &client {
        let _ = client.reload_bus_config();
        if let Some(pid) = stop_unmanaged_daemon(client)? {
            println!("Stopped alca-netd (pid {pid})");
        }
    }
    purge_rules_and_state(DAEMON_PATH)?;
    remove_binary()?;
    super::fuse_setup::revert()?;
    if systemd {
        let _ = run_tool("systemctl", ["daemon-reload"]);
    }
    if group_exists(GROUP)? {
        run_tool("groupdel", [GROUP])?;
        println!("Deleted group {GROUP}");
    }
    println!();
    println!("Network helper uninstalled successfully.");
    Ok(())
}

/// With a package: stop the daemon, drop every rule and the saved state; the files stay.
fn run_packaged(args: &HelperArgs) -> anyhow::Result<()> {
    let plan = vec![
        "Stop alca-netd".to_string(),
        "Delete every nftables table named alca-…".into(),
        format!("Remove {STATE_DIR}"),
    ];
    let plan: Vec<String> = plan
        .into_iter()
        .chain(super::fuse_setup::revert_plan())
        .collect();
    println!("This will stop the packaged network helper and remove all Alcatraz network rules:");
    if !confirm(args.yes, &plan)? {
        println!("Uninstallation cancelled.");
        return Ok(());
    }
    println!();
    if systemd_is_pid1() {
        disable_units();
    } else if let Ok(client) = Client::connect() {
        if let Some(pid) = stop_unmanaged_daemon(&client)? {
            println!("Stopped alca-netd (pid {pid})");
        }
    }
    purge_rules_and_state(PACKAGED_DAEMON)?;
    super::fuse_setup::revert()?;
    println!();
    println!(
        "Rules removed. The daemon's files belong to the package: remove them with \
         `apt-get purge alca` (or `dnf remove alca`)."
    );
    Ok(())
}

/// Units may already be gone; that is fine.
fn disable_units() {
    let _ = run_tool(
        "systemctl",
        [
            "disable",
            "--now",
            "alca-netd.service",
            "alca-netd-reapply.service",
        ],
    );
}

/// Every `alca-` table and the saved specs: the daemon binary `daemon` does it (`--purge`,
/// it owns the tables and the store), then the state directory goes.
fn purge_rules_and_state(daemon: &str) -> anyhow::Result<()> {
    if !Path::new(daemon).is_file() {
        bail!(
            "cannot remove the alca- tables: the daemon {daemon} is missing. Reinstall it \
             (`sudo alca network-helper install`), then run uninstall again."
        );
    }
    let removed = tool_output(daemon, ["--purge"]).context("cannot remove the alca- tables")?;
    for table in removed.lines() {
        println!("Deleted nftables table inet {table}");
    }
    if Path::new(STATE_DIR).exists() {
        fs::remove_dir_all(STATE_DIR).with_context(|| format!("cannot remove {STATE_DIR}"))?;
        println!("Removed {STATE_DIR}");
    }
    Ok(())
}

fn remove_binary() -> anyhow::Result<()> {
    if remove_file(Path::new(DAEMON_PATH))? {
        println!("Removed {DAEMON_PATH}");
    }
    if let Some(dir) = Path::new(DAEMON_PATH).parent() {
        // Only if empty: something else may live there.
        let _ = fs::remove_dir(dir);
    }
    Ok(())
}
