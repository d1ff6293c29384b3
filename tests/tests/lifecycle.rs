//! End-to-end lifecycle of `alca up/run/status/list/down/cleanup` on the real Docker and rootful
//! Podman, as root and as the unprivileged user `alcatest`.
//!
//! Build the CLI first: `cargo build -p alca && cargo test -p alca-e2e --test lifecycle`
//! (same `CARGO_TARGET_DIR`). Projects use `network.lan-access = ["*"]` (no helper needed)
//! except the fail-closed test, which hides the system bus. Every project, container, network
//! and directory is removed by drop guards; names are unique per project so tests run in parallel.

use std::fs;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use alca_e2e::lifecycle::{
    alca_built, free_port, Project, Rt, TempDir, DEFAULT_CAP_EFF, OPEN, TEST_USER,
};
use alca_e2e::on_both_runtimes;
use serde_json::Value;

/// `cleanup` acts on every project on the machine, so it runs alone; other tests share.
static MACHINE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(|e| e.into_inner())
}

on_both_runtimes!(
    up_from_a_subdirectory_builds_the_container_as_configured,
    run_passes_arguments_stdin_envs_and_exit_codes,
    mounts_persist_readonly_holds_and_hooks_run,
    drift_is_reported_without_tty_and_rebuilt_with_force,
    failing_commands_up_leaves_nothing_behind,
    failing_post_up_is_an_error,
    isolation_without_helper_fails_closed,
    run_refuses_when_not_up_stopped_or_moved,
    configured_caps_are_visible_in_proc_1_status,
    published_ports_answer_on_loopback,
    restart_policy_brings_a_killed_container_back,
);

