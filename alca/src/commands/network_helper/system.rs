//! Small system operations `install` and `uninstall` share: root check, confirmation, files,
//! the `alcatraz` group, systemd detection and stopping a running daemon.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use alca_contract::client::Client;
use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Group, Pid, User};

/// Refuses to go on unless running as root.
pub fn require_root(action: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "`alca network-helper {action}` changes system files and must run as root: \
             run `sudo alca network-helper {action}`"
        );
    }
    Ok(())
}

/// Prints the plan and asks; `-y` skips the question, and without a terminal `-y` is required.
pub fn confirm(yes: bool, plan: &[String]) -> anyhow::Result<bool> {
    for line in plan {
        println!("  - {line}");
    }
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to confirm on: pass -y to proceed without a prompt");
    }
    print!("Continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Whether systemd manages this machine (it is PID 1).
pub fn systemd_is_pid1() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Runs a system tool; a failure carries its stderr.
pub fn run_tool<I, S>(program: &str, args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    tool_output(program, args).map(drop)
}

/// Runs a system tool and returns its stdout; a failure carries its stderr.
pub fn tool_output<I, S>(program: &str, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates a root-owned directory (and parents) with mode 0755.
pub fn make_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Atomically writes `bytes` to `path` with `mode` (temp file in the same directory + rename).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    make_dir(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.alca-tmp"));
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Removes a file; an absent file is fine. Returns whether something was removed.
pub fn remove_file(path: &Path) -> anyhow::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Whether a group exists.
pub fn group_exists(name: &str) -> anyhow::Result<bool> {
    Ok(Group::from_name(name)
        .with_context(|| format!("cannot look up group {name}"))?
        .is_some())
}

/// Whether `user` is listed as a member of `group`.
pub fn user_in_group(user: &str, group: &str) -> anyhow::Result<bool> {
    let group = Group::from_name(group).with_context(|| format!("cannot look up group {group}"))?;
    Ok(group.is_some_and(|g| g.mem.iter().any(|m| m == user)))
}

/// Checks that a user exists, with a clear error otherwise.
pub fn require_user(name: &str) -> anyhow::Result<()> {
    match User::from_name(name).with_context(|| format!("cannot look up user {name}"))? {
        Some(_) => Ok(()),
        None => bail!("--user: no user named {name:?} exists on this machine"),
    }
}

/// Stops a daemon that runs outside systemd (manual or D-Bus activation): SIGTERM, then
/// SIGKILL if it has not released its bus name after a few seconds. Returns its PID if any.
pub fn stop_unmanaged_daemon(client: &Client) -> anyhow::Result<Option<u32>> {
    let Some(pid) = client
        .daemon_pid()
        .map_err(|e| anyhow::anyhow!(e.message()))?
    else {
        return Ok(None);
    };
    let target = Pid::from_raw(i32::try_from(pid).context("daemon PID out of range")?);
    let _ = kill(target, Signal::SIGTERM);
    if !exited(pid) {
        let _ = kill(target, Signal::SIGKILL);
        exited(pid);
    }
    Ok(Some(pid))
}

/// Waits (5 s at most) until `pid` has exited: gone, or a zombie not yet reaped by whoever
/// started it. Releasing the bus name is not enough: the daemon's tables are owned by its
/// nf_tables socket until the process is gone, and only then may anyone else delete them.
fn exited(pid: u32) -> bool {
    let stat = format!("/proc/{pid}/stat");
    (0..50).any(|_| {
        let gone = match std::fs::read_to_string(&stat) {
            // The state follows the parenthesised command name.
            Ok(s) => s
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => true,
        };
        if !gone {
            std::thread::sleep(Duration::from_millis(100));
        }
        gone
    })
}
