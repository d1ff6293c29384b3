//! Acceptance of `network.proxy` (SPEC §3) end to end, with a redirect-mode proxy this project
//! did not write: sing-box (`tests/src/proxy.rs`) on the host. The container is brought up by
//! the real `alca up`, run as the unprivileged `alcatest` through the installed network helper.
//!
//! How the test tells a proxied connection from a direct one: the proxy dials out from
//! [`PROXY_SOURCE`], an address this test adds on the test veth, while a direct connection from
//! the container leaves masqueraded by docker as the veth's own 10.99.0.1. The listener on the
//! test host in netns `lanhost` replies with the peer it saw.
//!
//! Needs root (tests/run.sh) and the test env (tests/env/setup.sh, which installs sing-box).
//! Traffic goes only to this host's own address (the proxy) and to `lanhost` (routes asserted).

use std::net::IpAddr;
use std::path::Path;

use alca_e2e::docker::{probe_from, Probe};
use alca_e2e::netd::{
    alca, container_name, env_refs, helper_project, project_id, text, up_env, write_config,
};
use alca_e2e::netns::{
    assert_route_via, run_ok, HostAddress, Listener, NsCounter, LAN4, LANHOST_NS, LAN_VETH, PUBLIC4,
};
use alca_e2e::proxy::SingBox;

const OWNER: &str = "alcatest";
/// The source address the proxy dials out from (added on the test veth for this test).
const PROXY_SOURCE: &str = "10.99.0.5";
/// What a direct connection from the container looks like at `lanhost`: docker masquerades it
/// to the host's address on the test veth.
const MASQUERADED: &str = "10.99.0.1";
/// Port of the listener in `lanhost` and of the proxy on the host.
const LAN_PORT: u16 = 23401;
const PROXY_PORT: u16 = 23402;
/// Seconds the `lanhost` listener lives at most.
const LISTENER_LIFE: u32 = 240;

/// `alca ARGS` as the owner; `--trust` in ARGS approves the config (the test has no terminal).
fn up(project: &Path, args: &[&str]) {
    let env = up_env(project);
    let out = alca(Some(OWNER), project, args, &env_refs(&env));
    assert!(out.status.success(), "alca {args:?} failed: {}", text(&out));
}

fn status(project: &Path) -> String {
    let env = up_env(project);
    text(&alca(Some(OWNER), project, &["status"], &env_refs(&env)))
}

/// Chains of the project's nft table.
fn chains(id: &str) -> Vec<String> {
    let listing = run_ok(
        "nft",
        &["-j", "list", "table", "inet", &format!("alca-{id}")],
    )
    .expect("the project's table is loaded");
    let json: serde_json::Value = serde_json::from_str(&listing).expect("nft json");
    json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["chain"]["name"].as_str().map(String::from))
        .collect()
}

/// The container's address on its (only) network.
fn container_ipv4(name: &str) -> String {
    let format = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}";
    run_ok("docker", &["inspect", "-f", format, name]).expect("container address")
}

