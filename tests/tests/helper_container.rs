//! End-to-end suite of the helper-container mode (SPEC §3, macOS), run on Linux against the
//! host namespace: `alca network-helper install --container` for real with NO native daemon,
//! then `alca up` by the unprivileged user `alcatest` through `docker exec` into the helper,
//! the isolation checks (LAN blocked, allow-list, host services blocked, proxy redirect), the
//! re-apply when the helper restarts, `internet-access` with its resolver inside the helper
//! (against a `.test` zone served in `lanhost`), and an uninstall that leaves no table,
//! container, volume or image behind.
//!
//! One test function with ordered steps: they share the one helper container.
//! Needs root, docker and the test env (tests/env/setup.sh); traffic goes only to `lanhost`
//! and host addresses (routes are asserted before any connection).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alca_contract::helper_protocol::{CONTAINER_NAME, IMAGE_REPO, STATE_VOLUME};
use alca_dns::static_zone::Zone;
use alca_e2e::dns_zone::{self, answers_with, LanhostZone};
use alca_e2e::docker::{docker, docker_available, nc_script, Probe};
use alca_e2e::netd::{
    alca, alca_tables, built_binary, daemon_pid, env_refs, ruleset, text, up_env, INSTALLED_DAEMON,
};
use alca_e2e::netns::{
    assert_route_local, assert_route_via, run, run_ok, Listener, RouteToLanhost, HOST_LAN4, LAN4,
    LANHOST_NS, LAN_VETH, PUBLIC4,
};

const USER: &str = "alcatest";
/// Listener ports: blocked LAN, allowed LAN, host service, proxy.
const BLOCKED: u16 = 23101;
const ALLOWED: u16 = 23102;
const HOST_SERVICE: u16 = 23103;
const PROXY: u16 = 23104;
/// On 192.88.99.2: the port the `internet-access` entry allows, and one it does not.
const INET_ALLOWED: u16 = 23105;
const INET_OTHER: u16 = 23106;
/// Seconds the listeners live at most.
const LIFE: u32 = 240;

/// Removes what the test made, pass or fail.
struct Cleanup {
    scratch: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let env = up_env(&self.scratch);
        for name in ["isolated", "proxied", "listed"] {
            let dir = self.scratch.join(name);
            if let Some(id) = project_id(&dir) {
                let _ = alca(Some(USER), &dir, &["down", "--force"], &env_refs(&env));
                let _ = docker(&["rm", "-f", &container_of(&id)]);
            }
        }
        let _ = alca(
            None,
            Path::new("/"),
            &["network-helper", "uninstall", "-y"],
            &[],
        );
        let _ = docker(&["rm", "-f", CONTAINER_NAME]);
        let _ = docker(&["volume", "rm", STATE_VOLUME]);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn project(scratch: &Path, name: &str, network: &str) -> PathBuf {
    let dir = scratch.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".alca.toml"),
        format!("image = \"alca-test/busybox:latest\"\nruntime = \"docker\"\n{network}"),
    )
    .unwrap();
    run_ok(
        "chown",
        &["-R", &format!("{USER}:{USER}"), scratch.to_str().unwrap()],
    )
    .unwrap();
    dir
}

