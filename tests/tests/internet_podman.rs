//! End-to-end: `network.internet-access` on rootful Podman (issue #17). Root runs `alca up`
//! (rootful Podman is root's), so this also proves the resolver gives up root before it reads
//! any DNS (it runs as `nobody`, keeping the bus connection it opened as root). The container's
//! resolv.conf names aardvark-dns on the network gateway; the rules send that DNS, like every
//! other DNS packet of the container, to the project's resolver, whose upstream is a `.test`
//! zone this test serves on loopback (docs/internet-access.md, "Podman").
//!
//! From a real container: an address no answer named is refused; a refused name does not
//! resolve (never asked upstream) and its address stays refused; the allowed name resolves
//! through the container's own resolv.conf and opens its address on the entry's port only; a
//! DNS query straight to a DNS server on the test host (which would answer 203.0.113.7) never
//! reaches it; DoT to it is refused; when the resolver dies, `alca run` starts it again (as
//! `nobody`) and the address already resolved keeps answering; `down` stops the resolver.
//!
//! Needs root, rootful podman, the test environment (`tests/env/setup.sh`) and the built
//! binaries; run under the e2e lock:
//! `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test internet_podman -- --test-threads=1`.

use std::path::Path;

use alca_e2e::docker::{exec_sh_in, probe_in, Probe};
use alca_e2e::lifecycle::Rt;
use alca_e2e::netd::{
    alca, container_name, env_refs, install_helper_for, project_id, scratch_dir, text, up_env,
    ProjectCleanup,
};
use alca_e2e::netns::{
    assert_route_via, run_ok, Listener, DNS_ANSWER, LANHOST_NS, LAN_VETH, PUBLIC4,
};
use alca_e2e::test_zone::{answered_with, nslookup, TestZone};

/// Who runs `alca`: rootful Podman is root's.
const OWNER: &str = "root";
/// Seconds the listeners live at most.
const LIFE: u32 = 240;
/// On 192.88.99.2: the port the entry allows, and one it does not.
const ALLOWED_PORT: u16 = 24211;
const OTHER_PORT: u16 = 24212;

fn root_alca(project: &Path, args: &[&str]) -> (bool, String) {
    let env = up_env(project);
    let out = alca(None, project, args, &env_refs(&env));
    (out.status.success(), text(&out))
}

/// A rootful Podman project `parent/proj` owned by root, its `.alca.toml` ending with `extra`.
fn podman_project(parent: &Path, extra: &str) -> std::path::PathBuf {
    let dir = parent.join("proj");
    std::fs::create_dir_all(&dir).expect("project dir");
    std::fs::write(
        dir.join(".alca.toml"),
        format!(
            "image = \"{}\"\nruntime = \"podman\"\n{extra}",
            Rt::Podman.image()
        ),
    )
    .expect("write .alca.toml");
    dir
}