#[test]
fn a_real_redirect_proxy_carries_the_container_tcp_and_lan_stays_blocked() {
    alca_e2e::docker::require_root_and_docker("the proxy suite");
    assert_route_via(PUBLIC4, LAN_VETH);
    assert_route_via(LAN4, LAN_VETH);

    let proxy_line = format!("[network]\nproxy = \"${{alca:HOST_IP}}:{PROXY_PORT}\"\n");
    let (project, cleanup) = helper_project("proxy", OWNER, &proxy_line);

    let _source = HostAddress::add(&format!("{PROXY_SOURCE}/32"), LAN_VETH).expect("source addr");
    let _listener = Listener::start(Some(LANHOST_NS), "lanhost", "::", LAN_PORT, LISTENER_LIFE)
        .expect("lanhost listener");
    let lan_filter = format!("ip daddr {LAN4} tcp dport {LAN_PORT}");
    let arrivals = NsCounter::install(LANHOST_NS, "alca_e2e_proxy", &[("lan", &lan_filter)])
        .expect("lanhost counter");

    // `up` with the proxy configured: the nat chain is there before the container runs.
    up(&project, &["up", "--trust"]);
    let id = project_id(&project);
    let container = container_name(&id);
    // `${alca:HOST_IP}` is the gateway of the project's own network: the proxy listens there.
    let host_ip = alca_e2e::docker::local_gateway(&container);
    assert!(
        chains(&id).contains(&"proxy".to_string()),
        "{:?}",
        chains(&id)
    );

    // Nothing listens yet: `status` says so, and the container's TCP goes nowhere.
    let proxy_addr = format!("{host_ip}:{PROXY_PORT}");
    let said = status(&project);
    assert!(
        said.contains(&format!(
            "Proxy: {proxy_addr} unreachable: nothing listens there"
        )),
        "{said}"
    );
    let got = probe_from(&container, PUBLIC4, LAN_PORT).expect("probe");
    assert!(
        !got.answered_by("lanhost"),
        "bypassed the absent proxy: {got:?}"
    );

    let host: IpAddr = host_ip.parse().expect("host ip");
    let source: IpAddr = PROXY_SOURCE.parse().expect("source ip");
    let proxy = SingBox::start(
        &cleanup.scratch,
        (host, PROXY_PORT).into(),
        source,
        &[PUBLIC4, LAN4],
    )
    .expect("sing-box");
    let said = status(&project);
    assert!(
        said.contains(&format!("Proxy: {proxy_addr} (a proxy listens there)")),
        "{said}"
    );

    // A connection to the test host arrives through the proxy: its peer is the proxy's source.
    let got = probe_from(&container, PUBLIC4, LAN_PORT).expect("probe");
    assert!(
        got.answered_by("lanhost"),
        "{got:?}\nproxy log:\n{}",
        proxy.log()
    );
    assert_eq!(got.field("peer"), Some(PROXY_SOURCE), "{got:?}");
    assert_eq!(
        proxy.connections_to(&format!("{PUBLIC4}:{LAN_PORT}")),
        1,
        "{}",
        proxy.log()
    );
    // The proxy saw the container as its client and recovered the original destination.
    let client = format!("inbound connection from {}:", container_ipv4(&container));
    assert!(proxy.log().contains(&client), "{}", proxy.log());

    // A connection to the LAN is refused by the filter, which sees the original destination
    // before any NAT: it reaches neither the proxy (which would carry it: LAN4 is on its
    // allow-list) nor the LAN host.
    let got = probe_from(&container, LAN4, LAN_PORT).expect("probe");
    assert_eq!(got, Probe::Refused, "proxy log:\n{}", proxy.log());
    assert_eq!(proxy.connections_to(LAN4), 0, "{}", proxy.log());
    assert_eq!(arrivals.packets("lan").expect("counter"), 0);

    // Without the proxy, after `up -f` (a changed proxy is a widening: approved with --trust),
    // the same connection arrives directly.
    write_config(&project, OWNER, "");
    up(&project, &["up", "-f", "--trust"]);
    assert_eq!(project_id(&project), id);
    assert!(
        !chains(&id).contains(&"proxy".to_string()),
        "{:?}",
        chains(&id)
    );
    let got = probe_from(&container, PUBLIC4, LAN_PORT).expect("probe");
    assert!(got.answered_by("lanhost"), "{got:?}");
    assert_eq!(got.field("peer"), Some(MASQUERADED), "{got:?}");
    assert_eq!(
        proxy.connections_to(&format!("{PUBLIC4}:{LAN_PORT}")),
        1,
        "{}",
        proxy.log()
    );
    assert!(!status(&project).contains("Proxy:"));
    let got = probe_from(&container, LAN4, LAN_PORT).expect("probe");
    assert_eq!(got, Probe::Refused);
    assert_eq!(arrivals.packets("lan").expect("counter"), 0);
}
