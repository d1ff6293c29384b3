//! End-to-end: `network.internet-access` through the real chain (issue #17, the resolver's
//! half). As the unprivileged owner `alcatest`, `alca up` starts the project's resolver
//! (`alca __serve-dns`, unprivileged) and applies rules that send every container DNS packet
//! to it; its upstream (`dns-upstream`) is a zone server this test runs on loopback, serving
//! only `.test` names that resolve to the test "internet" host (192.88.99.2 in the `lanhost`
//! netns). From a real container: an address no answer named is refused; a refused name is
//! never asked upstream and opens nothing; an allowed name, a name under a wildcard and a name
//! whose CNAME points at an unlisted name open the address on the entry's port only; `alca
//! network log` suggests the missing line; `status` shows the mode; `down` stops the resolver.
//!
//! Needs root, docker, the test environment (`tests/env/setup.sh`) and the built binaries; run
//! under the e2e lock: `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test internet_dns`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use alca_dns::static_zone::{Seen, Zone, ZoneServer};
use alca_e2e::docker::{docker_available, exec_sh, probe_from, Probe};
use alca_e2e::netd::{
    alca, container_name, docker_project, env_refs, install_helper_for, project_id, scratch_dir,
    text, up_env, ProjectCleanup,
};
use alca_e2e::netns::{assert_route_via, run_ok, Listener, LANHOST_NS, LAN_VETH, PUBLIC4};

const OWNER: &str = "alcatest";
/// Seconds the listeners live at most.
const LIFE: u32 = 240;
/// On 192.88.99.2: the port the entries allow, and one they do not.
const ALLOWED_PORT: u16 = 24201;
const OTHER_PORT: u16 = 24202;

fn owner_alca(project: &Path, args: &[&str]) -> (bool, String) {
    let env = up_env(project);
    let out = alca(Some(OWNER), project, args, &env_refs(&env));
    (out.status.success(), text(&out))
}

/// The zone server on loopback, on its own runtime thread for the length of the test.
fn start_zone() -> (SocketAddr, Seen, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let public: IpAddr = PUBLIC4.parse().expect("ip");
    let zone = Zone::new()
        .addr("allowed.test", public, 60)
        .addr("blocked.test", public, 60)
        .addr("a.wild.test", public, 60)
        .addr("wild.test", public, 60)
        .cname("cname.test", "cdn.unlisted.test", 60)
        .addr("cdn.unlisted.test", public, 60);
    let server = rt
        .block_on(ZoneServer::start((Ipv4Addr::LOCALHOST, 0).into(), zone))
        .expect("zone server");
    let (addr, seen) = (server.addr, server.seen.clone());
    rt.spawn(server.run());
    (addr, seen, rt)
}

/// `nslookup NAME 192.88.99.2` in the container: the query is addressed to the test host, the
/// rules send it to the project's resolver.
fn nslookup(container: &str, name: &str) -> String {
    exec_sh(
        container,
        &format!("nslookup -timeout=3 {name} {PUBLIC4} 2>&1; true"),
    )
    .unwrap_or_default()
}

/// The addresses the answer part of busybox nslookup's output gives for the name.
fn answered(output: &str) -> bool {
    output
        .split("Name:")
        .skip(1)
        .any(|part| part.contains(PUBLIC4))
}

#[test]
fn the_resolver_opens_only_what_the_list_names_and_logs_the_rest() {
    assert!(
        run_ok("id", &["-u"]).map(|u| u == "0").unwrap_or(false),
        "the internet_dns suite must run as root (tests/run.sh)"
    );
    assert!(
        docker_available(),
        "docker is not running: run `bash tests/env/setup.sh` first"
    );
    assert_route_via(PUBLIC4, LAN_VETH);
    let (upstream, seen, _rt) = start_zone();

    let scratch = scratch_dir("inetdns");
    let config = format!(
        "[network]\ninternet-access = [\"allowed.test:{ALLOWED_PORT}\", \"*.wild.test:{ALLOWED_PORT}\", \
         \"cname.test:{ALLOWED_PORT}\"]\ndns-upstream = [\"{upstream}\"]\n"
    );
    let project = docker_project(&scratch, "proj", OWNER, &config);
    let _cleanup = ProjectCleanup {
        owner: OWNER,
        scratch: scratch.clone(),
        project: project.clone(),
    };
    let _ = alca(None, &scratch, &["network-helper", "uninstall", "-y"], &[]);
    let installed = install_helper_for(OWNER, &scratch);
    assert!(installed.status.success(), "install: {}", text(&installed));
    let _listeners: Vec<Listener> = [
        Listener::start(Some(LANHOST_NS), "allowed", PUBLIC4, ALLOWED_PORT, LIFE),
        Listener::start(Some(LANHOST_NS), "other", PUBLIC4, OTHER_PORT, LIFE),
    ]
    .into_iter()
    .map(|l| l.expect("listener"))
    .collect();

    let (ok, said) = owner_alca(&project, &["up", "--trust"]);
    assert!(ok, "alca up: {said}");
    let container = container_name(&project_id(&project));
    let resolver = run_ok("pgrep", &["-u", OWNER, "-f", "__serve-dns"]).unwrap_or_default();
    assert!(!resolver.trim().is_empty(), "no resolver runs as {OWNER}");

    // Before any answer: the address is refused on every port.
    let probe = |port| probe_from(&container, PUBLIC4, port).expect("probe");
    assert_eq!(probe(ALLOWED_PORT), Probe::Refused);

    // A name the list does not allow: no answer, never asked upstream, nothing opened.
    for name in ["blocked.test", "wild.test"] {
        let out = nslookup(&container, name);
        assert!(!answered(&out), "{name} resolved: {out}");
    }
    assert!(
        !seen
            .names()
            .iter()
            .any(|n| n.starts_with("blocked.test") || n.starts_with("wild.test")),
        "a refused name reached the upstream: {:?}",
        seen.names()
    );
    assert_eq!(probe(ALLOWED_PORT), Probe::Refused);

    // The allowed name: answered, and its address open on the entry's port only, at once.
    let out = nslookup(&container, "allowed.test");
    assert!(answered(&out), "allowed.test: {out}");
    assert!(
        probe(ALLOWED_PORT).answered_by("allowed"),
        "the address was not in the kernel when the answer came"
    );
    assert_eq!(probe(OTHER_PORT), Probe::Refused);
    // A name under the wildcard and a CNAME to an unlisted name answer too.
    assert!(answered(&nslookup(&container, "a.wild.test")));
    assert!(answered(&nslookup(&container, "cname.test")));

    // The log names the refused names with the line that allows each.
    let (ok, log) = owner_alca(&project, &["network", "log"]);
    assert!(ok, "network log: {log}");
    assert!(
        log.contains("internet-access = [\"blocked.test\"]"),
        "{log}"
    );
    let (_, status) = owner_alca(&project, &["status"]);
    assert!(status.contains("Internet: only allowed.test:"), "{status}");
    assert!(status.contains("DNS resolver: running"), "{status}");

    // down stops the resolver.
    let (ok, said) = owner_alca(&project, &["down", "--force"]);
    assert!(ok, "alca down: {said}");
    let left = run_ok("pgrep", &["-u", OWNER, "-f", "__serve-dns"]).unwrap_or_default();
    assert!(left.trim().is_empty(), "the resolver outlived down: {left}");
}
