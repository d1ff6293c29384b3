//! End-to-end: `network.internet-access` with `network.proxy` (issue #17). The list is checked
//! on the container's original destination, before the proxy's DNAT: a real redirect-mode
//! proxy (sing-box, `tests/src/proxy.rs`) that would forward to the test "internet" host
//! carries a connection to it only once an allowed name resolved to it, and only on the port
//! the entry names. The proxy dials out from [`PROXY_SOURCE`], so the listener's reply tells a
//! proxied connection from a direct one.
//!
//! As the unprivileged `alcatest` on Docker; the resolver's upstream is the `.test` zone
//! (`tests/src/test_zone.rs`) on loopback. Needs root, docker, the test environment (with
//! sing-box) and the built binaries; run under the e2e lock:
//! `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test internet_proxy`.

use std::net::IpAddr;

use alca_e2e::docker::{probe_from, Probe};
use alca_e2e::netd::{
    alca_in_ok, container_name, docker_project, install_helper_for, project_id, scratch_dir, text,
    ProjectCleanup,
};
use alca_e2e::netns::{assert_route_via, HostAddress, Listener, LANHOST_NS, LAN_VETH, PUBLIC4};
use alca_e2e::proxy::SingBox;
use alca_e2e::test_zone::{answered_with, nslookup, TestZone};

const OWNER: &str = "alcatest";
/// The source address the proxy dials out from (added on the test veth for this test).
const PROXY_SOURCE: &str = "10.99.0.6";
/// On 192.88.99.2: the port the entry allows, and one it does not.
const ALLOWED_PORT: u16 = 24221;
const OTHER_PORT: u16 = 24222;
/// Where the proxy listens on the project network's gateway.
const PROXY_PORT: u16 = 24223;
/// Seconds the listeners live at most.
const LIFE: u32 = 240;

#[test]
fn the_list_judges_the_original_destination_before_the_proxy() {
    alca_e2e::docker::require_root_and_docker("the internet_proxy suite");
    assert_route_via(PUBLIC4, LAN_VETH);
    let zone = TestZone::start();

    let scratch = scratch_dir("inetproxy");
    let config = format!(
        "[network]\nproxy = \"${{alca:HOST_IP}}:{PROXY_PORT}\"\n\
         internet-access = [\"allowed.test:{ALLOWED_PORT}\"]\ndns-upstream = [\"{}\"]\n",
        zone.addr
    );
    let project = docker_project(&scratch, "proj", OWNER, &config);
    let _cleanup = ProjectCleanup {
        owner: OWNER,
        scratch: scratch.clone(),
        project: project.clone(),
    };
    let _ = alca_e2e::netd::alca(None, &scratch, &["network-helper", "uninstall", "-y"], &[]);
    let installed = install_helper_for(OWNER, &scratch);
    assert!(installed.status.success(), "install: {}", text(&installed));
    let _source = HostAddress::add(&format!("{PROXY_SOURCE}/32"), LAN_VETH).expect("source addr");
    let _listeners: Vec<Listener> = [
        Listener::start(Some(LANHOST_NS), "allowed", PUBLIC4, ALLOWED_PORT, LIFE),
        Listener::start(Some(LANHOST_NS), "other", PUBLIC4, OTHER_PORT, LIFE),
    ]
    .into_iter()
    .map(|l| l.expect("listener"))
    .collect();

    alca_in_ok(OWNER, &project, &["up", "--trust"]);
    let container = container_name(&project_id(&project));
    let gateway = alca_e2e::docker::local_gateway(&container);
    let host: IpAddr = gateway.parse().expect("gateway ip");
    let source: IpAddr = PROXY_SOURCE.parse().expect("source ip");
    // The proxy would carry anything to the test host.
    let proxy =
        SingBox::start(&scratch, (host, PROXY_PORT).into(), source, &[PUBLIC4]).expect("sing-box");
    let probe = |port| probe_from(&container, PUBLIC4, port).expect("probe");

    // No name resolved to the test host yet: refused before the proxy sees it.
    assert_eq!(probe(ALLOWED_PORT), Probe::Refused, "{}", proxy.log());
    assert_eq!(proxy.connections_to(PUBLIC4), 0, "{}", proxy.log());

    // A refused name opens nothing either.
    let out = nslookup("docker", &container, "blocked.test", None);
    assert!(
        !answered_with(&out, PUBLIC4),
        "blocked.test resolved: {out}"
    );
    assert_eq!(probe(ALLOWED_PORT), Probe::Refused, "{}", proxy.log());

    // The allowed name: its address on the entry's port goes through the proxy (the reply
    // comes from the proxy's source address), any other port is refused before it.
    let out = nslookup("docker", &container, "allowed.test", None);
    assert!(answered_with(&out, PUBLIC4), "allowed.test: {out}");
    let got = probe(ALLOWED_PORT);
    assert!(got.answered_by("allowed"), "{got:?}\n{}", proxy.log());
    assert_eq!(got.field("peer"), Some(PROXY_SOURCE), "{got:?}");
    assert_eq!(
        proxy.connections_to(&format!("{PUBLIC4}:{ALLOWED_PORT}")),
        1,
        "{}",
        proxy.log()
    );
    assert_eq!(probe(OTHER_PORT), Probe::Refused, "{}", proxy.log());
    assert_eq!(
        proxy.connections_to(&format!("{PUBLIC4}:{OTHER_PORT}")),
        0,
        "{}",
        proxy.log()
    );
}