fn assert_up(p: &Project, rel: &str) -> String {
    let r = p.alca(rel, &["up"]);
    r.expect_code(0, "alca up");
    r.stdout.clone()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn running(p: &Project) -> bool {
    p.inspect()
        .map(|v| str_at(&v, "/State/Status") == "running")
        .unwrap_or(false)
}

fn up_from_a_subdirectory_builds_the_container_as_configured(rt: Rt) {
    let _g = shared();
    let port = free_port();
    let p = Project::new(
        rt,
        None,
        &format!("ports = [\"{port}:8080\"]\n[resources]\nmemory = \"64m\"\ncpus = 0.5\n{OPEN}"),
    );
    let out = assert_up(&p, "sub/deeper");
    assert!(
        out.contains("Runtime:"),
        "runtime choice is reported: {out}"
    );
    let id = p.id().expect("state file written");
    let v = p.inspect().expect("container exists");
    assert_eq!(p.container(), format!("alca-{}", &id[..12]));
    assert_eq!(str_at(&v, "/State/Status"), "running");
    assert_eq!(str_at(&v, "/Config/Labels/alca.project.id"), id);
    assert_eq!(
        str_at(&v, "/Config/Labels/alca.project.path"),
        p.root.to_str().unwrap()
    );
    assert!(!str_at(&v, "/Config/Labels/alca.version").is_empty());
    assert_eq!(
        str_at(&v, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    assert_eq!(v["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert_eq!(v["HostConfig"]["NanoCpus"], 500_000_000);
    let binding = &v["NetworkSettings"]["Ports"]["8080/tcp"][0];
    assert_eq!(binding["HostIp"], "127.0.0.1", "published on loopback only");
    assert_eq!(binding["HostPort"], port.to_string());

    let net = rt
        .inspect("network", &p.container())
        .expect("project network exists");
    let bridge = format!("alca-{}", &id[..10]);
    let link = std::process::Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .unwrap();
    assert!(link.status.success(), "bridge {bridge} exists: {net}");

    let caps = p.alca("", &["run", "grep", "CapEff", "/proc/1/status"]);
    caps.expect_code(0, "read caps");
    assert!(caps.stdout.contains(DEFAULT_CAP_EFF), "{}", caps.stdout);

    let status = p.alca("sub", &["status"]);
    status.expect_code(0, "status");
    assert!(
        status.stdout.contains("Container: Running"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("Configuration: up to date"),
        "{}",
        status.stdout
    );
    let list = p.alca("", &["list"]);
    list.expect_code(0, "list");
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&p.container()))
        .unwrap_or_else(|| panic!("list shows the container: {}", list.stdout));
    let kind = match rt {
        Rt::Docker => "Docker",
        Rt::Podman => "Podman",
    };
    assert!(row.contains("running") && row.contains(kind), "{row}");
}

fn run_passes_arguments_stdin_envs_and_exit_codes(rt: Rt) {
    let _g = shared();
    let body = format!(
        "[envs]\nMY_E = {{ value = \"${{ALCA_E2E_VAR}}\", override_on_enter = true }}\n{OPEN}"
    );
    let p = Project::new(rt, None, &body);
    let r = p.alca_with("", &["up"], &[("ALCA_E2E_VAR", "at-up")], None);
    r.expect_code(0, "up");

    p.alca("", &["run", "sh", "-c", "exit 7"])
        .expect_code(7, "exit code passes through");
    let q = p.alca("", &["run", "printf", "%s|", "a b", "'", "$HOME"]);
    q.expect_code(0, "quoting");
    assert_eq!(q.stdout, "a b|'|$HOME|");
    let tricky = [
        "\"", "\\", "", "x;y", "*", "$(id)", "`id`", "l1\nl2", "-n", "it's", "${HOME}", "a  b",
    ];
    let mut args = vec!["run", "printf", "%s|"];
    args.extend(tricky);
    let q = p.alca("", &args);
    q.expect_code(0, "quoting of shell metacharacters");
    assert_eq!(q.stdout, format!("{}|", tricky.join("|")));
    let piped = p.alca_with("", &["run", "cat"], &[], Some("piped-input\n"));
    piped.expect_code(0, "stdin");
    assert_eq!(piped.stdout, "piped-input\n");
    let pwd = p.alca("sub", &["run", "pwd"]);
    assert_eq!(pwd.stdout.trim(), "/workspace/sub");
    let env = p.alca_with(
        "",
        &["run", "sh", "-c", "echo \"$MY_E $TERM\""],
        &[("ALCA_E2E_VAR", "at-run"), ("TERM", "xterm-e2e")],
        None,
    );
    env.expect_code(0, "envs");
    assert_eq!(env.stdout.trim(), "at-run xterm-e2e");
}

fn mounts_persist_readonly_holds_and_hooks_run(rt: Rt) {
    let _g = shared();
    let ro = TempDir::new("ro");
    let data = TempDir::new("data");
    fs::write(ro.0.join("ro.txt"), "read me").unwrap();
    let body = format!(
        "mounts = [\"{}:/ro:ro\", \"{}:/data\"]\n\
         [commands]\nup = \"echo once >> /workspace/up-count\"\n\
         [hooks]\npost_up = \"echo up >> hook-log\"\npre_down = \"echo down >> hook-log\"\n{OPEN}",
        ro.0.display(),
        data.0.display()
    );
    let p = Project::new(rt, None, &body);
    assert_up(&p, "");
    assert_eq!(fs::read_to_string(p.path("hook-log")).unwrap(), "up\n");
    assert_eq!(fs::read_to_string(p.path("up-count")).unwrap(), "once\n");

    let w = p.alca(
        "",
        &[
            "run",
            "sh",
            "-c",
            "echo hi > sub/from-box && echo d > /data/d",
        ],
    );
    w.expect_code(0, "write through mounts");
    assert_eq!(fs::read_to_string(p.path("sub/from-box")).unwrap(), "hi\n");
    assert_eq!(fs::read_to_string(data.0.join("d")).unwrap(), "d\n");
    let denied = p.alca("", &["run", "sh", "-c", "echo x > /ro/new"]);
    assert_ne!(denied.code, 0, "read-only mount refuses writes");
    assert!(!ro.0.join("new").exists());
    assert_eq!(p.alca("", &["run", "cat", "/ro/ro.txt"]).stdout, "read me");

    let id = p.id();
    p.alca("", &["down"]).expect_code(0, "down");
    assert_eq!(
        fs::read_to_string(p.path("hook-log")).unwrap(),
        "up\ndown\n"
    );
    assert!(p.inspect().is_none(), "container removed");
    assert!(
        rt.inspect("network", &p.container()).is_none(),
        "network removed"
    );
    assert_eq!(p.id(), id, "state.json kept with the same id");

    assert_up(&p, "");
    let back = p.alca("", &["run", "cat", "sub/from-box"]);
    assert_eq!(back.stdout, "hi\n", "files persist across down/up");
    assert_eq!(
        fs::read_to_string(p.path("up-count")).unwrap(),
        "once\nonce\n",
        "commands.up runs once per creation"
    );
}

fn drift_is_reported_without_tty_and_rebuilt_with_force(rt: Rt) {
    let _g = shared();
    let p = Project::new(rt, None, &format!("[resources]\nmemory = \"64m\"\n{OPEN}"));
    assert_up(&p, "");
    let first = p.inspect().unwrap();
    p.write_config(&format!("[resources]\nmemory = \"96m\"\n{OPEN}"));

    let kept = p.alca("", &["up"]);
    kept.expect_code(0, "up with drift keeps the container");
    assert!(
        kept.all().contains("Resources.memory: 64m → 96m"),
        "{}",
        kept.all()
    );
    assert!(kept.all().contains("alca up -f"), "{}", kept.all());
    let same = p.inspect().unwrap();
    assert_eq!(same["Id"], first["Id"]);
    assert_eq!(same["HostConfig"]["Memory"], 64 * 1024 * 1024);

    let quiet = p.alca("", &["up", "-q"]);
    quiet.expect_code(0, "up -q with drift");
    assert!(!quiet.stdout.contains('→'), "quiet: {}", quiet.stdout);
    let status = p.alca("", &["status"]);
    assert!(
        status.stdout.contains("Resources.memory: 64m → 96m"),
        "{}",
        status.stdout
    );

    p.alca("", &["up", "-f"]).expect_code(0, "up -f");
    let rebuilt = p.inspect().unwrap();
    assert_ne!(rebuilt["Id"], first["Id"], "container recreated");
    assert_eq!(rebuilt["HostConfig"]["Memory"], 96 * 1024 * 1024);
    let status = p.alca("", &["status"]);
    assert!(
        status.stdout.contains("Configuration: up to date"),
        "{}",
        status.stdout
    );
}

fn failing_commands_up_leaves_nothing_behind(rt: Rt) {
    let _g = shared();
    let body = format!("[commands]\nup = \"echo broken >&2; exit 3\"\n{OPEN}");
    let p = Project::new(rt, None, &body);
    let r = p.alca("", &["up"]);
    r.expect_code(1, "failing commands.up");
    assert!(r.stderr.contains("commands.up"), "{}", r.stderr);
    assert!(p.inspect().is_none(), "no container left");
    assert!(
        rt.inspect("network", &p.container()).is_none(),
        "no network left"
    );
}

fn failing_post_up_is_an_error(rt: Rt) {
    let _g = shared();
    let p = Project::new(rt, None, &format!("[hooks]\npost_up = \"exit 4\"\n{OPEN}"));
    let r = p.alca("", &["up"]);
    r.expect_code(1, "failing post_up");
    assert!(r.stderr.contains("post_up"), "{}", r.stderr);
    assert!(r.stderr.contains("exit status: 4"), "{}", r.stderr);
}

fn isolation_without_helper_fails_closed(rt: Rt) {
    let _g = shared();
    let p = Project::new(rt, None, "");
    let hidden_bus = [(
        "DBUS_SYSTEM_BUS_ADDRESS",
        "unix:path=/nonexistent/alca-e2e-no-bus",
    )];
    let r = p.alca_with("", &["up"], &hidden_bus, None);
    r.expect_code(1, "isolation required without a helper");
    assert!(r.stderr.contains("network isolation"), "{}", r.stderr);
    assert!(r.stderr.contains("network-helper install"), "{}", r.stderr);
    assert!(p.inspect().is_none(), "no container runs unprotected");
    assert!(
        rt.inspect("network", &p.container()).is_none(),
        "no network left"
    );
}

/// `caps` as an array adds to the defaults; as a table it is verbatim; the kernel's view of PID 1
/// shows exactly that set (effective and bounding), and a change is a drift `-f` rebuilds.
fn configured_caps_are_visible_in_proc_1_status(rt: Rt) {
    let _g = shared();
    let caps_of_pid1 = |p: &Project| -> (String, String) {
        let r = p.alca("", &["run", "cat", "/proc/1/status"]);
        r.expect_code(0, "read /proc/1/status");
        let field = |name: &str| {
            r.stdout
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("{name} in /proc/1/status: {}", r.stdout))
        };
        (field("CapEff:"), field("CapBnd:"))
    };
    // defaults (0xeb) + NET_BIND_SERVICE (bit 10)
    let p = Project::new(rt, None, &format!("caps = [\"NET_BIND_SERVICE\"]\n{OPEN}"));
    assert_up(&p, "");
    let want = "00000000000004eb".to_string();
    assert_eq!(caps_of_pid1(&p), (want.clone(), want));

    // verbatim: everything dropped but KILL (bit 5)
    p.write_config(&format!(
        "[caps]\ndrop = [\"ALL\"]\nadd = [\"KILL\"]\n{OPEN}"
    ));
    p.alca("", &["up", "-f"])
        .expect_code(0, "up -f with new caps");
    let want = "0000000000000020".to_string();
    assert_eq!(caps_of_pid1(&p), (want.clone(), want));
    let denied = p.alca("", &["run", "chown", "1:1", "sub"]);
    assert_ne!(denied.code, 0, "CHOWN was dropped: {}", denied.all());
}

/// Ports in string and table form are published on 127.0.0.1 and answer from the host.
fn published_ports_answer_on_loopback(rt: Rt) {
    use std::io::{Read, Write};
    let _g = shared();
    let (string_port, table_port) = (free_port(), free_port());
    let body = format!(
        "ports = [\"{string_port}:8080\", {{ port = 8081, hostPort = {table_port} }}]\n{OPEN}"
    );
    let p = Project::new(rt, None, &body);
    fs::write(p.path("index.html"), "served from the box\n").unwrap();
    assert_up(&p, "");
    for port in ["8080", "8081"] {
        p.alca("", &["run", "httpd", "-p", port, "-h", "/workspace"])
            .expect_code(0, "start busybox httpd in the background");
    }
    let v = p.inspect().unwrap();
    for (inner, outer) in [("8080/tcp", string_port), ("8081/tcp", table_port)] {
        let binding = &v["NetworkSettings"]["Ports"][inner][0];
        assert_eq!(binding["HostIp"], "127.0.0.1", "{inner}: {binding}");
        assert_eq!(binding["HostPort"], outer.to_string(), "{inner}: {binding}");
        let mut answer = String::new();
        // Bounded: the server may need a moment to listen; at most 20 tries over 4 s.
        for _ in 0..20 {
            answer.clear();
            let got = std::net::TcpStream::connect(("127.0.0.1", outer)).and_then(|mut s| {
                s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
                s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
                s.read_to_string(&mut answer)
            });
            if got.is_ok() && answer.contains("served from the box") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert!(
            answer.contains("served from the box"),
            "127.0.0.1:{outer} → {inner}: {answer:?}"
        );
    }
}

/// `--restart=unless-stopped`: a container whose main process dies (not stopped by the user) is
/// started again by the runtime, and `alca run` works in it.
fn restart_policy_brings_a_killed_container_back(rt: Rt) {
    let _g = shared();
    let p = Project::new(rt, None, OPEN);
    assert_up(&p, "");
    let before = p.inspect().unwrap();
    assert_eq!(
        str_at(&before, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    let pid = before["State"]["Pid"].as_i64().expect("State.Pid");
    assert!(pid > 1, "container init pid: {pid}");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success(), "kill -KILL {pid}");
    // Bounded: at most 60 checks over 30 s for the runtime to start it again.
    let restarted = (0..60).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        p.inspect().is_some_and(|v| {
            str_at(&v, "/State/Status") == "running" && v["State"]["Pid"].as_i64() != Some(pid)
        })
    });
    assert!(
        restarted,
        "not restarted: {:?}",
        p.inspect().map(|v| v["State"].clone())
    );
    p.alca("", &["run", "true"])
        .expect_code(0, "run in the restarted container");
}

fn run_refuses_when_not_up_stopped_or_moved(rt: Rt) {
    let _g = shared();
    let mut p = Project::new(rt, None, OPEN);
    let r = p.alca("", &["run", "true"]);
    r.expect_code(1, "run before up");
    assert!(r.stderr.contains("alca up"), "{}", r.stderr);

    assert_up(&p, "");
    let stop = rt.cmd(&["stop", "-t", "0", &p.container()]);
    assert!(stop.status.success());
    let r = p.alca("", &["run", "true"]);
    r.expect_code(1, "run on a stopped container");
    assert!(r.stderr.contains("stopped"), "{}", r.stderr);
    assert_up(&p, "");
    assert!(running(&p), "up starts the stopped container");

    let moved = p.root.with_file_name(format!(
        "{}-moved",
        p.root.file_name().unwrap().to_string_lossy()
    ));
    fs::rename(&p.root, &moved).unwrap();
    p.root = moved;
    let r = p.alca("", &["run", "true"]);
    r.expect_code(1, "run after the project moved");
    assert!(r.stderr.contains("moved"), "{}", r.stderr);
    // Approval is per location: a moved (or copied) project is approved again.
    p.approve();
    p.alca("", &["up", "-f"])
        .expect_code(0, "up -f recreates here");
    p.alca("", &["run", "true"]).expect_code(0, "run after -f");
}

#[test]
fn unprivileged_user_runs_the_lifecycle_on_docker() {
    let _g = shared();
    let p = Project::new(Rt::Docker, Some(TEST_USER), OPEN);
    assert_up(&p, "sub");
    assert!(running(&p));
    let r = p.alca("sub", &["run", "sh", "-c", "touch made-inside && pwd"]);
    r.expect_code(0, "run as alcatest");
    assert_eq!(r.stdout.trim(), "/workspace/sub");
    assert!(p.path("sub/made-inside").exists());
    p.alca("", &["status"]).expect_code(0, "status as alcatest");
    let list = p.alca("", &["list"]);
    assert!(list.stdout.contains(&p.container()), "{}", list.stdout);
    p.alca("", &["down"]).expect_code(0, "down as alcatest");
    assert!(p.inspect().is_none());
}

/// Rootless Podman is isolated inside the container's own namespace (tests/tests/rootless.rs);
/// what that path cannot enforce yet, `internet-access`, is refused and nothing is left behind.
#[test]
fn rootless_podman_refuses_internet_access_it_cannot_enforce() {
    let _g = shared();
    let p = Project::new(
        Rt::Podman,
        Some(TEST_USER),
        "[network]\ninternet-access = [\"allowed.test\"]\n",
    );
    let r = p.alca("", &["up"]);
    r.expect_code(1, "rootless podman with internet-access");
    assert!(r.stderr.contains("rootless"), "{}", r.stderr);
    assert!(r.stderr.contains("internet-access"), "{}", r.stderr);
    assert!(Rt::Podman.inspect("container", &p.container()).is_none());
}

#[test]
fn run_allocates_a_tty_only_when_stdin_is_a_terminal() {
    let _g = shared();
    let p = Project::new(Rt::Docker, None, OPEN);
    assert_up(&p, "");
    let plain = p.alca("", &["run", "tty"]);
    assert!(plain.stdout.contains("not a tty"), "{}", plain.all());
    let bin = alca_built().unwrap();
    // `script` runs the command on a fresh pseudo-terminal.
    let out = std::process::Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{} run tty", bin.display()),
            "/dev/null",
        ])
        .current_dir(&p.root)
        .env("XDG_STATE_HOME", &p.state_home)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("/dev/pts/"), "a TTY inside: {text}");
}

