//! End-to-end suite of `alca-netd` on the real system dbus-daemon, polkitd and nftables:
//! `alca network-helper install` for real, then calls as the unprivileged users `alcatest`
//! (added to group `alcatraz`) and `alcaother` (not), crash safety under `kill -9`, re-apply,
//! stale-table sweep, `alca up/run/down` as `alcatest` without sudo with probes from inside the
//! container to the `lanhost` netns and the host, and `uninstall`. It starts from a machine
//! where FUSE is root-only (`/dev/fuse` 0600, no `user_allow_other`): `up` with
//! `workdir_exclude` fails closed before install, works after it, and `uninstall` puts both
//! back byte for byte.
//!
//! One test function with ordered steps: every step shares the one system daemon.
//! Needs root (tests/run.sh) and the test env (tests/env/setup.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alca_contract::net_spec::{bridge_name, resolvers_from_resolv_conf, MAX_REQUEST_BYTES};
use alca_contract::shipped::FILES;
use alca_e2e::docker::{docker_ok, nc_script, refusal_sampler, Probe};
use alca_e2e::netd::{
    alca, alca_tables, apply_as, built_binary, call_as, container_exists, daemon_pid,
    docker_project, env_refs, group_has, install_helper_for, project_id, remove_as, ruleset,
    stop_daemon, table_snapshot, text, up_env, without_bus, ForeignRuleset, Reply, TempGroupMember,
    TempGroupRemoval, VethLink, Watch, INSTALLED_DAEMON,
};
use alca_e2e::netns::{
    assert_route_local, assert_route_via, run, run_ok, uplink_ipv4, Listener, OnlinkNet, HOST_LAN4,
    LAN4, LANHOST_NS, LAN_VETH, ONLINK_BRIDGE, ONLINK_NET4, ONLINK_NET6, ONLINK_NS, ONLINK_PEER4,
    ONLINK_PEER6, PUBLIC4,
};

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
        for sub in ["up-ok", "up-denied", "up-excluded"] {
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
    alca_e2e::privilege::require_root("the alca-netd suite");
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
    let fuse = RootOnlyFuse::make();
    excluded_up_fails_closed_before_install(&project_dir);
    install(&project_dir);
    fuse.assert_opened_by_install();
    daemon_runs_with_its_units_capabilities();
    excluded_up_works_after_install(&project_dir);
    owner_applies(&project_dir);
    outsider_is_denied();
    authorised_outsider_is_not_owner();
    quota_holds();
    bad_requests_change_nothing();
    live_interface_matches_shipped_xml();
    kill_during_applies_never_loses_the_table();
    reapply_restores_a_deleted_table();
    stale_tables_are_swept_at_start();
    owner_removes();
    up_isolates_through_the_daemon(&project_dir);
    up_without_the_group_fails_closed(&project_dir);
    uninstall(&project_dir);
    fuse.assert_as_before();
    drop(fuse);
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

/// `/dev/fuse` and `/etc/fuse.conf` as a machine nothing prepared has them (0600 root, no
/// `user_allow_other`) for the guard's lifetime; the test environment's state comes back on drop.
struct RootOnlyFuse {
    env_conf: Option<Vec<u8>>,
    env_device: String,
    fresh_conf: Vec<u8>,
}

const FUSE_CONF: &str = "/etc/fuse.conf";
const FUSE_DEVICE: &str = "/dev/fuse";

fn device_access() -> String {
    run_ok("stat", &["-c", "%a %G", FUSE_DEVICE]).expect("stat /dev/fuse")
}

impl RootOnlyFuse {
    fn make() -> RootOnlyFuse {
        let env_conf = std::fs::read(FUSE_CONF).ok();
        let env_device = device_access();
        let fresh: String = String::from_utf8_lossy(env_conf.as_deref().unwrap_or_default())
            .lines()
            .filter(|l| l.trim() != "user_allow_other" && !l.starts_with("# added by alca"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(FUSE_CONF, &fresh).expect("write fuse.conf");
        run_ok("chgrp", &["root", FUSE_DEVICE]).expect("chgrp");
        run_ok("chmod", &["0600", FUSE_DEVICE]).expect("chmod");
        RootOnlyFuse {
            env_conf,
            env_device,
            fresh_conf: fresh.into_bytes(),
        }
    }

    fn assert_opened_by_install(&self) {
        assert_eq!(
            device_access(),
            "660 alcatraz",
            "install opens /dev/fuse to the group"
        );
        let conf = std::fs::read_to_string(FUSE_CONF).expect("fuse.conf");
        assert!(
            conf.lines().any(|l| l == "user_allow_other"),
            "install enables user_allow_other: {conf}"
        );
    }

    fn assert_as_before(&self) {
        assert_eq!(device_access(), "600 root", "uninstall puts /dev/fuse back");
        assert_eq!(
            std::fs::read(FUSE_CONF).expect("fuse.conf"),
            self.fresh_conf,
            "uninstall leaves /etc/fuse.conf byte for byte as it was"
        );
    }
}

impl Drop for RootOnlyFuse {
    fn drop(&mut self) {
        if let Some(conf) = &self.env_conf {
            let _ = std::fs::write(FUSE_CONF, conf);
        }
        if let Some((mode, group)) = self.env_device.split_once(' ') {
            let _ = run("chgrp", &[group, FUSE_DEVICE]);
            let _ = run("chmod", &[mode, FUSE_DEVICE]);
        }
    }
}

/// The bus-activated daemon holds exactly the capabilities of alca-netd.service (bounding,
/// permitted and effective sets): every later step proves that set sufficient.
fn daemon_runs_with_its_units_capabilities() {
    let unit = alca_netd::unit_limits::unit_capabilities(alca_contract::shipped::SYSTEMD_SERVICE)
        .expect("unit capabilities");
    let pid = daemon_pid().expect("daemon running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{set}:\t")))
            .unwrap_or_else(|| panic!("{set} in {status}"));
        let mask = u64::from_str_radix(hex.trim(), 16).expect("hex");
        assert_eq!(
            alca_netd::unit_limits::names(mask),
            alca_netd::unit_limits::names(unit),
            "{set} of the daemon"
        );
    }
}

