//! End-to-end: an AAAA answer opens the IPv6 allow sets the way an A answer opens the IPv4
//! ones (issue #17), on Docker, with the real resolver and daemon.
//!
//! `alca up` cannot give a Docker container IPv6 here: the network it creates has no
//! `--ipv6` (alca makes single-stack IPv4 networks), the Docker of the test environment
//! (20.10.24) has no daemon-wide default that turns IPv6 on for user-defined networks (its
//! `dockerd` has no `--default-network-opt`), and its built-in IPAM does not pick IPv6
//! subnets by itself (`--ipv6` needs an explicit `--subnet`). So this test makes the
//! dual-stack network itself, as `internet.rs` does,
//! and runs the rest as the product does: the owner `alcatest` claims the project and starts
//! the project's resolver (`alca __serve-dns`, unprivileged, its spec on stdin) on the
//! bridge's IPv4 gateway, asking the test zone on 192.88.99.2:53 in `lanhost`; the spec with
//! the list and that resolver is applied through the installed daemon. From a container on
//! the network: 2001:db8:99::2 is refused until `nslookup -type=aaaa` of the allowed name,
//! then answers on the entry's port only; a refused name's AAAA opens nothing.
//!
//! A second test runs the whole chain through `alca up` on a network whose engine gives the
//! container IPv6 (as Docker 27+ does for every new network with `default-network-opts`):
//! `alca up` reuses a project network that already exists under its name and bridge, so the
//! test claims the project's bridge for the owner (as `up` does before it creates a network)
//! and makes that network dual-stack before the second `up`. The first `up` (alca's own
//! network) gives the container no global IPv6 address at all.
//!
//! Needs root, docker, the test environment (`tests/env/setup.sh`) and the built binaries; run
//! under the e2e lock: `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test internet_ipv6`.
//! Traffic goes only to `lanhost` (routes are asserted first).

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use alca::network::resolver_process::{ResolverSpec, READY_WORD, SERVE_SUBCOMMAND};
use alca_contract::internet::{parse_internet_entry, InternetSpec};
use alca_contract::net_spec::bridge_name;
use alca_contract::NetSpec;
use alca_dns::static_zone::Zone;
use alca_e2e::dns_zone::{answers_with, nslookup, LanhostZone};
use alca_e2e::docker::{exec_sh, probe_from, require_root_and_docker, Container, Network, Probe};
use alca_e2e::netd::{
    alca, built_binary, call_ok, container_name, env_refs, helper_project, install_helper_for,
    project_id, scratch_dir, text, up_env, AppliedProject, ClaimedNetwork, ProjectCleanup,
};
use alca_e2e::netns::{
    assert_route_via, run_ok, LanhostV6, Listener, LANHOST_NS, LAN_VETH, PUBLIC_V6,
};

const OWNER: &str = "alcatest";
const LIFE: u32 = 120;
/// On 2001:db8:99::2: the port the entry allows and one it does not.
const PORT: u16 = 24301;
const OTHER_PORT: u16 = 24302;
const SUBNET4: &str = "172.29.233.0/24";
const GATEWAY4: &str = "172.29.233.1";
const SUBNET6: &str = "fd42:e17::/64";
/// The dual-stack network the `alca up` test puts under the project's name.
const UP_SUBNET4: &str = "172.29.234.0/24";
const UP_SUBNET6: &str = "fd42:e18::/64";

/// The tests share the helper install, `lanhost` port 53 and its IPv6 address: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// What both tests need in `lanhost`: its IPv6 addresses, the zone serving `v6.test` and
/// `blocked6.test` (AAAA 2001:db8:99::2), and a listener on the allowed port and on another.
/// Fields drop in order, the lock last.
struct V6World {
    zone: LanhostZone,
    _listeners: Vec<Listener>,
    _v6: LanhostV6,
    _serial: MutexGuard<'static, ()>,
}

impl V6World {
    fn start() -> V6World {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        require_root_and_docker("the internet_ipv6 suite");
        let v6 = LanhostV6::add().expect("lanhost IPv6");
        assert_route_via(PUBLIC_V6, LAN_VETH);
        let public6: IpAddr = PUBLIC_V6.parse().expect("ip");
        let zone = LanhostZone::start(Zone::new().addr("v6.test", public6, 60).addr(
            "blocked6.test",
            public6,
            60,
        ))
        .expect("zone server in lanhost");
        let listeners = [("v6", PORT), ("other", OTHER_PORT)]
            .into_iter()
            .map(|(tag, port)| {
                Listener::start(Some(LANHOST_NS), tag, PUBLIC_V6, port, LIFE).expect("listener")
            })
            .collect();
        V6World {
            zone,
            _listeners: listeners,
            _v6: v6,
            _serial: serial,
        }
    }
}

/// The project's resolver, run as the owner; stopped on drop.
struct Resolver(Child);

impl Resolver {
    /// Starts `alca __serve-dns DIR` as [`OWNER`] with `spec` on stdin; its address.
    fn start(dir: &std::path::Path, spec: &ResolverSpec) -> (Resolver, std::net::SocketAddr) {
        // setpriv execs the resolver itself: the child is the resolver, not a wrapper.
        let mut child = Command::new("setpriv")
            .args([
                &format!("--reuid={OWNER}"),
                &format!("--regid={OWNER}"),
                "--init-groups",
                "--",
            ])
            .arg(built_binary("alca"))
            .arg(SERVE_SUBCOMMAND)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the resolver");
        let input = serde_json::to_vec(spec).expect("json");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&input)
            .expect("write the spec");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let resolver = Resolver(child);
        let addr = line
            .trim()
            .strip_prefix(READY_WORD)
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("the resolver printed {line:?}"));
        (resolver, addr)
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = run_ok("kill", &[&self.0.id().to_string()]);
        let _ = self.0.wait();
    }
}

