//! Fixtures for the `alca-netd` suite: the built `alca`/`alca-netd` binaries, D-Bus calls to the
//! daemon as a given user (through `dbus-send`, an independent client), nft table snapshots
//! without handles, clean-up guards for group membership and veth links, and running the built
//! `alca` as a user in a docker project through the installed helper.

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
                "-p",
                "alca-dns",
                "--target-dir",
            ])
            .arg(target_dir())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(
            status.success(),
            "cargo build -p alca -p alca-netd -p alca-dns failed"
        );
    });
    let path = target_dir().join("debug").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
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

/// [`call_as`] that must succeed: the printed reply.
pub fn call_ok(user: &str, method: &str, args: &[String]) -> String {
    match call_as(user, method, args).expect("dbus-send runs") {
        Reply::Ok(out) => out,
        err => panic!("{method} as {user}: {err:?}"),
    }
}

/// A project `owner` claimed or applied through the daemon; removed (`Remove`) on drop, pass
/// or fail.
pub struct AppliedProject {
    pub owner: &'static str,
    pub project: String,
}

impl AppliedProject {
    /// `Claim(project)` as `owner`, as `alca up` does before it creates the network.
    pub fn claim(owner: &'static str, project: &str) -> AppliedProject {
        call_ok(owner, "Claim", &[format!("string:{project}")]);
        AppliedProject {
            owner,
            project: project.to_string(),
        }
    }
}

impl Drop for AppliedProject {
    fn drop(&mut self) {
        let _ = call_as(self.owner, "Remove", &[format!("string:{}", self.project)]);
    }
}

/// A project `owner` claimed (as `alca up` claims before it creates the network) and the Docker
/// network `alca-e2e-<project>` on the project's bridge. Drops the network, then the project.
pub struct ClaimedNetwork {
    pub network: crate::docker::Network,
    _applied: AppliedProject,
}

impl ClaimedNetwork {
    pub fn create(
        owner: &'static str,
        project: &str,
        subnet4: &str,
        subnet6: Option<&str>,
    ) -> ClaimedNetwork {
        let applied = AppliedProject::claim(owner, project);
        let network = crate::docker::Network::create(
            &format!("alca-e2e-{project}"),
            &alca_contract::net_spec::bridge_name(project),
            subnet4,
            subnet6,
        )
        .expect("docker network on the project's bridge");
        ClaimedNetwork {
            network,
            _applied: applied,
        }
    }

