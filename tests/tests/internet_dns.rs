//! End-to-end: `network.internet-access` through the real chain (issue #17, the resolver's
//! half), on Docker. As the unprivileged owner `alcatest`, `alca up` starts the project's
//! resolver (`alca __serve-dns`, unprivileged) and applies rules that send every container DNS
//! packet to it; its upstream (`dns-upstream`) is a zone server this test runs on 192.88.99.2:53
//! in the `lanhost` netns (the test "internet" host), serving only `.test` names.
//!
//! From a real container: an address no answer named is refused, DoT too; a refused name is
//! never asked upstream (though the query was addressed to the upstream itself) and opens
//! nothing; an allowed name, a name under a wildcard and a name whose CNAME points at an
//! unlisted name open the address on the entry's port only; with `dns-ttl-floor = 0` a 2 s
//! answer closes again until asked again; `alca network log` suggests the missing lines;
//! `status` shows the mode and the allow sets; `alca network verify` has the internet rows;
//! `alca network allow` grants, lists and revokes;
//! an unapproved widening of the list is refused; `[]` gives no internet and no outside DNS,
//! `["*"]` both; 1,000 resolve-then-connect rounds never race; `down` stops the resolver.
//!
//! Needs root, docker, the test environment (`tests/env/setup.sh`) and the built binaries; run
//! under the e2e lock: `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test internet_dns`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alca_dns::static_zone::Zone;
use alca_e2e::dns_zone::{self, answers_with, LanhostZone};
use alca_e2e::docker::{docker_available, exec_sh, probe_from, Probe};
use alca_e2e::netd::{
    alca, container_name, env_refs, helper_project, project_id, text, up_env, write_config,
    ProjectCleanup,
};
use alca_e2e::netns::{
    assert_route_via, run_ok, Listener, PublicRange, RouteToLanhost, LANHOST_NS, LAN_VETH, PUBLIC4,
};

const OWNER: &str = "alcatest";
/// Seconds the listeners live at most.
const LIFE: u32 = 300;
/// On 192.88.99.2: the port the entries allow, one they do not, the port of the short-lived
/// name and DNS over TLS.
const ALLOWED_PORT: u16 = 24201;
const OTHER_PORT: u16 = 24202;
const SHORT_PORT: u16 = 24203;
const DOT_PORT: u16 = 853;
/// A little more than the least time between two refreshes of the resolver's entries.
const REFRESH_INTERVAL: Duration = Duration::from_millis(1100);

/// The suite's tests share the helper install, `lanhost` port 53 and docker: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn owner_alca(project: &Path, args: &[&str]) -> (bool, String) {
    let env = up_env(project);
    let out = alca(Some(OWNER), project, args, &env_refs(&env));
    (out.status.success(), text(&out))
}

fn public() -> IpAddr {
    PUBLIC4.parse().expect("ip")
}

/// `nslookup NAME 192.88.99.2` in the container.
fn nslookup(container: &str, name: &str) -> String {
    dns_zone::nslookup(container, None, name)
}

/// Whether the answer gives the test host's address.
fn answered(output: &str) -> bool {
    answers_with(output, PUBLIC4)
}

/// Probes `PUBLIC4:port` until `want` holds, at most `attempts` times 300 ms apart.
fn probe_until(container: &str, port: u16, attempts: u32, want: impl Fn(&Probe) -> bool) -> Probe {
    let mut last = probe_from(container, PUBLIC4, port).expect("probe");
    for _ in 1..attempts {
        if want(&last) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        last = probe_from(container, PUBLIC4, port).expect("probe");
    }
    last
}

/// One project brought up as [`OWNER`] with `network` as its `[network]` table, the zone
/// server answering in `lanhost` and a listener per `(tag, port)` on 192.88.99.2. Fields drop
/// in order: the project goes down (and the helper out) before the zone and the lock.
struct Scenario {
    project: PathBuf,
    container: String,
    _cleanup: ProjectCleanup,
    _listeners: Vec<Listener>,
    zone: LanhostZone,
    _serial: MutexGuard<'static, ()>,
}

