//! The daemon's table-only netlink dump (`alca_netd::table_names`) names exactly the `inet`
//! tables `nft` lists, in a scratch network namespace of its own (nothing else adds tables
//! there). Needs root (tests/run.sh).

use std::fs::File;

use alca_e2e::netns::{run, run_ok};
use nix::sched::{setns, CloneFlags};

const NS: &str = "alca-e2e-tabledump";

/// Deletes the scratch namespace (and with it its tables) when the test ends.
struct Scratch;

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "delete", NS]);
    }
}

fn nft_in_ns(args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", NS, "nft"];
    all.extend_from_slice(args);
    run_ok("ip", &all).unwrap()
}

#[test]
fn the_table_dump_names_what_nft_lists() {
    if run_ok("id", &["-u"]).map(|u| u != "0").unwrap_or(true) {
        panic!("the table dump test must run as root (tests/run.sh)");
    }
    let _ = run("ip", &["netns", "delete", NS]);
    run_ok("ip", &["netns", "add", NS]).unwrap();
    let _scratch = Scratch;
    let project = "alca-0123456789abcdef0123456789abcdef";
    for table in [project, "filter", "alca-x"] {
        nft_in_ns(&["add", "table", "inet", table]);
    }
    nft_in_ns(&["add", "table", "ip", "alca-ip-family"]);
    for i in 0..300 {
        nft_in_ns(&["add", "table", "inet", &format!("many{i}")]);
    }

    let netns = File::open(format!("/run/netns/{NS}")).unwrap();
    let dumped = std::thread::spawn(move || {
        setns(&netns, CloneFlags::CLONE_NEWNET).expect("entering the scratch namespace");
        alca_netd::table_names::inet_table_names()
    })
    .join()
    .unwrap()
    .expect("the netlink table dump");

    let listing: serde_json::Value =
        serde_json::from_str(&nft_in_ns(&["-j", "list", "tables", "inet"])).unwrap();
    let mut listed: Vec<String> = listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["table"]["name"].as_str().map(String::from))
        .collect();
    let mut dumped = dumped;
    listed.sort();
    dumped.sort();
    assert_eq!(listed.len(), 303, "{listed:?}");
    assert_eq!(
        dumped, listed,
        "the dump must name exactly the inet tables nft lists"
    );
    assert!(
        !dumped.iter().any(|n| n == "alca-ip-family"),
        "ip-family tables are not inet"
    );
}