fn project_id(dir: &Path) -> Option<String> {
    let state = std::fs::read_to_string(dir.join(".alca/state.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&state).ok()?;
    json["id"].as_str().map(str::to_string)
}

fn container_of(id: &str) -> String {
    format!("alca-{}", &id[..12])
}

/// Connects from inside the project's container; retries (bounded) while nothing came back.
fn probe(container: &str, addr: &str, port: u16) -> Probe {
    let mut last = Probe::Failed("not tried".into());
    for _ in 0..4 {
        let out = docker(&["exec", container, "sh", "-c", &nc_script(addr, port)]).unwrap();
        last = Probe::classify(&format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        if !matches!(last, Probe::Failed(_)) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    last
}

/// Sends a raw JSON request to the helper as root (an independent client of the protocol).
fn raw_request(body: &str) -> (bool, String) {
    let mut child = Command::new("docker")
        .args(["exec", "-i", CONTAINER_NAME, "alca-netd", "request"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn image_exists() -> bool {
    let filter = format!("reference={IMAGE_REPO}");
    !run_ok("docker", &["images", "-q", "--filter", &filter])
        .unwrap()
        .is_empty()
}

#[test]
fn helper_container_end_to_end() {
    alca_e2e::privilege::require_root("the helper-container suite");
    assert!(
        docker_available(),
        "docker is not running: run tests/env/setup.sh"
    );
    let scratch = std::env::temp_dir().join(format!("alca-e2e-helper-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let _cleanup = Cleanup {
        scratch: scratch.clone(),
    };
    let started = std::time::Instant::now();
    no_native_daemon();
    eprintln!("step done: no_native_daemon at {:?}", started.elapsed());
    install(&scratch);
    eprintln!("step done: install at {:?}", started.elapsed());
    let isolated = isolation_through_the_helper(&scratch);
    eprintln!(
        "step done: isolation_through_the_helper at {:?}",
        started.elapsed()
    );
    helper_refuses_bad_requests(&isolated);
    eprintln!(
        "step done: helper_refuses_bad_requests at {:?}",
        started.elapsed()
    );
    restart_reapplies(&isolated);
    eprintln!("step done: restart_reapplies at {:?}", started.elapsed());
    internet_access_through_the_helper(&scratch);
    eprintln!(
        "step done: internet_access_through_the_helper at {:?}",
        started.elapsed()
    );
    proxy_through_the_helper(&scratch);
    eprintln!(
        "step done: proxy_through_the_helper at {:?}",
        started.elapsed()
    );
    down_removes_the_rules(&scratch, &isolated);
    eprintln!(
        "step done: down_removes_the_rules at {:?}",
        started.elapsed()
    );
    uninstall_leaves_nothing();
    eprintln!(
        "step done: uninstall_leaves_nothing at {:?}",
        started.elapsed()
    );
}

/// Start without any daemon on the system bus: whatever earlier runs left is uninstalled.
fn no_native_daemon() {
    let _ = alca(
        None,
        Path::new("/"),
        &["network-helper", "uninstall", "-y"],
        &[],
    );
    assert!(!Path::new(INSTALLED_DAEMON).exists());
    assert!(
        !Path::new("/usr/share/dbus-1/system-services/io.github.alcatraz.Netd1.service").exists()
    );
    assert_eq!(daemon_pid(), None, "a native alca-netd still runs");
    assert_eq!(alca_tables().unwrap(), Vec::<String>::new());
}

/// The image is built here and saved (what a Mac gets), then installed from that archive.
fn install(scratch: &Path) {
    let netd = [(
        "ALCA_NETD_BIN",
        built_binary("alca-netd").to_string_lossy().into_owned(),
    )];
    let archive = scratch.join("helper-image.tar");
    let archive_arg = archive.to_string_lossy().into_owned();
    let saved = alca(
        None,
        Path::new("/"),
        &["network-helper", "image", "--output", &archive_arg],
        &env_refs(&netd),
    );
    assert!(saved.status.success(), "image failed: {}", text(&saved));
    run_ok(
        "docker",
        &["image", "rm", &alca_contract::helper_protocol::image_ref()],
    )
    .unwrap();
    let out = alca(
        None,
        Path::new("/"),
        &[
            "network-helper",
            "install",
            "--container",
            "--image-archive",
            &archive_arg,
            "-y",
        ],
        &[],
    );
    let said = text(&out);
    assert!(out.status.success(), "install --container failed: {said}");
    assert!(said.contains("Loaded image"), "{said}");
    assert!(said.contains("Helper container: running"), "{said}");
    assert!(said.contains("platform linux"), "{said}");
    let host_config = run_ok(
        "docker",
        &[
            "inspect",
            "--format",
            "{{.HostConfig.Privileged}} {{.HostConfig.CapAdd}} {{.HostConfig.PidMode}} \
             {{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}}",
            CONTAINER_NAME,
        ],
    )
    .unwrap()
    .replace("CAP_", "");
    // --privileged, or (an engine that cannot grant every capability, as in this test VM)
    // exactly the capabilities alca-netd uses, as install says.
    let minimal = "false [NET_ADMIN SYS_ADMIN SYS_PTRACE] host host always";
    assert!(
        host_config == "true [] host host always" || host_config == minimal,
        "{host_config}"
    );
    if host_config == minimal {
        assert!(said.contains("cannot grant --privileged"), "{said}");
    }
    eprintln!("helper container: {host_config}");
    // The native flavour refuses to install next to it (both would own the alca- tables).
    let both = alca(
        None,
        Path::new("/"),
        &["network-helper", "install", "-y"],
        &[],
    );
    assert!(!both.status.success());
    assert!(text(&both).contains("uninstall"), "{}", text(&both));
    assert_eq!(daemon_pid(), None, "no daemon may serve the system bus");
    // The user's filtered views need FUSE: the packages' post-install step, as root, since
    // this flavour installs no group and no daemon on the host.
    let fuse = alca(None, Path::new("/"), &["network-helper", "fuse-setup"], &[]);
    assert!(fuse.status.success(), "fuse-setup failed: {}", text(&fuse));
}

/// `alca up` as the unprivileged user, no sudo: rules arrive through the helper before the
/// container starts, and they isolate it.
fn isolation_through_the_helper(scratch: &Path) -> String {
    let network = format!("[network]\nlan-access = [\"{LAN4}:{ALLOWED}\"]\n");
    let dir = project(scratch, "isolated", &network);
    let env = up_env(scratch);
    let up = alca(Some(USER), &dir, &["up", "--trust"], &env_refs(&env));
    assert!(up.status.success(), "alca up failed: {}", text(&up));
    assert_eq!(
        daemon_pid(),
        None,
        "up must not have started a native daemon"
    );
    let id = project_id(&dir).expect("state.json");
    let table = format!("alca-{id}");
    assert!(alca_tables().unwrap().contains(&table));
    let status = text(&alca(
        Some(USER),
        &dir,
        &["network-helper", "status"],
        &env_refs(&env),
    ));
    assert!(status.contains("helper container"), "{status}");
    assert!(status.contains("Rules applied: Yes"), "{status}");
    let (ok, listing) = raw_request(r#"{"op":"list","uid":0}"#);
    assert!(ok && listing.contains(&id), "{listing}");

    assert_route_via(LAN4, LAN_VETH);
    assert_route_local(HOST_LAN4);
    let _listeners = [
        Listener::start(Some(LANHOST_NS), "blocked", "0.0.0.0", BLOCKED, LIFE).unwrap(),
        Listener::start(Some(LANHOST_NS), "allowed", "0.0.0.0", ALLOWED, LIFE).unwrap(),
        Listener::start(None, "host", "0.0.0.0", HOST_SERVICE, LIFE).unwrap(),
    ];
    let c = container_of(&id);
    assert!(probe(&c, LAN4, ALLOWED).answered_by("allowed"));
    assert_eq!(
        probe(&c, LAN4, BLOCKED),
        Probe::Refused,
        "LAN must be blocked"
    );
    assert_eq!(
        probe(&c, HOST_LAN4, HOST_SERVICE),
        Probe::Refused,
        "host services must be blocked"
    );
    // Baseline: the host service answers from the host itself, so the refusal is the rules'.
    let out = run_ok(
        "sh",
        &[
            "-c",
            &format!("echo | busybox nc -w 3 {HOST_LAN4} {HOST_SERVICE}"),
        ],
    )
    .unwrap();
    assert!(out.starts_with("host"), "{out}");

    // `up`'s quick check and `alca network verify` go through the helper too: the probes run
    // in the container behind the fence the helper's daemon armed.
    let said = text(&up);
    assert!(
        said.contains("Verifying network isolation") && !said.contains("verify could not run"),
        "up's quick check through the helper: {said}"
    );
    let verify = alca(
        Some(USER),
        &dir,
        &["network", "verify", "--local-only"],
        &env_refs(&env),
    );
    let report = text(&verify);
    assert!(verify.status.success(), "network verify: {report}");
    assert!(report.contains("Network verify: passed"), "{report}");
    assert!(
        !report.contains("FAIL") && !report.contains("HOLE"),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("ok ") && l.contains(&format!("{LAN4}:{ALLOWED}"))),
        "the allowed LAN port is a row of its own: {report}"
    );
    id
}

/// The protocol refuses what is not a valid typed request and changes nothing.
fn helper_refuses_bad_requests(id: &str) {
    let table = format!("alca-{id}");
    let before = ruleset(&table);
    for (body, mentions) in [
        (
            r#"{"op":"shell","cmd":"nft flush ruleset"}"#.to_string(),
            "unknown variant",
        ),
        (
            format!(
                r#"{{"op":"apply","uid":0,"spec":"{{\"project\":\"{id}\",\"bridge\":\"alca-{}\",\"nft\":\"flush ruleset\"}}"}}"#,
                &id[..10]
            ),
            "unknown field",
        ),
        (
            format!(
                r#"{{"op":"apply","uid":0,"spec":"{{\"project\":\"{id}\",\"bridge\":\"docker0\"}}"}}"#
            ),
            "docker0",
        ),
        (
            format!(r#"{{"op":"remove","uid":0,"project":"../../{id}"}}"#),
            "project",
        ),
    ] {
        let (ok, reply) = raw_request(&body);
        assert!(!ok, "accepted {body}: {reply}");
        assert!(
            reply.contains("InvalidRequest") && reply.contains(mentions),
            "{reply}"
        );
    }
    assert_eq!(ruleset(&table), before);
}

/// The helper's main process re-applies the saved specs whenever it starts.
fn restart_reapplies(id: &str) {
    let table = format!("alca-{id}");
    let expected = ruleset(&table).expect("table");
    // The helper's daemon owns the table; once it stopped, the table is an orphan that may go.
    run_ok("docker", &["stop", CONTAINER_NAME]).unwrap();
    run_ok("nft", &["delete", "table", "inet", &table]).unwrap();
    run_ok("docker", &["start", CONTAINER_NAME]).unwrap();
    // Until the table is back whole (bounded: 10 s).
    let mut back = None;
    for _ in 0..40 {
        back = ruleset(&table);
        if back.as_ref() == Some(&expected) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        back,
        Some(expected),
        "the restarted helper did not re-apply"
    );
    let logs = text(&docker(&["logs", CONTAINER_NAME]).unwrap());
    assert!(logs.contains("re-applied saved rules"), "{logs}");
    let _l = Listener::start(Some(LANHOST_NS), "blocked", "0.0.0.0", BLOCKED, LIFE).unwrap();
    assert_eq!(probe(&container_of(id), LAN4, BLOCKED), Probe::Refused);
}

/// With `proxy`, container TCP reaches the proxy, which sees the original destination.
fn proxy_through_the_helper(scratch: &Path) {
    assert_route_via(PUBLIC4, LAN_VETH);
    // A redirect-mode proxy runs where the DNAT happens (SO_ORIGINAL_DST): on the host.
    assert_route_local(HOST_LAN4);
    let network = format!("[network]\nproxy = \"{HOST_LAN4}:{PROXY}\"\n");
    let dir = project(scratch, "proxied", &network);
    let up = alca(
        Some(USER),
        &dir,
        &["up", "--trust"],
        &env_refs(&up_env(scratch)),
    );
    assert!(up.status.success(), "alca up failed: {}", text(&up));
    let id = project_id(&dir).expect("state.json");
    let _proxy = Listener::start(None, "proxy", "0.0.0.0", PROXY, LIFE).unwrap();
    let got = probe(&container_of(&id), PUBLIC4, 80);
    // The listener answers `<tag> orig=<SO_ORIGINAL_DST> peer=<its peer>`.
    assert!(
        got.answered_by(&format!("proxy orig={PUBLIC4}:80 ")),
        "{got:?}"
    );
}

/// `internet-access` through the helper: `up` starts the project's resolver inside the helper
/// container as uid 65534 with no capabilities, the rules send the container's DNS to it (a
/// query addressed to the test server lands there), an allowed name opens its address on its
/// port only, a refused name never reaches the server and opens nothing, `network log` names
/// it, `status` shows the resolver and the sets, a grant through the CLI answers and expires
/// (the grants live in the helper's one daemon), a dead resolver is started again by `alca
/// run`, and `down` stops the resolver.
fn internet_access_through_the_helper(scratch: &Path) {
    assert_route_via(PUBLIC4, LAN_VETH);
    let public: std::net::IpAddr = PUBLIC4.parse().unwrap();
    let zone = LanhostZone::start(Zone::new().addr("allowed.test", public, 60).addr(
        "blocked.test",
        public,
        60,
    ))
    .expect("zone server in lanhost");
    let _listeners = [
        Listener::start(
            Some(LANHOST_NS),
            "inet-allowed",
            PUBLIC4,
            INET_ALLOWED,
            LIFE,
        )
        .unwrap(),
        Listener::start(Some(LANHOST_NS), "inet-other", PUBLIC4, INET_OTHER, LIFE).unwrap(),
    ];
    let network = format!(
        "[network]\ninternet-access = [\"allowed.test:{INET_ALLOWED}\"]\n\
         dns-upstream = [\"{PUBLIC4}:53\"]\ndns-ttl-floor = 0\n"
    );
    let dir = project(scratch, "listed", &network);
    let env = up_env(scratch);
    let as_owner = |args: &[&str]| {
        let out = alca(Some(USER), &dir, args, &env_refs(&env));
        (out.status.success(), text(&out))
    };
    let (ok, said) = as_owner(&["up", "--trust"]);
    assert!(ok, "alca up with a list through the helper: {said}");
    let id = project_id(&dir).expect("state.json");
    let c = container_of(&id);

    // The resolver runs in the helper for this project, never as root, with no capability.
    let pids = resolver_pids(&id);
    assert_eq!(pids.len(), 1, "one resolver for the project: {pids:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), ["65534"; 4], "{status}");
    assert_eq!(field("Gid:"), ["65534"; 4], "{status}");
    assert_eq!(field("Groups:"), Vec::<&str>::new(), "{status}");
    for caps in ["CapPrm:", "CapEff:", "CapAmb:"] {
        assert_eq!(field(caps), ["0000000000000000"], "{caps} {status}");
    }
    assert_eq!(field("NoNewPrivs:"), ["1"], "{status}");
    assert!(
        !run_ok("pgrep", &["-u", USER, "-f", "__serve-dns"])
            .unwrap_or_default()
            .contains(char::is_numeric),
        "no resolver of the user's runs on the host"
    );

    // Before any answer the address is refused; a refused name is never asked upstream
    // (though addressed to the test server itself: it landed at the resolver) and opens
    // nothing.
    assert_eq!(probe(&c, PUBLIC4, INET_ALLOWED), Probe::Refused);
    let out = dns_zone::nslookup(&c, None, "blocked.test");
    assert!(!answers_with(&out, PUBLIC4), "blocked.test resolved: {out}");
    assert!(
        !zone
            .seen
            .names()
            .iter()
            .any(|n| n.starts_with("blocked.test")),
        "a refused name reached the server: {:?}",
        zone.seen.names()
    );
    assert_eq!(probe(&c, PUBLIC4, INET_ALLOWED), Probe::Refused);

    // The allowed name: answered, its address in the kernel before the answer, on the entry's
    // port only.
    let out = dns_zone::nslookup(&c, None, "allowed.test");
    assert!(answers_with(&out, PUBLIC4), "allowed.test: {out}");
    assert!(
        zone.seen
            .names()
            .iter()
            .any(|n| n.starts_with("allowed.test")),
        "the allowed name was asked upstream"
    );
    assert!(
        probe(&c, PUBLIC4, INET_ALLOWED).answered_by("inet-allowed"),
        "the address was not in the kernel when the answer came"
    );
    assert_eq!(probe(&c, PUBLIC4, INET_OTHER), Probe::Refused);

    // `network verify`'s internet rows through the helper: a name asked of an outside server
    // (192.88.99.1, routed to `lanhost` for the test) is answered by the project's resolver.
    {
        let _route = RouteToLanhost::add("192.88.99.1").expect("route to the outside server");
        let (ok, report) = as_owner(&["network", "verify", "--local-only"]);
        assert!(ok, "network verify: {report}");
        dns_zone::assert_verify_internet_rows(&report);
    }

    // `network log` and `status`, through the helper.
    let (ok, log) = as_owner(&["network", "log"]);
    assert!(ok, "network log: {log}");
    assert!(
        log.contains("internet-access = [\"blocked.test\"]"),
        "{log}"
    );
    let (_, status) = as_owner(&["status"]);
    assert!(status.contains("DNS resolver: running"), "{status}");
    assert!(
        status.contains("Internet rules: list (") && !status.contains("(0 allowed"),
        "{status}"
    );

    // A grant through the CLI: the name answers and opens every port at once, is listed, and
    // closes by itself after 3 s. (The resolver reads new grants at a refused name at most
    // once a second: let its last read age first.)
    std::thread::sleep(Duration::from_millis(1100));
    let granted = std::time::Instant::now();
    let (ok, said) = as_owner(&["network", "allow", "blocked.test", "--for", "3s"]);
    assert!(ok, "network allow: {said}");
    let out = dns_zone::nslookup(&c, None, "blocked.test");
    assert!(
        answers_with(&out, PUBLIC4),
        "blocked.test under a grant: {out}"
    );
    assert!(probe(&c, PUBLIC4, INET_OTHER).answered_by("inet-other"));
    let over = granted + Duration::from_millis(4200);
    std::thread::sleep(over.saturating_duration_since(std::time::Instant::now()));
    let (ok, list) = as_owner(&["network", "allow", "--list"]);
    assert!(ok && list.contains("(no grants)"), "{list}");
    let out = dns_zone::nslookup(&c, None, "blocked.test");
    assert!(
        !answers_with(&out, PUBLIC4),
        "blocked.test after the grant: {out}"
    );
    assert_eq!(probe(&c, PUBLIC4, INET_OTHER), Probe::Refused);
    let (ok, said) = as_owner(&["network", "allow", "blocked.test", "--for", "1h"]);
    assert!(ok, "network allow: {said}");
    let (ok, list) = as_owner(&["network", "allow", "--list"]);
    assert!(ok && list.contains("blocked.test"), "{list}");
    let (ok, said) = as_owner(&["network", "allow", "--revoke", "blocked.test"]);
    assert!(ok && said.contains("Revoked"), "{said}");

    // A resolver that died is started again by `alca run`, and the name answers again.
    run_ok("kill", &[&pids[0]]).unwrap();
    for _ in 0..20 {
        if resolver_pids(&id).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(resolver_pids(&id).is_empty(), "the resolver did not die");
    let (ok, said) = as_owner(&["run", "true"]);
    assert!(ok, "alca run: {said}");
    assert_eq!(resolver_pids(&id).len(), 1, "run did not start it: {said}");
    let out = dns_zone::nslookup(&c, None, "allowed.test");
    assert!(answers_with(&out, PUBLIC4), "allowed.test after run: {out}");
    assert!(probe(&c, PUBLIC4, INET_ALLOWED).answered_by("inet-allowed"));

    // down stops the resolver and removes the rules.
    let (ok, said) = as_owner(&["down", "--force"]);
    assert!(ok, "alca down: {said}");
    assert!(resolver_pids(&id).is_empty(), "the resolver outlived down");
    assert!(!alca_tables().unwrap().contains(&format!("alca-{id}")));
}

/// The pids of the helper's resolvers of project `id` (their state directory names it).
fn resolver_pids(id: &str) -> Vec<String> {
    run_ok("pgrep", &["-f", &format!("alca-dns-resolver .*{id}")])
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn down_removes_the_rules(scratch: &Path, id: &str) {
    let dir = scratch.join("isolated");
    let down = alca(Some(USER), &dir, &["down"], &env_refs(&up_env(scratch)));
    assert!(down.status.success(), "alca down failed: {}", text(&down));
    assert!(!alca_tables().unwrap().contains(&format!("alca-{id}")));
}

/// Uninstall (no sudo needed: docker is the privilege) while the proxied project still has
/// rules: they go, with the container, its volume and the image.
fn uninstall_leaves_nothing() {
    assert!(
        !alca_tables().unwrap().is_empty(),
        "the proxied project has rules"
    );
    let out = alca(
        Some(USER),
        Path::new("/tmp"),
        &["network-helper", "uninstall", "-y"],
        &[],
    );
    assert!(out.status.success(), "uninstall failed: {}", text(&out));
    assert_eq!(alca_tables().unwrap(), Vec::<String>::new());
    assert!(
        !run("docker", &["container", "inspect", CONTAINER_NAME])
            .unwrap()
            .status
            .success(),
        "helper container left behind"
    );
    assert!(
        !run("docker", &["volume", "inspect", STATE_VOLUME])
            .unwrap()
            .status
            .success(),
        "state volume left behind"
    );
    assert!(!image_exists(), "helper image left behind");
    let status = text(&alca(
        None,
        Path::new("/"),
        &["network-helper", "status"],
        &[],
    ));
    assert!(status.contains("Installed: No"), "{status}");
}
