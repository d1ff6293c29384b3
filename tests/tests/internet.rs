//! End-to-end: the daemon's half of `network.internet-access` (issue #17), with the test
//! playing the project's resolver. As the unprivileged owner `alcatest`, a spec with internet
//! entries is applied through the installed daemon; the test then calls `AllowResolved` for the
//! test "internet" host (192.88.99.2 in the `lanhost` netns) the way the resolver does, and
//! shows from a real container on the project's bridge: refused before the call, allowed after
//! on the allowed port only, an address entry without any DNS, DNS to the host's address sent
//! to the resolver (never to the server asked), `alcaother` unable to add to the project, and
//! the address refused again once its 2 s element timeout (floor 0) ran out.
//!
//! Needs root, docker, the test environment (`tests/env/setup.sh`) and the built binaries; run
//! under the e2e lock: `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test internet`.
//! Traffic goes only to `lanhost` and to the host (routes are asserted first).

use std::time::{Duration, Instant};

use alca_contract::internet::{parse_internet_entry, InternetSpec, ResolvedAddr, ResolvedAddrs};
use alca_contract::NetSpec;
use alca_e2e::docker::{Container, Probe};
use alca_e2e::netd::{
    call_as, call_ok, group_has, install_helper_for, text, ClaimedNetwork, Reply, TempGroupMember,
};
use alca_e2e::netns::{assert_route_via, Listener, LANHOST_NS, LAN_VETH, PUBLIC4};

const OWNER: &str = "alcatest";
const OTHER: &str = "alcaother";
/// Seconds the listeners live at most.
const LIFE: u32 = 180;
/// On 192.88.99.2: the port `allowed.test:PORT` allows, one nothing allows, one an address
/// entry allows.
const NAMED_PORT: u16 = 24101;
const OTHER_PORT: u16 = 24102;
const ADDRESS_PORT: u16 = 24103;
/// The resolver the test plays, on the bridge's gateway.
const RESOLVER_PORT: u16 = 24153;
const SUBNET: &str = "172.29.231.0/24";
const GATEWAY: &str = "172.29.231.1";

fn project() -> String {
    format!("{:08x}1e7e0017", std::process::id())
}

fn spec(project: &str, internet: Option<InternetSpec>) -> String {
    let spec = NetSpec {
        internet,
        ..NetSpec::isolated(project)
    };
    spec.validate().expect("a valid spec");
    serde_json::to_string(&spec).expect("json")
}

fn internet() -> InternetSpec {
    InternetSpec {
        entries: vec![
            parse_internet_entry(&format!("allowed.test:{NAMED_PORT}")).unwrap(),
            parse_internet_entry(&format!("{PUBLIC4}:{ADDRESS_PORT}")).unwrap(),
        ],
        resolver: format!("{GATEWAY}:{RESOLVER_PORT}").parse().unwrap(),
        ttl_floor_secs: 0,
        ttl_max_secs: 3600,
    }
}

fn allow_resolved(user: &str, project: &str, ttl_secs: u32) -> Reply {
    let update = ResolvedAddrs {
        project: project.into(),
        addrs: vec![ResolvedAddr {
            entry: 0,
            addr: PUBLIC4.parse().unwrap(),
            ttl_secs,
        }],
    };
    let body = serde_json::to_string(&update).unwrap();
    call_as(user, "AllowResolved", &[format!("string:{body}")]).expect("dbus-send runs")
}

/// The number of addresses in the allow sets, from `InternetStatus`.
fn allow_set_elements(project: &str) -> u64 {
    let out = call_ok(OWNER, "InternetStatus", &[format!("string:{project}")]);
    let json = out
        .split_once('"')
        .and_then(|(_, rest)| rest.rsplit_once('"'))
        .map(|(body, _)| body.replace("\\\"", "\""))
        .unwrap_or_default();
    let status: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(status["mode"], "list", "{status}");
    status["elements"].as_u64().expect("a count")
}

/// Probes until `want` holds, at most `attempts` times 300 ms apart; the last probe.
fn probe_until(c: &Container, port: u16, attempts: u32, want: impl Fn(&Probe) -> bool) -> Probe {
    let mut last = c.probe(PUBLIC4, port).expect("probe");
    for _ in 1..attempts {
        if want(&last) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        last = c.probe(PUBLIC4, port).expect("probe");
    }
    last
}

