//! The daemon's netlink encoding of a project batch (`alca_kernel::ruleset`) loads what
//! `nft -j -f` of the same batch loads: for every golden batch of the compiler, one copy of
//! the table goes in each way in a scratch network namespace, and nft's listings of the two
//! (JSON, and `--debug=netlink`: every kernel expression and set element) must be the same.
//! A refused batch changes nothing, and one the encoder cannot encode is refused (never run by
//! `nft`, which would create a table the daemon does not own).
//! Needs root (tests/run.sh).

use alca_contract::{AllowRule, NetSpec, Proto};
use alca_e2e::netns::{golden_ruleset, ScratchNs, GOLDEN_CASES, GOLDEN_TABLE};
use alca_kernel::ruleset;
use alca_netd::firewall::{Firewall, Nft, TableFlags};
use alca_ruleset::types::{Command, Rule, Stmt};
use alca_ruleset::{nft_json, replace_batch, Ruleset};
use serde_json::Value;

const BY_NFT: &str = "alca-00000000000000000000000000000001";
const BY_NETLINK: &str = "alca-00000000000000000000000000000002";

fn send(ns: &ScratchNs, batch: &Ruleset) {
    let messages = ruleset::messages(batch).expect("every golden batch has an encoding");
    ns.enter(move || alca_kernel::transact(&messages))
        .unwrap()
        .expect("the kernel takes the netlink batch");
}

/// `nft FLAGS list table inet TABLE`, with the table's name replaced by `TABLE` and, in
/// JSON, without the object handles (the kernel numbers tables across the namespace).
fn listing(ns: &ScratchNs, flags: &[&str], table: &str) -> String {
    let mut args = flags.to_vec();
    args.extend_from_slice(&["list", "table", "inet", table]);
    let text = ns.nft(&args).unwrap().replace(table, "TABLE");
    if flags != ["-j"] {
        return text;
    }
    let mut json: Value = serde_json::from_str(&text).unwrap();
    for object in json["nftables"].as_array_mut().unwrap() {
        for (_, body) in object.as_object_mut().unwrap() {
            if let Some(fields) = body.as_object_mut() {
                fields.remove("handle");
            }
        }
    }
    serde_json::to_string_pretty(&json).unwrap()
}

fn assert_same_tables(ns: &ScratchNs, case: &str) {
    for flags in [&["-j"][..], &["--debug=netlink"][..], &[][..]] {
        let by_nft = listing(ns, flags, BY_NFT);
        let by_netlink = listing(ns, flags, BY_NETLINK);
        assert!(by_nft.contains("owner"), "{case}: nothing listed: {by_nft}");
        assert_eq!(
            by_netlink, by_nft,
            "{case}: nft {flags:?} lists the tables differently"
        );
    }
}

/// Specs beyond the goldens: prefixes that do not end on a byte, IPv6 ports, a proxy with
/// allow rules and resolvers of both families.
fn more_batches() -> Vec<Ruleset> {
    let allow = |net: &str, proto, port| AllowRule {
        net: net.parse().unwrap(),
        proto,
        port,
    };
    let base = NetSpec {
        project: GOLDEN_TABLE.trim_start_matches("alca-").into(),
        bridge: "alca-0123456789".into(),
        allow_all: false,
        allow: vec![
            allow("172.16.0.0/12", None, None),
            allow("100.64.0.0/10", Some(Proto::Tcp), Some(8080)),
            allow("10.1.2.3/31", Some(Proto::Udp), None),
            allow("fd00::/7", None, None),
            allow("2001:db8::/33", Some(Proto::Udp), Some(53)),
            allow("fe80::1/128", Some(Proto::Tcp), Some(22)),
        ],
        proxy: None,
        dns: vec![
            "10.255.255.53".parse().unwrap(),
            "fd00::53".parse().unwrap(),
        ],
        internet: None,
    };
    let mut most = base.clone();
    most.allow = (0..alca_contract::net_spec::MAX_ALLOW_RULES)
        .map(|i| allow(&format!("10.{}.{}.0/24", i / 256, i % 256), None, Some(443)))
        .collect();
    let mut proxied = base.clone();
    proxied.proxy = Some("10.99.0.1:15001".parse().unwrap());
    let mut proxied6 = base.clone();
    proxied6.proxy = Some("[fd99::1]:3128".parse().unwrap());
    [base, most, proxied, proxied6]
        .iter()
        .map(|spec| replace_batch(spec, 4242))
        .collect()
}