/// The excluded project's config (no network isolation: the daemon is not installed yet).
const EXCLUDED: &str = "workdir_exclude = [\"**/.env\"]\n[network]\nlan-access = [\"*\"]\n";

/// Before install, `up` with `workdir_exclude` stops at one line naming the fix, before it
/// creates anything.
fn excluded_up_fails_closed_before_install(scratch: &Path) {
    let dir = docker_project(scratch, "up-excluded", OWNER, EXCLUDED);
    let owned = up_env(&dir);
    let out = alca(Some(OWNER), &dir, &["up", "--trust"], &env_refs(&owned));
    let said = text(&out);
    assert!(!out.status.success(), "up without FUSE access: {said}");
    let error: Vec<&str> = said.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(error.len(), 1, "one error line: {said}");
    for needed in [
        "/dev/fuse is not open to you",
        "/etc/fuse.conf lacks user_allow_other",
        "sudo alca network-helper install",
    ] {
        assert!(error[0].contains(needed), "{needed:?} missing: {said}");
    }
    assert!(!said.contains("os error 13): Permission denied"), "{said}");
    assert!(
        !dir.join(".alca/state.json").exists(),
        "nothing created: {said}"
    );
    assert!(!dir.join(".alca/views").exists(), "no view state: {said}");
}

/// After install, the same `up` serves the view: `.env` is absent inside.
fn excluded_up_works_after_install(scratch: &Path) {
    let dir = scratch.join("up-excluded");
    std::fs::write(dir.join(".env"), "SECRET=1\n").expect("write .env");
    std::fs::write(dir.join("visible.txt"), "visible\n").expect("write");
    run_ok(
        "chown",
        &["-R", &format!("{OWNER}:{OWNER}"), dir.to_str().unwrap()],
    )
    .unwrap();
    let owned = up_env(&dir);
    let env = env_refs(&owned);
    let up = alca(Some(OWNER), &dir, &["up", "--trust", "-q"], &env);
    assert!(up.status.success(), "up after install: {}", text(&up));
    let ls = text(&alca(Some(OWNER), &dir, &["run", "ls", "-a"], &env));
    let down = alca(Some(OWNER), &dir, &["down"], &env);
    assert!(down.status.success(), "down: {}", text(&down));
    assert!(ls.lines().any(|l| l == "visible.txt"), "{ls}");
    assert!(!ls.lines().any(|l| l == ".env"), ".env visible: {ls}");
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
    // Reads are for members of the group too (polkit action netd.read), so no outsider can
    // flood them; a member sees only its own projects.
    expect_error(
        call_as(OTHER, "List", &[]).unwrap(),
        "NotAuthorized",
        "read",
    );
    expect_error(
        call_as(OTHER, "Status", &[format!("string:{PROJ_A}")]).unwrap(),
        "NotAuthorized",
        "read",
    );
    let _member = TempGroupMember::add(OTHER, "alcatraz").unwrap();
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
    squats_are_refused();
}