#[test]
fn rootful_podman_resolves_and_opens_only_what_the_list_names() {
    alca_e2e::privilege::require_root("the internet_podman suite");
    assert!(
        Rt::Podman.available(),
        "podman is not usable: run `bash tests/env/setup.sh` first"
    );
    assert_route_via(PUBLIC4, LAN_VETH);
    let zone = TestZone::start();

    let scratch = scratch_dir("inetpod");
    let config = format!(
        "[network]\ninternet-access = [\"allowed.test:{ALLOWED_PORT}\"]\ndns-upstream = [\"{}\"]\n",
        zone.addr
    );
    let project = podman_project(&scratch, &config);
    let _cleanup = ProjectCleanup {
        owner: OWNER,
        scratch: scratch.clone(),
        project: project.clone(),
    };
    let _ = alca(None, &scratch, &["network-helper", "uninstall", "-y"], &[]);
    let installed = install_helper_for("alcatest", &scratch);
    assert!(installed.status.success(), "install: {}", text(&installed));
    let _listeners: Vec<Listener> = [
        Listener::start(Some(LANHOST_NS), "allowed", PUBLIC4, ALLOWED_PORT, LIFE),
        Listener::start(Some(LANHOST_NS), "other", PUBLIC4, OTHER_PORT, LIFE),
        Listener::start(Some(LANHOST_NS), "dot", PUBLIC4, 853, LIFE),
        Listener::dns(Some(LANHOST_NS), LIFE),
    ]
    .into_iter()
    .map(|l| l.expect("listener"))
    .collect();

    let (ok, said) = root_alca(&project, &["up", "--trust"]);
    assert!(ok, "alca up: {said}");
    let container = container_name(&project_id(&project));
    // The resolver runs, and not as root.
    let resolver = run_ok("pgrep", &["-u", "nobody", "-f", "__serve-dns"]).unwrap_or_default();
    assert!(!resolver.trim().is_empty(), "no resolver runs as nobody");
    let as_root = run_ok("pgrep", &["-u", "root", "-f", "__serve-dns"]).unwrap_or_default();
    assert!(as_root.trim().is_empty(), "a resolver runs as root");

    let exec = |script: &str| exec_sh_in("podman", &container, script).unwrap_or_default();
    let probe = |port| probe_in("podman", &container, PUBLIC4, port).expect("probe");
    // The container's resolv.conf names the gateway (aardvark-dns), not the test host.
    let resolv = exec("cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver"), "{resolv}");
    assert!(!resolv.contains(PUBLIC4), "{resolv}");

    // Before any answer: the address is refused on every port.
    assert_eq!(probe(ALLOWED_PORT), Probe::Refused);

    // A name the list does not allow: no answer, never asked upstream, its address refused.
    let out = nslookup("podman", &container, "blocked.test", None);
    assert!(
        !answered_with(&out, PUBLIC4),
        "blocked.test resolved: {out}"
    );
    assert!(
        !zone.asked_for("blocked.test"),
        "a refused name reached the upstream: {:?}",
        zone.seen.names()
    );
    assert_eq!(probe(ALLOWED_PORT), Probe::Refused);

    // The allowed name through the container's own resolver configuration: answered, and its
    // address open on the entry's port only, at once.
    let out = nslookup("podman", &container, "allowed.test", None);
    assert!(answered_with(&out, PUBLIC4), "allowed.test: {out}");
    assert!(
        probe(ALLOWED_PORT).answered_by("allowed"),
        "the address was not in the kernel when the answer came"
    );
    assert_eq!(probe(OTHER_PORT), Probe::Refused);

    // DNS addressed to the DNS server on the test host never reaches it: the project's
    // resolver answers instead (the test host's server answers every name with DNS_ANSWER).
    let out = nslookup("podman", &container, "allowed.test", Some(PUBLIC4));
    assert!(answered_with(&out, PUBLIC4), "{out}");
    assert!(
        !out.contains(DNS_ANSWER),
        "the outside DNS server answered: {out}"
    );
    let out = nslookup("podman", &container, "blocked.test", Some(PUBLIC4));
    assert!(
        !out.contains(DNS_ANSWER),
        "the outside DNS server answered: {out}"
    );
    // DNS over TLS to it is refused.
    assert_eq!(probe(853), Probe::Refused);

    let (_, status) = root_alca(&project, &["status"]);
    assert!(status.contains("Internet: only allowed.test:"), "{status}");
    assert!(status.contains("DNS resolver: running"), "{status}");

    // The resolver dies: `alca run` starts it again (as nobody, on a new port) and re-applies
    // the rules, and the address the container already resolved still answers without a new
    // lookup (the re-apply keeps the allow sets' live elements).
    let first = resolver
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    run_ok("kill", &[&first]).expect("kill the resolver");
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{first}")).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (ok, said) = root_alca(&project, &["run", "true"]);
    assert!(ok, "alca run: {said}");
    assert!(said.contains("were applied again"), "{said}");
    let again = run_ok("pgrep", &["-u", "nobody", "-f", "__serve-dns"]).unwrap_or_default();
    assert!(
        !again.trim().is_empty() && !again.lines().any(|l| l.trim() == first),
        "no new resolver as nobody: {again:?}"
    );
    assert!(
        probe(ALLOWED_PORT).answered_by("allowed"),
        "the re-apply forgot the resolved address"
    );
    let out = nslookup("podman", &container, "allowed.test", None);
    assert!(answered_with(&out, PUBLIC4), "after the restart: {out}");

    // down stops the resolver.
    let (ok, said) = root_alca(&project, &["down", "--force"]);
    assert!(ok, "alca down: {said}");
    let left = run_ok("pgrep", &["-f", "__serve-dns"]).unwrap_or_default();
    assert!(left.trim().is_empty(), "the resolver outlived down: {left}");
}
