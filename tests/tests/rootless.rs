//! End-to-end: network isolation of a ROOTLESS Podman container (issue #20). The user
//! `alcatest` runs rootless Podman (slirp4netns); the installed daemon, authorised by polkit,
//! applies the project's rules inside the container's own network namespace (`ApplyInNetns`)
//! between `podman init` (namespace made, nothing of the container run yet) and `podman start`.
//!
//! Proven here, each against a control container of the same user without rules that does
//! reach the same listener (so a refusal is the rules', not the path's), and by the packet
//! counters of the table's deny rules: the LAN test host, the IPv6 ULA test host, the host's
//! own addresses, slirp4netns' host aliases (10.0.2.2, 10.0.2.3) and a sibling container's
//! published port are refused; the internet test host answers; an allow-listed IP:port answers
//! and another port of that IP is refused; the user himself, with every capability in the
//! container's namespace (`podman unshare nsenter`), cannot flush, delete or bypass the table
//! (`nft flush ruleset`, `iptables -F`, an output DNAT, renaming interfaces); a second user
//! cannot apply rules into the first user's namespace; after `podman restart` the daemon no
//! longer vouches for the new namespace (`NetnsApplied` is false), so `alca run` would refuse.
//! A container carrying the project annotation gets its rules from the OCI hook at every start,
//! before its first process sends a packet, and does not start when no spec is held; `alca up`
//! sets that up, and `alca network verify` probes a rootless container from inside. Rootless
//! Docker's containers are isolated by the same rules in their own namespace.
//!
//! Network safety: every target is routed through the test veth or is local to this host
//! (checked with `ip route get` before any connect); slirp4netns' DNS alias is probed on a port
//! other than 53. Needs root, the test env, and the global lock (it installs the daemon).

use std::process::{Command, Output};

use alca_contract::net_spec::bridge_name;
use alca_contract::oci_hook::ANNOTATION;
use alca_e2e::docker::{nc_script, refusal_sampler, Probe};
use alca_e2e::lifecycle::{free_port, TempDir};
use alca_e2e::netd::{
    alca, call_as, container_name, install_helper_for, project_id, remove_as, stop_daemon, text,
    Reply, TempGroupMember,
};
use alca_e2e::netns::{
    assert_route_local, assert_route_via, run, run_ok, uplink_ipv4, LanhostV6, Listener, NsCounter,
    HOST_LAN4, LAN4, LANHOST_NS, LANHOST_V6, LAN_VETH, PUBLIC4,
};

const USER: &str = "alcatest";
const OTHER: &str = "alcaother";
const IMAGE: &str = "localhost/alca-test/busybox:latest";
const ROOTFS: &str = "/var/lib/alca-testenv/busybox-rootfs.tar";
const PROJECT: &str = "0e2e70000000000000000000000000e1";
/// What `import` of the busybox rootfs needs to make a runnable image.
const IMPORT_CHANGES: [&str; 4] = [
    "--change",
    "CMD [\"/bin/sh\"]",
    "--change",
    "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
];
/// Listener lifetime: the whole test runs well within it.
const LIFE: u32 = 240;

/// `env HOME=… XDG_RUNTIME_DIR=…` run as `user` in /tmp: his rootless runtimes' environment;
/// the program and its arguments follow.
fn as_user(user: &str) -> Command {
    let uid = run_ok("id", &["-u", user]).expect("id -u");
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", "env"])
        .arg(format!("HOME=/home/{user}"))
        .arg(format!("XDG_RUNTIME_DIR=/run/user/{uid}"))
        .current_dir("/tmp");
    cmd
}

/// `podman ARGS…` as `user`, rootless (its own home and runtime directory).
fn podman_as(user: &str, args: &[&str]) -> Output {
    as_user(user)
        .arg("podman")
        .args(args)
        .output()
        .expect("running podman")
}

