//! `alca network-helper install`: copies `alca-netd` to a root-owned path, writes the bus
//! policy, activation file, polkit files (and systemd units when systemd runs), creates group
//! `alcatraz`, adds the invoking user, makes FUSE usable for the group's views
//! ([`super::fuse_setup`]) and checks that the daemon answers. When a package
//! installed the files, only the group, the bus reload and the daemon start are done; with
//! `--container` (the default on macOS) the helper container is installed instead.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use alca_contract::client::Client;
use alca_contract::shipped::{DAEMON_PATH, FILES, GROUP};
use anyhow::{bail, Context};

use super::package::{packaged, PACKAGED_DAEMON};
use super::system::{
    confirm, group_exists, require_root, require_user, run_tool, stop_unmanaged_daemon,
    systemd_is_pid1, user_in_group, write_atomic,
};
use crate::cli::HelperArgs;

/// Environment variable naming the `alca-netd` binary to install.
pub const NETD_BIN_ENV: &str = "ALCA_NETD_BIN";

/// The daemon binary to install: `$ALCA_NETD_BIN`, else `alca-netd` next to this executable,
/// else the packaged one (`../libexec/alca-netd`).
pub(super) fn source_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(NETD_BIN_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{NETD_BIN_ENV}={}: no such file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot find the running alca executable")?;
    let mut candidate = exe.with_file_name("alca-netd");
    if !candidate.is_file() && Path::new(PACKAGED_DAEMON).is_file() {
        candidate = PathBuf::from(PACKAGED_DAEMON);
    }
    if !candidate.is_file() {
        bail!(
            "alca-netd was not found next to {} ; install it alongside alca \
             (`cargo install --path alca-netd`) or set {NETD_BIN_ENV}=/path/to/alca-netd",
            exe.display()
        );
    }
    Ok(candidate)
}

/// The user to add to the group: `--user`, else the one who ran sudo.
fn invoking_user(args: &HelperArgs) -> anyhow::Result<Option<String>> {
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("SUDO_USER").ok())
        .filter(|u| !u.is_empty() && u != "root");
    if let Some(u) = &user {
        require_user(u)?;
    }
    Ok(user)
}

/// Copies the daemon to its root-owned place (never run a user-writable binary as root).
fn install_binary(source: &Path) -> anyhow::Result<()> {
    let bytes = fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    let target = Path::new(DAEMON_PATH);
    write_atomic(target, &bytes, 0o755)?;
    fs::set_permissions(target, fs::Permissions::from_mode(0o755))?;
    nix::unistd::chown(target, Some(0.into()), Some(0.into()))
        .with_context(|| format!("cannot make {DAEMON_PATH} owned by root"))?;
    Ok(())
}

fn plan(source: &Path, user: Option<&str>, systemd: bool) -> Vec<String> {
    let mut plan = vec![format!("Install {} as {DAEMON_PATH}", source.display())];
    plan.extend(
        FILES
            .iter()
            .filter(|f| systemd || !f.systemd_only)
            .map(|f| format!("Write {}", f.path)),
    );
    plan.push(format!("Create group {GROUP}"));
    plan.extend(setup_plan(user, systemd));
    plan
}

/// The plan's lines for [`finish_setup`] after the group exists.
fn setup_plan(user: Option<&str>, systemd: bool) -> Vec<String> {
    let mut plan = vec![];
    if let Some(u) = user {
        plan.push(format!("Add user {u} to group {GROUP}"));
    }
    plan.extend(super::fuse_setup::plan());
    plan.push("Reload the D-Bus configuration".into());
    if systemd {
        plan.push("Enable and start alca-netd.service and alca-netd-reapply.service".into());
    }
    plan
}

/// Whether the daemon is installed on the system bus (by `install` or by a package).
pub fn native_installed() -> bool {
    [DAEMON_PATH, PACKAGED_DAEMON, FILES[1].path]
        .iter()
        .any(|p| Path::new(p).exists())
}

pub fn run(args: &HelperArgs) -> anyhow::Result<()> {
    if args.container || cfg!(target_os = "macos") {
        let netd = std::env::var_os(NETD_BIN_ENV).map(PathBuf::from);
        return super::container::install(args, netd);
    }
    require_root("install")?;
    if super::container::installed() {
        bail!(
            "the network helper container {} is installed; both would manage the same alca- \
             tables. Run `alca network-helper uninstall` first",
            alca_contract::helper_protocol::CONTAINER_NAME
        );
    }
    if packaged() {
        return run_packaged(args);
    }
    let source = source_binary()?;
    let user = invoking_user(args)?;
    let systemd = systemd_is_pid1();
    println!("This will install the Alcatraz network helper (alca-netd):");
    if !confirm(args.yes, &plan(&source, user.as_deref(), systemd))? {
        println!("Installation cancelled.");
        return Ok(());
    }
    println!();
    let client = Client::connect()
        .map_err(|e| anyhow::anyhow!("cannot reach the system D-Bus: {}", e.message()))?;
    // An older daemon keeps running the old binary: stop it so the next call starts the new one.
    if !systemd {
        if let Some(pid) = stop_unmanaged_daemon(&client)? {
            println!("Stopped the running daemon (pid {pid})");
        }
    }
    install_binary(&source)?;
    println!("Installed {DAEMON_PATH}");
    for file in FILES.iter().filter(|f| systemd || !f.systemd_only) {
        write_atomic(Path::new(file.path), file.contents.as_bytes(), 0o644)?;
        println!("Wrote {}", file.path);
    }
    finish_setup(&client, user.as_deref(), systemd)?;
    println!();
    println!("Network helper installed successfully.");
    newgrp_hint(user.as_deref());
    Ok(())
}

