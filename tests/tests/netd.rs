//! End-to-end suite of `alca-netd` on the real system dbus-daemon, polkitd and nftables:
//! `alca network-helper install` for real, then calls as the unprivileged users `alcatest`
//! (added to group `alcatraz`) and `alcaother` (not), crash safety under `kill -9`, re-apply,
//! stale-table sweep and `uninstall`.
//!
//! One test function with ordered steps: every step shares the one system daemon.
//! Needs root (tests/run.sh) and the test env (tests/env/setup.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alca_e2e::netd::{
    alca_in, alca_tables, apply_as, built_binary, call_as, daemon_pid, group_has, remove_as,
    table_snapshot, Reply, TempGroupMember, TempGroupRemoval, VethLink, INSTALLED_DAEMON,
};
use alca_e2e::netns::{run, run_ok};
use alca_netd::spec::{bridge_name, MAX_REQUEST_BYTES};

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

fn alca(user: Option<&str>, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    alca_in(user, dir, args, &env)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
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
    up_and_down_go_through_the_daemon(&project_dir);
    uninstall(&project_dir);
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

    let netd = built_binary("alca-netd");
    let out = alca(
        None,
        dir,
        &["network-helper", "install", "-y"],
        &[
            ("SUDO_USER", OWNER),
            ("ALCA_NETD_BIN", netd.to_str().unwrap()),
        ],
    );
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
    for f in [
        "/etc/dbus-1/system.d/io.github.alcatraz.Netd1.conf",
        "/usr/share/dbus-1/system-services/io.github.alcatraz.Netd1.service",
        "/usr/share/polkit-1/actions/io.github.alcatraz.netd.policy",
        "/etc/polkit-1/rules.d/50-alcatraz.rules",
    ] {
        assert!(Path::new(f).is_file(), "{f} not installed");
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
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../alca-netd/dbus/io.github.alcatraz.Netd1.xml"),
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
    assert!(!Path::new("/etc/dbus-1/system.d/io.github.alcatraz.Netd1.conf").exists());
    assert!(!Path::new("/etc/polkit-1/rules.d/50-alcatraz.rules").exists());
    assert!(!group_has("alcatraz", None));
    assert_eq!(daemon_pid(), None);
    let status = text(&alca(None, dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Installed: No"), "{status}");
    assert!(status.contains("Daemon: not running"), "{status}");
}

/// Environment for `alca up` as the test user: trust records stay inside the scratch project.
fn up_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![(
        "XDG_STATE_HOME",
        dir.join(".state").to_string_lossy().into_owned(),
    )]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A fresh docker project owned by the test user, inside the scratch directory.
fn docker_project(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".alca.toml"),
        "image = \"alca-test/busybox:latest\"\nruntime = \"docker\"\n",
    )
    .unwrap();
    run_ok(
        "chown",
        &["-R", &format!("{OWNER}:{OWNER}"), dir.to_str().unwrap()],
    )
    .unwrap();
    dir
}

fn project_id(dir: &Path) -> String {
    let state = std::fs::read_to_string(dir.join(".alca/state.json")).expect("state.json");
    let json: serde_json::Value = serde_json::from_str(&state).unwrap();
    json["id"].as_str().expect("id").to_string()
}

fn container_exists(id: &str) -> bool {
    let name = format!("alca-{}", &id[..12]);
    run("docker", &["container", "inspect", &name])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The CLI's guard for real: `up` as a group member applies the rules through the daemon before
/// the container starts, `down` removes them, and without the group `up` fails closed.
fn up_and_down_go_through_the_daemon(scratch: &Path) {
    let dir = docker_project(scratch, "up-ok");
    let owned = up_env(&dir);
    let env = env_refs(&owned);
    let up = alca(Some(OWNER), &dir, &["up", "--trust"], &env);
    assert!(up.status.success(), "alca up failed: {}", text(&up));
    let id = project_id(&dir);
    assert!(alca_tables().unwrap().contains(&table(&id)));
    assert!(container_exists(&id));
    let status = text(&alca(Some(OWNER), &dir, &["network-helper", "status"], &[]));
    assert!(status.contains("Rules applied: Yes"), "{status}");
    let down = alca(Some(OWNER), &dir, &["down"], &env);
    assert!(down.status.success(), "alca down failed: {}", text(&down));
    assert!(!alca_tables().unwrap().contains(&table(&id)));
    assert!(!container_exists(&id));

    let _out = TempGroupRemoval::remove(OWNER, "alcatraz").unwrap();
    let dir = docker_project(scratch, "up-denied");
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
