//! The specs the compiler's goldens cover (`alca-ruleset/tests/golden/*.json`), compiled: one
//! list for the golden test, the kernel writer's byte fixtures (`alca-kernel/tests/fixtures`)
//! and the end-to-end tests that load every golden ruleset both ways. Test data, in the library
//! so that those three use the same cases.

use alca_contract::internet::{parse_internet_entry, InternetSpec};
use alca_contract::{AllowRule, NetSpec, Proto};

use crate::{
    delete_batch, replace_batch, replace_batch_in_netns, replace_batch_on,
    replace_batch_with_quirks, HostQuirks, Ruleset,
};

/// The project every golden ruleset is compiled for (table [`GOLDEN_TABLE`]).
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
/// The owner uid every golden ruleset records.
pub const OWNER: u32 = 1000;
/// The table every golden ruleset acts on.
pub const GOLDEN_TABLE: &str = "alca-0123456789abcdef0123456789abcdef";

fn spec() -> NetSpec {
    NetSpec::isolated(PROJECT)
}

fn allow(net: &str, proto: Option<Proto>, port: Option<u16>) -> AllowRule {
    AllowRule {
        net: net.parse().expect("test network"),
        proto,
        port,
    }
}

/// Every case: golden file name and the ruleset whose JSON encoding it must equal.
pub fn cases() -> Vec<(&'static str, Ruleset)> {
    let default = spec();
    let mut allows = spec();
    allows.allow = vec![
        allow("10.99.0.2/32", None, None),
        allow("192.168.1.0/24", None, None),
        allow("10.99.0.2/32", None, Some(18080)),
        allow("10.99.0.3/32", Some(Proto::Tcp), Some(22)),
        allow("10.99.0.53/32", Some(Proto::Udp), Some(53)),
        allow("10.0.0.0/8", Some(Proto::Tcp), None),
        allow("fd99::2/128", None, None),
        allow("fd99::/64", None, Some(443)),
    ];
    let mut all = spec();
    all.allow_all = true;
    let mut all_proxy = all.clone();
    all_proxy.proxy = Some("172.20.0.1:15001".parse().expect("addr"));
    let mut proxy4 = spec();
    proxy4.proxy = Some("10.99.0.1:15001".parse().expect("addr"));
    proxy4.dns = vec!["10.255.255.53".parse().expect("addr")];
    let mut proxy6 = spec();
    proxy6.proxy = Some("[fd99::1]:3128".parse().expect("addr"));
    let mut dns = spec();
    dns.dns = vec![
        "10.255.255.53".parse().expect("addr"),
        "fd00::53".parse().expect("addr"),
    ];
    let internet_spec = |entries: &[&str]| InternetSpec {
        entries: entries
            .iter()
            .map(|e| parse_internet_entry(e).expect("test entry"))
            .collect(),
        resolver: "172.20.0.1:5353".parse().expect("addr"),
        ttl_floor_secs: 30,
        ttl_max_secs: 3600,
    };
    let mut internet = spec();
    internet.allow = vec![allow("10.99.0.2/32", None, None)];
    internet.dns = vec!["10.255.255.53".parse().expect("addr")];
    internet.internet = Some(internet_spec(&[
        "allowed.test:8080",
        "*.wild.test",
        "udp://quic.test:443",
        "b.test:8080",
        "192.88.99.0/24",
        "tcp://[2001:db8::2]:22",
        "udp://198.51.100.7:*",
    ]));
    let mut no_internet = spec();
    no_internet.internet = Some(internet_spec(&[]));
    let mut internet_proxy = internet.clone();
    internet_proxy.proxy = Some("10.99.0.1:15001".parse().expect("addr"));
    // Inside a rootless container's namespace: the output and postrouting chains.
    let mut netns = spec();
    netns.allow = vec![
        allow("10.99.0.2/32", Some(Proto::Tcp), Some(8080)),
        allow("fd99::/64", None, Some(443)),
    ];
    netns.dns = vec!["10.0.2.3".parse().expect("addr")];
    let mut internet_lan_open = spec();
    internet_lan_open.allow_all = true;
    internet_lan_open.internet = Some(internet_spec(&["allowed.test"]));
    vec![
        ("default", replace_batch(&default, OWNER)),
        ("internet", replace_batch(&internet, OWNER)),
        ("internet_none", replace_batch(&no_internet, OWNER)),
        ("internet_proxy", replace_batch(&internet_proxy, OWNER)),
        (
            "internet_lan_open",
            replace_batch(&internet_lan_open, OWNER),
        ),
        ("allow_rules", replace_batch(&allows, OWNER)),
        ("allow_all", replace_batch(&all, OWNER)),
        ("allow_all_proxy", replace_batch(&all_proxy, OWNER)),
        ("proxy_v4", replace_batch(&proxy4, OWNER)),
        ("proxy_v6", replace_batch(&proxy6, OWNER)),
        ("dns", replace_batch(&dns, OWNER)),
        ("delete", delete_batch(PROJECT)),
        ("netns", replace_batch_in_netns(&netns, OWNER, &[])),
        (
            // A host on a public campus LAN and an IPv6 GUA home LAN, plus a connected network
            // wider than a fixed range (10.0.0.0/7 covers 10/8: the union is merged).
            "onlink",
            replace_batch_on(
                &default,
                OWNER,
                HostQuirks::default(),
                &[
                    "192.88.99.128/25".parse().expect("net"),
                    "2001:db8:77::/64".parse().expect("net"),
                    "10.0.0.0/7".parse().expect("net"),
                ],
            ),
        ),
        (
            "flowtable_guard",
            replace_batch_with_quirks(
                &default,
                OWNER,
                HostQuirks {
                    flowtable_offload: true,
                },
            ),
        ),
    ]
}

/// The ruleset of golden case `name`.
pub fn case(name: &str) -> Option<Ruleset> {
    cases()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| r)
}
