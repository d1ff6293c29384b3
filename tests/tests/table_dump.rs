//! The daemon's table-only netlink dump (`alca_kernel::table_names`) names exactly the `inet`
//! tables `nft` lists, and its one-table request finds exactly those, in a scratch network
//! namespace of its own (nothing else adds tables there). Needs root (tests/run.sh).

use alca_e2e::netns::{run_ok, ScratchNs};

#[test]
fn the_table_dump_names_what_nft_lists() {
    if run_ok("id", &["-u"]).map(|u| u != "0").unwrap_or(true) {
        panic!("the table dump test must run as root (tests/run.sh)");
    }
    let ns = ScratchNs::create("alca-e2e-tabledump").unwrap();
    let project = "alca-0123456789abcdef0123456789abcdef";
    for table in [project, "filter", "alca-x"] {
        ns.nft(&["add", "table", "inet", table]).unwrap();
    }
    ns.nft(&["add", "table", "ip", "alca-ip-family"]).unwrap();
    for i in 0..300 {
        ns.nft(&["add", "table", "inet", &format!("many{i}")])
            .unwrap();
    }

    let mut dumped = ns
        .enter(alca_kernel::table_names::inet_table_names)
        .unwrap()
        .expect("the netlink table dump");

    let listing: serde_json::Value =
        serde_json::from_str(&ns.nft(&["-j", "list", "tables", "inet"]).unwrap()).unwrap();
    let mut listed: Vec<String> = listing["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["table"]["name"].as_str().map(String::from))
        .collect();
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

    // One table asked for by name: there, absent, or only in another family.
    let exists = |name: &'static str| {
        ns.enter(move || alca_kernel::table_names::inet_table_exists(name))
            .unwrap()
            .expect("the netlink table request")
    };
    assert!(exists("alca-0123456789abcdef0123456789abcdef"));
    assert!(exists("many299"));
    assert!(!exists("alca-ffffffffffffffffffffffffffffffff"));
    assert!(!exists("alca-ip-family"));
}