impl Scenario {
    fn up(tag: &str, network: &str, zone: Zone, listeners: &[(&str, &str, u16)]) -> Scenario {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            run_ok("id", &["-u"]).map(|u| u == "0").unwrap_or(false),
            "the internet_dns suite must run as root (tests/run.sh)"
        );
        assert!(
            docker_available(),
            "docker is not running: run `bash tests/env/setup.sh` first"
        );
        assert_route_via(PUBLIC4, LAN_VETH);
        let zone = LanhostZone::start(zone).expect("zone server in lanhost");
        let (project, cleanup) = helper_project(tag, OWNER, &format!("[network]\n{network}"));
        let listeners = listeners
            .iter()
            .map(|(tag, bind, port)| {
                Listener::start(Some(LANHOST_NS), tag, bind, *port, LIFE).expect("listener")
            })
            .collect();
        let (ok, said) = owner_alca(&project, &["up", "--trust"]);
        assert!(ok, "alca up: {said}");
        let container = container_name(&project_id(&project));
        Scenario {
            project,
            container,
            _cleanup: cleanup,
            _listeners: listeners,
            zone,
            _serial: serial,
        }
    }

    fn alca(&self, args: &[&str]) -> (bool, String) {
        owner_alca(&self.project, args)
    }

    fn probe(&self, port: u16) -> Probe {
        probe_from(&self.container, PUBLIC4, port).expect("probe")
    }

    fn nslookup(&self, name: &str) -> String {
        nslookup(&self.container, name)
    }

    fn upstream_saw(&self, name: &str) -> bool {
        self.zone.seen.names().iter().any(|n| n.starts_with(name))
    }

    /// The resolver's own log (its stderr) and query log, for failure messages.
    fn resolver_log(&self) -> String {
        let dir = self.project.join(".alca/dns");
        ["resolver.log", alca_dns::query_log::LOG_FILE]
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn resolver_pids(&self) -> String {
        run_ok("pgrep", &["-u", OWNER, "-f", "__serve-dns"]).unwrap_or_default()
    }
}