/// `Claim(project)` as `user`.
fn claim_as(user: &str, project: &str) -> Reply {
    call_as(user, "Claim", &[format!("string:{project}")]).unwrap()
}

/// A squatter's spec: another project id on the victim's bridge, with a proxy DNAT that would
/// capture the victim's traffic.
fn squat_body(victim: &str) -> (String, String) {
    let squatter = format!("{}ffffffff", &victim[..10]);
    let body = format!(
        r#"{{"project":"{squatter}","bridge":"{}","allow_all":true,"proxy":"10.99.0.1:9"}}"#,
        bridge_name(victim)
    );
    (squatter, body)
}

/// A real bridge interface standing in for a project's network (docker creates the same).
struct TempBridge(String);

impl TempBridge {
    fn add(name: &str) -> Self {
        run_ok("ip", &["link", "add", "name", name, "type", "bridge"]).unwrap();
        TempBridge(name.into())
    }
}

impl Drop for TempBridge {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.0]);
    }
}

/// Issue 22 item 8, as the attack: a member of `alcatraz` (OTHER, added by the caller) puts
/// rules on another user's bridge. Refused for a `lan-access = ["*"]` project (claimed, no
/// rules) before and after its network exists, for an existing bridge nobody claimed (the
/// create→Apply race, or a network made without a claim), and for a removed project whose
/// network still exists. No squatter table ever appears.
fn squats_are_refused() {
    // (1) OWNER's lan-access = ["*"] project claims its bridge before the network exists.
    assert!(claim_as(OWNER, PROJ_B).is_ok());
    let (squatter, body) = squat_body(PROJ_B);
    expect_error(
        apply_as(OTHER, &body).unwrap(),
        "NotOwner",
        "claimed by project",
    );
    expect_error(claim_as(OTHER, &squatter), "NotOwner", "claimed by project");
    {
        let _net = TempBridge::add(&bridge_name(PROJ_B));
        expect_error(
            apply_as(OTHER, &body).unwrap(),
            "NotOwner",
            "claimed by project",
        );
        // Knowing the owner's full id does not help either.
        expect_error(
            apply_as(OTHER, &spec(PROJ_B, false)).unwrap(),
            "NotOwner",
            "claimed by project",
        );
        // (3) Removed while its network exists: the name stays the owner's.
        assert!(remove_as(OWNER, PROJ_B).unwrap().is_ok());
        expect_error(
            apply_as(OTHER, &body).unwrap(),
            "NotOwner",
            "network still exists",
        );
        assert!(claim_as(OWNER, PROJ_B).is_ok(), "the owner takes it back");
        assert!(remove_as(OWNER, PROJ_B).unwrap().is_ok());
    }
    // (2) A bridge that exists but was never claimed (another user's network).
    {
        let _net = TempBridge::add(&bridge_name(PROJ_C));
        let (_, body) = squat_body(PROJ_C);
        expect_error(
            apply_as(OTHER, &body).unwrap(),
            "NotOwner",
            "no project claimed it",
        );
        expect_error(
            apply_as(OWNER, &spec(PROJ_C, false)).unwrap(),
            "NotOwner",
            "no project claimed it",
        );
    }
    for p in [squatter, squat_body(PROJ_C).0] {
        assert!(!alca_tables().unwrap().contains(&table(&p)), "{p}");
    }
    assert!(!Path::new(&format!(
        "/var/lib/alcatraz/claims/{}.json",
        bridge_name(PROJ_C)
    ))
    .exists());
}

/// The limits file for the daemon's next start; removed (and the daemon stopped, so the next
/// one starts with the defaults) on drop.
struct TempLimits;

const LIMITS_FILE: &str = "/etc/alcatraz/netd-limits.json";

impl TempLimits {
    fn set(json: &str) -> Self {
        std::fs::create_dir_all("/etc/alcatraz").unwrap();
        std::fs::write(LIMITS_FILE, json).unwrap();
        stop_daemon();
        TempLimits
    }
}

impl Drop for TempLimits {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(LIMITS_FILE);
        let _ = std::fs::remove_dir("/etc/alcatraz");
        stop_daemon();
    }
}

