//! End-to-end suite of `alca-netd` on the real system dbus-daemon, polkitd and nftables:
//! `alca network-helper install` for real, then calls as the unprivileged users `alcatest`
//! (added to group `alcatraz`) and `alcaother` (not), crash safety under `kill -9`, re-apply,
//! stale-table sweep, `alca up/run/down` as `alcatest` without sudo with probes from inside the
//! container to the `lanhost` netns and the host, and `uninstall`.
//!
//! One test function with ordered steps: every step shares the one system daemon.
//! Needs root (tests/run.sh) and the test env (tests/env/setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alca_e2e::docker::{docker_ok, nc_script, Probe};
use alca_e2e::netd::{
    alca, alca_tables, apply_as, built_binary, call_as, container_exists, daemon_pid,
    docker_project, env_refs, group_has, install_helper_for, project_id, remove_as, table_snapshot,
    text, up_env, Reply, TempGroupMember, TempGroupRemoval, VethLink, Watch, INSTALLED_DAEMON,
};
use alca_e2e::netns::{
    assert_route_local, assert_route_via, run, run_ok, uplink_ipv4, Listener, HOST_LAN4, LAN4,
    LANHOST_NS, LAN_VETH, PUBLIC4,
};
use alca_netd::shipped::FILES;
use alca_netd::spec::{bridge_name, resolvers_from_resolv_conf, MAX_REQUEST_BYTES};

const OWNER: &str = "alcatest";
const OTHER: &str = "alcaother";
const PROJ_A: &str = "0e2ea00000000000000000000000000a";
const PROJ_B: &str = "0e2eb00000000000000000000000000b";
const PROJ_C: &str = "0e2ec00000000000000000000000000c";
const STRAY: &str = "deadbeefdeadbeefdeadbeefdeadbeef";

fn table(project: &str) -> String {
    format!("alca-{project}")
}

/// A minimal spec; `open` adds one allow rule so two versions compile to different rulesets.
fn spec(project: &str, open: bool) -> String {
    let allow = if open {
        r#"[{"net":"10.99.0.2/32","proto":"tcp","port":18080}]"#
    } else {
        "[]"
    };
    format!(
        r#"{{"project":"{project}","bridge":"{}","allow":{allow}}}"#,
        bridge_name(project)
    )
}

fn expect_error(reply: Reply, kind: &str, mentions: &str) {
    match &reply {
        Reply::Err { message, .. } => {
            assert_eq!(reply.error_kind(), Some(kind), "{reply:?}");
            assert!(message.contains(mentions), "{message:?} lacks {mentions:?}");
        }
        Reply::Ok(_) => panic!("expected {kind}, got success"),
    }
}

/// Uninstalls (best effort) and removes the scratch project when the test ends, pass or fail.
struct Cleanup {
    project_dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for sub in ["up-ok", "up-denied"] {
            let dir = self.project_dir.join(sub);
            if dir.is_dir() {
                let env = up_env(&dir);
                let _ = alca(Some(OWNER), &dir, &["down", "--force"], &env_refs(&env));
            }
        }
        let _ = Command::new(built_binary("alca"))
            .args(["network-helper", "uninstall", "-y"])
            .output();
        let _ = std::fs::remove_dir_all(&self.project_dir);
    }
}

/// A project directory `alcatest` owns whose state names PROJ_A.
fn scratch_project() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alca-e2e-netd-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".alca")).unwrap();
    std::fs::write(
        dir.join(".alca.toml"),
        "image = \"alca-test/busybox:latest\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join(".alca/state.json"),
        format!(r#"{{"id":"{PROJ_A}","created_at":0}}"#),
    )
    .unwrap();
    run_ok(
        "chown",
        &["-R", &format!("{OWNER}:{OWNER}"), dir.to_str().unwrap()],
    )
    .unwrap();
    dir
}

