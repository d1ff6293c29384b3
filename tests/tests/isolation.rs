//! End-to-end proof that the compiled nftables rules isolate a container (SPEC §3).
//!
//! Each test creates a docker network on its own `alca-<10 hex>` bridge, applies the batch from
//! `alca_ruleset::replace_batch` directly with `nft -j -f -` BEFORE any container starts
//! (the daemon is tested elsewhere; these tests prove the rules), then connects from inside a
//! busybox container to listeners on the test LAN host (netns `lanhost`), on the host itself
//! and in a sibling project. Every refusal is checked against a baseline that shows the same
//! destination answering without isolation, and against the rule counters.
//!
//! Needs root, docker and the test environment of `tests/env/setup.sh`. Traffic goes only to
//! loopback/host addresses and to `lanhost` (routes are asserted before any connection).

use std::sync::{Mutex, MutexGuard};

use alca_contract::net_spec::bridge_name;
use alca_contract::{AllowRule, NetSpec, Proto};
use alca_e2e::docker::{docker, Container, Network, Probe, TEST_IMAGE, TEST_LABEL};
use alca_e2e::netns::{
    assert_route_local, assert_route_via, rule_counter, run_ok, run_with_stdin, uplink_ipv4,
    LanhostV6, Listener, NsCounter, DNS_ANSWER, HOST_LAN4, LAN4, LANHOST_NS, LANHOST_V6, LAN_VETH,
    PUBLIC4, PUBLIC_V6,
};
use alca_ruleset::{delete_batch, nft_json, replace_batch};

/// Seconds the listeners live at most.
const LISTENER_LIFE: u32 = 120;

/// The tests share `lanhost`, its IPv6 addresses and docker; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> Option<MutexGuard<'static, ()>> {
    alca_e2e::docker::require_root_and_docker("the isolation suite (nft, netns, docker)");
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // These tests apply their rules with nft, not through the daemon: its guard must not
    // drop their bridges.
    alca_e2e::netd::without_daemon_guard().expect("removing the daemon's guard");
    Some(serial)
}

/// Listener ports of one test: `base + i`.
fn port(k: u8, i: u16) -> u16 {
    21000 + u16::from(k) * 20 + i
}

/// One isolated project: its docker network on its own bridge and its nft table (deleted on
/// drop, after the containers the test declared later).
struct Project {
    spec: NetSpec,
    network: Network,
    gateway4: String,
    gateway6: String,
}

impl Project {
    /// Project number `k` (1..=40): network 172.29.(200+k).0/24 and fd42:k::/64.
    fn create(k: u8) -> Project {
        let project = format!("{k:02x}{:08x}e2e0", std::process::id());
        let bridge = bridge_name(&project);
        let subnet4 = format!("172.29.{}.0/24", 200 + u16::from(k));
        let subnet6 = format!("fd42:{k}::/64");
        let network = Network::create(
            &format!("alca-e2e-{project}"),
            &bridge,
            &subnet4,
            Some(&subnet6),
        )
        .expect("create docker network");
        Project {
            spec: NetSpec {
                project,
                bridge,
                allow_all: false,
                allow: vec![],
                proxy: None,
                dns: vec![],
                internet: None,
            },
            network,
            gateway4: format!("172.29.{}.1", 200 + u16::from(k)),
            gateway6: format!("fd42:{k}::1"),
        }
    }

    /// Compiles the current spec and applies it atomically.
    fn apply(&self) {
        self.spec.validate().expect("valid spec");
        let batch = nft_json(&replace_batch(&self.spec, 0));
        run_with_stdin("nft", &["-j", "-f", "-"], &batch.to_string())
            .expect("nft applies the batch");
    }

    fn table(&self) -> String {
        self.spec.table_name()
    }

    /// Whether the table is still in the kernel: anything that sweeps `alca-` tables while the
    /// suite runs (a concurrently started alca-netd) would remove it.
    fn is_loaded(&self) -> bool {
        run_ok("nft", &["list", "table", "inet", &self.table()]).is_ok()
    }

    /// Sum of the packet counters of the rules commented `comment` in the project's table.
    fn counter(&self, comment: &str) -> u64 {
        let listing =
            run_ok("nft", &["-j", "list", "table", "inet", &self.table()]).expect("list table");
        let json: serde_json::Value = serde_json::from_str(&listing).expect("nft json");
        rule_counter(&json, comment).unwrap_or(0)
    }