/// What both flavours end with: state directory, group, FUSE, bus reload, units, a live daemon.
fn finish_setup(client: &Client, user: Option<&str>, systemd: bool) -> anyhow::Result<()> {
    fs::create_dir_all(alca_contract::shipped::STATE_DIR)?;
    fs::set_permissions(
        alca_contract::shipped::STATE_DIR,
        fs::Permissions::from_mode(0o700),
    )?;
    setup_group(user)?;
    super::fuse_setup::apply()?;
    client
        .reload_bus_config()
        .map_err(|e| anyhow::anyhow!("cannot reload the D-Bus configuration: {}", e.message()))?;
    println!("Reloaded the D-Bus configuration");
    if systemd {
        run_tool("systemctl", ["daemon-reload"])?;
        run_tool("systemctl", ["enable", "alca-netd-reapply.service"])?;
        run_tool("systemctl", ["enable", "--now", "alca-netd.service"])?;
        run_tool("systemctl", ["restart", "alca-netd.service"])?;
        println!("Enabled and started alca-netd.service");
    }
    check_daemon(client)
}

fn newgrp_hint(user: Option<&str>) {
    if let Some(u) = user {
        println!(
            "Log in again (or run `newgrp {GROUP}`) so that {u}'s membership of group {GROUP} \
             applies."
        );
    }
}

fn packaged_plan(user: Option<&str>, systemd: bool) -> Vec<String> {
    let mut plan = vec![format!(
        "Use the packaged daemon {PACKAGED_DAEMON} and its files (nothing is copied)"
    )];
    plan.push(format!("Create group {GROUP} if missing"));
    plan.extend(setup_plan(user, systemd));
    plan
}

/// The package installed every file: group membership and a running daemon are what is left.
fn run_packaged(args: &HelperArgs) -> anyhow::Result<()> {
    let user = invoking_user(args)?;
    let systemd = systemd_is_pid1();
    println!("The network helper is installed by a package; this will set it up:");
    if !confirm(args.yes, &packaged_plan(user.as_deref(), systemd))? {
        println!("Installation cancelled.");
        return Ok(());
    }
    println!();
    let client = Client::connect()
        .map_err(|e| anyhow::anyhow!("cannot reach the system D-Bus: {}", e.message()))?;
    finish_setup(&client, user.as_deref(), systemd)?;
    println!();
    println!("Network helper ready.");
    newgrp_hint(user.as_deref());
    Ok(())
}

fn setup_group(user: Option<&str>) -> anyhow::Result<()> {
    if group_exists(GROUP)? {
        println!("Group {GROUP} already exists");
    } else {
        run_tool("groupadd", ["--system", GROUP])?;
        println!("Created group {GROUP}");
    }
    let Some(user) = user else {
        println!(
            "No invoking user (not run through sudo and no --user): nobody was added to {GROUP}"
        );
        return Ok(());
    };
    if user_in_group(user, GROUP)? {
        println!("User {user} is already in group {GROUP}");
    } else {
        run_tool("usermod", ["-aG", GROUP, user])?;
        println!("Added user {user} to group {GROUP}");
    }
    Ok(())
}

/// Wakes the daemon (D-Bus activation or systemd) and reports how it runs.
fn check_daemon(client: &Client) -> anyhow::Result<()> {
    let launcher = client.launcher().map_err(|e| {
        anyhow::anyhow!(
            "the files are installed but alca-netd does not answer on the system bus: {}",
            e.message()
        )
    })?;
    println!("Daemon: running ({launcher})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_lists_systemd_units_only_under_systemd() {
        let without = plan(Path::new("/x/alca-netd"), Some("alice"), false);
        assert!(without
            .iter()
            .any(|l| l == "Add user alice to group alcatraz"));
        assert!(!without.iter().any(|l| l.contains("systemd")));
        let with = plan(Path::new("/x/alca-netd"), None, true);
        assert!(with
            .iter()
            .any(|l| l.contains("/etc/systemd/system/alca-netd.service")));
        assert!(!with.iter().any(|l| l.starts_with("Add user")));
    }

    #[test]
    fn unknown_users_are_refused_by_name() {
        let args = HelperArgs {
            yes: true,
            user: Some("no-such-user-alca".into()),
            container: false,
            image_archive: None,
        };
        let err = invoking_user(&args).unwrap_err().to_string();
        assert!(
            err.contains("--user") && err.contains("no-such-user-alca"),
            "{err}"
        );
    }
}