/// Issue 22 item 9, as the attack: one member takes project after project. With a quota of 3
/// per user (set by root in the limits file), the fourth is refused with an error naming the
/// limit and the fix, and nothing of it is left; removing one makes room again.
fn quota_holds() {
    let _limits = TempLimits::set(r#"{"projects_per_user": 3}"#);
    // Distinct first ten digits: distinct bridges.
    let ids: Vec<String> = (1..=4).map(|i| format!("0e2ef{i}0000000000")).collect();
    // OWNER holds PROJ_A (and its claim) already.
    assert!(apply_as(OWNER, &spec(&ids[0], false)).unwrap().is_ok());
    let claimed = claim_as(OWNER, &ids[1]);
    assert!(claimed.is_ok(), "{claimed:?}");
    let reply = apply_as(OWNER, &spec(&ids[2], false)).unwrap();
    expect_error(reply.clone(), "LimitReached", "projects_per_user = 3");
    expect_error(reply, "LimitReached", "alca down");
    expect_error(claim_as(OWNER, &ids[3]), "LimitReached", LIMITS_FILE);
    assert!(!alca_tables().unwrap().contains(&table(&ids[2])));
    assert!(!Path::new(&format!("/var/lib/alcatraz/projects/{}.json", ids[2])).exists());
    assert!(remove_as(OWNER, &ids[1]).unwrap().is_ok());
    assert!(apply_as(OWNER, &spec(&ids[2], false)).unwrap().is_ok());
    for id in [&ids[0], &ids[2]] {
        assert!(remove_as(OWNER, id).unwrap().is_ok());
    }
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

/// The running daemon owns its tables: nobody else may delete them, and `--reapply` leaves
/// them to it. Once it is gone they are orphans: a delete goes through, and `--reapply`
/// restores the table.
fn reapply_restores_a_deleted_table() {
    let expected = table_snapshot(&table(PROJ_A)).unwrap().unwrap();
    let err = run_ok("nft", &["delete", "table", "inet", &table(PROJ_A)]).unwrap_err();
    assert!(err.to_string().contains("Operation not permitted"), "{err}");
    let out = run_ok(INSTALLED_DAEMON, &["--reapply"]).unwrap();
    assert!(out.contains("re-applied 0 project(s)"), "{out}");
    assert!(!out.contains("left 0 table(s)"), "{out}");
    assert_eq!(
        table_snapshot(&table(PROJ_A)).unwrap(),
        Some(expected.clone())
    );
    stop_daemon();
    assert_eq!(
        table_snapshot(&table(PROJ_A)).unwrap(),
        Some(expected.clone()),
        "the table went with the daemon"
    );
    run_ok("nft", &["delete", "table", "inet", &table(PROJ_A)]).unwrap();
    assert!(table_snapshot(&table(PROJ_A)).unwrap().is_none());
    let out = run_ok(INSTALLED_DAEMON, &["--reapply"]).unwrap();
    assert!(out.contains("re-applied"), "{out}");
    assert_eq!(table_snapshot(&table(PROJ_A)).unwrap(), Some(expected));
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
const UP_ONLINK: u16 = 21805;

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
    let gateway = alca_e2e::docker::local_gateway(&format!("alca-{}", &id[..12]));
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
    run_needs_the_rules_in_place(&dir, &env, &id);
    check_isolation();
    let project_status = text(&alca(Some(OWNER), &dir, &["status"], &env));
    assert!(
        project_status.contains("Rules applied: Yes"),
        "{project_status}"
    );
    disruptions_keep_isolation(&dir, &id, &uplink);
    check_isolation();

    onlink_public_network_is_refused(&dir, &env, &id);

    let down = alca(Some(OWNER), &dir, &["down"], &env);
    assert!(down.status.success(), "alca down failed: {}", text(&down));
    assert!(!alca_tables().unwrap().contains(&table(&id)));
    assert!(!container_exists(&id));
    let status = text(&alca(Some(OWNER), &dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Rules applied: No"), "{status}");
}

/// The rules are lost while the container keeps running (daemon killed, table deleted, as a
/// reboot without the boot restore leaves them): `alca run` with no daemon to ask refuses and
/// runs nothing; with the daemon it runs only once the rules are back.
fn run_needs_the_rules_in_place(dir: &Path, env: &[(&str, &str)], id: &str) {
    let pid = daemon_pid().expect("daemon running");
    run_ok("kill", &["-9", &pid.to_string()]).expect("kill the daemon");
    let _ = run("nft", &["delete", "table", "inet", &table(id)]);
    assert!(
        !alca_tables().unwrap().contains(&table(id)),
        "table still there"
    );
    let hidden = without_bus(env);
    let refused = alca(
        Some(OWNER),
        dir,
        &["run", "touch", "/workspace/ran-unprotected"],
        &hidden,
    );
    let said = text(&refused);
    assert!(!refused.status.success(), "run without rules: {said}");
    assert!(said.contains("are not in place"), "{said}");
    assert!(said.contains("sudo alca network-helper install"), "{said}");
    assert!(
        !dir.join("ran-unprotected").exists(),
        "the command ran: {said}"
    );
    let ran = alca(Some(OWNER), dir, &["run", "touch", "/workspace/ran"], env);
    assert!(ran.status.success(), "run with the daemon: {}", text(&ran));
    assert!(dir.join("ran").exists());
    assert!(
        alca_tables().unwrap().contains(&table(id)),
        "run went on without the rules"
    );
}

/// For each of `nft flush ruleset`, `nft delete table inet alca-<id>` and `kill -9` of the
/// daemon, a probe from inside the container to the LAN host and to a host service is refused
/// at every sample (one started every 200 ms over 5 s, each bounded to 1 s), and the rules are
/// in place afterwards with no user action. What the flush took besides (docker's rules, the
/// uplink guard) is put back before the next step.
fn disruptions_keep_isolation(dir: &Path, id: &str, uplink: &str) {
    let name = format!("alca-{}", &id[..12]);
    let expected = ruleset(&table(id)).expect("table");
    let sampler = refusal_sampler(&[("lan", LAN4, UP_CLOSED), ("host", uplink, UP_HOST_CLOSED)]);
    for disruption in ["flush ruleset", "delete table", "kill -9"] {
        let foreign = ForeignRuleset::save().expect("saving the foreign ruleset");
        let probe = {
            let (name, sampler) = (name.clone(), sampler.clone());
            std::thread::spawn(move || docker_ok(&["exec", &name, "sh", "-c", &sampler]))
        };
        std::thread::sleep(Duration::from_millis(1000));
        match disruption {
            "flush ruleset" => {
                run_ok("nft", &["flush", "ruleset"]).unwrap();
            }
            "delete table" => {
                let refused = run_ok("nft", &["delete", "table", "inet", &table(id)]);
                assert!(
                    refused.is_err_and(|e| e.to_string().contains("Operation not permitted")),
                    "another process deleted the daemon's table"
                );
            }
            _ => {
                let pid = daemon_pid().expect("the daemon runs");
                run_ok("kill", &["-9", &pid.to_string()]).unwrap();
            }
        }
        let seen = probe.join().unwrap().expect("the sampler ran");
        if disruption == "flush ruleset" {
            foreign.restore().expect("putting back what the flush took");
        }
        assert!(seen.contains("sampled"), "{disruption}: {seen}");
        assert!(
            !seen.contains("OPEN"),
            "{disruption}: a probe got through: {seen}"
        );
        assert_eq!(
            ruleset(&table(id)),
            Some(expected.clone()),
            "{disruption}: the rules are not what they were"
        );
    }
    // The daemon comes back on the next call and adopts its tables: they are owned again.
    let status = text(&alca(Some(OWNER), dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Rules applied: Yes"), "{status}");
    let status = text(&alca(Some(OWNER), dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Tables: owned by the daemon"), "{status}");
    assert!(run_ok("nft", &["delete", "table", "inet", &table(id)]).is_err());
}

/// Issue 22 item 11, as the attack: the host is directly connected to a network in public
/// space (a campus LAN; here a test bridge to a netns), and the agent connects to a host on it.
/// The running daemon sees the new addresses, adds both prefixes to the project's deny sets,
/// and the connection is refused although a listener waits there; when the network goes, so
/// do the prefixes.
fn onlink_public_network_is_refused(dir: &Path, env: &[(&str, &str)], id: &str) {
    let deny = |set: &str| run_ok("nft", &["list", "set", "inet", &table(id), set]).unwrap();
    let listed = || deny("deny4").contains(ONLINK_NET4) && deny("deny6").contains(ONLINK_NET6);
    let settled = |want: bool| {
        (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            listed() == want
        })
    };
    assert!(!listed(), "not on-link yet: {}", deny("deny4"));
    let net = OnlinkNet::up().unwrap();
    assert_route_via(ONLINK_PEER4, ONLINK_BRIDGE);
    assert_route_via(ONLINK_PEER6, ONLINK_BRIDGE);
    let _listener = Listener::start(Some(ONLINK_NS), "onlink", "::", UP_ONLINK, 120).unwrap();
    assert!(
        settled(true),
        "the on-link prefixes never reached the deny sets: {} {}",
        deny("deny4"),
        deny("deny6")
    );
    expect_probe(dir, env, ONLINK_PEER4, UP_ONLINK, "refused");
    drop(net);
    assert!(settled(false), "the prefixes stayed after the network went");
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