    /// A container `<network>-c` on the network (`sleep 300`, removed on drop).
    pub fn container(&self) -> crate::docker::Container {
        let name = &self.network.name;
        crate::docker::Container::start(&format!("{name}-c"), name, &[]).expect("container")
    }
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

/// Stops the daemon (SIGTERM) and waits until it is gone; D-Bus activation starts it again on
/// the next call.
pub fn stop_daemon() {
    if let Some(pid) = daemon_pid() {
        crate::netns::run_ok("kill", &[&pid.to_string()]).unwrap();
    }
    for _ in 0..100 {
        if daemon_pid().is_none() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("alca-netd did not stop on SIGTERM");
}

/// Names of all `inet alca-…` tables.
pub fn alca_tables() -> Result<Vec<String>> {
    // A netlink dump, not `nft -j list tables`: nft 1.0.6 prints a table whose only flag is
    // persist (an orphan, its daemon gone) with a garbage `flags` value, which can break the
    // JSON (docs/daemon-tables.md). The guard (not a project id) is left out.
    Ok(alca_kernel::table_names::inet_table_names()?
        .into_iter()
        .filter(|t| {
            t.strip_prefix("alca-")
                .is_some_and(|id| alca_contract::net_spec::validate_project_id(id).is_ok())
        })
        .collect())
}

/// What `nft flush ruleset` takes besides the daemon's owned tables: docker's iptables-nft
/// rules and the other tables (the test environment's uplink guard, netavark's), saved to be
/// put back by [`ForeignRuleset::restore`].
pub struct ForeignRuleset {
    iptables: [(&'static str, String); 2],
    tables: Vec<String>,
}

impl ForeignRuleset {
    pub fn save() -> Result<Self> {
        let iptables = [
            ("iptables-restore", run_ok("iptables-save", &[])?),
            ("ip6tables-restore", run_ok("ip6tables-save", &[])?),
        ];
        let mut tables = Vec::new();
        for line in run_ok("nft", &["list", "tables"])?.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [_, family, name] = parts[..] else {
                continue;
            };
            let iptables_nft = ["ip", "ip6"].contains(&family)
                && ["filter", "nat", "mangle", "raw", "security"].contains(&name);
            if name.starts_with("alca-") || iptables_nft {
                continue;
            }
            tables.push(run_ok("nft", &["list", "table", family, name])?);
        }
        Ok(ForeignRuleset { iptables, tables })
    }

    pub fn restore(&self) -> Result<()> {
        for (restore, saved) in &self.iptables {
            crate::netns::run_with_stdin(restore, &[], &format!("{saved}\n"))?;
        }
        for table in &self.tables {
            crate::netns::run_with_stdin("nft", &["-f", "-"], table)?;
        }
        Ok(())
    }
}

/// For the suites that apply rules with `nft` themselves, without the daemon (isolation): a
/// daemon an earlier suite started leaves its guard (`inet alca-guard`, owned and persistent),
/// which drops the traffic of every project bridge the daemon has no rules for. Stops that
/// daemon (SIGTERM; D-Bus activation starts it again when a later suite calls it) and deletes
/// the guard it left, an orphan once the daemon is gone.
pub fn without_daemon_guard() -> Result<()> {
    if !alca_kernel::table_names::inet_table_exists(alca_netd::guard::GUARD_TABLE)? {
        return Ok(());
    }
    if let Some(pid) = daemon_pid() {
        run_ok("kill", &[&pid.to_string()])?;
        for _ in 0..100 {
            if daemon_pid().is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    run_ok(
        "nft",
        &["delete", "table", "inet", alca_netd::guard::GUARD_TABLE],
    )?;
    Ok(())
}

/// `nft -j list table` output without its table object: nft 1.0.6 writes an orphan's flags
/// (persist only) as garbage, and whether the table is owned (by a running daemon) or
/// orphaned is not part of the ruleset anyway.
fn without_table_object(text: &str) -> String {
    let Some(start) = text.find("{\"table\": {") else {
        return text.to_string();
    };
    let Some(len) = text[start..].find("}}") else {
        return text.to_string();
    };
    let mut start = start;
    let mut end = start + len + 2;
    if text[end..].starts_with(", ") {
        end += 2;
    } else if text[..start].ends_with(", ") {
        // The table is the last object (nothing in it): its separator goes with it.
        start -= 2;
    }
    format!("{}{}", &text[..start], &text[end..])
}

/// The table's content without handles (which change on every replace), or `None` if absent.
pub fn table_snapshot(table: &str) -> Result<Option<Value>> {
    let out = run("nft", &["-j", "list", "table", "inet", table])?;
    if !out.status.success() {
        return Ok(None);
    }
    let text = without_table_object(&String::from_utf8_lossy(&out.stdout));
    let mut json: Value = serde_json::from_str(&text)?;
    strip_volatile(&mut json);
    Ok(Some(json))
}

/// The table's rules without what traffic changes: counters, and the elements of the timeout
/// sets that record attempts and probes (runtime state, not rules; a re-apply starts them empty).
pub fn ruleset(table: &str) -> Option<Value> {
    fn zero(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(c) = map.get_mut("counter") {
                    *c = Value::Null;
                }
                let records = map
                    .get("flags")
                    .and_then(|f| f.as_array())
                    .is_some_and(|f| f.iter().any(|x| x == "timeout"));
                if records {
                    map.remove("elem");
                }
                map.values_mut().for_each(zero);
            }
            Value::Array(items) => items.iter_mut().for_each(zero),
            _ => {}
        }
    }
    let mut json = table_snapshot(table).unwrap()?;
    zero(&mut json);
    Some(json)
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

/// Runs the built `alca ARGS` in `dir`, as `user` (via `runuser`) or as root, with extra env.
pub fn alca(user: Option<&str>, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
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
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running alca")
}

/// `alca` as `user` in the project `dir`, its trust records inside it ([`up_env`]).
pub fn alca_in(user: &str, dir: &Path, args: &[&str]) -> Output {
    let env = up_env(dir);
    alca(Some(user), dir, args, &env_refs(&env))
}

/// [`alca_in`] that must succeed: what it printed.
pub fn alca_in_ok(user: &str, dir: &Path, args: &[&str]) -> String {
    let out = alca_in(user, dir, args);
    let said = text(&out);
    assert!(out.status.success(), "alca {args:?} failed: {said}");
    said
}

/// `env` plus a system bus address that leads nowhere: `alca` as if no daemon could be asked.
pub fn without_bus<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut hidden = env.to_vec();
    hidden.push((
        "DBUS_SYSTEM_BUS_ADDRESS",
        "unix:path=/nonexistent/alca-e2e-no-bus",
    ));
    hidden
}

/// stdout and stderr of a run, together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `sudo alca network-helper install -y` for `user`, with the freshly built daemon, run in `dir`.
pub fn install_helper_for(user: &str, dir: &Path) -> Output {
    let netd = built_binary("alca-netd");
    alca(
        None,
        dir,
        &["network-helper", "install", "-y"],
        &[
            ("SUDO_USER", user),
            ("ALCA_NETD_BIN", netd.to_str().expect("utf-8 path")),
        ],
    )
}

/// Makes sure `user` may mount filtered views, through the product's own step only: when
/// `/dev/fuse` is not open to them or `/etc/fuse.conf` lacks `user_allow_other` (a fresh test
/// environment, or after a suite uninstalled the helper), runs `alca network-helper install`
/// for them. The test environment itself never makes either change.
pub fn fuse_ready_for(user: &str) {
    // Tests of one binary run in parallel; two installs at once would race on the same files.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let device_open = Command::new("runuser")
        .args([
            "-u",
            user,
            "--",
            "sh",
            "-c",
            "test -r /dev/fuse && test -w /dev/fuse",
        ])
        .status()
        .is_ok_and(|s| s.success());
    let conf = Path::new(alca::exclude::fuse_conf::FUSE_CONF);
    if device_open && alca::exclude::fuse_conf::user_allow_other_enabled(conf).unwrap_or(false) {
        return;
    }
    let out = install_helper_for(user, &std::env::temp_dir());
    assert!(
        out.status.success(),
        "alca network-helper install for {user}: {}",
        text(&out)
    );
}

/// Environment for `alca up` as the test user: trust records stay inside the scratch project.
pub fn up_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![(
        "XDG_STATE_HOME",
        dir.join(".state").to_string_lossy().into_owned(),
    )]
}

/// `(key, value)` pairs borrowed from [`up_env`]'s owned list.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A fresh docker project `parent/name` owned by `owner`, its `.alca.toml` ending with `extra`.
pub fn docker_project(parent: &Path, name: &str, owner: &str, extra: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("create project dir");
    write_config(&dir, owner, extra);
    dir
}

/// (Re)writes the docker project's `.alca.toml` with `extra` after the image and runtime lines.
pub fn write_config(dir: &Path, owner: &str, extra: &str) {
    std::fs::write(
        dir.join(".alca.toml"),
        format!("image = \"alca-test/busybox:latest\"\nruntime = \"docker\"\n{extra}"),
    )
    .expect("write .alca.toml");
    run_ok(
        "chown",
        &[
            "-R",
            &format!("{owner}:{owner}"),
            dir.to_str().expect("utf-8 path"),
        ],
    )
    .expect("chown project");
}

/// The project id `up` recorded in `.alca/state.json`.
pub fn project_id(dir: &Path) -> String {
    let state = std::fs::read_to_string(dir.join(".alca/state.json")).expect("state.json");
    let json: Value = serde_json::from_str(&state).expect("state json");
    json["id"].as_str().expect("id").to_string()
}

/// `alca-<first 12 id digits>`: the container `up` creates.
pub fn container_name(id: &str) -> String {
    format!("alca-{}", &id[..12])
}

/// Whether the project's container exists in docker.
pub fn container_exists(id: &str) -> bool {
    run("docker", &["container", "inspect", &container_name(id)])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Lines printed by a long-running watcher (`nft monitor`, `docker events`), each stamped with
/// the moment it was read; the watcher is killed on drop.
pub struct Watch {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, String)>>>,
}

impl Watch {
    pub fn start(program: &str, args: &[&str]) -> Result<Self> {
        use std::io::BufRead;
        let mut child = Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let stdout = child.stdout.take().context("watcher stdout")?;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let now = std::time::Instant::now();
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((now, line));
            }
        });
        Ok(Watch { child, lines })
    }

    /// When the first line containing `needle` was read.
    pub fn first(&self, needle: &str) -> Option<std::time::Instant> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    /// Every line read so far.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(|(_, l)| l.clone()).collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Takes `owner`'s project down and the helper out, and removes the scratch directory, pass or