#[test]
fn resolved_addresses_open_the_internet_only_where_and_while_the_list_allows() {
    alca_e2e::docker::require_root_and_docker("the internet-access suite");
    assert_route_via(PUBLIC4, LAN_VETH);
    let out = install_helper_for(OWNER, &std::env::temp_dir());
    assert!(out.status.success(), "install: {}", text(&out));
    let _member = (!group_has("alcatraz", Some(OTHER)))
        .then(|| TempGroupMember::add(OTHER, "alcatraz").expect("usermod"));

    let project = project();
    let owned = ClaimedNetwork::create(OWNER, &project, SUBNET, None);
    let listeners = [
        Listener::start(Some(LANHOST_NS), "named", PUBLIC4, NAMED_PORT, LIFE),
        Listener::start(Some(LANHOST_NS), "other", PUBLIC4, OTHER_PORT, LIFE),
        Listener::start(Some(LANHOST_NS), "address", PUBLIC4, ADDRESS_PORT, LIFE),
        Listener::start(Some(LANHOST_NS), "server", PUBLIC4, 53, LIFE),
        Listener::start(None, "resolver", GATEWAY, RESOLVER_PORT, LIFE),
    ];
    let _listeners: Vec<Listener> = listeners
        .into_iter()
        .map(|l| l.expect("listener"))
        .collect();

    // Baseline: without a list, the internet host answers on every port, its DNS port (TCP)
    // too.
    call_ok(
        OWNER,
        "Apply",
        &[format!("string:{}", spec(&project, None))],
    );
    let c = owned.container();
    assert!(c.probe(PUBLIC4, NAMED_PORT).unwrap().answered_by("named"));
    assert!(c.probe(PUBLIC4, 53).unwrap().answered_by("server"));

    // The list: the named port is refused until the resolver reports the address.
    call_ok(
        OWNER,
        "Apply",
        &[format!("string:{}", spec(&project, Some(internet())))],
    );
    assert_eq!(c.probe(PUBLIC4, NAMED_PORT).unwrap(), Probe::Refused);
    assert_eq!(c.probe(PUBLIC4, OTHER_PORT).unwrap(), Probe::Refused);
    assert!(
        c.probe(PUBLIC4, ADDRESS_PORT)
            .unwrap()
            .answered_by("address"),
        "an address entry needs no DNS"
    );
    assert_eq!(allow_set_elements(&project), 0);

    // DNS to the host's address goes to the resolver, never to the server asked.
    let dns = c.probe(PUBLIC4, 53).unwrap();
    assert!(dns.answered_by("resolver"), "TCP DNS: {dns:?}");
    assert_eq!(dns.field("orig"), Some(&*format!("{PUBLIC4}:53")));

    // Another user cannot add to the owner's project.
    let refused = allow_resolved(OTHER, &project, 60);
    assert_eq!(refused.error_kind(), Some("NotOwner"), "{refused:?}");
    assert_eq!(c.probe(PUBLIC4, NAMED_PORT).unwrap(), Probe::Refused);

    // The owner's resolver reports the address: allowed at once, on the entry's port only.
    let reply = allow_resolved(OWNER, &project, 60);
    assert!(reply.is_ok(), "{reply:?}");
    assert!(
        c.probe(PUBLIC4, NAMED_PORT).unwrap().answered_by("named"),
        "the element is in the kernel when AllowResolved returns"
    );
    assert_eq!(c.probe(PUBLIC4, OTHER_PORT).unwrap(), Probe::Refused);
    assert_eq!(allow_set_elements(&project), 1);

    // A fresh answer with a 2 s TTL (floor 0) replaces the timeout; then the address expires.
    assert!(allow_resolved(OWNER, &project, 2).is_ok());
    let start = Instant::now();
    let last = probe_until(&c, NAMED_PORT, 30, |p| *p == Probe::Refused);
    assert_eq!(
        last,
        Probe::Refused,
        "still allowed after {:?}",
        start.elapsed()
    );
    assert_eq!(allow_set_elements(&project), 0);
    // A new answer allows it again.
    assert!(allow_resolved(OWNER, &project, 60).is_ok());
    assert!(c.probe(PUBLIC4, NAMED_PORT).unwrap().answered_by("named"));

    grants(&project, &c);
}

/// `Grant(project, entry, secs)` as `user`.
fn grant(user: &str, project: &str, entry: &str, secs: u32) -> Reply {
    let args = [
        format!("string:{project}"),
        format!("string:{entry}"),
        format!("uint32:{secs}"),
    ];
    call_as(user, "Grant", &args).expect("dbus-send runs")
}

/// Time-boxed grants: only the owner may grant; an address grant works at once and ends by
/// itself; a name grant takes the resolver's addresses under its own index until revoked.
fn grants(project: &str, c: &Container) {
    let address = format!("{PUBLIC4}:{OTHER_PORT}");
    let refused = grant(OTHER, project, &address, 60);
    assert_eq!(refused.error_kind(), Some("NotOwner"), "{refused:?}");
    assert_eq!(c.probe(PUBLIC4, OTHER_PORT).unwrap(), Probe::Refused);

    let reply = grant(OWNER, project, &address, 3);
    assert!(reply.is_ok(), "{reply:?}");
    assert!(
        c.probe(PUBLIC4, OTHER_PORT).unwrap().answered_by("other"),
        "an address grant is in the kernel when Grant returns"
    );
    let start = Instant::now();
    let last = probe_until(c, OTHER_PORT, 30, |p| *p == Probe::Refused);
    assert_eq!(
        last,
        Probe::Refused,
        "grant still open after {:?}",
        start.elapsed()
    );
    let listed = call_ok(OWNER, "Grants", &[format!("string:{project}")]);
    assert!(
        !listed.contains(&address),
        "an expired grant is listed: {listed}"
    );

    // A name grant: the resolver reports the name's address under the grant's index.
    let reply = grant(OWNER, project, &format!("granted.test:{OTHER_PORT}"), 60);
    let Reply::Ok(out) = reply else {
        panic!("name grant: {reply:?}")
    };
    let index: u16 = out
        .split("\"index\":")
        .nth(1)
        .and_then(|rest| rest.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no index in {out}"));
    let update = ResolvedAddrs {
        project: project.into(),
        addrs: vec![ResolvedAddr {
            entry: index,
            addr: PUBLIC4.parse().unwrap(),
            ttl_secs: 60,
        }],
    };
    let body = serde_json::to_string(&update).unwrap();
    let reply = call_as(OWNER, "AllowResolved", &[format!("string:{body}")]).unwrap();
    assert!(reply.is_ok(), "{reply:?}");
    assert!(c.probe(PUBLIC4, OTHER_PORT).unwrap().answered_by("other"));
    let args = [
        format!("string:{project}"),
        format!("string:granted.test:{OTHER_PORT}"),
    ];
    call_ok(OWNER, "Revoke", &args);
    assert_eq!(c.probe(PUBLIC4, OTHER_PORT).unwrap(), Probe::Refused);
    let stale = call_as(OWNER, "AllowResolved", &[format!("string:{body}")]).unwrap();
    assert_eq!(stale.error_kind(), Some("InvalidRequest"), "{stale:?}");
}
