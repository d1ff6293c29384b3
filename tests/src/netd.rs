//! Fixtures for the `alca-netd` suite: the built `alca`/`alca-netd` binaries, D-Bus calls to the
//! daemon as a given user (through `dbus-send`, an independent client), nft table snapshots
//! without handles, and clean-up guards for group membership and veth links.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::netns::{run, run_ok};

/// The daemon's bus name, object path and interface.
pub const BUS_NAME: &str = "io.github.alcatraz.Netd1";
pub const OBJECT_PATH: &str = "/io/github/alcatraz/Netd1";

/// Where `install` puts the daemon.
pub const INSTALLED_DAEMON: &str = "/usr/local/libexec/alcatraz/alca-netd";

/// The cargo target directory this test binary was built in (`…/target/debug/deps/x` → `…/target`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// Builds (once per test process) and returns the path of a workspace binary: `alca` or `alca-netd`.
pub fn built_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "alca",
                "-p",
                "alca-netd",
                "--target-dir",
            ])
            .arg(target_dir())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build -p alca -p alca-netd failed");
    });
    let path = target_dir().join("debug").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Runs the built `alca` in `dir` as `user` (via `runuser`) or as root, with extra `env`.
pub fn alca_in(user: Option<&str>, dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let bin = built_binary("alca");
    let mut cmd = match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.output().expect("running alca")
}

/// stdout and stderr of a finished command, together.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Outcome of one D-Bus call: the printed reply, or the D-Bus error name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(String),
    Err { name: String, message: String },
}

impl Reply {
    /// The error name without the `io.github.alcatraz.Netd1.Error.` prefix, if an error.
    pub fn error_kind(&self) -> Option<&str> {
        match self {
            Reply::Ok(_) => None,
            Reply::Err { name, .. } => Some(name.rsplit('.').next().unwrap_or(name)),
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Ok(_))
    }
}

/// Calls `method` on the daemon as `user` (via `runuser`), with `dbus-send` typed arguments.
pub fn call_as(user: &str, method: &str, args: &[String]) -> Result<Reply> {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", "dbus-send", "--system", "--print-reply"])
        .arg("--reply-timeout=30000")
        .arg(format!("--dest={BUS_NAME}"))
        .arg(OBJECT_PATH)
        .arg(format!("{BUS_NAME}.{method}"))
        .args(args);
    let out = cmd.output().context("running dbus-send")?;
    if out.status.success() {
        return Ok(Reply::Ok(String::from_utf8_lossy(&out.stdout).into_owned()));
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    // dbus-send prints `Error <name>: <message>`.
    let Some(rest) = err.strip_prefix("Error ") else {
        bail!("dbus-send failed without a D-Bus error: {err}");
    };
    let (name, message) = rest.split_once(": ").unwrap_or((rest, ""));
    Ok(Reply::Err {
        name: name.to_string(),
        message: message.to_string(),
    })
}

/// `Apply(spec_json)` as `user`.
pub fn apply_as(user: &str, spec_json: &str) -> Result<Reply> {
    call_as(user, "Apply", &[format!("string:{spec_json}")])
}

/// `Remove(project)` as `user`.
pub fn remove_as(user: &str, project: &str) -> Result<Reply> {
    call_as(user, "Remove", &[format!("string:{project}")])
}

/// PID of the process owning the daemon's bus name, if any (never activates it).
pub fn daemon_pid() -> Option<u32> {
    let out = run(
        "dbus-send",
        &[
            "--system",
            "--print-reply=literal",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
            &format!("string:{BUS_NAME}"),
        ],
    )
    .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Names of all `inet alca-…` tables.
pub fn alca_tables() -> Result<Vec<String>> {
    let listing: Value = serde_json::from_str(&run_ok("nft", &["-j", "list", "tables", "inet"])?)?;
    Ok(alca_netd::firewall::alca_table_names(&listing))
}

/// The table's content without handles (which change on every replace), or `None` if absent.
pub fn table_snapshot(table: &str) -> Result<Option<Value>> {
    let out = run("nft", &["-j", "list", "table", "inet", table])?;
    if !out.status.success() {
        return Ok(None);
    }
    let mut json: Value = serde_json::from_slice(&out.stdout)?;
    strip_volatile(&mut json);
    Ok(Some(json))
}

/// Removes `handle` keys and the `metainfo` object, recursively.
fn strip_volatile(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("handle");
            map.remove("metainfo");
            map.values_mut().for_each(strip_volatile);
        }
        Value::Array(items) => {
            items.retain(|i| !(i.is_object() && i.get("metainfo").is_some()));
            items.iter_mut().for_each(strip_volatile);
        }
        _ => {}
    }
}

/// Adds a user to a group for the guard's lifetime.
pub struct TempGroupMember {
    user: String,
    group: String,
}

impl TempGroupMember {
    pub fn add(user: &str, group: &str) -> Result<Self> {
        run_ok("usermod", &["-aG", group, user])?;
        Ok(TempGroupMember {
            user: user.into(),
            group: group.into(),
        })
    }
}

impl Drop for TempGroupMember {
    fn drop(&mut self) {
        let _ = run("gpasswd", &["-d", &self.user, &self.group]);
    }
}

/// Takes a user out of a group for the guard's lifetime.
pub struct TempGroupRemoval {
    user: String,
    group: String,
}

impl TempGroupRemoval {
    pub fn remove(user: &str, group: &str) -> Result<Self> {
        run_ok("gpasswd", &["-d", user, group])?;
        Ok(TempGroupRemoval {
            user: user.into(),
            group: group.into(),
        })
    }
}

impl Drop for TempGroupRemoval {
    fn drop(&mut self) {
        let _ = run("usermod", &["-aG", &self.group, &self.user]);
    }
}

/// A veth pair (not a bridge) whose first end has a chosen name; both ends go on drop.
pub struct VethLink(pub String);

impl VethLink {
    pub fn add(name: &str, peer: &str) -> Result<Self> {
        run_ok(
            "ip",
            &[
                "link", "add", "name", name, "type", "veth", "peer", "name", peer,
            ],
        )?;
        Ok(VethLink(name.into()))
    }
}

impl Drop for VethLink {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.0]);
    }
}

/// Whether a group exists and lists `user` (or just exists, when `user` is `None`).
pub fn group_has(group: &str, user: Option<&str>) -> bool {
    let Ok(line) = run_ok("getent", &["group", group]) else {
        return false;
    };
    match user {
        None => !line.is_empty(),
        Some(u) => line
            .rsplit(':')
            .next()
            .is_some_and(|members| members.split(',').any(|m| m == u)),
    }
}