#[test]
fn the_resolver_opens_only_what_the_list_names_and_logs_the_rest() {
    let zone = Zone::new()
        .addr("allowed.test", public(), 60)
        .addr("blocked.test", public(), 60)
        .addr("a.wild.test", public(), 60)
        .addr("wild.test", public(), 60)
        .cname("cname.test", "cdn.unlisted.test", 60)
        .addr("cdn.unlisted.test", public(), 60)
        .addr("short.test", public(), 2);
    let entries = format!(
        "\"allowed.test:{ALLOWED_PORT}\", \"*.wild.test:{ALLOWED_PORT}\", \
         \"cname.test:{ALLOWED_PORT}\", \"short.test:{SHORT_PORT}\""
    );
    let network = |entries: &str| {
        format!(
            "internet-access = [{entries}]\ndns-upstream = [\"{PUBLIC4}:53\"]\ndns-ttl-floor = 0\n"
        )
    };
    let s = Scenario::up(
        "inetdns",
        &network(&entries),
        zone,
        &[
            ("allowed", PUBLIC4, ALLOWED_PORT),
            ("other", PUBLIC4, OTHER_PORT),
            ("short", PUBLIC4, SHORT_PORT),
            ("dot", PUBLIC4, DOT_PORT),
        ],
    );
    assert!(
        !s.resolver_pids().trim().is_empty(),
        "no resolver runs as {OWNER}"
    );

    // Before any answer: the address is refused on every port, DNS over TLS included.
    assert_eq!(s.probe(ALLOWED_PORT), Probe::Refused);
    assert_eq!(s.probe(DOT_PORT), Probe::Refused);

    // A name the list does not allow: no answer, though the query was addressed to the zone
    // server itself, which never saw it (it went to the resolver); nothing opened.
    for name in ["blocked.test", "wild.test"] {
        let out = s.nslookup(name);
        assert!(!answered(&out), "{name} resolved: {out}");
        assert!(
            !s.upstream_saw(name),
            "a refused name reached the server: {:?}",
            s.zone.seen.names()
        );
    }
    assert_eq!(s.probe(ALLOWED_PORT), Probe::Refused);

    // The allowed name: answered, and its address open on the entry's port only, at once.
    let out = s.nslookup("allowed.test");
    assert!(answered(&out), "allowed.test: {out}");
    assert!(
        s.probe(ALLOWED_PORT).answered_by("allowed"),
        "the address was not in the kernel when the answer came"
    );
    assert_eq!(s.probe(OTHER_PORT), Probe::Refused);
    assert_eq!(s.probe(DOT_PORT), Probe::Refused);
    // A name under the wildcard and a CNAME to an unlisted name answer too.
    assert!(answered(&s.nslookup("a.wild.test")));
    assert!(answered(&s.nslookup("cname.test")));

    // Floor 0 and a 2 s TTL: open at once, refused once the answer expired, open again after
    // a fresh answer.
    assert!(answered(&s.nslookup("short.test")));
    assert!(s.probe(SHORT_PORT).answered_by("short"));
    let start = Instant::now();
    let last = probe_until(&s.container, SHORT_PORT, 40, |p| *p == Probe::Refused);
    assert_eq!(
        last,
        Probe::Refused,
        "still open {:?} after a 2 s answer",
        start.elapsed()
    );
    assert!(answered(&s.nslookup("short.test")));
    assert!(s.probe(SHORT_PORT).answered_by("short"));

    // The log names the refused names and the refused address, each with the line that
    // allows it.
    let (ok, log) = s.alca(&["network", "log"]);
    assert!(ok, "network log: {log}");
    assert!(
        log.contains("internet-access = [\"blocked.test\"]"),
        "{log}"
    );
    assert!(
        log.contains(&format!("internet-access = [\"{PUBLIC4}:{OTHER_PORT}\"]")),
        "{log}"
    );
    let (_, status) = s.alca(&["status"]);
    assert!(status.contains("Internet: only allowed.test:"), "{status}");
    assert!(status.contains("DNS resolver: running"), "{status}");
    assert!(
        status.contains("Internet rules: list (")
            && status.contains("allowed addresses in the sets"),
        "{status}"
    );

    verify_has_the_internet_rows(&s);
    grants_through_the_cli(&s);
    an_unapproved_widening_is_refused(&s, &network(&format!("{entries}, \"blocked.test\"")));

    // down stops the resolver.
    let (ok, said) = s.alca(&["down", "--force"]);
    assert!(ok, "alca down: {said}");
    assert!(
        s.resolver_pids().trim().is_empty(),
        "the resolver outlived down"
    );
}

/// `alca network verify` judges the list: the allowed name asked of an outside server
/// (192.88.99.1, routed to `lanhost` for the test) is answered by the resolver, a refused name
/// is not, an address no name resolved to and DNS over TLS are refused.
fn verify_has_the_internet_rows(s: &Scenario) {
    let _route = RouteToLanhost::add("192.88.99.1").expect("route to the outside server");
    let (ok, report) = s.alca(&["network", "verify", "--local-only"]);
    assert!(ok, "network verify: {report}");
    dns_zone::assert_verify_internet_rows(&report);
    assert!(
        report.contains("answered by the project's resolver"),
        "{report}"
    );
}