/// fail: the cleanup of a suite that installs the helper for one project.
pub struct ProjectCleanup {
    pub owner: &'static str,
    pub scratch: PathBuf,
    pub project: PathBuf,
}

impl Drop for ProjectCleanup {
    fn drop(&mut self) {
        if self.project.join(".alca/state.json").is_file() {
            let env = up_env(&self.project);
            let _ = alca(
                Some(self.owner),
                &self.project,
                &["down", "--force"],
                &env_refs(&env),
            );
        }
        let _ = alca(
            None,
            &self.scratch,
            &["network-helper", "uninstall", "-y"],
            &[],
        );
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A fresh docker project `proj` in the scratch directory `alca-e2e-<tag>-<pid>`, owned by
/// `owner`, its `.alca.toml` ending with `extra`, and the helper installed anew for `owner`;
/// the cleanup takes the project down and the helper out.
pub fn helper_project(tag: &str, owner: &'static str, extra: &str) -> (PathBuf, ProjectCleanup) {
    let scratch = scratch_dir(tag);
    let project = docker_project(&scratch, "proj", owner, extra);
    let cleanup = ProjectCleanup {
        owner,
        scratch: scratch.clone(),
        project: project.clone(),
    };
    let _ = alca(None, &scratch, &["network-helper", "uninstall", "-y"], &[]);
    let installed = install_helper_for(owner, &scratch);
    assert!(installed.status.success(), "install: {}", text(&installed));
    (project, cleanup)
}

/// A world-readable scratch directory `alca-e2e-<tag>-<pid>` under the temp dir.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alca-e2e-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    run_ok("chmod", &["755", dir.to_str().expect("utf-8")]).expect("chmod scratch");
    dir
}
