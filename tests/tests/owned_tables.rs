//! What the kernel does with the daemon's tables, checked in scratch network namespaces (no
//! other table, no traffic leaves them): owned persistent tables survive `nft flush ruleset`,
//! `nft delete table` and raw netlink deletes by anyone else and outlive the daemon's socket,
//! and a new daemon adopts them; an owned table without persist goes with its socket; the
//! guard drops the traffic of a project bridge without rules and lets it through once the
//! project has rules; on a kernel without persist (unowned tables) the daemon restores a
//! deleted or flushed table by itself. docs/daemon.md writes this down. Needs root.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alca_contract::NetSpec;
use alca_e2e::netns::{golden_ruleset, run_ok, ScratchNs};
use alca_kernel::tables::{delete_table, new_table, TableOwner};
use alca_netd::daemon::Daemon;
use alca_netd::firewall::{Firewall, Nft, TableFlags};
use alca_netd::store::Store;

const TABLE: &str = "alca-00000000000000000000000000000003";

fn require_root() {
    alca_e2e::privilege::require_root("the owned-table tests");
}

fn exists(ns: &ScratchNs, table: &str) -> bool {
    ns.nft(&["list", "table", "inet", table]).is_ok()
}

#[test]
fn owned_persistent_tables_resist_others_outlive_the_daemon_and_are_adopted() {
    require_root();
    let ns = ScratchNs::create("alca-e2e-owned").unwrap();
    let batch = golden_ruleset("default", TABLE);
    let daemon = ns
        .enter(move || {
            let nft = Nft::default();
            assert!(
                nft.table_flags().persist,
                "this kernel (>= 6.9) has persist"
            );
            nft.apply(&batch).map(|_| Arc::new(nft))
        })
        .unwrap()
        .expect("the daemon's batch applies");
    let listed = ns.nft(&["list", "table", "inet", TABLE]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");
    // nft flush ruleset passes an owned table by; nft delete table is refused.
    ns.nft(&["flush", "ruleset"]).unwrap();
    assert!(exists(&ns, TABLE), "flush ruleset removed an owned table");
    let err = ns
        .nft(&["delete", "table", "inet", TABLE])
        .expect_err("another process deleted an owned table");
    assert!(err.to_string().contains("Operation not permitted"), "{err}");
    ns.nft(&["add", "rule", "inet", TABLE, "isolate", "accept"])
        .expect_err("another process added a rule to an owned table");
    // A raw netlink delete on a socket of its own: the same EPERM.
    let raw = ns
        .enter(|| alca_kernel::transact(&[delete_table(TABLE, 1)]))
        .unwrap()
        .expect_err("a raw netlink delete of an owned table went through");
    assert_eq!(
        raw.raw_os_error(),
        Some(nix::errno::Errno::EPERM as i32),
        "{raw}"
    );
    assert!(exists(&ns, TABLE));
    // The daemon's socket closes (the daemon died): the table stays, orphaned.
    drop(daemon);
    assert!(exists(&ns, TABLE), "a persistent table went with its owner");
    let orphan = ns.nft(&["list", "table", "inet", TABLE]).unwrap();
    assert!(!orphan.contains("flags owner"), "{orphan}");
    // A new daemon adopts it by replacing it (the batch deletes and re-creates it)…
    let batch = golden_ruleset("default", TABLE);
    let again = ns
        .enter(move || {
            let nft = Nft::default();
            nft.apply(&batch).map(|_| Arc::new(nft))
        })
        .unwrap()
        .expect("a new daemon adopts the orphan");
    // …and owns it again.
    ns.nft(&["flush", "ruleset"]).unwrap();
    assert!(exists(&ns, TABLE));
    assert!(ns.nft(&["delete", "table", "inet", TABLE]).is_err());
    drop(again);
    // An orphan is unowned: flush ruleset takes it.
    ns.nft(&["flush", "ruleset"]).unwrap();
    assert!(!exists(&ns, TABLE), "flush ruleset keeps an orphan");
}

#[test]
fn an_owned_table_without_persist_goes_with_its_socket() {
    require_root();
    let ns = ScratchNs::create("alca-e2e-ownedonly").unwrap();
    let create = new_table(TABLE, TableOwner::Socket, 1);
    // `transact` opens and closes a socket of its own.
    ns.enter(move || alca_kernel::transact(&[create]))
        .unwrap()
        .expect("an owned table");
    assert!(!exists(&ns, TABLE), "the owned table outlived its socket");
}

fn spec(project: &str, allow_all: bool) -> NetSpec {
    NetSpec {
        project: project.into(),
        bridge: alca_contract::net_spec::bridge_name(project),
        allow_all,
        allow: vec![],
        proxy: None,
        dns: vec![],
        internet: None,
    }
}

/// Whether a TCP connect from the `peer` namespace to `addr` (in the scratch one) succeeds
/// within a short bound.
fn connects(peer: &ScratchNs, addr: SocketAddr) -> bool {
    peer.enter(move || TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok())
        .unwrap()
}

/// A veth named like the project bridge `bridge` in namespace `ns` (192.0.2.1/24), its peer
/// `p0` in `peer` (192.0.2.2/24, default route back), and 10.99.7.1 (a "LAN" address) on the
/// `ns` side's loopback.
fn project_link(bridge: &str, ns: &str, peer: &str) {
    let exec = |ns: &str, args: &[&str]| {
        let mut all = vec!["netns", "exec", ns, "ip"];
        all.extend_from_slice(args);
        run_ok("ip", &all).unwrap();
    };
    exec(
        ns,
        &["link", "add", bridge, "type", "veth", "peer", "name", "p0"],
    );
    exec(ns, &["link", "set", "p0", "netns", peer]);
    exec(ns, &["addr", "add", "192.0.2.1/24", "dev", bridge]);
    exec(ns, &["link", "set", bridge, "up"]);
    exec(ns, &["link", "set", "lo", "up"]);
    exec(ns, &["addr", "add", "10.99.7.1/32", "dev", "lo"]);
    exec(peer, &["addr", "add", "192.0.2.2/24", "dev", "p0"]);
    exec(peer, &["link", "set", "p0", "up"]);
    exec(peer, &["route", "add", "default", "via", "192.0.2.1"]);
}

#[test]
fn the_guard_drops_a_bridge_without_rules_and_passes_one_with_rules() {
    require_root();
    let ns = ScratchNs::create("alca-e2e-guard").unwrap();
    let peer = ScratchNs::create("alca-e2e-guardpeer").unwrap();
    let project = "00000000000000000000000000000004";
    let bridge = alca_contract::net_spec::bridge_name(project);
    project_link(&bridge, "alca-e2e-guard", "alca-e2e-guardpeer");
    let listener = ns
        .enter(|| TcpListener::bind("192.0.2.1:0"))
        .unwrap()
        .unwrap();
    let addr = listener.local_addr().unwrap();
    assert!(connects(&peer, addr), "no guard yet: the test link works");
    let store = tempfile::tempdir().unwrap();
    let root = store.path().to_path_buf();
    let daemon = ns
        .enter(move || {
            let daemon = Arc::new(Daemon::new(Box::new(Nft::default()), Store::new(root)));
            daemon.restore().map(|_| daemon)
        })
        .unwrap()
        .expect("the guard installs");
    assert!(
        !connects(&peer, addr),
        "the guard let a bridge without rules through"
    );
    let e = Arc::clone(&daemon);
    ns.enter(move || e.apply(spec(project, true), 0, false))
        .unwrap()
        .unwrap();
    assert!(
        connects(&peer, addr),
        "the guard dropped a bridge with rules"
    );
    let e = Arc::clone(&daemon);
    ns.enter(move || e.remove(project, 0, false))
        .unwrap()
        .unwrap();
    assert!(
        !connects(&peer, addr),
        "the guard let a bridge through after its rules were removed"
    );
    // Other `alca-` interfaces (shorter names, like the test LAN's veth) are not guarded.
    let listed = ns.nft(&["list", "table", "inet", "alca-guard"]).unwrap();
    assert!(listed.contains("flags owner"), "{listed}");
    drop(daemon);
}

/// Polls (bounded) until `table` exists in `ns`; how long it took.
fn back_within(ns: &ScratchNs, table: &str, bound: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < bound {
        if exists(ns, table) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[test]
fn unowned_tables_deleted_or_flushed_by_others_are_restored_by_the_daemon() {
    require_root();
    let ns = ScratchNs::create("alca-e2e-heal").unwrap();
    let project = "00000000000000000000000000000005";
    let table = format!("alca-{project}");
    let store = tempfile::tempdir().unwrap();
    let root = store.path().to_path_buf();
    // A kernel without persist: the daemon's tables are unowned, others can delete them.
    let daemon = ns
        .enter(move || {
            let nft = Nft::with_table_flags(TableFlags { persist: false });
            let daemon = Arc::new(Daemon::new(Box::new(nft), Store::new(root)));
            daemon.restore()?;
            alca_netd::heal::spawn(Arc::clone(&daemon)).expect("events");
            daemon.apply(spec(project, false), 0, false).map(|_| daemon)
        })
        .unwrap()
        .expect("applies");
    let expected = ns.nft(&["list", "table", "inet", &table]).unwrap();
    for (what, args) in [
        (
            "delete table",
            vec!["delete", "table", "inet", table.as_str()],
        ),
        ("flush ruleset", vec!["flush", "ruleset"]),
    ] {
        ns.nft(&args).unwrap();
        let took = back_within(&ns, &table, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{what}: the table did not come back"));
        eprintln!("{what}: table seen back after {took:?} (nft runs included)");
        assert!(back_within(&ns, "alca-guard", Duration::from_secs(5)).is_some());
        // Give a restore of the guard after the table's time to finish, then compare.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            ns.nft(&["list", "table", "inet", &table]).unwrap(),
            expected,
            "{what}: restored to something else"
        );
    }
    // An inserted accept rule is undone too.
    ns.nft(&["insert", "rule", "inet", &table, "isolate", "accept"])
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5)
        && ns.nft(&["list", "table", "inet", &table]).unwrap() != expected
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        ns.nft(&["list", "table", "inet", &table]).unwrap(),
        expected
    );
    drop(daemon);
}

#[test]
fn narrowing_and_remove_end_open_connections_the_new_rules_refuse() {
    use std::io::{Read, Write};
    require_root();
    let ns = ScratchNs::create("alca-e2e-ct").unwrap();
    let peer = ScratchNs::create("alca-e2e-ctpeer").unwrap();
    let project = "00000000000000000000000000000006";
    let bridge = alca_contract::net_spec::bridge_name(project);
    project_link(&bridge, "alca-e2e-ct", "alca-e2e-ctpeer");
    let store = tempfile::tempdir().unwrap();
    let root = store.path().to_path_buf();
    let mut open = spec(project, false);
    open.allow = vec![alca_contract::AllowRule {
        net: "10.99.7.0/24".parse().unwrap(),
        proto: None,
        port: None,
    }];
    let daemon = ns
        .enter(move || {
            let daemon = Arc::new(Daemon::new(Box::new(Nft::default()), Store::new(root)));
            daemon.restore()?;
            daemon.apply(open, 0, false).map(|_| daemon)
        })
        .unwrap()
        .expect("applies");
    for narrow_by_remove in [false, true] {
        let listener = ns
            .enter(|| TcpListener::bind("10.99.7.1:0"))
            .unwrap()
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = peer
            .enter(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
            .unwrap()
            .expect("the allowed LAN address answers");
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        let e = Arc::clone(&daemon);
        if narrow_by_remove {
            // A Remove with its containers still there (no guard rule for them yet either).
            ns.enter(move || e.remove(project, 0, false))
                .unwrap()
                .unwrap();
        } else {
            ns.enter(move || e.apply(spec(project, false), 0, false))
                .unwrap()
                .unwrap();
        }
        // The next segment of the open connection is refused: the client sees the
        // connection end (reset) or its data never arrive, within a bounded wait.
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let start = Instant::now();
        let mut ended = false;
        while start.elapsed() < Duration::from_secs(1) {
            let sent = client.write_all(b"more");
            let got = server.read(&mut buf);
            if sent.is_err() || !matches!(got, Ok(n) if n > 0) {
                ended = true;
                break;
            }
        }
        assert!(
            ended,
            "remove={narrow_by_remove}: the connection outlived its permission"
        );
        if !narrow_by_remove {
            // Put the allowance back for the Remove round.
            let mut open = spec(project, false);
            open.allow = vec![alca_contract::AllowRule {
                net: "10.99.7.0/24".parse().unwrap(),
                proto: None,
                port: None,
            }];
            let e = Arc::clone(&daemon);
            ns.enter(move || e.apply(open, 0, false)).unwrap().unwrap();
        }
    }
    drop(daemon);
}
