//! Seeing that isolation holds (SPEC §9), the part `alca network verify` and `alca up` share:
//! `alca-netd` checks the live rules and arms the probe fence, the probes run from inside the
//! running container (or, for `up`'s quick check, from its network namespace through the
//! daemon), and each destination is compared with the spec `up` applied. The last result is
//! kept in `.alca/verify.json` for `alca status`.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use alca_contract::client::Client;
use alca_contract::probe::{Key, Outcome, Seen};
use alca_contract::{NetSpec, Proto};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::network::guard_select::connect_guard;
use crate::network::matrix::{self, Reach, Scope, Target};
use crate::network::netd_guard::explain;
use crate::network::verify_probes::{self, Row};
use crate::network::{
    denied_log, host_addresses, internet_spec, netspec_build, project_rules, rootless,
};
use crate::project::{State, STATE_DIR};
use crate::runtime::{ContainerInfo, ContainerState, ExecSpec, Runtime, RuntimeKind};

use super::{find_container, warn, Progress, Project};

/// File of the last verification result, inside `.alca/`.
pub const LAST_RESULT_FILE: &str = "verify.json";

/// The running project: its root, state, spec, runtime and container name.
pub struct Running {
    pub root: PathBuf,
    pub spec: NetSpec,
    pub runtime: Box<dyn Runtime>,
    pub container: String,
    /// The container's main process, whose network namespace the daemon can probe from.
    pub pid: Option<u32>,
    pub gateways: Vec<IpAddr>,
    /// A rootless container: its rules are inside its own namespace ([`verify_in_namespace`]).
    pub rootless: bool,
}

/// The running, isolated project (`None` when isolation is off); an error when it is not up.
pub fn open_running(project: &Project) -> anyhow::Result<Option<Running>> {
    let not_up = "the container is not running: run `alca up` first";
    let Some(state) = State::load(&project.root)? else {
        bail!(not_up);
    };
    if !netspec_build::isolation_required(&project.config) {
        return Ok(None);
    }
    let Some((runtime, Some(info))) = find_container(&state)? else {
        bail!(not_up);
    };
    running(project, &state, runtime, info).map(Some)
}

/// What verify judges for the project's running container `info` on `runtime`.
pub fn running(
    project: &Project,
    state: &State,
    runtime: Box<dyn Runtime>,
    info: ContainerInfo,
) -> anyhow::Result<Running> {
    if info.state != ContainerState::Running {
        bail!(
            "container {} is {}: run `alca up` first",
            info.name,
            info.state
        );
    }
    // The spec `up` applied, DNS allowance and internet list included (verify judges that
    // one, no other). Rootless runtimes refuse an internet list at `up`.
    let rootless = runtime.rootless();
    let (spec, gateways) = if rootless {
        let kind = runtime.kind();
        let spec = rootless::spec(&project.config, &state.id, kind)?;
        let gateways = match kind {
            RuntimeKind::Podman => vec![rootless::SLIRP_HOST, rootless::SLIRP_DNS],
            // Its bridge is in rootlesskit's namespace; slirp4netns' aliases are behind it.
            RuntimeKind::Docker => {
                let mut gws = runtime
                    .network(&rootless::network_mode(&project.config, kind))?
                    .map(|n| n.gateways)
                    .unwrap_or_default();
                gws.extend([rootless::SLIRP_HOST, rootless::SLIRP_DNS]);
                gws
            }
        };
        (spec, gateways)
    } else {
        let (mut spec, gateways) = project_rules::project_spec(
            &project.config,
            &state.id,
            &state.container_name(),
            runtime.as_ref(),
        )?;
        let listen = gateways.iter().copied().find(IpAddr::is_ipv4);
        let guard = crate::network::guard_select::connect_guard();
        spec.internet = internet_spec::applied(
            &project.config,
            &project.root,
            &state.id,
            listen,
            guard.as_ref(),
        );
        (spec, gateways)
    };
    Ok(Running {
        root: project.root.clone(),
        spec,
        runtime,
        container: info.name,
        pid: info.pid,
        gateways,
        rootless,
    })
}

