//! End-to-end proof of SPEC §9 (seeing isolation) on the real daemon, nft, docker and the test
//! netns hosts: `alca network verify` passes for the default config, names a hole made by hand
//! with `nft` and fails, `alca network log` shows attempts to 10.99.0.2:18080 with the line
//! that would allow them, and the log stays bounded under a 10,000-attempt flood.
//!
//! One test function with ordered steps (one system daemon, docker and `lanhost` are shared).
//! Every probe destination is checked with `ip route get` (or the host's address list) before
//! `verify` runs: it is local, on a local bridge, link-scope multicast, or in `lanhost`.
//! Needs root (tests/run.sh) and the test env (tests/env/setup.sh); run under the e2e lock.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use alca_e2e::docker::{docker, Probe};
use alca_e2e::netd::{
    alca as alca_as, alca_in, alca_in_ok, built_binary, call_as, docker_project,
    install_helper_for, project_id, text, Reply,
};
use alca_e2e::netns::{assert_route_via, run, run_ok, Listener, LAN4, LANHOST_NS, LAN_VETH};
use alca_ruleset::DENIED_SIZE;

const USER: &str = "alcatest";
const LAN_PORT: u16 = 18080;
const FLOOD: u32 = 10_000;

fn alca(dir: &Path, args: &[&str]) -> Output {
    alca_in(USER, dir, args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    alca_in_ok(USER, dir, args)
}

/// Downs the projects and uninstalls the helper when the test ends, pass or fail.
struct Cleanup {
    scratch: PathBuf,
    projects: Vec<PathBuf>,
    /// Projects root owns (rootful Podman).
    root_projects: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in &self.projects {
            let _ = alca(dir, &["down", "--force"]);
        }
        for dir in &self.root_projects {
            let _ = alca_as(None, dir, &["down", "--force"], &[]);
        }
        let _ = Command::new(built_binary("alca"))
            .args(["network-helper", "uninstall", "-y"])
            .output();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn container(dir: &Path) -> String {
    format!("alca-{}", &project_id(dir)[..12])
}

fn table(dir: &Path) -> String {
    format!("alca-{}", project_id(dir))
}

fn exec(name: &str, script: &str) -> String {
    let out = docker(&["exec", name, "sh", "-c", script]).expect("docker exec");
    text(&out)
}

#[test]
fn observe_end_to_end() {
    if run_ok("id", &["-u"]).map(|u| u != "0").unwrap_or(true) {
        panic!("the observe suite must run as root (tests/run.sh)");
    }
    let scratch = std::env::temp_dir().join(format!("alca-e2e-observe-{}", std::process::id()));
    let main = docker_project(&scratch, "main", USER, "");
    let sibling = docker_project(&scratch, "sibling", USER, "");
    let _cleanup = Cleanup {
        scratch: scratch.clone(),
        projects: vec![main.clone(), sibling.clone()],
        root_projects: vec![scratch.join("podman")],
    };
    let _ = Command::new(built_binary("alca"))
        .args(["network-helper", "uninstall", "-y"])
        .output();
    let install = install_helper_for(USER, &scratch);
    assert!(install.status.success(), "{}", text(&install));

    let up = ok(&sibling, &["up", "--trust"]);
    assert!(up.contains("Verifying network isolation (quick)"), "{up}");
    let up = ok(&main, &["up", "--trust"]);
    assert!(up.contains("Verifying network isolation (quick)"), "{up}");
    assert!(ok(&main, &["status"]).contains("Network verify: passed"));

    let plan = checked_plan(&main, &sibling);
    quick_check_probes_without_exec(&scratch, &main);
    probe_from_is_bound_to_the_projects_bridge(&main, &sibling);
    default_config_verifies(&main, plan);
    denied_attempts_are_logged(&main);
    flood_keeps_the_log_bounded(&main);
    a_hole_cannot_be_opened(&main);
    follow_prints_new_attempts(&main);
    allow_listed_entries_are_reached(&main);
    proxy_redirect_is_seen(&main);
    rootful_podman_verifies(&scratch.join("podman"));
}

/// `up`'s quick check has the daemon probe from the container's network namespace: no
/// `docker exec` (logged by a shim in front of the real CLI), and the check still passes.
fn quick_check_probes_without_exec(scratch: &Path, main: &Path) {
    let shim = scratch.join("shim");
    std::fs::create_dir_all(&shim).unwrap();
    let log = scratch.join("docker-calls");
    std::fs::write(&log, "").unwrap();
    let real = run_ok("sh", &["-c", "command -v docker"]).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> {}\nexec {} \"$@\"\n",
        log.display(),
        real.trim()
    );
    std::fs::write(shim.join("docker"), script).unwrap();
    run_ok(
        "chmod",
        &["-R", "a+rwX", shim.to_str().unwrap(), log.to_str().unwrap()],
    )
    .unwrap();
    docker(&["kill", &container(main)]).unwrap();
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let state = main.join(".state");
    let env = [
        ("XDG_STATE_HOME", state.to_str().unwrap()),
        ("PATH", path.as_str()),
    ];
    let up = alca_as(Some(USER), main, &["up"], &env);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains("Verifying network isolation (quick)"),
        "{}",
        text(&up)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        !calls.lines().any(|l| l.starts_with("exec ")),
        "the quick check must not exec into the container: {calls}"
    );
    assert!(ok(main, &["status"]).contains("Network verify: passed"));
}