#[test]
fn cleanup_removes_orphans_and_never_live_projects() {
    let _g = exclusive();
    let live = Project::new(Rt::Docker, None, OPEN);
    let stopped = Project::new(Rt::Docker, None, OPEN);
    let deleted = Project::new(Rt::Docker, None, OPEN);
    let stateless = Project::new(Rt::Podman, None, OPEN);
    for p in [&live, &stopped, &deleted, &stateless] {
        assert_up(p, "");
    }
    let deleted_name = deleted.container();
    let stateless_name = stateless.container();
    assert!(Rt::Docker
        .cmd(&["stop", "-t", "0", &stopped.container()])
        .status
        .success());
    // The workspace is served through a FUSE view mounted below `.alca/views/`; a deleted
    // project (or a reboot) has none left.
    for dir in alca::exclude::project_views::view_dirs(&deleted.root) {
        alca::exclude::ViewEngine::stop(&alca::exclude::fuse_engine::FuseEngine::new(), &dir)
            .expect("stop the deleted project's view");
    }
    fs::remove_dir_all(&deleted.root).unwrap();
    fs::remove_file(stateless.path(".alca/state.json")).unwrap();

    let ask = live.alca("", &["cleanup"]);
    ask.expect_code(0, "cleanup without -y and without a terminal");
    assert!(ask.stdout.contains(&deleted_name), "{}", ask.stdout);
    assert!(ask.stdout.contains(&stateless_name), "{}", ask.stdout);
    assert!(ask.stdout.contains("Nothing removed"), "{}", ask.stdout);
    assert!(Rt::Docker.inspect("container", &deleted_name).is_some());

    live.alca("", &["cleanup", "-y"])
        .expect_code(0, "cleanup -y");
    assert!(Rt::Docker.inspect("container", &deleted_name).is_none());
    assert!(Rt::Docker.inspect("network", &deleted_name).is_none());
    assert!(Rt::Podman.inspect("container", &stateless_name).is_none());
    assert!(running(&live), "live project untouched");
    assert!(
        stopped.inspect().is_some(),
        "stopped live project kept without --all"
    );

    live.alca("", &["cleanup", "--all", "-y"])
        .expect_code(0, "cleanup --all -y");
    assert!(
        stopped.inspect().is_none(),
        "--all removes stopped containers"
    );
    assert!(running(&live), "live project still untouched");
}