/// The destinations to probe for `r` (`local_only`: only those that stay on this machine).
/// A rootless container has no runtime resolver of its own: a name lookup through
/// slirp4netns goes to the host's resolvers, so that row is left out.
pub fn matrix_of(r: &Running, local_only: bool) -> Vec<Target> {
    let host = host_addresses::read();
    let mut targets = matrix::build(&Scope {
        spec: &r.spec,
        gateways: &r.gateways,
        container: &r.container,
        host: &host,
        local_only,
    });
    if r.rootless {
        targets.retain(|t| t.key.is_some());
    }
    targets
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

    /// The rows (and a missing tool) from what each target's probe saw.
    fn fill(&mut self, targets: &[Target], seen: &[Seen], outcome: &Outcome, proxy: Option<Key>) {
        self.missing_tool = verify_probes::tool_missing(seen);
        self.rows = targets
            .iter()
            .zip(seen)
            .map(|(t, s)| verify_probes::verdict(t, s, outcome, proxy))
            .collect();
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

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where the probes of one verification run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFrom {
    /// A shell script in the container (`exec`): every kind of target, the reference.
    Container,
    /// The daemon connects from the container's network namespace (TCP targets only, no
    /// exec: `up`'s quick check); anything it cannot do falls back to [`ProbeFrom::Container`].
    Netns,
}

/// Checks the live rules, arms the fence, probes `targets` from the container and compares.
pub fn verify_running(r: &Running, targets: &[Target], from: ProbeFrom) -> anyhow::Result<Report> {
    if r.rootless {
        let client = Client::connect().map_err(explain)?;
        return verify_in_namespace(r, targets, &client);
    }
    // The daemon on the system bus, or the helper container (macOS).
    let guard = connect_guard();
    let project = &r.spec.project;
    let proxy = r.spec.proxy.map(|p| Key {
        addr: p.ip(),
        proto: Proto::Tcp,
        port: p.port(),
    });
    let mut probes: Vec<_> = targets.iter().filter_map(Target::probe).collect();
    if let Some(key) = proxy {
        probes.push(alca_contract::probe::Probe { key, fence: false });
    }
    let netns_targets = (from == ProbeFrom::Netns)
        .then(|| tcp_keys(targets))
        .flatten();
    let from_netns = r.pid.zip(netns_targets).and_then(|(pid, keys)| {
        // A guard that cannot connect from the namespace: exec instead.
        guard.probe_from(project, pid, &probes, &keys)
    });
    // Nothing is probed (no `seen`) unless the check says the fence is armed.
    let (check, seen, outcome) = match from_netns {
        Some(report) => (report.check, report.seen, report.outcome),
        None => {
            let check = guard.arm_probes(project, &probes)?;
            if !check.armed {
                (check, Vec::new(), Default::default())
            } else {
                let output = exec_script(
                    r.runtime.as_ref(),
                    &r.container,
                    &verify_probes::script(targets),
                );
                let outcome = guard.probe_outcome(project)?;
                (check, verify_probes::parse(&output?, targets), outcome)
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
    report.fill(targets, &seen, &outcome, proxy);
    Ok(report)
}

/// A rootless container (docs/rootless.md): its rules are a table inside its own network
/// namespace, owned by the daemon's socket, so nothing but the daemon can change it. The
/// daemon says which spec that table was compiled from for the container's namespace now;
/// the probes run (from inside the container) only when it is the config's spec. That table is
/// the fence: a destination the config blocks is refused in the namespace, before slirp4netns
/// could carry it anywhere. (No host verify chain sees this traffic, so the rows come from the
/// probes' own results.)
fn verify_in_namespace(r: &Running, targets: &[Target], client: &Client) -> anyhow::Result<Report> {
    let mut report = Report {
        at: now_secs(),
        quick: false,
        problems: Vec::new(),
        probed: false,
        missing_tool: None,
        rows: Vec::new(),
    };
    let pid = r
        .pid
        .with_context(|| format!("container {} has no process", r.container))?;
    match client
        .netns_applied_spec(&r.spec.project, pid)
        .map_err(explain)?
    {
        None => report.problems.push(
            "the project's rules are not in the container's network namespace (a restart \
             without the OCI hook, or the network helper restarted), so nothing was probed: \
             run `alca up`"
                .into(),
        ),
        Some(applied) if applied != r.spec => report.problems.push(
            "the rules in the container's network namespace were built from another \
             configuration, so nothing was probed: run `alca up`"
                .into(),
        ),
        Some(_) => {
            let output = exec_script(
                r.runtime.as_ref(),
                &r.container,
                &verify_probes::script(targets),
            )?;
            let seen = verify_probes::parse(&output, targets);
            report.probed = true;
            report.fill(targets, &seen, &Default::default(), None);
        }
    }
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

fn result_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join(LAST_RESULT_FILE)
}

/// Keeps the report for `alca status` (atomically; a failure to save is only a warning).
pub fn save_result(root: &Path, report: &Report) {
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::lifecycle::test_fakes::GATEWAY;
    use crate::network::matrix::Method;

    use super::*;

    fn row(expected: Reach, observed: Reach) -> Row {
        Row {
            label: "private 10/8".into(),
            destination: "10.255.255.254:80".into(),
            expected,
            observed,
            detail: String::new(),
        }
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            at: 0,
            quick: false,
            problems: vec![],
            probed: true,
            missing_tool: None,
            rows,
        }
    }

    #[test]
    fn a_report_passes_only_when_probed_complete_and_as_expected() {
        let good = report(vec![row(Reach::Blocked, Reach::Blocked)]);
        assert!(good.passed());
        assert!(good.summary().starts_with("passed (1 destinations, full"));
        let hole = report(vec![row(Reach::Blocked, Reach::Allowed)]);
        assert!(!hole.passed());
        assert!(
            hole.summary().contains("private 10/8"),
            "{}",
            hole.summary()
        );
        let mut unprobed = report(vec![]);
        unprobed.probed = false;
        assert!(!unprobed.passed());
        assert!(unprobed.summary().contains("probes not run"));
        let mut no_nc = report(vec![]);
        no_nc.missing_tool = Some("nc".into());
        assert!(
            no_nc.summary().contains("`nc` missing"),
            "{}",
            no_nc.summary()
        );
        let mut problem = report(vec![]);
        problem.problems.push("table missing".into());
        assert!(!problem.passed());
        assert!(problem.summary().contains("table missing"));
    }

    #[test]
    fn the_daemon_probes_only_all_tcp_target_lists() {
        let tcp = Target {
            label: "gateway".into(),
            key: Some(Key {
                addr: IpAddr::from(GATEWAY),
                proto: Proto::Tcp,
                port: 22,
            }),
            method: Method::Tcp,
            expect: Reach::Blocked,
            local: true,
        };
        let dns = Target {
            label: "resolver".into(),
            key: None,
            method: Method::Dns {
                name: "example.test".into(),
            },
            expect: Reach::Allowed,
            local: true,
        };
        assert_eq!(
            tcp_keys(std::slice::from_ref(&tcp)),
            tcp.key.map(|k| vec![k])
        );
        assert_eq!(tcp_keys(&[tcp, dns]), None);
    }

    #[test]
    fn the_last_result_is_kept_for_status() {
        let dir = tempfile::tempdir().unwrap();
        assert!(last_result(dir.path()).is_none());
        std::fs::create_dir(dir.path().join(STATE_DIR)).unwrap();
        let mut r = report(vec![row(Reach::Blocked, Reach::Blocked)]);
        r.quick = true;
        save_result(dir.path(), &r);
        let back = last_result(dir.path()).expect("saved");
        assert!(back.quick && back.passed());
        assert_eq!(back.rows.len(), 1);
    }
}