#[test]
fn every_golden_batch_loads_the_same_table_over_netlink_as_through_nft() {
    alca_e2e::privilege::require_root("the netlink ruleset test");
    let ns = ScratchNs::create("alca-e2e-nlruleset").unwrap();
    let golden = |c: &str| golden_ruleset(c, GOLDEN_TABLE);
    let cases = GOLDEN_CASES.iter().map(|c| (c.to_string(), golden(c)));
    let more = more_batches().into_iter().enumerate();
    for (case, batch) in cases.chain(more.map(|(i, t)| (format!("more #{i}"), t))) {
        ns.nft_batch(&nft_json(&batch.for_table(BY_NFT))).unwrap();
        send(&ns, &batch.for_table(BY_NETLINK));
        assert_same_tables(&ns, &case);
    }
    // Replacing a table (each batch starts by deleting it) and deleting it, both ways.
    let batch = golden("default");
    ns.nft_batch(&nft_json(&batch.for_table(BY_NFT))).unwrap();
    send(&ns, &batch.for_table(BY_NETLINK));
    assert_same_tables(&ns, "default over proxy_v6");
    send(&ns, &golden_ruleset("delete", BY_NETLINK));
    let left = ns.nft(&["list", "tables", "inet"]).unwrap();
    assert!(
        !left.contains(BY_NETLINK) && left.contains(BY_NFT),
        "{left}"
    );
}

#[test]
fn a_refused_netlink_batch_changes_nothing() {
    alca_e2e::privilege::require_root("the netlink ruleset test");
    let ns = ScratchNs::create("alca-e2e-nlrefused").unwrap();
    send(&ns, &golden_ruleset("default", BY_NETLINK));
    let before = listing(&ns, &["-j"], BY_NETLINK);
    // The same table again, with a rule jumping to a chain that does not exist: the kernel
    // refuses it, after the batch already deleted and re-created the table.
    let mut batch = golden_ruleset("allow_rules", BY_NETLINK);
    batch.commands.push(Command::AddRule(Rule {
        table: BY_NETLINK.into(),
        chain: "isolate".into(),
        stmts: vec![Stmt::Jump("nosuchchain".into())],
        comment: None,
    }));
    // One daemon connection for everything below, opened inside the scratch namespace.
    let (nft, refused) = ns
        .enter(move || {
            // Unowned tables, as nft writes them, for the listings to compare.
            let nft = Nft::with_table_flags(TableFlags { persist: false });
            let refused = nft.apply(&batch);
            (std::sync::Arc::new(nft), refused)
        })
        .unwrap();
    let err = refused.unwrap_err();
    assert!(err.to_string().contains("nf_tables refused"), "{err}");
    assert_eq!(
        listing(&ns, &["-j"], BY_NETLINK),
        before,
        "a refused batch left changes"
    );
    // The connection goes on: the next batches apply, the second on the socket the first
    // used, which a refusal or an earlier answer must not have left anything on.
    for case in ["allow_rules", "dns"] {
        let good = golden_ruleset(case, BY_NETLINK);
        let nft = nft.clone();
        ns.enter(move || nft.apply(&good))
            .unwrap()
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        ns.nft_batch(&nft_json(&golden_ruleset(case, BY_NFT)))
            .unwrap();
        assert_same_tables(&ns, case);
    }
}

#[test]
fn a_batch_without_a_netlink_encoding_is_refused_and_changes_nothing() {
    alca_e2e::privilege::require_root("the netlink ruleset test");
    let ns = ScratchNs::create("alca-e2e-nlfallback").unwrap();
    // The default table plus a rule the encoder cannot encode: an unknown shape cannot be
    // written in the closed `Ruleset` any more, so a value without an encoding (a comment
    // longer than a rule's user data can hold).
    let mut batch = golden_ruleset("default", BY_NETLINK);
    batch.commands.push(Command::AddRule(Rule {
        table: BY_NETLINK.into(),
        chain: "isolate".into(),
        stmts: vec![Stmt::Counter],
        comment: Some("fallback ".repeat(40)),
    }));
    assert!(
        ruleset::messages(&batch).is_err(),
        "the test needs a batch without an encoding"
    );
    // Through nft it would create a table the daemon does not own: fail closed instead.
    let err = ns
        .enter(move || Nft::default().apply(&batch))
        .unwrap()
        .expect_err("a batch without a netlink encoding was applied");
    assert!(err.to_string().contains("no netlink encoding"), "{err}");
    assert!(
        ns.nft(&["list", "table", "inet", BY_NETLINK]).is_err(),
        "a refused batch left a table"
    );
}