#[test]
fn netd_end_to_end() {
    assert!(
        nix_is_root(),
        "the alca-netd suite must run as root (tests/run.sh)"
    );
    let project_dir = scratch_project();
    let _cleanup = Cleanup {
        project_dir: project_dir.clone(),
    };
    // Start from nothing, whatever an earlier run left.
    let _ = alca(
        None,
        &project_dir,
        &["network-helper", "uninstall", "-y"],
        &[],
    );

    let foreign = foreign_tables();
    install(&project_dir);
    owner_applies(&project_dir);
    outsider_is_denied();
    authorised_outsider_is_not_owner();
    bad_requests_change_nothing();
    live_interface_matches_shipped_xml();
    kill_during_applies_never_loses_the_table();
    reapply_restores_a_deleted_table();
    stale_tables_are_swept_at_start();
    owner_removes();
    up_isolates_through_the_daemon(&project_dir);
    up_without_the_group_fails_closed(&project_dir);
    uninstall(&project_dir);
    let left = foreign_tables();
    for t in &foreign {
        assert!(
            left.contains(t),
            "a table alca does not own was removed: {t}"
        );
    }
}

/// `family name` of every nftables table not prefixed `alca-`.
fn foreign_tables() -> Vec<String> {
    let listing: serde_json::Value =
        serde_json::from_str(&run_ok("nft", &["-j", "list", "tables"]).unwrap()).unwrap();
    let tables = listing["nftables"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = tables
        .iter()
        .filter_map(|t| {
            let t = t.get("table")?;
            Some(format!("{} {}", t["family"].as_str()?, t["name"].as_str()?))
        })
        .filter(|n| !n.split(' ').nth(1).unwrap_or("").starts_with("alca-"))
        .collect();
    // Docker's iptables-nft tables and the test env's uplink guard at least.
    assert!(!names.is_empty(), "no foreign table to watch");
    names
}

fn nix_is_root() -> bool {
    run_ok("id", &["-u"]).map(|u| u == "0").unwrap_or(false)
}

fn install(dir: &Path) {
    let denied = alca(Some(OWNER), dir, &["network-helper", "install", "-y"], &[]);
    assert!(!denied.status.success());
    assert!(
        text(&denied).contains("must run as root"),
        "{}",
        text(&denied)
    );

    let out = install_helper_for(OWNER, dir);
    let said = text(&out);
    assert!(out.status.success(), "install failed: {said}");
    assert!(
        said.contains(&format!("Added user {OWNER} to group alcatraz")),
        "{said}"
    );
    assert!(said.contains("newgrp alcatraz"), "{said}");
    assert!(
        said.contains("Daemon: running (D-Bus activation)"),
        "{said}"
    );
    assert!(group_has("alcatraz", Some(OWNER)));
    assert!(!group_has("alcatraz", Some(OTHER)));
    let meta = run_ok("stat", &["-c", "%u %a", INSTALLED_DAEMON]).unwrap();
    assert_eq!(
        meta, "0 755",
        "the daemon binary must be root-owned and not writable by others"
    );
    // No systemd as PID 1 here: every file but the systemd units, byte for byte as shipped.
    for f in FILES.iter().filter(|f| !f.systemd_only) {
        let installed = std::fs::read_to_string(f.path).unwrap_or_default();
        assert_eq!(installed, f.contents, "{} not installed as shipped", f.path);
    }
    let status = text(&alca(
        None,
        Path::new("/"),
        &["network-helper", "status"],
        &[],
    ));
    assert!(status.contains("Installed: Yes"), "{status}");
    assert!(
        status.contains("Daemon: running (D-Bus activation)"),
        "{status}"
    );
}

fn owner_applies(dir: &Path) {
    let reply = apply_as(OWNER, &spec(PROJ_A, false)).unwrap();
    assert!(reply.is_ok(), "{reply:?}");
    assert!(alca_tables().unwrap().contains(&table(PROJ_A)));
    let saved = std::fs::read_to_string(format!("/var/lib/alcatraz/projects/{PROJ_A}.json"))
        .expect("saved spec");
    let uid = run_ok("id", &["-u", OWNER]).unwrap();
    assert!(saved.contains(&format!("\"owner_uid\": {uid}")), "{saved}");
    // The CLI's client path: `status` inside the project, as the owner.
    let status = text(&alca(Some(OWNER), dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Rules applied: Yes"), "{status}");
}

fn outsider_is_denied() {
    let before = table_snapshot(&table(PROJ_A)).unwrap();
    expect_error(
        apply_as(OTHER, &spec(PROJ_A, true)).unwrap(),
        "NotAuthorized",
        "alcatraz",
    );
    expect_error(
        apply_as(OTHER, &spec(PROJ_B, false)).unwrap(),
        "NotAuthorized",
        "apply",
    );
    expect_error(remove_as(OTHER, PROJ_A).unwrap(), "NotAuthorized", "remove");
    assert_eq!(table_snapshot(&table(PROJ_A)).unwrap(), before);
    assert!(!alca_tables().unwrap().contains(&table(PROJ_B)));
    // Status and List need no polkit but show only the caller's own projects.
    let list = call_as(OTHER, "List", &[]).unwrap();
    assert!(
        matches!(&list, Reply::Ok(s) if !s.contains(PROJ_A)),
        "{list:?}"
    );
    expect_error(
        call_as(OTHER, "Status", &[format!("string:{PROJ_A}")]).unwrap(),
        "NotOwner",
        "belongs to uid",
    );
}

fn authorised_outsider_is_not_owner() {
    let before = table_snapshot(&table(PROJ_A)).unwrap();
    let _member = TempGroupMember::add(OTHER, "alcatraz").unwrap();
    expect_error(
        remove_as(OTHER, PROJ_A).unwrap(),
        "NotOwner",
        "belongs to uid",
    );
    expect_error(
        apply_as(OTHER, &spec(PROJ_A, true)).unwrap(),
        "NotOwner",
        "belongs to uid",
    );
    // Another project id with the same first ten digits names the same bridge: its proxy DNAT
    // would take over the owner's containers, so a bridge belongs to one project only.
    let squatter = format!("{}ffffffff", &PROJ_A[..10]);
    let body = format!(
        r#"{{"project":"{squatter}","bridge":"{}","allow_all":true,"proxy":"10.99.0.1:9"}}"#,
        bridge_name(PROJ_A)
    );
    expect_error(apply_as(OTHER, &body).unwrap(), "NotOwner", "bridge");
    assert!(!alca_tables().unwrap().contains(&table(&squatter)));
    assert_eq!(table_snapshot(&table(PROJ_A)).unwrap(), before);
}

fn bad_requests_change_nothing() {
    let tables = alca_tables().unwrap();
    let before = table_snapshot(&table(PROJ_A)).unwrap();
    let unknown_field = format!(
        r#"{{"project":"{PROJ_C}","bridge":"{}","nft":"flush ruleset"}}"#,
        bridge_name(PROJ_C)
    );
    let cases = [
        ("{".to_string(), "not a valid network spec"),
        (unknown_field, "unknown field"),
        (
            r#"{"project":"ABC; flush ruleset","bridge":"alca-ABC"}"#.to_string(),
            "project",
        ),
        (
            format!(r#"{{"project":"{PROJ_C}","bridge":"docker0"}}"#),
            "docker0",
        ),
        (
            format!("{}{}", spec(PROJ_C, false), " ".repeat(MAX_REQUEST_BYTES)),
            "more than the limit",
        ),
    ];
    for (body, mentions) in &cases {
        expect_error(apply_as(OWNER, body).unwrap(), "InvalidRequest", mentions);
    }
    expect_error(
        remove_as(OWNER, "../../etc/passwd").unwrap(),
        "InvalidRequest",
        "project",
    );
    // Wrong D-Bus signatures never reach the decoder: the bus binding refuses them by name.
    for args in [
        vec!["int32:7".to_string()],
        vec![format!("string:{}", spec(PROJ_C, false)), "string:x".into()],
        vec![],
    ] {
        let reply = call_as(OWNER, "Apply", &args).unwrap();
        assert_eq!(
            reply.error_kind(),
            Some("InvalidArgs"),
            "Apply{args:?}: {reply:?}"
        );
    }
    {
        // The project's own bridge name, taken by an interface that is not a bridge.
        let _veth = VethLink::add(&bridge_name(PROJ_C), "alca-e2e-peer").unwrap();
        expect_error(
            apply_as(OWNER, &spec(PROJ_C, false)).unwrap(),
            "InvalidRequest",
            "not a bridge",
        );
    }
    assert_eq!(alca_tables().unwrap(), tables);
    assert_eq!(table_snapshot(&table(PROJ_A)).unwrap(), before);
    assert!(!Path::new(&format!("/var/lib/alcatraz/projects/{PROJ_C}.json")).exists());
}

fn live_interface_matches_shipped_xml() {
    let live = run_ok(
        "dbus-send",
        &[
            "--system",
            "--print-reply=literal",
            "--dest=io.github.alcatraz.Netd1",
            "/io/github/alcatraz/Netd1",
            "org.freedesktop.DBus.Introspectable.Introspect",
        ],
    )
    .unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbus/io.github.alcatraz.Netd1.xml"),
    )
    .unwrap();
    let iface = |xml: &str| -> Vec<String> {
        let start = xml
            .find("<interface name=\"io.github.alcatraz.Netd1\">")
            .expect("interface");
        let end = start + xml[start..].find("</interface>").expect("end of interface");
        xml[start..end]
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    assert_eq!(iface(&live), iface(&shipped));
}

/// Applies alternate between two rulesets while the daemon is killed with SIGKILL; the table
/// must exist at every sample and end as one of the two versions.
fn kill_during_applies_never_loses_the_table() {
    assert!(apply_as(OWNER, &spec(PROJ_A, false)).unwrap().is_ok());
    let closed = table_snapshot(&table(PROJ_A)).unwrap().unwrap();
    assert!(apply_as(OWNER, &spec(PROJ_A, true)).unwrap().is_ok());
    let open = table_snapshot(&table(PROJ_A)).unwrap().unwrap();
    assert_ne!(closed, open);

    const APPLIES: usize = 30;
    let done = Arc::new(AtomicUsize::new(0));
    let worker = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut ok = 0;
            for i in 0..APPLIES {
                if matches!(apply_as(OWNER, &spec(PROJ_A, i % 2 == 0)), Ok(Reply::Ok(_))) {
                    ok += 1;
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            ok
        })
    };
    let mut kills = 0;
    for at in [4, 11, 19] {
        for _ in 0..1200 {
            if done.load(Ordering::SeqCst) >= at {
                break;
            }
            assert!(
                alca_tables().unwrap().contains(&table(PROJ_A)),
                "table missing while applies run"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(pid) = daemon_pid() {
            if run("kill", &["-9", &pid.to_string()])
                .unwrap()
                .status
                .success()
            {
                kills += 1;
            }
        }
        assert!(
            alca_tables().unwrap().contains(&table(PROJ_A)),
            "table missing after kill"
        );
    }
    let succeeded = worker.join().unwrap();
    eprintln!("kill -9 loop: {kills} kills, {succeeded}/{APPLIES} applies succeeded");
    assert!(
        kills >= 1,
        "the daemon was never running when we tried to kill it"
    );
    assert!(succeeded >= 1, "no apply succeeded around the kills");
    let after = table_snapshot(&table(PROJ_A))
        .unwrap()
        .expect("table missing after the loop");
    assert!(
        after == closed || after == open,
        "table is neither the old nor the new ruleset"
    );
    // The daemon came back (activation) and converges on a known version.
    assert!(apply_as(OWNER, &spec(PROJ_A, false)).unwrap().is_ok());
    assert_eq!(table_snapshot(&table(PROJ_A)).unwrap().unwrap(), closed);
}

fn reapply_restores_a_deleted_table() {
    let expected = table_snapshot(&table(PROJ_A)).unwrap().unwrap();
    run_ok("nft", &["delete", "table", "inet", &table(PROJ_A)]).unwrap();
    assert!(table_snapshot(&table(PROJ_A)).unwrap().is_none());
    let out = run_ok(INSTALLED_DAEMON, &["--reapply"]).unwrap();
    assert!(out.contains("re-applied"), "{out}");
    assert_eq!(table_snapshot(&table(PROJ_A)).unwrap(), Some(expected));
}

fn stop_daemon() {
    if let Some(pid) = daemon_pid() {
        run_ok("kill", &[&pid.to_string()]).unwrap();
    }
    for _ in 0..100 {
        if daemon_pid().is_none() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("alca-netd did not stop on SIGTERM");
}

/// A daemon started by hand re-applies saved specs and sweeps strays before it serves, and
/// `status` says how it runs; so does one started again by D-Bus activation.
fn stale_tables_are_swept_at_start() {
    let expected = table_snapshot(&table(PROJ_A)).unwrap();
    stop_daemon();
    run_ok("nft", &["add", "table", "inet", &table(STRAY)]).unwrap();
    run_ok("nft", &["delete", "table", "inet", &table(PROJ_A)]).unwrap();
    let mut manual = Command::new(INSTALLED_DAEMON)
        .arg("--foreground")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = manual.id();
    let mut serving = false;
    for _ in 0..200 {
        if daemon_pid() == Some(pid) {
            serving = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = text(&alca(
        None,
        Path::new("/"),
        &["network-helper", "status"],
        &[],
    ));
    let _ = manual.kill();
    let _ = manual.wait();
    assert!(
        serving,
        "the manually started daemon never owned the bus name"
    );
    assert!(status.contains("Daemon: running (manual)"), "{status}");
    let tables = alca_tables().unwrap();
    assert!(
        !tables.contains(&table(STRAY)),
        "stray table not swept: {tables:?}"
    );
    assert_eq!(
        table_snapshot(&table(PROJ_A)).unwrap(),
        expected,
        "saved spec not re-applied"
    );

    // Any call starts the daemon again by D-Bus activation; it sweeps before it answers.
    run_ok("nft", &["add", "table", "inet", &table(STRAY)]).unwrap();
    for _ in 0..100 {
        if daemon_pid().is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = call_as(OWNER, "List", &[]).unwrap();
    assert!(
        matches!(&list, Reply::Ok(s) if s.contains(PROJ_A)),
        "{list:?}"
    );
    let tables = alca_tables().unwrap();
    assert!(
        !tables.contains(&table(STRAY)),
        "stray table not swept: {tables:?}"
    );
    assert!(tables.contains(&table(PROJ_A)));
}

fn owner_removes() {
    assert!(remove_as(OWNER, PROJ_A).unwrap().is_ok());
    assert!(!alca_tables().unwrap().contains(&table(PROJ_A)));
    assert!(!Path::new(&format!("/var/lib/alcatraz/projects/{PROJ_A}.json")).exists());
    assert!(
        remove_as(OWNER, PROJ_A).unwrap().is_ok(),
        "removing twice is fine"
    );
    // Leave rules behind for uninstall to clean up.
    assert!(apply_as(OWNER, &spec(PROJ_A, true)).unwrap().is_ok());
    assert!(apply_as(OWNER, &spec(PROJ_B, false)).unwrap().is_ok());
}

fn uninstall(dir: &Path) {
    let out = alca(None, dir, &["network-helper", "uninstall", "-y"], &[]);
    assert!(out.status.success(), "uninstall failed: {}", text(&out));
    assert_eq!(alca_tables().unwrap(), Vec::<String>::new());
    assert!(!Path::new("/var/lib/alcatraz").exists());
    assert!(!Path::new(INSTALLED_DAEMON).exists());
    for f in FILES {
        assert!(!Path::new(f.path).exists(), "{} left behind", f.path);
    }
    assert!(!group_has("alcatraz", None));
    assert_eq!(daemon_pid(), None);
    let status = text(&alca(None, dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Installed: No"), "{status}");
    assert!(status.contains("Daemon: not running"), "{status}");
}

/// Ports of the listeners the `up` step probes (outside the isolation suite's range).
const UP_OPEN: u16 = 21801;
const UP_CLOSED: u16 = 21802;
const UP_HOST_OPEN: u16 = 21803;
const UP_HOST_CLOSED: u16 = 21804;

/// The `.alca.toml` of the isolated project: one LAN IP:port, the host's IP on one port, and a
/// `commands.up` that records the container's first connection attempt, made straight after
/// start: the rules must already refuse it.
fn isolated_config() -> String {
    format!(
        "[commands]\nup = \"echo | nc -w 3 {LAN4} {UP_CLOSED} > /workspace/first-probe 2>&1; true\"\n\
         [network]\nlan-access = [\"{LAN4}:{UP_OPEN}\", \"${{alca:HOST_IP}}:{UP_HOST_OPEN}\"]\n"
    )
}

/// What a TCP connection from inside the project's container (through `alca run` as the
/// owner) to `addr`:`port` ended with.
fn probe_in(dir: &Path, env: &[(&str, &str)], addr: &str, port: u16) -> Probe {
    let out = alca(
        Some(OWNER),
        dir,
        &["run", "sh", "-c", &nc_script(addr, port)],
        env,
    );
    Probe::classify(&text(&out))
}

fn expect_probe(dir: &Path, env: &[(&str, &str)], addr: &str, port: u16, want: &str) {
    let got = probe_in(dir, env, addr, port);
    let ok = match want {
        "refused" => got == Probe::Refused,
        tag => got.answered_by(tag),
    };
    assert!(
        ok,
        "{addr}:{port} from the container: expected {want}, got {got:?}"
    );
}

/// The CLI's guard for real: `up` as a group member (no sudo) applies the rules through the
/// daemon before the container starts, and from inside the container the LAN and the host
/// are refused except what lan-access lists (also after a restart); `down` removes them.
fn up_isolates_through_the_daemon(scratch: &Path) {
    for addr in [LAN4, PUBLIC4] {
        assert_route_via(addr, LAN_VETH);
    }
    let uplink = uplink_ipv4().expect("uplink address");
    for local in [HOST_LAN4, uplink.as_str()] {
        assert_route_local(local);
    }
    let _lan: Vec<Listener> = [UP_OPEN, UP_CLOSED]
        .iter()
        .map(|p| Listener::start(Some(LANHOST_NS), "lanhost", "::", *p, 180).expect("listener"))
        .collect();
    let _host: Vec<Listener> = [UP_HOST_OPEN, UP_HOST_CLOSED]
        .iter()
        .map(|p| Listener::start(None, "host", "0.0.0.0", *p, 180).expect("listener"))
        .collect();

    let dir = docker_project(scratch, "up-ok", OWNER, &isolated_config());
    let owned = up_env(&dir);
    let env = env_refs(&owned);
    let tables = Watch::start("nft", &["monitor", "tables"]).expect("nft monitor");
    let events = Watch::start(
        "docker",
        &[
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ],
    )
    .expect("docker events");
    std::thread::sleep(Duration::from_millis(500));
    let up = alca(Some(OWNER), &dir, &["up", "--trust"], &env);
    assert!(up.status.success(), "alca up failed: {}", text(&up));
    let id = project_id(&dir);
    let name = format!("alca-{}", &id[..12]);
    let table_added = tables.first(&format!("add table inet {}", table(&id)));
    let created = events.first(&format!("create {name}"));
    match (table_added, created) {
        (Some(t), Some(c)) => assert!(t < c, "the container was created before its rules"),
        _ => panic!(
            "missing events: nft {:?}, docker {:?}",
            tables.lines(),
            events.lines()
        ),
    }
    drop((tables, events));
    assert!(alca_tables().unwrap().contains(&table(&id)));
    // Docker's embedded DNS forwards to the host's resolvers across the bridge: they are allowed
    // (checked in the live table; no query is sent to a real resolver).
    let live = run_ok("nft", &["list", "table", "inet", &table(&id)]).expect("list table");
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for resolver in resolvers_from_resolv_conf(&resolv) {
        assert!(
            live.contains(&resolver.to_string()),
            "resolver {resolver} is not allowed: {live}"
        );
    }
    assert!(container_exists(&id));
    let status = text(&alca(Some(OWNER), &dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Rules applied: Yes"), "{status}");

    let first = std::fs::read_to_string(dir.join("first-probe")).expect("commands.up ran");
    assert_eq!(
        Probe::classify(&first),
        Probe::Refused,
        "first connection: {first}"
    );
    let gateway = docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        &format!("alca-{}", &id[..12]),
    ])
    .expect("gateway");
    assert_route_local(&gateway);
    let check_isolation = || {
        expect_probe(&dir, &env, LAN4, UP_OPEN, "lanhost");
        expect_probe(&dir, &env, LAN4, UP_CLOSED, "refused");
        expect_probe(&dir, &env, PUBLIC4, UP_CLOSED, "lanhost");
        // `${alca:HOST_IP}:PORT` is the project network's gateway (the Go original's "bridge
        // network gateway"): it reaches the host service listening on all addresses there, and
        // the same port on the host's other addresses stays refused.
        expect_probe(&dir, &env, &gateway, UP_HOST_OPEN, "host");
        for local in [HOST_LAN4, uplink.as_str()] {
            expect_probe(&dir, &env, local, UP_HOST_OPEN, "refused");
        }
        for local in [gateway.as_str(), HOST_LAN4, &uplink] {
            expect_probe(&dir, &env, local, UP_HOST_CLOSED, "refused");
        }
    };
    check_isolation();
    docker_ok(&["restart", "-t", "0", &format!("alca-{}", &id[..12])]).expect("docker restart");
    check_isolation();
    let project_status = text(&alca(Some(OWNER), &dir, &["status"], &env));
    assert!(
        project_status.contains("Rules applied: Yes"),
        "{project_status}"
    );

    let down = alca(Some(OWNER), &dir, &["down"], &env);
    assert!(down.status.success(), "alca down failed: {}", text(&down));
    assert!(!alca_tables().unwrap().contains(&table(&id)));
    assert!(!container_exists(&id));
    let status = text(&alca(Some(OWNER), &dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Rules applied: No"), "{status}");
}

/// Without the group, `up` fails closed: no container runs without its rules.
fn up_without_the_group_fails_closed(scratch: &Path) {
    let _out = TempGroupRemoval::remove(OWNER, "alcatraz").unwrap();
    let dir = docker_project(scratch, "up-denied", OWNER, "");
    let owned = up_env(&dir);
    let env = env_refs(&owned);
    let denied = alca(Some(OWNER), &dir, &["up", "--trust"], &env);
    let said = text(&denied);
    assert!(!denied.status.success(), "up must fail closed: {said}");
    assert!(said.contains("sudo alca network-helper install"), "{said}");
    assert!(said.contains("newgrp alcatraz"), "{said}");
    if let Ok(id) = std::fs::read_to_string(dir.join(".alca/state.json")) {
        let id: serde_json::Value = serde_json::from_str(&id).unwrap();
        let id = id["id"].as_str().unwrap();
        assert!(!container_exists(id), "a container runs without its rules");
        assert!(!alca_tables().unwrap().contains(&table(id)));
    }
}
