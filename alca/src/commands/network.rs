//! `alca network verify [--local-only] [--plan]` and `alca network log [-f]`: seeing that
//! isolation holds (SPEC §9). Verify asks `alca-netd` to check the live rules and arm the probe
//! fence, probes from inside the running container, then compares each destination with the
//! config; the last result is kept in `.alca/verify.json` for `alca status`. `alca up` runs a
//! quick subset through [`after_up`], probed by the daemon from the container's network
//! namespace (`ProbeFrom`) instead of an exec.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alca_netd::client::Client;
use alca_netd::observe::Key;
use alca_netd::{NetSpec, Proto};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::cli::NetworkCommand;
use crate::commands::lifecycle::{find_container, warn, Progress, Project};
use crate::network::matrix::{self, Reach, Scope, Target};
use crate::network::netd::explain;
use crate::network::verify::{self, Row};
use crate::network::{denied_log, host_view, spec};
use crate::project::{State, STATE_DIR};
use crate::runtime::{ContainerState, ExecSpec, Runtime, RuntimeKind};

/// File of the last verification result, inside `.alca/`.
pub const LAST_RESULT_FILE: &str = "verify.json";
/// `-f` polls this often.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

pub fn run(cmd: NetworkCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NetworkCommand::Verify { local_only, plan } => verify_command(local_only, plan),
        NetworkCommand::Log { follow } => log_command(follow),
        NetworkCommand::Allow {
            entry,
            duration,
            list,
            revoke,
        } => {
            use crate::commands::network_allow::{run, AllowRequest};
            run(match (entry, list, revoke) {
                (Some(entry), _, true) => AllowRequest::Revoke { entry },
                (Some(entry), false, false) => AllowRequest::Grant { entry, duration },
                _ => AllowRequest::List,
            })
        }
    }
}

/// The running project: its root, state, spec, runtime and container name.
struct Running {
    root: PathBuf,
    spec: NetSpec,
    runtime: Box<dyn Runtime>,
    container: String,
    /// The container's main process, whose network namespace the daemon can probe from.
    pid: Option<u32>,
    gateways: Vec<IpAddr>,
}

fn open_running(project: &Project) -> anyhow::Result<Option<Running>> {
    let not_up = "the container is not running: run `alca up` first";
    let Some(state) = State::load(&project.root)? else {
        bail!(not_up);
    };
    if !spec::isolation_required(&project.config) {
        return Ok(None);
    }
    let Some((runtime, Some(info))) = find_container(&state)? else {
        bail!(not_up);
    };
    if info.state != ContainerState::Running {
        bail!(
            "container {} is {}: run `alca up` first",
            info.name,
            info.state
        );
    }
    let gateways = runtime
        .network(&state.container_name())?
        .map(|n| n.gateways)
        .unwrap_or_default();
    let dns = match runtime.kind() {
        RuntimeKind::Podman => gateways.clone(),
        RuntimeKind::Docker => Vec::new(),
    };
    let spec = spec::build(&project.config, &state.id, dns, &|| {
        spec::gateway_host_ip(&gateways)
    })?;
    Ok(Some(Running {
        root: project.root.clone(),
        spec,
        runtime,
        container: info.name,
        pid: info.pid,
        gateways,
    }))
}

fn matrix_of(r: &Running, local_only: bool) -> Vec<Target> {
    let host = host_view::read();
    matrix::build(&Scope {
        spec: &r.spec,
        gateways: &r.gateways,
        container: &r.container,
        host: &host,
        local_only,
    })
}