fn nslookup_aaaa(c: &Container, name: &str) -> String {
    nslookup_aaaa_in(&c.name, name)
}

fn nslookup_aaaa_in(container: &str, name: &str) -> String {
    nslookup(container, Some("aaaa"), name)
}

fn answered(output: &str) -> bool {
    answers_with(output, PUBLIC_V6)
}

#[test]
fn an_aaaa_answer_opens_the_ipv6_address_on_the_entry_port_only() {
    let world = V6World::start();
    let zone = &world.zone;
    let scratch = scratch_dir("inet6");
    let _cleanup = ProjectCleanup {
        owner: OWNER,
        scratch: scratch.clone(),
        project: scratch.join("no-project"),
    };
    let installed = install_helper_for(OWNER, &scratch);
    assert!(installed.status.success(), "install: {}", text(&installed));
    let state = scratch.join("dns");
    std::fs::create_dir_all(&state).expect("state dir");
    run_ok("chown", &[OWNER, state.to_str().expect("utf-8")]).expect("chown");

    let project = format!("{:08x}1e7e0617", std::process::id());
    let owned = ClaimedNetwork::create(OWNER, &project, SUBNET4, Some(SUBNET6));
    let entries = vec![parse_internet_entry(&format!("v6.test:{PORT}")).unwrap()];
    let (_resolver, resolver) = Resolver::start(
        &state,
        &ResolverSpec {
            project: project.clone(),
            listen: GATEWAY4.parse().unwrap(),
            entries: entries.clone(),
            upstreams: vec![zone.addr],
            gateway_up_later: false,
        },
    );
    let spec = NetSpec {
        internet: Some(InternetSpec {
            entries,
            resolver,
            ttl_floor_secs: 0,
            ttl_max_secs: 3600,
        }),
        ..NetSpec::isolated(&project)
    };
    spec.validate().expect("a valid spec");
    call_ok(
        OWNER,
        "Apply",
        &[format!(
            "string:{}",
            serde_json::to_string(&spec).expect("json")
        )],
    );
    let c = owned.container();
    let probe = |port| c.probe(PUBLIC_V6, port).expect("probe");

    assert_eq!(probe(PORT), Probe::Refused, "before any answer");
    let out = nslookup_aaaa(&c, "blocked6.test");
    assert!(!answered(&out), "blocked6.test resolved: {out}");
    assert_eq!(probe(PORT), Probe::Refused);

    let out = nslookup_aaaa(&c, "v6.test");
    assert!(answered(&out), "v6.test AAAA: {out}");
    assert!(
        probe(PORT).answered_by("v6"),
        "the IPv6 address was not in the kernel when the answer came"
    );
    assert_eq!(probe(OTHER_PORT), Probe::Refused);
    assert!(
        !zone.seen.names().iter().any(|n| n.starts_with("blocked6")),
        "a refused name reached the server"
    );
}

/// The container's global IPv6 addresses, one per line.
fn global_v6(container: &str) -> String {
    exec_sh(container, "ip -6 -o addr show scope global 2>&1; true").unwrap_or_default()
}

#[test]
fn alca_up_on_a_network_with_ipv6_rules_it_with_the_same_list() {
    let world = V6World::start();
    let zone = &world.zone;
    let config = format!(
        "[network]\ninternet-access = [\"v6.test:{PORT}\"]\ndns-upstream = [\"{}\"]\n\
         dns-ttl-floor = 0\n",
        zone.addr
    );
    let (project, _cleanup) = helper_project("inet6up", OWNER, &config);
    let env = up_env(&project);
    let owner_alca = |args: &[&str]| {
        let out = alca(Some(OWNER), &project, args, &env_refs(&env));
        assert!(out.status.success(), "alca {args:?}: {}", text(&out));
    };

    // alca's own network: IPv4 only, so the container has no IPv6 to leak.
    owner_alca(&["up", "--trust"]);
    let id = project_id(&project);
    let name = container_name(&id);
    let addrs = global_v6(&name);
    assert!(
        !addrs.contains("inet6"),
        "alca's own network gave the container IPv6: {addrs}"
    );
    owner_alca(&["down"]);

    // The engine's network, dual-stack, under the project's name and bridge, claimed for the
    // owner first as `up` claims before it creates a network (an unclaimed bridge that
    // exists is refused as a squat).
    let _claim = AppliedProject::claim(OWNER, &id);
    let _network = Network::create(&name, &bridge_name(&id), UP_SUBNET4, Some(UP_SUBNET6))
        .expect("dual-stack network under the project's name");
    owner_alca(&["up", "--trust"]);
    let addrs = global_v6(&name);
    assert!(
        addrs.contains("fd42:e18:"),
        "the container has no address of the dual-stack network: {addrs}"
    );
    let probe = |port| probe_from(&name, PUBLIC_V6, port).expect("probe");
    assert_eq!(probe(PORT), Probe::Refused, "before any answer");
    let out = nslookup_aaaa_in(&name, "blocked6.test");
    assert!(!answered(&out), "blocked6.test resolved: {out}");
    assert_eq!(probe(PORT), Probe::Refused, "after a refused name");
    let out = nslookup_aaaa_in(&name, "v6.test");
    assert!(
        answered(&out),
        "v6.test AAAA through alca up's resolver: {out}"
    );
    assert!(
        probe(PORT).answered_by("v6"),
        "the IPv6 address was not opened by the answer"
    );
    assert_eq!(
        probe(OTHER_PORT),
        Probe::Refused,
        "another port of the address"
    );
    assert!(
        !zone.seen.names().iter().any(|n| n.starts_with("blocked6")),
        "a refused name reached the server"
    );
    owner_alca(&["down"]);
}