fn podman_ok(args: &[&str]) -> String {
    let out = podman_as(USER, args);
    assert!(out.status.success(), "podman {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A rootless container of `USER`, removed on drop.
struct Container {
    name: String,
}

impl Container {
    /// Created and initialised (`podman init`: its namespaces and slirp4netns exist, its
    /// command has not run), not started.
    fn init(name: &str, extra: &[&str]) -> Container {
        let _ = podman_as(USER, &["rm", "-f", "-t", "0", name]);
        let mut args = vec!["create", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sleep", "600"]);
        podman_ok(&args);
        podman_ok(&["init", name]);
        Container { name: name.into() }
    }

    fn pid(&self) -> u32 {
        podman_ok(&["inspect", "--format", "{{.State.Pid}}", &self.name])
            .parse()
            .expect("a pid")
    }

    fn start(&self) {
        podman_ok(&["start", &self.name]);
    }

    fn sh(&self, script: &str) -> String {
        let out = podman_as(USER, &["exec", &self.name, "sh", "-c", script]);
        text(&out)
    }

    fn probe(&self, addr: &str, port: u16) -> Probe {
        Probe::classify(&self.sh(&nc_script(addr, port)))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman_as(USER, &["rm", "-f", "-t", "0", &self.name]);
    }
}

fn spec(allow: &str) -> String {
    spec_of(PROJECT, allow)
}

fn spec_of(project: &str, allow: &str) -> String {
    format!(
        r#"{{"project":"{project}","bridge":"{}","allow":[{allow}]}}"#,
        bridge_name(project)
    )
}

fn apply_in_netns(user: &str, spec_json: &str, pid: u32) -> Reply {
    call_as(
        user,
        "ApplyInNetns",
        &[format!("string:{spec_json}"), format!("uint32:{pid}")],
    )
    .expect("dbus-send")
}

fn netns_applied(pid: u32) -> bool {
    netns_applied_for(PROJECT, pid)
}

fn netns_applied_for(project: &str, pid: u32) -> bool {
    let reply = call_as(
        USER,
        "NetnsApplied",
        &[format!("string:{project}"), format!("uint32:{pid}")],
    )
    .expect("dbus-send");
    match reply {
        Reply::Ok(out) => out.contains("boolean true"),
        Reply::Err { .. } => panic!("NetnsApplied failed: {reply:?}"),
    }
}

/// `nft ARGS…` run by root inside the network namespace of `pid`.
fn nft_in(pid: u32, args: &[&str]) -> Result<String, String> {
    let ns = format!("--net=/proc/{pid}/ns/net");
    let mut all = vec![ns.as_str(), "nft"];
    all.extend_from_slice(args);
    let out = run("nsenter", &all).expect("nsenter");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Packets the table's deny rules refused so far (the counters of its reject rules).
fn refused_packets(pid: u32) -> u64 {
    refused_packets_of(PROJECT, pid)
}

fn refused_packets_of(project: &str, pid: u32) -> u64 {
    let table = format!("alca-{project}");
    let listing = nft_in(pid, &["list", "chain", "inet", &table, "isolate"]).unwrap_or_default();
    listing
        .lines()
        .filter(|l| l.contains("reject"))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "packets")?;
            words.get(at + 1)?.parse::<u64>().ok()
        })
        .sum()
}

/// `sh -c SCRIPT` as `USER` with every capability in the container's namespaces: the user
/// namespace rootless Podman keeps (`podman unshare`), then the container's network namespace.
fn as_owner_inside(pid: u32, script: &str) -> Output {
    let target = pid.to_string();
    podman_as(
        USER,
        &[
            "unshare", "nsenter", "-t", &target, "-n", "sh", "-c", script,
        ],
    )
}

/// A target the ruled container must not reach: the control container (no rules) shows the
/// path is there when it can, and the deny counters must grow either way.
fn assert_refused(ruled: &Container, control: Option<&Container>, addr: &str, port: u16) {
    if let Some(control) = control {
        let seen = control.probe(addr, port);
        assert!(
            matches!(seen, Probe::Answered(_)),
            "control container could not reach {addr}:{port}: {seen:?}"
        );
    }
    let pid = ruled.pid();
    let before = refused_packets(pid);
    let seen = ruled.probe(addr, port);
    assert!(
        !matches!(seen, Probe::Answered(_)),
        "the ruled container reached {addr}:{port}: {seen:?}"
    );
    let after = refused_packets(pid);
    assert!(
        after > before,
        "{addr}:{port} was not refused by the table's rules ({before} -> {after}); {seen:?}"
    );
}

fn podman_image_for(user: &str) {
    let have = podman_as(user, &["image", "exists", IMAGE]);
    if have.status.success() {
        return;
    }
    let mut args = vec!["import", "-q"];
    args.extend_from_slice(&IMPORT_CHANGES);
    args.extend_from_slice(&[ROOTFS, IMAGE]);
    let out = podman_as(user, &args);
    assert!(out.status.success(), "podman import: {}", text(&out));
}

/// Once per test binary (its tests run in parallel): the helper installed with the freshly
/// built daemon for `USER`, and the test image in `USER`'s rootless store.
/// Installs once, then runs the calling test alone: several tests stop the daemon, which
/// forgets the specs it holds for rootless projects (in memory only), so a test running beside
/// them would lose its held spec. Hold the guard for the whole test.
fn setup() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        alca_e2e::privilege::require_root("the rootless suite");
        let install = install_helper_for(USER, &std::env::temp_dir());
        assert!(install.status.success(), "{}", text(&install));
        podman_image_for(USER);
    });
    alone
}

