//! Status reads a project's live table over netlink (`alca_netd::table_shape`): for every
//! golden batch, loaded in a scratch network namespace of the test's own, the netlink read and
//! `nft -j list table` are judged alike by `check_live` (no problem), and so they are after
//! each way someone else can tamper with the table (an inserted accept rule, a removed deny
//! element, a flushed chain, a flushed table): the same problems, never none. A deleted table
//! reads as absent. Through the daemon's own `Daemon::status` (an daemon in the namespace,
//! on a kernel without persist so that others can change its table, and no healer running):
//! `applied` is true for the intact table and false, naming the difference, for an inserted
//! accept rule and an emptied table. Needs root (tests/run.sh).

use alca_contract::NetSpec;
use alca_e2e::netns::{golden_ruleset, run_ok, ScratchNs, GOLDEN_CASES};
use alca_netd::daemon::Daemon;
use alca_netd::firewall::{Nft, TableFlags};
use alca_netd::probe_sets::check_live;
use alca_netd::store::Store;
use alca_netd::table_shape;
use alca_ruleset::{nft_json, Ruleset};

const TABLE: &str = "alca-0000000000000000000000000000005a";

/// The problems `check_live` finds against `batch` in the netlink read and in nft's listing.
fn judged(ns: &ScratchNs, batch: &Ruleset) -> (Vec<String>, Vec<String>) {
    let expected = batch.clone();
    let read = ns
        .enter(move || table_shape::read(TABLE, &expected))
        .unwrap()
        .expect("the netlink read")
        .expect("the table exists");
    let listed = ns.list_table(TABLE).unwrap();
    (check_live(&read, batch), check_live(&listed, batch))
}

#[test]
fn the_netlink_read_finds_what_the_listing_finds() {
    if run_ok("id", &["-u"]).map(|u| u != "0").unwrap_or(true) {
        panic!("the table shape test must run as root (tests/run.sh)");
    }
    let ns = ScratchNs::create("alca-e2e-tableshape").unwrap();
    for case in GOLDEN_CASES {
        let batch = golden_ruleset(case, TABLE);
        ns.nft_batch(&nft_json(&batch)).unwrap();
        let (read, listed) = judged(&ns, &batch);
        assert_eq!(read, listed, "{case}");
        assert!(
            read.is_empty(),
            "{case}: an intact table has problems: {read:?}"
        );
    }

    let batch = golden_ruleset("default", TABLE);
    let tampering: [&[&str]; 5] = [
        &["insert", "rule", "inet", TABLE, "isolate", "accept"],
        &["add", "rule", "inet", TABLE, "verify", "counter"],
        &[
            "delete",
            "element",
            "inet",
            TABLE,
            "deny4",
            "{ 10.0.0.0/8 }",
        ],
        &["flush", "chain", "inet", TABLE, "isolate"],
        &["flush", "table", "inet", TABLE],
    ];
    for args in tampering {
        ns.nft_batch(&nft_json(&batch)).unwrap();
        ns.nft(args).unwrap();
        let (read, listed) = judged(&ns, &batch);
        assert_eq!(read, listed, "after nft {args:?}");
        assert!(!read.is_empty(), "nft {args:?} went unseen");
    }

    ns.nft(&["delete", "table", "inet", TABLE]).unwrap();
    let expected = batch.clone();
    let gone = ns
        .enter(move || table_shape::read(TABLE, &expected))
        .unwrap()
        .expect("the netlink read");
    assert!(gone.is_none());
}

#[test]
fn status_sees_an_inserted_accept_rule_and_an_emptied_table() {
    if run_ok("id", &["-u"]).map(|u| u != "0").unwrap_or(true) {
        panic!("the table shape test must run as root (tests/run.sh)");
    }
    let ns = ScratchNs::create("alca-e2e-tablestatus").unwrap();
    let project = TABLE.trim_start_matches("alca-").to_string();
    let store = tempfile::tempdir().unwrap();
    let root = store.path().to_path_buf();
    let spec = NetSpec::isolated(&project);
    let status = |ns: &ScratchNs, daemon: &std::sync::Arc<Daemon>| {
        let (daemon, project) = (daemon.clone(), project.clone());
        ns.enter(move || daemon.status(&project, 0))
            .unwrap()
            .expect("status")
    };
    let daemon = ns
        .enter(move || {
            let nft = Nft::with_table_flags(TableFlags { persist: false });
            let daemon = std::sync::Arc::new(Daemon::new(Box::new(nft), Store::new(root)));
            // The guard first, as at the daemon's start: an Apply marks the bridge in it.
            daemon.restore()?;
            daemon.apply(spec, 0, false).map(|_| daemon)
        })
        .unwrap()
        .expect("applies");
    let intact = status(&ns, &daemon);
    assert!(intact.applied && intact.problems.is_empty(), "{intact:?}");

    ns.nft(&["insert", "rule", "inet", TABLE, "isolate", "accept"])
        .unwrap();
    let opened = status(&ns, &daemon);
    assert!(!opened.applied, "an inserted accept rule: {opened:?}");
    assert!(
        opened.problems.iter().any(|p| p.contains("unexpected")),
        "{opened:?}"
    );

    ns.nft(&["flush", "table", "inet", TABLE]).unwrap();
    let emptied = status(&ns, &daemon);
    assert!(!emptied.applied, "an emptied table: {emptied:?}");
    assert!(
        emptied.problems.iter().any(|p| p.contains("missing")),
        "{emptied:?}"
    );
}