/// `alca network allow` as the owner: a name grant answers and opens at once and closes by
/// itself after 3 s; `--list` shows a grant, `--revoke` ends it at once.
fn grants_through_the_cli(s: &Scenario) {
    // The resolver asks the daemon for new grants at a refused name, at most once a second
    // (alca-dns handler.rs REFRESH_INTERVAL): let the last refresh age past that first.
    std::thread::sleep(REFRESH_INTERVAL);
    let granted = Instant::now();
    let (ok, said) = s.alca(&["network", "allow", "blocked.test", "--for", "3s"]);
    assert!(ok, "network allow: {said}");
    let out = s.nslookup("blocked.test");
    assert!(
        answered(&out),
        "blocked.test under a grant: {out}\nresolver log: {}",
        s.resolver_log()
    );
    assert!(
        s.probe(OTHER_PORT).answered_by("other"),
        "a granted name without a port opens every port"
    );
    let start = Instant::now();
    let last = probe_until(&s.container, OTHER_PORT, 40, |p| *p == Probe::Refused);
    assert_eq!(
        last,
        Probe::Refused,
        "the grant still opens {:?} after 3 s",
        start.elapsed()
    );
    // Once the grant itself is over (an answer in its last second still opens the address
    // for a second: the daemon's shortest element), the name is refused again.
    let over = granted + Duration::from_millis(4200);
    std::thread::sleep(over.saturating_duration_since(Instant::now()));
    let out = s.nslookup("blocked.test");
    assert!(!answered(&out), "blocked.test after the grant: {out}");
    assert_eq!(s.probe(OTHER_PORT), Probe::Refused);

    std::thread::sleep(REFRESH_INTERVAL);
    let (ok, said) = s.alca(&["network", "allow", "blocked.test", "--for", "10m"]);
    assert!(ok, "network allow: {said}");
    let (ok, list) = s.alca(&["network", "allow", "--list"]);
    assert!(ok && list.contains("blocked.test"), "--list: {list}");
    assert!(answered(&s.nslookup("blocked.test")));
    assert!(s.probe(OTHER_PORT).answered_by("other"));
    let (ok, said) = s.alca(&["network", "allow", "--revoke", "blocked.test"]);
    assert!(ok, "--revoke: {said}");
    assert_eq!(s.probe(OTHER_PORT), Probe::Refused, "revoked, still open");
    let (_, list) = s.alca(&["network", "allow", "--list"]);
    assert!(list.contains("(no grants)"), "--list after revoke: {list}");
}

/// The agent adds a name to `internet-access`: from inside, the config is read-only; written
/// through any other path, `up` refuses it until the user approves, and the name stays
/// refused.
fn an_unapproved_widening_is_refused(s: &Scenario, widened: &str) {
    let inside = exec_sh(
        &s.container,
        "echo 'internet-access = [\"*\"]' >> /workspace/.alca.toml && echo WROTE",
    )
    .unwrap_or_default();
    assert!(
        !inside.contains("WROTE"),
        "the agent wrote the config: {inside}"
    );

    write_config(&s.project, OWNER, &format!("[network]\n{widened}"));
    for args in [&["up"][..], &["up", "-f"]] {
        let (ok, said) = s.alca(args);
        assert!(!ok, "alca {args:?} applied an unapproved widening: {said}");
        assert!(
            said.contains("network.internet-access") && said.contains("alca trust"),
            "the refusal names the field and the approval: {said}"
        );
    }
    assert!(!answered(&s.nslookup("blocked.test")));
    assert_eq!(s.probe(OTHER_PORT), Probe::Refused);
}

/// `[]`: no internet and no DNS at all, not even to the server asked; `["*"]` (after approval):
/// both, straight to the server, without a resolver.
#[test]
fn an_empty_list_closes_the_internet_and_dns_and_a_star_opens_both() {
    let zone = Zone::new().addr("allowed.test", public(), 60);
    let upstream = format!("dns-upstream = [\"{PUBLIC4}:53\"]\n");
    let s = Scenario::up(
        "inetnone",
        &format!("internet-access = []\n{upstream}"),
        zone,
        &[("allowed", PUBLIC4, ALLOWED_PORT)],
    );
    assert_eq!(s.probe(ALLOWED_PORT), Probe::Refused);
    assert!(!answered(&s.nslookup("allowed.test")));
    assert!(
        !s.upstream_saw("allowed.test"),
        "a query reached the server"
    );
    assert_eq!(s.probe(ALLOWED_PORT), Probe::Refused);
    let (_, status) = s.alca(&["status"]);
    assert!(status.contains("Internet: none"), "{status}");

    write_config(
        &s.project,
        OWNER,
        &format!("[network]\ninternet-access = [\"*\"]\n{upstream}"),
    );
    let (ok, said) = s.alca(&["up", "-f", "--trust"]);
    assert!(ok, "up with [\"*\"]: {said}");
    let container = container_name(&project_id(&s.project));
    let out = nslookup(&container, "allowed.test");
    assert!(answered(&out), "[\"*\"]: {out}");
    assert!(s.upstream_saw("allowed.test"), "answered by the server");
    assert!(probe_from(&container, PUBLIC4, ALLOWED_PORT)
        .expect("probe")
        .answered_by("allowed"));
    assert!(
        s.resolver_pids().trim().is_empty(),
        "a resolver runs for [\"*\"]"
    );
    let (_, status) = s.alca(&["status"]);
    assert!(status.contains("Internet: open"), "{status}");
}

