//! End-to-end: a re-apply keeps the addresses the project's resolver already answered
//! (issue #17). A container caches its DNS answers; if a re-apply of the same
//! `internet-access` entries (`alca up`/`alca run` applying again with a restarted resolver,
//! the daemon's start-up restore) emptied the allow sets, its next connection to a cached
//! address would be refused. As the owner `alcatest`, through the installed daemon, the test
//! plays the resolver (`AllowResolved`) and shows from a real container: the address still
//! answers after an `Apply` of the same entries with another resolver port and after the
//! daemon restarted, with the time it had left (never more), and is refused once the entries
//! change.
//!
//! Needs root, docker, the test environment and the built binaries; run under the e2e lock:
//! `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test internet_reapply`.

use alca_contract::internet::{parse_internet_entry, InternetSpec, ResolvedAddr, ResolvedAddrs};
use alca_contract::NetSpec;
use alca_e2e::docker::Probe;
use alca_e2e::netd::{call_ok, install_helper_for, stop_daemon, text, ClaimedNetwork};
use alca_e2e::netns::{assert_route_via, run_ok, Listener, LANHOST_NS, LAN_VETH, PUBLIC4};

const OWNER: &str = "alcatest";
const LIFE: u32 = 180;
/// On 192.88.99.2: the port `allowed.test:PORT` allows.
const PORT: u16 = 24231;
const SUBNET: &str = "172.29.232.0/24";
const GATEWAY: &str = "172.29.232.1";
/// The answer's TTL: the element's timeout.
const TTL: u32 = 300;

fn project() -> String {
    format!("{:08x}1e7e0317", std::process::id())
}

/// The project's spec with `entries` and the resolver on `resolver_port`, as JSON.
fn spec(project: &str, entries: &[&str], resolver_port: u16) -> String {
    let internet = InternetSpec {
        entries: entries
            .iter()
            .map(|e| parse_internet_entry(e).unwrap())
            .collect(),
        resolver: format!("{GATEWAY}:{resolver_port}").parse().unwrap(),
        ttl_floor_secs: 0,
        ttl_max_secs: 3600,
    };
    let spec = NetSpec {
        internet: Some(internet),
        ..NetSpec::isolated(project)
    };
    spec.validate().expect("a valid spec");
    serde_json::to_string(&spec).expect("json")
}

/// Seconds the element of the test host has left in the first allow set, if it is there.
fn expires(project: &str) -> Option<u64> {
    let listing = run_ok(
        "nft",
        &[
            "-j",
            "list",
            "set",
            "inet",
            &format!("alca-{project}"),
            "inet4_0",
        ],
    )
    .ok()?;
    let json: serde_json::Value = serde_json::from_str(&listing).ok()?;
    json["nftables"]
        .as_array()?
        .iter()
        .filter_map(|o| o.get("set"))
        .flat_map(|s| s["elem"].as_array().cloned().unwrap_or_default())
        .find(|e| e["elem"]["val"] == PUBLIC4)
        .and_then(|e| e["elem"]["expires"].as_u64())
}

#[test]
fn a_reapply_of_the_same_entries_keeps_the_answered_addresses() {
    alca_e2e::docker::require_root_and_docker("the internet_reapply suite");
    assert_route_via(PUBLIC4, LAN_VETH);
    let out = install_helper_for(OWNER, &std::env::temp_dir());
    assert!(out.status.success(), "install: {}", text(&out));

    let project = project();
    let owned = ClaimedNetwork::create(OWNER, &project, SUBNET, None);
    let _listener =
        Listener::start(Some(LANHOST_NS), "allowed", PUBLIC4, PORT, LIFE).expect("listener");
    let entries = [format!("allowed.test:{PORT}")];
    let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
    call_ok(
        OWNER,
        "Apply",
        &[format!("string:{}", spec(&project, &entries, 24251))],
    );
    let c = owned.container();
    let probe = || c.probe(PUBLIC4, PORT).expect("probe");
    assert_eq!(probe(), Probe::Refused);

    // The resolver answers the container: the address is allowed for the TTL.
    let update = ResolvedAddrs {
        project: project.clone(),
        addrs: vec![ResolvedAddr {
            entry: 0,
            addr: PUBLIC4.parse().unwrap(),
            ttl_secs: TTL,
        }],
    };
    let body = serde_json::to_string(&update).unwrap();
    call_ok(OWNER, "AllowResolved", &[format!("string:{body}")]);
    assert!(probe().answered_by("allowed"));
    let left = expires(&project).expect("the element");

    // The same entries applied again, the resolver on another port (it was restarted): the
    // cached address still answers, with no more time than it had.
    call_ok(
        OWNER,
        "Apply",
        &[format!("string:{}", spec(&project, &entries, 24252))],
    );
    let kept = expires(&project).expect("the element survived the re-apply");
    assert!(kept <= left && kept > 0, "{kept} s left, had {left} s");
    assert!(probe().answered_by("allowed"), "refused after the re-apply");

    // The daemon restarts and re-applies the saved spec (adopting the table it left).
    stop_daemon();
    call_ok(OWNER, "Status", &[format!("string:{project}")]);
    let kept = expires(&project).expect("the element survived the restart");
    assert!(kept <= left && kept > 0, "{kept} s left, had {left} s");
    assert!(probe().answered_by("allowed"), "refused after the restart");

    // Changed entries start empty: the address is refused until answered again.
    let mut changed = entries.clone();
    changed.push("other.test");
    call_ok(
        OWNER,
        "Apply",
        &[format!("string:{}", spec(&project, &changed, 24252))],
    );
    assert_eq!(expires(&project), None);
    assert_eq!(probe(), Probe::Refused);
}