/// `ProbeFrom` connects only from a namespace on the caller's project bridge: the project's
/// own container is probed (its gateway's discard port is refused by rule), a sibling
/// project's container and the host are refused, and another user may not ask at all.
fn probe_from_is_bound_to_the_projects_bridge(main: &Path, sibling: &Path) {
    let pid_of = |dir: &Path| {
        let out = docker(&["inspect", "-f", "{{.State.Pid}}", &container(dir)]).unwrap();
        text(&out).trim().to_string()
    };
    let out = docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        &container(main),
    ])
    .unwrap();
    let gateway = text(&out).trim().to_string();
    let key = format!(r#"{{"addr":"{gateway}","proto":"tcp","port":9}}"#);
    let probes = format!(r#"[{{"key":{key},"fence":true}}]"#);
    let targets = format!("[{key}]");
    let ask = |user: &str, pid: &str| {
        let args = [
            format!("string:{}", project_id(main)),
            format!("uint32:{pid}"),
            format!("string:{probes}"),
            format!("string:{targets}"),
        ];
        call_as(user, "ProbeFrom", &args).unwrap()
    };
    match ask(USER, &pid_of(main)) {
        Reply::Ok(report) => {
            assert!(report.contains(r#""armed":true"#), "{report}");
            assert!(report.contains(r#""seen":["Refused"]"#), "{report}");
            assert!(
                report.contains(&format!(r#""addr":"{gateway}""#)),
                "logged: {report}"
            );
        }
        other => panic!("ProbeFrom of the project's own container failed: {other:?}"),
    }
    // The sibling's container is on another bridge; this test process is in the host's namespace.
    for pid in [pid_of(sibling), std::process::id().to_string()] {
        let reply = ask(USER, &pid);
        assert_eq!(
            reply.error_kind(),
            Some("InvalidRequest"),
            "pid {pid}: {reply:?}"
        );
        assert!(
            format!("{reply:?}").contains("is not in a container on bridge"),
            "{reply:?}"
        );
    }
    // Not a member of `alcatraz`: refused before anything is looked at.
    let reply = ask("alcaother", &pid_of(main));
    assert_eq!(reply.error_kind(), Some("NotAuthorized"), "{reply:?}");
}

/// The local-only matrix, each destination checked to stay on this machine or in `lanhost`.
fn checked_plan(main: &Path, sibling: &Path) -> usize {
    let plan = ok(main, &["network", "verify", "--local-only", "--plan"]);
    eprintln!("{plan}");
    let host_addrs = run_ok("ip", &["-o", "addr", "show"]).unwrap();
    let mut rows = 0;
    for line in plan.lines().filter(|l| l.contains('\t')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (label, addr) = (f[0], f[2]);
        rows += 1;
        if addr == "resolver" {
            continue;
        }
        if addr == "224.0.0.251" || addr == "ff02::fb" {
            // Link-scope multicast: never forwarded off the bridge.
            continue;
        }
        if host_addrs.contains(&format!(" {addr}/")) {
            continue;
        }
        let route = run_ok("ip", &["route", "get", addr]).unwrap();
        let on_bridge = route
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| {
                w[0] == "dev"
                    && (w[1] == LAN_VETH || w[1].starts_with("alca-") || w[1] == "docker0")
            });
        assert!(
            route.starts_with("local ") || on_bridge,
            "plan row {label:?} targets {addr}, routed {route:?}: not local"
        );
    }
    let sib = table(sibling);
    assert!(
        plan.contains(&format!("other project on alca-{}", &sib[5..15])),
        "the sibling project is not in the plan: {plan}"
    );
    for want in [
        "bridge gateway",
        "host address on",
        "multicast 224.0.0.251",
        "DNS through",
    ] {
        assert!(plan.contains(want), "{want} missing: {plan}");
    }
    rows
}

fn default_config_verifies(main: &Path, rows: usize) {
    let report = ok(main, &["network", "verify", "--local-only"]);
    eprintln!("{report}");
    let lines: Vec<&str> = report.lines().filter(|l| l.starts_with("ok  ")).collect();
    assert_eq!(lines.len(), rows, "every row passes: {report}");
    assert!(
        !report.contains("FAIL") && !report.contains("HOLE"),
        "{report}"
    );
    for l in lines.iter().filter(|l| !l.contains("DNS through")) {
        assert!(
            l.contains(" blocked "),
            "default config blocks everything: {l}"
        );
    }
    assert!(report.contains("DNS through the runtime's resolver") && report.contains("answered"));
    assert!(report.contains("Network verify: passed"), "{report}");
    assert!(ok(main, &["status"]).contains("Network verify: passed"));
    let log = ok(main, &["network", "log"]);
    assert!(
        log.contains("(no denied connections recorded)"),
        "the probes of verify are not the container's own attempts: {log}"
    );
}

fn denied_attempts_are_logged(main: &Path) {
    assert_route_via(LAN4, LAN_VETH);
    let name = container(main);
    let out = exec(&name, &alca_e2e::docker::nc_script(LAN4, LAN_PORT));
    assert_eq!(Probe::classify(&out), Probe::Refused, "{out}");
    let log = ok(main, &["network", "log"]);
    eprintln!("{log}");
    let line = log
        .lines()
        .find(|l| l.contains(LAN4) && l.contains(&LAN_PORT.to_string()))
        .unwrap_or_else(|| panic!("no log line for {LAN4}:{LAN_PORT}: {log}"));
    assert!(line.contains(" tcp "), "{line}");
    assert!(
        line.ends_with("lan-access = [\"10.99.0.2:18080\"]"),
        "{line}"
    );
    assert!(line.starts_with("20"), "a UTC time comes first: {line}");
}

fn flood_keeps_the_log_bounded(main: &Path) {
    assert_route_via(LAN4, LAN_VETH);
    let name = container(main);
    let started = Instant::now();
    let script = format!(
        "i=0; while [ $i -lt {FLOOD} ]; do nc -w 1 {LAN4} $((30000 + i)) </dev/null 2>/dev/null; \
         i=$((i + 1)); done; echo flooded $i"
    );
    let out = docker(&["exec", &name, "timeout", "600", "sh", "-c", &script]).expect("flood");
    assert!(
        text(&out).contains(&format!("flooded {FLOOD}")),
        "{}",
        text(&out)
    );
    eprintln!("flood of {FLOOD} attempts took {:?}", started.elapsed());
    let log = ok(main, &["network", "log"]);
    let entries = log.lines().filter(|l| l.contains("lan-access = [")).count();
    assert!(
        entries <= DENIED_SIZE as usize,
        "log grew past its bound: {entries} entries"
    );
    assert!(
        entries >= DENIED_SIZE as usize / 2,
        "the flood was not logged: {entries}"
    );
    let set = run_ok(
        "nft",
        &["-j", "list", "set", "inet", &table(main), "denied4"],
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&set).unwrap();
    let elems = json["nftables"][1]["set"]["elem"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(elems <= DENIED_SIZE as usize, "{elems} elements in denied4");
    // A full log never weakens the rules.
    let probe = exec(&name, &alca_e2e::docker::nc_script(LAN4, LAN_PORT));
    assert_eq!(Probe::classify(&probe), Probe::Refused, "{probe}");
    let verify = ok(main, &["network", "verify", "--local-only"]);
    assert!(verify.contains("Network verify: passed"), "{verify}");
}

/// Handles of the `isolate` rules commented "deny lan" that match the IPv4 deny set.
fn deny_lan_v4_handles(table: &str) -> Vec<String> {
    let listing = run_ok("nft", &["-a", "list", "chain", "inet", table, "isolate"]).unwrap();
    listing
        .lines()
        .filter(|l| l.contains("ip daddr @deny4") && l.contains("reject") && l.contains("deny lan"))
        .filter_map(|l| l.rsplit("# handle ").next().map(|h| h.trim().to_string()))
        .collect()
}

/// A hole cannot be opened any more: the daemon owns the project's table, so deleting its
/// deny rules is refused (`EPERM`) and verify keeps passing. (Before the tables were owned,
/// this step deleted them and checked that verify named the hole; `check_live`'s naming of
/// missing rules stays covered by the daemon's unit tests, and a table changed anyway is
/// restored by the daemon: tests/tests/owned_tables.rs.)
fn a_hole_cannot_be_opened(main: &Path) {
    let t = table(main);
    let handles = deny_lan_v4_handles(&t);
    assert_eq!(handles.len(), 2, "TCP and other-protocol rules");
    for h in &handles {
        let refused = run_ok(
            "nft",
            &["delete", "rule", "inet", &t, "isolate", "handle", h],
        )
        .expect_err("another process deleted a rule of the daemon's table");
        assert!(
            refused.to_string().contains("Operation not permitted"),
            "{refused}"
        );
    }
    assert_eq!(deny_lan_v4_handles(&t).len(), 2);
    let again = ok(main, &["network", "verify", "--local-only"]);
    assert!(again.contains("Network verify: passed"), "{again}");
    // `up` re-applies the rules (which starts the denied log afresh, as the next step expects).
    ok(main, &["up", "--trust"]);
}

/// `alca network log -f` prints an attempt made after it started, within a few polls.
fn follow_prints_new_attempts(main: &Path) {
    use std::io::{BufRead, BufReader};
    assert_route_via(LAN4, LAN_VETH);
    let state = main.join(".state");
    // setpriv execs alca itself (runuser would stay in between), so kill() reaches it.
    let mut child = Command::new("setpriv")
        .args([
            &format!("--reuid={USER}"),
            &format!("--regid={USER}"),
            "--init-groups",
        ])
        .arg(built_binary("alca"))
        .args(["network", "log", "-f"])
        .current_dir(main)
        .env("XDG_STATE_HOME", &state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("alca network log -f");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first screen (the log so far) is printed before the attempt.
    std::thread::sleep(Duration::from_millis(1500));
    while rx.try_recv().is_ok() {}
    let port = LAN_PORT + 1;
    let out = exec(&container(main), &alca_e2e::docker::nc_script(LAN4, port));
    assert_eq!(Probe::classify(&out), Probe::Refused, "{out}");
    let want = format!("lan-access = [\"{LAN4}:{port}\"]");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = false;
    while Instant::now() < deadline && !found {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            found = line.ends_with(&want);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        found,
        "`log -f` did not print the new attempt to {LAN4}:{port}"
    );
}

/// With `lan-access = ["10.99.0.2:18080"]` the entry is probed, reached and reported allowed.
fn allow_listed_entries_are_reached(main: &Path) {
    assert_route_via(LAN4, LAN_VETH);
    let _listener = Listener::start(Some(LANHOST_NS), "lanhost", "0.0.0.0", LAN_PORT, 60)
        .expect("lanhost listener");
    std::fs::write(
        main.join(".alca.toml"),
        "image = \"alca-test/busybox:latest\"\nruntime = \"docker\"\n\
         [network]\nlan-access = [\"10.99.0.2:18080\"]\n",
    )
    .unwrap();
    ok(main, &["up", "-f", "--trust"]);
    let plan = ok(main, &["network", "verify", "--local-only", "--plan"]);
    let row = plan
        .lines()
        .find(|l| l.starts_with("lan-access 10.99.0.2:18080\t"))
        .unwrap_or_else(|| panic!("allow-listed entry not in the plan: {plan}"));
    assert!(row.contains("\ttcp\t10.99.0.2\t18080\tallowed\t"), "{row}");
    let report = ok(main, &["network", "verify", "--local-only"]);
    eprintln!("{report}");
    let line = report
        .lines()
        .find(|l| l.contains("lan-access 10.99.0.2:18080"))
        .expect("allow-listed row");
    assert!(
        line.starts_with("ok") && line.contains("allowed") && line.contains("connected"),
        "{line}"
    );
    assert!(report.contains("Network verify: passed"), "{report}");
}

/// With `proxy` set, the redirect row sees its probe arrive at the proxy (in `lanhost`) and
/// LAN destinations stay blocked.
fn proxy_redirect_is_seen(main: &Path) {
    const PROXY_PORT: u16 = 18090;
    assert_route_via(LAN4, LAN_VETH);
    let guard = run("nft", &["list", "table", "inet", "testenv-uplink-guard"]).unwrap();
    assert!(guard.status.success(), "the uplink guard must be loaded");
    let _proxy = Listener::start(Some(LANHOST_NS), "proxy", "0.0.0.0", PROXY_PORT, 60)
        .expect("proxy listener");
    std::fs::write(
        main.join(".alca.toml"),
        format!(
            "image = \"alca-test/busybox:latest\"\nruntime = \"docker\"\n\
             [network]\nproxy = \"{LAN4}:{PROXY_PORT}\"\n"
        ),
    )
    .unwrap();
    ok(main, &["up", "-f", "--trust"]);
    let report = ok(main, &["network", "verify", "--local-only"]);
    eprintln!("{report}");
    let line = report
        .lines()
        .find(|l| l.contains("proxy redirect"))
        .unwrap_or_else(|| panic!("no proxy row: {report}"));
    assert!(
        line.starts_with("ok") && line.contains("redirected") && line.contains("sent to the proxy"),
        "{line}"
    );
    assert!(report.contains("Network verify: passed"), "{report}");
}

/// The same verification through rootful Podman (aardvark-dns on the gateway is the resolver).
fn rootful_podman_verifies(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(".alca.toml"),
        "image = \"localhost/alca-test/busybox:latest\"\nruntime = \"podman\"\n",
    )
    .unwrap();
    let state = dir.join(".state");
    let env = [("XDG_STATE_HOME", state.to_str().unwrap())];
    let root = |args: &[&str]| {
        let out = alca_as(None, dir, args, &env);
        assert!(out.status.success(), "alca {args:?}: {}", text(&out));
        text(&out)
    };
    assert!(root(&["up", "--trust"]).contains("Verifying network isolation (quick)"));
    let report = root(&["network", "verify", "--local-only"]);
    eprintln!("{report}");
    assert!(
        report.contains("bridge gateway") && report.contains("answered"),
        "{report}"
    );
    assert!(report.contains("Network verify: passed"), "{report}");
    root(&["down", "--force"]);
}