/// Rounds of [`a_thousand_resolve_then_connect_rounds_never_race`].
const ROUNDS: u32 = 1000;
/// The port every round connects to, on each address of the public range.
const ROUND_PORT: u16 = 24210;
/// Seconds the whole loop may take.
const ROUNDS_BOUND_SECS: u32 = 900;

/// The element is in the kernel before the answer reaches the container: each round resolves
/// a name of its own (`rN.round.test`, TTL 1 s, floor 0) to one of 64 addresses, checks first
/// that the address is closed (its last answer expired, so this round needs a fresh add), then
/// connects right after the answer. Any answer missing, address still open or connect refused
/// is a failure.
#[test]
fn a_thousand_resolve_then_connect_rounds_never_race() {
    let base: u8 = 64;
    let address = |i: u32| format!("192.88.99.{}", u32::from(base) + i % 64);
    let zone = (0..ROUNDS).fold(Zone::new(), |z, i| {
        z.addr(
            &format!("r{i}.round.test"),
            address(i).parse().expect("ip"),
            1,
        )
    });
    let _range = PublicRange::add().expect("public test range");
    let s = Scenario::up(
        "inetrounds",
        &format!(
            "internet-access = [\"*.round.test:{ROUND_PORT}\"]\ndns-upstream = [\"{PUBLIC4}:53\"]\n\
             dns-ttl-floor = 0\n"
        ),
        zone,
        &[("round", "0.0.0.0", ROUND_PORT)],
    );
    // Per round: wait (at most 3 s) until the address is closed, resolve, connect once.
    let script = format!(
        "end=$(( $(date +%s) + {ROUNDS_BOUND_SECS} )); fail=0; done=0; i=0\n\
         while [ $i -lt {ROUNDS} ] && [ $(date +%s) -lt $end ]; do\n\
           a=192.88.99.$(( {base} + i % 64 )); w=0\n\
           while echo | nc -w 1 $a {ROUND_PORT} 2>/dev/null | grep -q round; do\n\
             w=$((w+1)); if [ $w -ge 30 ]; then echo \"STILL-OPEN $i $a\"; fail=$((fail+1)); break; fi; sleep 0.1\n\
           done\n\
           if ! nslookup -timeout=3 r$i.round.test {PUBLIC4} 2>&1 | grep -q \"Address.*$a\"; then\n\
             echo \"NO-ANSWER $i\"; fail=$((fail+1))\n\
           elif ! echo | nc -w 2 $a {ROUND_PORT} 2>&1 | grep -q round; then\n\
             echo \"REFUSED $i $a\"; fail=$((fail+1))\n\
           fi\n\
           done=$((done+1)); i=$((i+1))\n\
         done\n\
         echo \"ROUNDS $done FAILURES $fail\"\n"
    );
    let start = Instant::now();
    let out = exec_sh(&s.container, &script).expect("docker exec");
    let summary = out
        .lines()
        .find(|l| l.starts_with("ROUNDS "))
        .unwrap_or_else(|| panic!("the loop printed no summary: {out}"));
    assert_eq!(
        summary,
        format!("ROUNDS {ROUNDS} FAILURES 0"),
        "after {:?}: {out}",
        start.elapsed()
    );
}