#[test]
fn rootless_podman_container_is_isolated_inside_its_own_namespace() {
    let _alone = setup();

    let port = free_port();
    let other_port = free_port();
    let _v6 = LanhostV6::add().expect("lanhost IPv6");
    for addr in [LAN4, PUBLIC4, LANHOST_V6] {
        assert_route_via(addr, LAN_VETH);
    }
    let uplink = uplink_ipv4().expect("uplink address");
    for addr in [HOST_LAN4, uplink.as_str(), "127.0.0.1"] {
        assert_route_local(addr);
    }
    let _lan = Listener::start(Some(LANHOST_NS), "lan", "0.0.0.0", port, LIFE).unwrap();
    let _lan2 = Listener::start(Some(LANHOST_NS), "lan2", "0.0.0.0", other_port, LIFE).unwrap();
    let _lan6 = Listener::start(Some(LANHOST_NS), "lan6", LANHOST_V6, port, LIFE).unwrap();
    let _host_lan = Listener::start(None, "hostlan", HOST_LAN4, port, LIFE).unwrap();
    let _host_up = Listener::start(None, "hostup", &uplink, port, LIFE).unwrap();
    let _host_lo = Listener::start(None, "hostlo", "127.0.0.1", port, LIFE).unwrap();

    // The control container: the same user's, no rules; it publishes a port on the host (a
    // sibling container's service) and shows every path below exists.
    let sibling_port = free_port();
    let publish = format!("{sibling_port}:{port}");
    // Both allow slirp4netns' host-loopback alias (off by default): the widest path there is.
    let slirp = "--network=slirp4netns:allow_host_loopback=true";
    let control = Container::init("alca-e2e-rl-control", &[slirp, "-p", &publish]);
    control.start();
    control.sh(&format!(
        "(while true; do echo sibling | nc -l -p {port}; done) >/dev/null 2>&1 &"
    ));

    // The ruled container, with NET_ADMIN granted: rules go in before it runs anything.
    let ruled = Container::init("alca-e2e-rl-ruled", &[slirp, "--cap-add", "NET_ADMIN"]);
    let pid = ruled.pid();
    assert!(!netns_applied(pid), "no rules yet");
    // Another user (authorised by polkit) cannot apply into this user's namespace.
    {
        let _member = TempGroupMember::add(OTHER, "alcatraz").unwrap();
        let reply = apply_in_netns(OTHER, &spec(""), pid);
        assert_eq!(reply.error_kind(), Some("NotOwner"), "{reply:?}");
        assert!(nft_in(pid, &["list", "tables"]).unwrap().trim().is_empty());
    }
    // Nor into the host's namespace (a process of the host's).
    let reply = apply_in_netns(USER, &spec(""), std::process::id());
    assert!(!reply.is_ok(), "{reply:?}");
    let applied = apply_in_netns(USER, &spec(""), pid);
    assert!(applied.is_ok(), "{applied:?}");
    assert!(netns_applied(pid));
    let listed = nft_in(pid, &["list", "table", "inet", &format!("alca-{PROJECT}")]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");
    ruled.start();

    // The default config.
    assert!(ruled.probe(PUBLIC4, port).answered_by("lan"), "internet");
    assert_refused(&ruled, Some(&control), LAN4, port);
    assert_refused(&ruled, None, LANHOST_V6, port);
    assert_refused(&ruled, Some(&control), HOST_LAN4, port);
    assert_refused(&ruled, Some(&control), &uplink, port);
    assert_refused(&ruled, Some(&control), &uplink, sibling_port);
    assert_refused(&ruled, Some(&control), "10.0.2.2", port); // the host's loopback
    assert_refused(&ruled, Some(&control), "10.0.2.2", sibling_port);
    for alias in ["10.0.2.3", "fd00::2", "fd00::3"] {
        assert_refused(&ruled, None, alias, port);
    }

    // An allow-listed IP:port answers; another port of that IP is refused.
    let allow = format!(r#"{{"net":"{LAN4}/32","proto":"tcp","port":{port}}}"#);
    let applied = apply_in_netns(USER, &spec(&allow), pid);
    assert!(applied.is_ok(), "{applied:?}");
    assert!(ruled.probe(LAN4, port).answered_by("lan"));
    assert_refused(&ruled, Some(&control), LAN4, other_port);

    // The container (NET_ADMIN) and the user himself (every capability in its namespaces)
    // try to remove or get around the rules.
    ruled.sh(
        "ip link add dummy0 type dummy; ip link set dummy0 up; ip link set lo down; \
         ip link set lo name lo9; ip link set lo9 up",
    );
    let attacks = "nft flush ruleset; nft delete table inet alca-".to_string()
        + PROJECT
        + "; iptables -F; iptables -t nat -F; \
           iptables -t nat -A OUTPUT -p tcp -d "
        + PUBLIC4
        + " -j DNAT --to-destination "
        + LAN4
        + ":"
        + &other_port.to_string();
    let attacked = as_owner_inside(pid, &attacks);
    assert!(
        text(&attacked).contains("Operation not permitted"),
        "the owned table's delete was not refused: {}",
        text(&attacked)
    );
    assert!(nft_in(pid, &["list", "table", "inet", &format!("alca-{PROJECT}")]).is_ok());
    assert!(netns_applied(pid));
    assert_refused(&ruled, None, LAN4, other_port);
    assert_refused(&ruled, None, PUBLIC4, port); // DNAT'd to the LAN: refused by its real target
    assert!(
        ruled.probe(LAN4, port).answered_by("lan"),
        "the allowed port"
    );

    // A chain of the user's own at postrouting that rewrites the destination after the output
    // chain judged it (allowed internet host -> LAN host). This kernel refuses payload rewrites
    // from a rootless user namespace (EPERM); should it take one, the table's late check must
    // drop the packet before it leaves: the LAN host's own counter stays at zero (it counts
    // the allowed port's packets, so it does count).
    let mangle_port = free_port();
    let seen = NsCounter::install(
        LANHOST_NS,
        "alca_e2e_rootless_count",
        &[
            (
                "mangled",
                &format!("ip daddr {LAN4} tcp dport {mangle_port}"),
            ),
            ("allowed", &format!("ip daddr {LAN4} tcp dport {port}")),
        ],
    )
    .unwrap();
    let evil = format!(
        "nft 'add table ip evil; add chain ip evil post {{ type filter hook postrouting \
         priority 2147483647; }}; add rule ip evil post ip daddr {PUBLIC4} tcp dport \
         {mangle_port} ip daddr set {LAN4}'"
    );
    let added = as_owner_inside(pid, &evil);
    if !added.status.success() {
        assert!(
            text(&added).contains("Operation not permitted"),
            "{}",
            text(&added)
        );
    }
    let _ = ruled.probe(PUBLIC4, mangle_port);
    assert!(
        ruled.probe(LAN4, port).answered_by("lan"),
        "the allowed port"
    );
    assert!(seen.packets("allowed").unwrap() > 0, "the counter counts");
    assert_eq!(
        seen.packets("mangled").unwrap(),
        0,
        "a rewritten packet left"
    );

    // After a restart the namespace is new: the daemon does not vouch for it.
    podman_ok(&["restart", "-t", "0", &ruled.name]);
    let new_pid = ruled.pid();
    assert_ne!(new_pid, pid);
    assert!(!netns_applied(new_pid), "a new namespace has no rules");
}

/// A project of `user`'s (the test image, `runtime`) in a scratch directory: (the scratch,
/// removed on drop; the project directory).
fn project_of(user: &str, tag: &str, runtime: &str) -> (TempDir, std::path::PathBuf) {
    let scratch = TempDir::new(tag);
    let dir = scratch.0.join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!("image = \"{IMAGE}\"\nruntime = \"{runtime}\"\n");
    std::fs::write(dir.join(".alca.toml"), config).unwrap();
    let owner = format!("{user}:{user}");
    run_ok("chown", &["-R", &owner, scratch.0.to_str().unwrap()]).unwrap();
    (scratch, dir)
}

/// `alca ARGS` as `USER` in `dir`, with rootless Podman's environment and the project's own
/// trust records.
fn alca_rootless(dir: &std::path::Path, args: &[&str]) -> Output {
    alca_rootless_with(dir, args, &[])
}

/// [`alca_rootless`] with more environment (`DOCKER_HOST` of a rootless dockerd).
fn alca_rootless_with(dir: &std::path::Path, args: &[&str], more: &[(&str, &str)]) -> Output {
    let uid = run_ok("id", &["-u", USER]).expect("id -u");
    let home = format!("/home/{USER}");
    let runtime_dir = format!("/run/user/{uid}");
    let state = dir.join(".state").to_string_lossy().into_owned();
    let mut env = vec![
        ("HOME", home.as_str()),
        ("XDG_RUNTIME_DIR", runtime_dir.as_str()),
        ("XDG_STATE_HOME", state.as_str()),
    ];
    env.extend_from_slice(more);
    alca(Some(USER), dir, args, &env)
}

/// `alca up` on rootless Podman: the rules are in the container's namespace (owned by the
/// daemon) once it runs; `alca run` sees the LAN refused and the internet test host answer;
/// after `podman restart` (a new namespace) the OCI hook has put them in; after a daemon
/// restart `alca run` puts them back before it runs anything, and a `podman restart` fails
/// until `alca up`; `alca down` removes the container.
#[test]
fn alca_up_on_rootless_podman_isolates_before_the_container_runs() {
    let _alone = setup();
    let port = free_port();
    for addr in [LAN4, PUBLIC4] {
        assert_route_via(addr, LAN_VETH);
    }
    let _lan = Listener::start(Some(LANHOST_NS), "lan", "0.0.0.0", port, LIFE).unwrap();
    let (_scratch, dir) = project_of(USER, "rootless-up", "podman");

    let up = alca_rootless(&dir, &["up", "--trust"]);
    let said = text(&up);
    assert!(up.status.success(), "alca up: {said}");
    assert!(said.contains("rootless Podman"), "{said}");
    assert!(
        said.contains("Verifying network isolation (quick)"),
        "{said}"
    );
    assert!(
        !said.contains("network verify"),
        "the quick check failed: {said}"
    );
    // `alca network verify` probes from inside the container, judged by the spec the daemon
    // says its owned table in the container's namespace was built from (local targets only:
    // every one stays on this machine).
    let verify = alca_rootless(&dir, &["network", "verify", "--local-only"]);
    let said = text(&verify);
    assert!(verify.status.success(), "alca network verify: {said}");
    assert!(said.contains("Network verify: passed"), "{said}");
    for row in [
        "bridge gateway 10.0.2.2",
        "bridge gateway 10.0.2.3",
        "host address on",
    ] {
        let line = said
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("no {row} row: {said}"));
        assert!(line.starts_with("ok") && line.contains("blocked"), "{line}");
    }
    let name = container_name(&project_id(&dir));
    let table = format!("alca-{}", project_id(&dir));
    let pid = |n: &str| -> u32 {
        podman_ok(&["inspect", "--format", "{{.State.Pid}}", n])
            .parse()
            .unwrap()
    };
    let listed = nft_in(pid(&name), &["list", "table", "inet", &table]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");
    let probe = |addr: &str| {
        let script = nc_script(addr, port);
        Probe::classify(&text(&alca_rootless(
            &dir,
            &["run", "--", "sh", "-c", &script],
        )))
    };
    assert!(probe(PUBLIC4).answered_by("lan"), "internet test host");
    assert_eq!(probe(LAN4), Probe::Refused, "LAN test host");

    // The container names its project for the OCI hook, and `podman restart` (a new
    // namespace, no alca involved) gets the rules from it before the keep-alive runs.
    let annotation = podman_ok(&[
        "inspect",
        "--format",
        &format!("{{{{index .Config.Annotations \"{ANNOTATION}\"}}}}"),
        &name,
    ]);
    assert_eq!(annotation, project_id(&dir));
    let before = pid(&name);
    podman_ok(&["restart", "-t", "0", &name]);
    assert_ne!(pid(&name), before);
    let listed = nft_in(pid(&name), &["list", "table", "inet", &table]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");
    let script = nc_script(LAN4, port);
    let run = alca_rootless(&dir, &["run", "--", "sh", "-c", &script]);
    let said = text(&run);
    assert!(!said.contains("applied again"), "{said}");
    assert_eq!(Probe::classify(&said), Probe::Refused, "{said}");

    // A daemon restart forgets which namespaces it ruled: verify then probes nothing and says
    // so, and `run` re-applies before it runs anything.
    stop_daemon();
    let verify = alca_rootless(&dir, &["network", "verify", "--local-only"]);
    let said = text(&verify);
    assert!(!verify.status.success(), "{said}");
    assert!(
        said.contains("rules are not in the container's network namespace"),
        "{said}"
    );
    let run = alca_rootless(&dir, &["run", "--", "sh", "-c", &script]);
    let said = text(&run);
    assert!(
        said.contains("were missing and were applied again"),
        "{said}"
    );
    assert_eq!(Probe::classify(&said), Probe::Refused, "{said}");

    // It also forgets the held spec: a restart then fails in the hook (fail closed) until
    // `alca up` hands the spec over again.
    stop_daemon();
    let restart = podman_as(USER, &["restart", "-t", "0", &name]);
    assert!(!restart.status.success(), "restarted without rules");
    assert!(
        text(&restart).contains("no rules are held"),
        "{}",
        text(&restart)
    );
    let up = alca_rootless(&dir, &["up"]);
    assert!(up.status.success(), "alca up: {}", text(&up));
    assert!(nft_in(pid(&name), &["list", "table", "inet", &table]).is_ok());
    assert_eq!(
        Probe::classify(&text(&alca_rootless(
            &dir,
            &["run", "--", "sh", "-c", &script]
        ))),
        Probe::Refused
    );

    let down = alca_rootless(&dir, &["down", "--force"]);
    assert!(down.status.success(), "alca down: {}", text(&down));
    assert!(!podman_as(USER, &["container", "exists", &name])
        .status
        .success());
}

/// The project of the hook test (its own, so it never meets the other tests' table).
const HOOKED: &str = "0e2e70000000000000000000000000e2";

/// `podman logs NAME` (the container's own output, across its starts).
fn logs(name: &str) -> String {
    text(&podman_as(USER, &["logs", name]))
}

/// Waits (bounded) until the container's output holds `n` complete samplings; its output.
fn sampled(name: &str, n: usize) -> String {
    for _ in 0..100 {
        let out = logs(name);
        if out.matches("sampled").count() >= n {
            return out;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{name} did not finish sampling {n} time(s): {}", logs(name));
}

/// A restart behind alca's back (`podman restart`, no `alca` involved) gets the project's rules
/// from the OCI hook before the container's first process runs: that process is a connect loop
/// to the LAN test host, and not one of its packets reaches the LAN host (the host's own
/// counter), first start or restart, while the same loop without the annotation gets through.
/// A start whose hook cannot apply (no spec held, the project removed) fails and runs nothing.
#[test]
fn a_restart_behind_alcas_back_is_ruled_by_the_oci_hook_before_its_first_packet() {
    let _alone = setup();
    let hook = std::fs::read_to_string(alca_contract::oci_hook::HOOK_FILE)
        .expect("install wrote the OCI hook file");
    assert!(hook.contains("--oci-hook"), "{hook}");
    let port = free_port();
    let control_port = free_port();
    assert_route_via(LAN4, LAN_VETH);
    let _lan = Listener::start(Some(LANHOST_NS), "lan", "0.0.0.0", port, LIFE).unwrap();
    let _ctl = Listener::start(Some(LANHOST_NS), "ctl", "0.0.0.0", control_port, LIFE).unwrap();
    let seen = NsCounter::install(
        LANHOST_NS,
        "alca_e2e_rootless_hook",
        &[
            ("ruled", &format!("ip daddr {LAN4} tcp dport {port}")),
            (
                "control",
                &format!("ip daddr {LAN4} tcp dport {control_port}"),
            ),
        ],
    )
    .unwrap();
    let loop_to = |p: u16| format!("{}; sleep 600", refusal_sampler(&[("lan", LAN4, p)]));
    let create = |name: &str, annotation: Option<&str>, p: u16| -> Container {
        let _ = podman_as(USER, &["rm", "-f", "-t", "0", name]);
        let note = annotation.map(|project| format!("{ANNOTATION}={project}"));
        let mut args = vec!["create", "--name", name, "--network=slirp4netns"];
        if let Some(note) = &note {
            args.extend_from_slice(&["--annotation", note]);
        }
        let script = loop_to(p);
        args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
        podman_ok(&args);
        Container { name: name.into() }
    };

    // Without the annotation the same loop reaches the LAN host: the path is there.
    let control = create("alca-e2e-rl-hook-control", None, control_port);
    control.start();
    assert!(sampled(&control.name, 1).contains("OPEN-lan"), "control");
    assert!(seen.packets("control").unwrap() > 0, "the counter counts");

    // The spec is held before the first start, as `alca up` does before `podman init`.
    let _ = remove_as(USER, HOOKED);
    let held = call_as(
        USER,
        "HoldNetnsSpec",
        &[format!("string:{}", spec_of(HOOKED, ""))],
    )
    .unwrap();
    assert!(held.is_ok(), "{held:?}");
    let ruled = create("alca-e2e-rl-hooked", Some(HOOKED), port);
    ruled.start();
    let pid = ruled.pid();
    assert!(netns_applied_for(HOOKED, pid), "the hook applied the rules");
    let out = sampled(&ruled.name, 1);
    assert!(
        !out.contains("OPEN-"),
        "the first start reached the LAN: {out}"
    );
    // Another user (authorised by polkit) can neither apply the held spec into this user's
    // namespace nor replace it.
    {
        let _member = TempGroupMember::add(OTHER, "alcatraz").unwrap();
        let args = [format!("string:{HOOKED}"), format!("uint32:{pid}")];
        let reply = call_as(OTHER, "ApplyHeldInNetns", &args).unwrap();
        assert_eq!(reply.error_kind(), Some("NotOwner"), "{reply:?}");
        let args = [format!("string:{}", spec_of(HOOKED, ""))];
        let reply = call_as(OTHER, "HoldNetnsSpec", &args).unwrap();
        assert_eq!(reply.error_kind(), Some("NotOwner"), "{reply:?}");
    }

    // A restart behind alca's back: a new namespace, ruled by the hook again.
    podman_ok(&["restart", "-t", "0", &ruled.name]);
    let new_pid = ruled.pid();
    assert_ne!(new_pid, pid);
    assert!(netns_applied_for(HOOKED, new_pid), "no `alca run` needed");
    let out = sampled(&ruled.name, 2);
    assert!(!out.contains("OPEN-"), "the restart reached the LAN: {out}");
    assert_eq!(
        seen.packets("ruled").unwrap(),
        0,
        "a packet of the ruled container reached the LAN host"
    );
    let table = format!("alca-{HOOKED}");
    let listed = nft_in(new_pid, &["list", "table", "inet", &table]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");

    // Fail closed: once the project is removed, the hook has nothing to apply and the start
    // fails before the container's command runs.
    podman_ok(&["stop", "-t", "0", &ruled.name]);
    let removed = remove_as(USER, HOOKED).unwrap();
    assert!(removed.is_ok(), "{removed:?}");
    let before = logs(&ruled.name);
    let start = podman_as(USER, &["start", &ruled.name]);
    assert!(!start.status.success(), "started without rules");
    assert!(
        text(&start).contains("no rules are held"),
        "{}",
        text(&start)
    );
    assert_eq!(logs(&ruled.name), before, "the command ran");
    // Nor does a container naming a project nobody handed over start.
    let unheld = create("alca-e2e-rl-unheld", Some(HOOKED), port);
    let start = podman_as(USER, &["start", &unheld.name]);
    assert!(!start.status.success(), "started without rules");
    assert_eq!(seen.packets("ruled").unwrap(), 0);
}

/// The project of the rootless Docker test.
const DOCKERED: &str = "0e2e70000000000000000000000000e3";
/// Where Debian's `docker.io` ships the rootless launcher (it needs `rootlesskit`).
const DOCKERD_ROOTLESS: &str = "/usr/share/docker.io/contrib/dockerd-rootless.sh";

/// `USER`'s rootless Docker daemon (rootlesskit + slirp4netns + dockerd in the user's own
/// namespaces), started by hand as the upstream script does without systemd; stopped (its
/// whole process group) on drop.
struct RootlessDockerd {
    child: std::process::Child,
    socket: String,
}

impl RootlessDockerd {
    fn start() -> RootlessDockerd {
        use std::os::unix::process::CommandExt;
        assert!(
            run_ok("sh", &["-c", "command -v rootlesskit"]).is_ok(),
            "rootlesskit is missing: run tests/env/setup.sh"
        );
        let uid = run_ok("id", &["-u", USER]).expect("id -u");
        let log = std::fs::File::create(std::env::temp_dir().join("alca-e2e-dockerd-rootless.log"))
            .expect("log file");
        let child = as_user(USER)
            .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
            .arg(DOCKERD_ROOTLESS)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("starting dockerd-rootless.sh");
        let mut dockerd = RootlessDockerd {
            child,
            socket: format!("unix:///run/user/{uid}/docker.sock"),
        };
        for _ in 0..120 {
            if dockerd.docker(&["info"]).status.success() {
                return dockerd;
            }
            if let Ok(Some(status)) = dockerd.child.try_wait() {
                panic!("dockerd-rootless.sh ended ({status}); see alca-e2e-dockerd-rootless.log");
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!("the rootless dockerd did not answer within 60 s");
    }

    /// `docker ARGS…` as `USER`, against the rootless daemon's socket.
    fn docker(&self, args: &[&str]) -> Output {
        as_user(USER)
            .arg(format!("DOCKER_HOST={}", self.socket))
            .arg("docker")
            .args(args)
            .output()
            .expect("running docker")
    }

    /// The test image in the rootless daemon's store.
    fn ensure_image(&self) {
        if !self.docker(&["image", "inspect", IMAGE]).status.success() {
            let mut args = vec!["import"];
            args.extend_from_slice(&IMPORT_CHANGES);
            args.extend_from_slice(&[ROOTFS, IMAGE]);
            self.docker_ok(&args);
        }
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RootlessDockerd {
    fn drop(&mut self) {
        // Our own child's process group: dockerd-rootless.sh, rootlesskit, slirp4netns,
        // dockerd, containerd and the containers' shims.
        let group = format!("-{}", self.child.id());
        let _ = run("kill", &["-TERM", "--", &group]);
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = run("kill", &["-KILL", "--", &group]);
        let _ = self.child.wait();
    }
}

/// Rootless Docker: its containers sit on a `docker0` inside rootlesskit's own network
/// namespace and leave through slirp4netns as the user's sockets, like rootless Podman one
/// namespace further in. The same `ApplyInNetns` into the container's own namespace (owned by
/// the user through rootlesskit's user namespace) isolates it: the LAN test host, a sibling
/// container, rootlesskit's bridge gateway and slirp4netns' host alias are refused (each by
/// the table's deny counters; the control container of the same daemon reaches the LAN), the
/// internet test host answers. (`alca up` on it: the next test.)
#[test]
fn rootless_docker_container_is_isolated_by_rules_in_its_own_namespace() {
    let _alone = setup();
    let dockerd = RootlessDockerd::start();
    dockerd.ensure_image();
    let rootless = dockerd.docker_ok(&["info", "--format", "{{.SecurityOptions}}"]);
    assert!(rootless.contains("rootless"), "{rootless}");
    let port = free_port();
    for addr in [LAN4, PUBLIC4] {
        assert_route_via(addr, LAN_VETH);
    }
    let _lan = Listener::start(Some(LANHOST_NS), "lan", "0.0.0.0", port, LIFE).unwrap();
    let names = ["alca-e2e-rld-control", "alca-e2e-rld-ruled"];
    for name in names {
        let _ = dockerd.docker(&["rm", "-f", name]);
        dockerd.docker_ok(&["run", "-d", "--name", name, IMAGE, "sleep", "600"]);
    }
    let [control, ruled] = names;
    let inspect = |name: &str, what: &str| {
        dockerd.docker_ok(&["inspect", "--format", &format!("{{{{{what}}}}}"), name])
    };
    let probe = |name: &str, addr: &str, port: u16| {
        Probe::classify(&text(&dockerd.docker(&[
            "exec",
            name,
            "sh",
            "-c",
            &nc_script(addr, port),
        ])))
    };
    let pid: u32 = inspect(ruled, ".State.Pid").parse().expect("a pid");
    let sibling = inspect(control, ".NetworkSettings.IPAddress");
    let gateway = inspect(ruled, ".NetworkSettings.Gateway");
    assert!(probe(control, LAN4, port).answered_by("lan"), "control");
    assert!(
        probe(ruled, LAN4, port).answered_by("lan"),
        "before its rules"
    );

    let _ = remove_as(USER, DOCKERED);
    let applied = apply_in_netns(USER, &spec_of(DOCKERED, ""), pid);
    assert!(applied.is_ok(), "{applied:?}");
    assert!(netns_applied_for(DOCKERED, pid));
    let table = format!("alca-{DOCKERED}");
    let listed = nft_in(pid, &["list", "table", "inet", &table]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");

    assert!(probe(ruled, PUBLIC4, port).answered_by("lan"), "internet");
    for (addr, p) in [
        (LAN4, port),
        (sibling.as_str(), 9),
        (gateway.as_str(), 9),
        ("10.0.2.2", 9),
    ] {
        let before = refused_packets_of(DOCKERED, pid);
        let seen = probe(ruled, addr, p);
        assert!(!matches!(seen, Probe::Answered(_)), "{addr}:{p}: {seen:?}");
        let after = refused_packets_of(DOCKERED, pid);
        assert!(
            after > before,
            "{addr}:{p} not refused by the rules: {seen:?}"
        );
    }
    assert!(
        probe(control, LAN4, port).answered_by("lan"),
        "control after"
    );

    for name in names {
        let _ = dockerd.docker(&["rm", "-f", name]);
    }
    let removed = remove_as(USER, DOCKERED).unwrap();
    assert!(removed.is_ok(), "{removed:?}");
}

/// `alca up` on rootless Docker (`runtime = "docker"`, `DOCKER_HOST` to the user's daemon): the
/// container is started, its rules put in its namespace before anything else runs in it;
/// `alca run` sees the LAN refused and the internet test host answer; `alca network verify`
/// passes; after `docker restart` (a new namespace, and Docker has no hook) `alca run` puts
/// the rules back before it runs anything; `alca down` removes the container.
#[test]
fn alca_up_on_rootless_docker_isolates_before_anything_runs_in_it() {
    let _alone = setup();
    let dockerd = RootlessDockerd::start();
    dockerd.ensure_image();
    let port = free_port();
    for addr in [LAN4, PUBLIC4] {
        assert_route_via(addr, LAN_VETH);
    }
    let _lan = Listener::start(Some(LANHOST_NS), "lan", "0.0.0.0", port, LIFE).unwrap();
    let (_scratch, dir) = project_of(USER, "rootless-docker-up", "docker");
    let socket = dockerd.socket.clone();
    let alca_d = |args: &[&str]| alca_rootless_with(&dir, args, &[("DOCKER_HOST", &socket)]);

    let up = alca_d(&["up", "--trust"]);
    let said = text(&up);
    assert!(up.status.success(), "alca up: {said}");
    assert!(said.contains("rootless Docker"), "{said}");
    assert!(
        !said.contains("network verify"),
        "the quick check failed: {said}"
    );
    let name = container_name(&project_id(&dir));
    let table = format!("alca-{}", project_id(&dir));
    let pid = || -> u32 {
        dockerd
            .docker_ok(&["inspect", "--format", "{{.State.Pid}}", &name])
            .parse()
            .unwrap()
    };
    let listed = nft_in(pid(), &["list", "table", "inet", &table]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");
    let probe = |addr: &str| {
        let script = nc_script(addr, port);
        Probe::classify(&text(&alca_d(&["run", "--", "sh", "-c", &script])))
    };
    assert!(probe(PUBLIC4).answered_by("lan"), "internet test host");
    assert_eq!(probe(LAN4), Probe::Refused, "LAN test host");
    let verify = alca_d(&["network", "verify", "--local-only"]);
    let said = text(&verify);
    assert!(verify.status.success(), "alca network verify: {said}");
    assert!(said.contains("Network verify: passed"), "{said}");

    // A restart makes a new namespace without rules: `run` puts them back first.
    dockerd.docker_ok(&["restart", "-t", "0", &name]);
    assert!(nft_in(pid(), &["list", "table", "inet", &table]).is_err());
    let script = nc_script(LAN4, port);
    let run = alca_d(&["run", "--", "sh", "-c", &script]);
    let said = text(&run);
    assert!(
        said.contains("were missing and were applied again"),
        "{said}"
    );
    assert_eq!(Probe::classify(&said), Probe::Refused, "{said}");
    assert!(nft_in(pid(), &["list", "table", "inet", &table]).is_ok());

    let down = alca_d(&["down", "--force"]);
    assert!(down.status.success(), "alca down: {}", text(&down));
    assert!(!dockerd
        .docker(&["container", "inspect", &name])
        .status
        .success());
}