fn verify_command(local_only: bool, plan: bool) -> anyhow::Result<ExitCode> {
    let project = Project::open()?;
    let Some(running) = open_running(&project)? else {
        println!("Network isolation is off (network.lan-access = [\"*\"]): nothing to verify");
        return Ok(ExitCode::SUCCESS);
    };
    let targets = matrix_of(&running, local_only);
    if plan {
        // Tab-separated: label, protocol, address, port, expected, local/remote.
        for t in &targets {
            let (proto, addr, port) = match t.key {
                Some(k) => (k.proto.to_string(), k.addr.to_string(), k.port.to_string()),
                None => ("dns".into(), "resolver".into(), "53".into()),
            };
            let place = if t.local { "local" } else { "remote" };
            println!(
                "{}\t{proto}\t{addr}\t{port}\t{}\t{place}",
                t.label, t.expect
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = verify_running(&running, &targets, ProbeFrom::Container)?;
    print_report(&report);
    save_result(&running.root, &report);
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The result of one verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Unix time of the verification.
    pub at: u64,
    pub quick: bool,
    /// Differences between the live rules and the config (named holes).
    pub problems: Vec<String>,
    /// The probes ran (the fence was in place).
    pub probed: bool,
    /// A tool the probes need is missing in the image.
    pub missing_tool: Option<String>,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn mismatches(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.ok())
    }

    pub fn passed(&self) -> bool {
        self.problems.is_empty()
            && self.probed
            && self.missing_tool.is_none()
            && self.mismatches().next().is_none()
    }

    /// One line for `alca status`.
    pub fn summary(&self) -> String {
        let when = denied_log::utc(self.at);
        let kind = if self.quick { "quick check" } else { "full" };
        if self.passed() {
            return format!(
                "passed ({} destinations, {kind}, {when} UTC)",
                self.rows.len()
            );
        }
        let mut why: Vec<String> = self.problems.clone();
        why.extend(self.mismatches().map(|r| {
            format!(
                "{} {} is {} (expected {})",
                r.label, r.destination, r.observed, r.expected
            )
        }));
        if let Some(tool) = &self.missing_tool {
            why.push(format!("`{tool}` missing in the image"));
        }
        if !self.probed {
            why.push("probes not run".into());
        }
        format!("FAILED ({kind}, {when} UTC): {}", why.join("; "))
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where the probes of one verification run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeFrom {
    /// A shell script in the container (`exec`): every kind of target, the reference.
    Container,
    /// The daemon connects from the container's network namespace (TCP targets only, no
    /// exec: `up`'s quick check); anything it cannot do falls back to [`ProbeFrom::Container`].
    Netns,
}

/// Checks the live rules, arms the fence, probes `targets` from the container and compares.
fn verify_running(r: &Running, targets: &[Target], from: ProbeFrom) -> anyhow::Result<Report> {
    let client = Client::connect().map_err(explain)?;
    let project = &r.spec.project;
    let proxy = r.spec.proxy.map(|p| Key {
        addr: p.ip(),
        proto: Proto::Tcp,
        port: p.port(),
    });
    let mut probes: Vec<_> = targets.iter().filter_map(Target::probe).collect();
    if let Some(key) = proxy {
        probes.push(alca_netd::observe::Probe { key, fence: false });
    }
    let netns_targets = (from == ProbeFrom::Netns)
        .then(|| tcp_keys(targets))
        .flatten();
    let from_netns = r.pid.zip(netns_targets).and_then(|(pid, keys)| {
        // An older daemon without ProbeFrom, or a namespace it does not accept: exec instead.
        client.probe_from(project, pid, &probes, &keys).ok()
    });
    // Nothing is probed (no `seen`) unless the check says the fence is armed.
    let (check, seen, outcome) = match from_netns {
        Some(report) => {
            let seen = report.seen.into_iter().map(verify::Seen::from).collect();
            (report.check, seen, report.outcome)
        }
        None => {
            let check = client.arm_probes(project, &probes).map_err(explain)?;
            if !check.armed {
                (check, Vec::new(), Default::default())
            } else {
                let output =
                    exec_script(r.runtime.as_ref(), &r.container, &verify::script(targets));
                let outcome = client.probe_outcome(project).map_err(explain)?;
                (check, verify::parse(&output?, targets), outcome)
            }
        }
    };
    let mut report = Report {
        at: now_secs(),
        quick: false,
        problems: check.problems,
        probed: check.armed,
        missing_tool: None,
        rows: Vec::new(),
    };
    if !report.probed {
        // Without the fence a missing rule could let a probe onto the LAN: do not probe.
        report.problems.push(
            "the probe fence is not in place, so nothing was probed: run `alca up -f`".into(),
        );
        return Ok(report);
    }
    report.missing_tool = verify::tool_missing(&seen);
    report.rows = targets
        .iter()
        .zip(&seen)
        .map(|(t, s)| verify::verdict(t, s, &outcome, proxy))
        .collect();
    Ok(report)
}

/// The keys of `targets` when every one is a TCP destination (what the daemon can probe).
fn tcp_keys(targets: &[Target]) -> Option<Vec<Key>> {
    targets
        .iter()
        .map(|t| match (&t.method, t.key) {
            (matrix::Method::Tcp, Some(k)) if k.proto == Proto::Tcp => Some(k),
            _ => None,
        })
        .collect()
}

/// Runs `script` with `sh -c` in the container and returns what it printed.
fn exec_script(runtime: &dyn Runtime, container: &str, script: &str) -> anyhow::Result<String> {
    let spec = ExecSpec {
        container: container.to_string(),
        workdir: "/".into(),
        envs: Vec::new(),
        interactive: false,
        tty: false,
        argv: vec!["sh".into(), "-c".into(), script.to_string()],
    };
    let out = runtime
        .exec_command(&spec)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", runtime.kind().binary()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() && !text.contains("@@") {
        bail!(
            "cannot run the probes in container {container}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

fn print_report(report: &Report) {
    for p in &report.problems {
        println!("HOLE  {p}");
    }
    for row in &report.rows {
        let mark = if row.ok() { "ok  " } else { "FAIL" };
        println!(
            "{mark}  {:<36} {:<44} {:<10} (expected {}) {}",
            row.label, row.destination, row.observed, row.expected, row.detail
        );
    }
    if let Some(tool) = &report.missing_tool {
        println!(
            "The image has no `{tool}`: verify needs sh, nc (with -w) and nslookup in the container"
        );
    }
    println!("Network verify: {}", report.summary());
}

fn result_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join(LAST_RESULT_FILE)
}

/// Keeps the report for `alca status` (atomically; a failure to save is only a warning).
fn save_result(root: &Path, report: &Report) {
    let dir = root.join(STATE_DIR);
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(report).unwrap_or_default())?;
        tmp.persist(result_path(root)).map_err(|e| e.error)?;
        Ok(())
    };
    if let Err(e) = write() {
        warn(format!("cannot save the verify result: {e}"));
    }
}

/// The last verification result of the project, if any.
pub fn last_result(root: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(result_path(root)).ok()?;
    serde_json::from_str(&text).ok()
}

/// `alca up`'s quick check of a running, isolated project: a few destinations that stay on
/// this machine. A confirmed hole stops the container (fail closed); being unable to check is
/// a warning.
pub fn after_up(project: &Project, progress: &Progress) -> anyhow::Result<()> {
    let running = match open_running(project) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(()),
        Err(e) => {
            warn(format!("network verify skipped: {e:#}"));
            return Ok(());
        }
    };
    progress.step("Verifying network isolation (quick)");
    let targets = matrix::quick(matrix_of(&running, true));
    let mut report = match verify_running(&running, &targets, ProbeFrom::Netns) {
        Ok(r) => r,
        Err(e) => {
            warn(format!("network verify could not run: {e:#}"));
            return Ok(());
        }
    };
    report.quick = true;
    save_result(&running.root, &report);
    let hole =
        !report.problems.is_empty() || report.mismatches().any(|r| r.expected == Reach::Blocked);
    if hole {
        let _ = running.runtime.stop(&running.container);
        bail!(
            "network isolation does not hold, so container {} was stopped: {}. Run `alca up -f` \
             to re-apply the rules, and `alca network verify` for details",
            running.container,
            report.summary()
        );
    }
    if !report.passed() {
        warn(format!("network verify: {}", report.summary()));
    }
    Ok(())
}

/// `alca network log [-f]`.
fn log_command(follow: bool) -> anyhow::Result<ExitCode> {
    let project = Project::open()?;
    let Some(state) = State::load(&project.root)? else {
        bail!("the project has no container yet: run `alca up` first");
    };
    if !spec::isolation_required(&project.config) {
        println!("Network isolation is off (network.lan-access = [\"*\"]): nothing is denied");
        return Ok(ExitCode::SUCCESS);
    }
    let internet_list = crate::network::internet_spec::restricted(&project.config);
    if internet_list {
        print_refused_names(&project.root)?;
    }
    let client = Client::connect().map_err(explain)?;
    let entries = client.denied(&state.id).map_err(explain)?;
    println!("{}", denied_log::HEADER);
    let mut shown: HashMap<Key, u64> = HashMap::new();
    print_changed(&mut shown, &entries, internet_list);
    if entries.is_empty() && !follow {
        println!("(no denied connections recorded)");
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Polls until interrupted; memory stays bounded by the log's own size.
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let entries = client.denied(&state.id).map_err(explain)?;
        print_changed(&mut shown, &entries, internet_list);
    }
}

/// The names the project's resolver refused (`internet-access`), before the connections.
fn print_refused_names(root: &std::path::Path) -> anyhow::Result<()> {
    let path = crate::network::resolver_process::query_log(root);
    let events = alca_dns::query_log::read_events(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    println!("{}", crate::network::refused_names::HEADER);
    let lines = crate::network::refused_names::lines(&events);
    if lines.is_empty() {
        println!("(no refused names recorded)");
    }
    for l in lines {
        println!("{l}");
    }
    println!();
    Ok(())
}

fn print_changed(
    shown: &mut HashMap<Key, u64>,
    entries: &[alca_netd::observe::Denied],
    internet_list: bool,
) {
    let now = now_secs();
    let mut out = std::io::stdout().lock();
    for d in denied_log::changed(shown, entries) {
        let _ = writeln!(out, "{}", denied_log::line(d, now, internet_list));
    }
    let _ = out.flush();
    // Only what is still in the log is remembered: the map never outgrows the log.
    *shown = entries.iter().map(|d| (d.key, d.packets)).collect();
}