    fn container(&self, name: &str, extra: &[&str]) -> Container {
        let name = format!("{}-{name}", self.network.name);
        Container::start(&name, &self.network.name, extra).expect("start container")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let batch = nft_json(&delete_batch(&self.spec.project));
        let _ = run_with_stdin("nft", &["-j", "-f", "-"], &batch.to_string());
    }
}

/// Probes until `want` holds, at most `attempts` times one second apart (IPv6 addresses may
/// still be in duplicate address detection right after the network is created).
fn probe_until(
    c: &Container,
    addr: &str,
    port: u16,
    attempts: u32,
    want: impl Fn(&Probe) -> bool,
) -> Probe {
    let mut last = Probe::Failed("not tried".into());
    for _ in 0..attempts {
        last = c.probe(addr, port).expect("docker exec");
        if want(&last) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    last
}

fn expect_answer(c: &Container, addr: &str, port: u16, tag: &str) {
    let got = probe_until(c, addr, port, 5, |p| p.answered_by(tag));
    assert!(
        got.answered_by(tag),
        "{addr} port {port}: expected an answer from {tag}, got {got:?}"
    );
}

/// Expects a TCP reset. Retries only while nothing came back at all (an IPv6 gateway may still
/// be in duplicate address detection); an answer fails at once.
fn expect_refused(p: &Project, c: &Container, addr: &str, port: u16) {
    let got = probe_until(c, addr, port, 5, |p| !matches!(p, Probe::Failed(_)));
    assert_eq!(
        got,
        Probe::Refused,
        "{addr} port {port} must be refused (table {} still loaded: {})",
        p.table(),
        p.is_loaded()
    );
}

/// The test destinations, checked to stay on this machine or on the test veth.
struct Destinations {
    uplink4: String,
}

/// IPv6 destinations only exist while a [`LanhostV6`] guard lives: pass it to check them too.
fn destinations(p: &Project, v6: Option<&LanhostV6>) -> Destinations {
    assert_route_via(LAN4, LAN_VETH);
    assert_route_via(PUBLIC4, LAN_VETH);
    if v6.is_some() {
        assert_route_via(LANHOST_V6, LAN_VETH);
        assert_route_via(PUBLIC_V6, LAN_VETH);
    }
    let uplink4 = uplink_ipv4().expect("uplink address");
    // The IPv6 gateway only becomes a local address once its bridge has a port and DAD ran;
    // the gateway stays on the bridge, so it is checked as the bridge's on-link network instead.
    for local in [HOST_LAN4, uplink4.as_str(), &p.gateway4] {
        assert_route_local(local);
    }
    let route6 = run_ok("ip", &["route", "get", &p.gateway6]).expect("ip route get");
    assert!(
        route6.starts_with("local ") || route6.contains(&format!("dev {}", p.network.bridge)),
        "{} is neither local nor on the project bridge: {route6}",
        p.gateway6
    );
    Destinations { uplink4 }
}

/// Listeners: `lanhost` on every lanhost address at `lan_port`, `host` on every host address at
/// `host_port` (both dual-stack).
fn listeners(lan_ports: &[u16], host_port: u16) -> Vec<Listener> {
    let mut all: Vec<Listener> = lan_ports
        .iter()
        .map(|p| {
            Listener::start(Some(LANHOST_NS), "lanhost", "::", *p, LISTENER_LIFE)
                .expect("lanhost listener")
        })
        .collect();
    all.push(Listener::start(None, "host", "::", host_port, LISTENER_LIFE).expect("host listener"));
    all
}

/// What the dual-stack tests share: the serial lock, IPv6 on `lanhost`, a `lanhost` listener
/// on `lan` and a host listener on `host`, and the checked destinations.
/// Fields drop in order: the serial lock goes last, after the IPv6 addresses are removed.
struct Scene {
    _v6: LanhostV6,
    _listeners: Vec<Listener>,
    lan: u16,
    host: u16,
    d: Destinations,
    _serial: MutexGuard<'static, ()>,
}

/// Sets up test number `k` with its project (rules not applied yet); `None` when skipped.
fn dual_stack_scene(k: u8) -> Option<(Scene, Project)> {
    let serial = serial()?;
    let v6 = LanhostV6::add().expect("lanhost IPv6");
    let (lan, host) = (port(k, 0), port(k, 1));
    let listeners = listeners(&[lan], host);
    let p = Project::create(k);
    let d = destinations(&p, Some(&v6));
    let scene = Scene {
        _serial: serial,
        _v6: v6,
        _listeners: listeners,
        lan,
        host,
        d,
    };
    Some((scene, p))
}

#[test]
fn default_rules_block_lan_and_host_but_not_the_internet() {
    let Some((scene, p)) = dual_stack_scene(1) else {
        return;
    };
    let (lan, host, d) = (scene.lan, scene.host, &scene.d);
    p.apply();

    // The very first packet of a fresh container already meets the rules.
    let first = docker(&[
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        "--network",
        &p.network.name,
        TEST_IMAGE,
        "sh",
        "-c",
        &alca_e2e::docker::nc_script(LAN4, lan),
    ])
    .expect("docker run");
    let first_out = String::from_utf8_lossy(&first.stdout).into_owned()
        + &String::from_utf8_lossy(&first.stderr);
    assert_eq!(
        Probe::classify(&first_out),
        Probe::Refused,
        "first packet: {first_out}"
    );

    let c = p.container("c", &[]);
    expect_answer(&c, PUBLIC4, lan, "lanhost");
    expect_answer(&c, PUBLIC_V6, lan, "lanhost");
    expect_refused(&p, &c, LAN4, lan);
    expect_refused(&p, &c, LANHOST_V6, lan);
    for local in [p.gateway4.as_str(), HOST_LAN4, &d.uplink4, &p.gateway6] {
        expect_refused(&p, &c, local, host);
    }
    // Gateways and 10.99.0.1 are private addresses (deny sets); a public uplink address is
    // refused only by the host-local check. Some hosts' uplink sits in a special range the deny
    // sets hold (a VM on TEST-NET-1 192.0.2.0/24): the deny sets refuse it first.
    let uplink: std::net::IpAddr = d.uplink4.parse().expect("uplink address");
    let uplink_special = alca_contract::deny_list::deny_nets(false)
        .iter()
        .any(|n| n.contains(&uplink));
    let (by_deny_sets, by_host_check) = if uplink_special { (7, 0) } else { (6, 1) };
    assert!(
        p.counter("deny lan") >= by_deny_sets,
        "deny lan counter did not count the refusals"
    );
    assert!(
        p.counter("deny host") >= by_host_check,
        "deny host counter did not count the uplink refusal"
    );
}

#[test]
fn allow_all_reaches_everything() {
    let Some((scene, mut p)) = dual_stack_scene(2) else {
        return;
    };
    let (lan, host, d) = (scene.lan, scene.host, &scene.d);
    p.spec.allow_all = true;
    p.apply();

    let c = p.container("c", &[]);
    for lan_addr in [LAN4, PUBLIC4, LANHOST_V6, PUBLIC_V6] {
        expect_answer(&c, lan_addr, lan, "lanhost");
    }
    for local in [p.gateway4.as_str(), HOST_LAN4, &d.uplink4, &p.gateway6] {
        expect_answer(&c, local, host, "host");
    }
}

#[test]
fn allow_list_opens_exactly_the_listed_ports() {
    let Some(_serial) = serial() else { return };
    let _v6 = LanhostV6::add().expect("lanhost IPv6");
    let (open, closed, host) = (port(3, 0), port(3, 1), port(3, 2));
    let _l = listeners(&[open, closed], host);
    let mut p = Project::create(3);
    destinations(&p, Some(&_v6));
    let rule = |net: &str, proto, port| AllowRule {
        net: net.parse().expect("net"),
        proto,
        port,
    };
    p.spec.allow = vec![
        rule("10.99.0.2/32", None, Some(open)),
        rule("fd99::2/128", Some(Proto::Tcp), Some(open)),
        rule(&format!("{}/32", p.gateway4), Some(Proto::Tcp), Some(host)),
    ];
    p.apply();

    let c = p.container("c", &[]);
    expect_answer(&c, LAN4, open, "lanhost");
    expect_refused(&p, &c, LAN4, closed);
    expect_answer(&c, LANHOST_V6, open, "lanhost");
    expect_refused(&p, &c, LANHOST_V6, closed);
    expect_answer(&c, &p.gateway4, host, "host");
    expect_refused(&p, &c, HOST_LAN4, host);
}

#[test]
fn isolation_holds_after_restart_and_a_new_ip() {
    let Some(_serial) = serial() else { return };
    let lan = port(4, 0);
    let _l = listeners(&[lan], port(4, 1));
    let p = Project::create(4);
    destinations(&p, None);
    p.apply();

    let c = p.container("c", &["--ip", "172.29.204.10"]);
    expect_refused(&p, &c, LAN4, lan);
    expect_answer(&c, PUBLIC4, lan, "lanhost");

    run_ok("docker", &["restart", "-t", "0", &c.name]).expect("docker restart");
    expect_refused(&p, &c, LAN4, lan);
    expect_answer(&c, PUBLIC4, lan, "lanhost");

    run_ok(
        "docker",
        &["network", "disconnect", &p.network.name, &c.name],
    )
    .expect("disconnect");
    run_ok(
        "docker",
        &[
            "network",
            "connect",
            "--ip",
            "172.29.204.77",
            &p.network.name,
            &c.name,
        ],
    )
    .expect("connect");
    assert_eq!(c.ipv4(&p.network.name).expect("ip"), "172.29.204.77");
    expect_refused(&p, &c, LAN4, lan);
    expect_answer(&c, PUBLIC4, lan, "lanhost");
}

#[test]
fn spoofed_source_addresses_do_not_get_through() {
    let Some(_serial) = serial() else { return };
    let lan = port(5, 0);
    let _l = listeners(&[lan], port(5, 1));
    let counter = NsCounter::install(
        LANHOST_NS,
        "e2e-isolation-spoof",
        &[
            ("tcp", &format!("tcp dport {lan}")),
            ("icmp", "icmp type echo-request"),
        ],
    )
    .expect("counter in lanhost");
    let p = Project::create(5);
    destinations(&p, None);
    p.apply();

    let c = p.container("c", &["--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN"]);
    let gw = &p.gateway4;
    // A foreign source (the host's own LAN address) and another address of the own subnet.
    let spoof = format!(
        "ip addr add 10.99.0.77/32 dev eth0 && ip route add {LAN4}/32 via {gw} src 10.99.0.77 && \
         {nc}; ping -c 2 -W 1 -I 10.99.0.77 {LAN4}; \
         ip route del {LAN4}/32; ip addr add 172.29.205.99/24 dev eth0 && \
         ip route add {LAN4}/32 via {gw} src 172.29.205.99 && {nc}; ping -c 2 -W 1 {LAN4}; true",
        nc = alca_e2e::docker::nc_script(LAN4, lan),
    );
    let out = c.sh(&spoof).expect("docker exec");
    assert!(
        !out.contains("lanhost"),
        "a spoofed connection was answered: {out}"
    );
    assert_eq!(
        counter.packets("tcp").expect("tcp counter"),
        0,
        "spoofed TCP reached lanhost: {out}"
    );
    assert_eq!(
        counter.packets("icmp").expect("icmp counter"),
        0,
        "spoofed ICMP reached lanhost: {out}"
    );
    assert!(
        p.counter("deny lan") >= 4,
        "the deny rules did not see the spoofed packets"
    );

    // The counter itself works: a connection from the host (not isolated) is counted.
    run_ok(
        "python3",
        &[
            "-c",
            &format!("import socket; socket.create_connection(('{LAN4}', {lan}), 3).recv(64)"),
        ],
    )
    .expect("host reaches lanhost");
    assert!(
        counter.packets("tcp").expect("tcp counter") > 0,
        "the lanhost counter counts nothing"
    );
}

/// What a TCP server at `addr`:`port` sends to a connection from the host (not isolated),
/// trying up to five times one second apart while the server starts; empty if it never answers.
fn host_reads(addr: &str, port: u16) -> String {
    let connect = format!(
        "import socket; print(socket.create_connection(('{addr}', {port}), 3).recv(64).decode().strip())"
    );
    for _ in 0..5 {
        match run_ok("python3", &["-c", &connect]) {
            Ok(reply) if !reply.is_empty() => return reply,
            _ => std::thread::sleep(std::time::Duration::from_secs(1)),
        }
    }
    String::new()
}

#[test]
fn a_sibling_project_is_unreachable() {
    let Some(_serial) = serial() else { return };
    let a = Project::create(6);
    let b = Project::create(7);
    destinations(&a, None);
    a.apply();
    b.apply();
    let name = format!("{}-srv", b.network.name);
    let server = Container::start_cmd(
        &name,
        &b.network.name,
        &[],
        &[
            "sh",
            "-c",
            "while true; do echo projb | nc -l -p 9000; done",
        ],
    )
    .expect("sibling server");
    let b_ip = server.ipv4(&b.network.name).expect("sibling ip");
    assert_route_via(&b_ip, &b.network.bridge);
    // The sibling's server answers the host (no isolation on that path)…
    let reply = host_reads(&b_ip, 9000);
    assert_eq!(reply, "projb", "sibling server is not up");
    // …but not project A's container.
    let c = a.container("c", &[]);
    expect_refused(&a, &c, &b_ip, 9000);
    assert!(a.counter("deny lan") >= 1);
}

#[test]
fn proxy_sees_the_original_destination_and_lan_stays_blocked() {
    let Some(_serial) = serial() else { return };
    let _v6 = LanhostV6::add().expect("lanhost IPv6");
    let (lan, proxy_port) = (port(8, 0), port(8, 1));
    let _lan = Listener::start(Some(LANHOST_NS), "lanhost", "::", lan, LISTENER_LIFE)
        .expect("lanhost listener");
    let _p4 = Listener::start(None, "proxy4", "0.0.0.0", proxy_port, LISTENER_LIFE)
        .expect("proxy listener");
    let _p6 = Listener::start(None, "proxy6", "::", proxy_port + 1, LISTENER_LIFE)
        .expect("proxy6 listener");

    let mut v4 = Project::create(8);
    destinations(&v4, Some(&_v6));
    v4.spec.proxy = Some(
        format!("{}:{proxy_port}", v4.gateway4)
            .parse()
            .expect("proxy addr"),
    );
    v4.apply();
    let c = v4.container("c", &[]);
    let got = c.probe(PUBLIC4, lan).expect("probe");
    assert!(got.answered_by("proxy4"), "{got:?}");
    assert_eq!(got.field("orig"), Some(format!("{PUBLIC4}:{lan}").as_str()));
    expect_refused(&v4, &c, LAN4, lan);
    expect_refused(&v4, &c, PUBLIC_V6, lan);

    let mut v6 = Project::create(9);
    destinations(&v6, Some(&_v6));
    v6.spec.proxy = Some(
        format!("[{}]:{}", v6.gateway6, proxy_port + 1)
            .parse()
            .expect("proxy addr"),
    );
    v6.apply();
    let c6 = v6.container("c", &[]);
    let got = probe_until(&c6, PUBLIC_V6, lan, 5, |p| p.answered_by("proxy6"));
    assert!(got.answered_by("proxy6"), "{got:?}");
    assert_eq!(
        got.field("orig"),
        Some(format!("[{PUBLIC_V6}]:{lan}").as_str())
    );
    expect_refused(&v6, &c6, LANHOST_V6, lan);
    expect_refused(&v6, &c6, PUBLIC4, lan);
}

#[test]
fn published_ports_still_answer_the_host() {
    let Some(_serial) = serial() else { return };
    let p = Project::create(10);
    destinations(&p, None);
    p.apply();
    let published = port(10, 0);
    let mapping = format!("127.0.0.1:{published}:9000");
    let name = format!("{}-srv", p.network.name);
    let server = Container::start_cmd(
        &name,
        &p.network.name,
        &["-p", &mapping],
        &[
            "sh",
            "-c",
            "while true; do echo published | nc -l -p 9000; done",
        ],
    )
    .expect("server container");
    // Replies leave through the bridge as established traffic, which the rules let through.
    let reply = host_reads("127.0.0.1", published);
    assert_eq!(reply, "published", "the published port did not answer");
    // The same container still cannot open connections to the LAN.
    let lan = port(10, 1);
    let _l = Listener::start(Some(LANHOST_NS), "lanhost", "::", lan, LISTENER_LIFE)
        .expect("lanhost listener");
    expect_refused(&p, &server, LAN4, lan);
}

#[test]
fn docker_embedded_dns_reaches_only_the_allowed_resolvers() {
    let Some(_serial) = serial() else { return };
    let _dns = Listener::dns(Some(LANHOST_NS), LISTENER_LIFE).expect("dns responder");
    // Docker's embedded DNS (127.0.0.11) forwards from the container's namespace, so its
    // queries to an upstream on the LAN cross the bridge and meet the rules.
    let lookup = |p: &Project, name: &str| {
        let container = format!("{}-{name}", p.network.name);
        let out = docker(&[
            "run",
            "--rm",
            "--name",
            &container,
            "--label",
            TEST_LABEL,
            "--network",
            &p.network.name,
            "--dns",
            LAN4,
            TEST_IMAGE,
            "nslookup",
            "-type=a",
            "e2e.test",
        ])
        .expect("docker run");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let mut allowed = Project::create(11);
    destinations(&allowed, None);
    allowed.spec.dns = vec![LAN4.parse().expect("ip")];
    allowed.apply();
    let out = lookup(&allowed, "dns");
    assert!(
        out.contains(DNS_ANSWER),
        "allowed resolver did not answer: {out}"
    );

    let blocked = Project::create(12);
    blocked.apply();
    let out = lookup(&blocked, "dns");
    assert!(
        !out.contains(DNS_ANSWER),
        "a LAN resolver answered without a dns entry: {out}"
    );
    assert!(
        blocked.counter("deny lan") >= 1,
        "the query was not refused by the rules"
    );
}
