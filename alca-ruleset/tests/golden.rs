//! Golden tests of the ruleset compiler: the whole JSON batch for each kind of spec is compared
//! with a reviewed file under `tests/golden/`, and each golden is checked by the real `nft`
//! (`nft -c -j -f`, check mode) when it is available and we are root.
//!
//! Regenerate after an intended change with `ALCA_UPDATE_GOLDEN=1 cargo test -p alca-netd
//! --test golden` and review the diff.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use alca_contract::internet::{parse_internet_entry, InternetSpec};
use alca_contract::{AllowRule, NetSpec, Proto};
use alca_ruleset::{
    delete_batch, owner_uid, replace_batch, replace_batch_in_netns, replace_batch_on,
    replace_batch_with_quirks, HostQuirks,
};
use serde_json::Value;

const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const OWNER: u32 = 1000;

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

/// Every case: golden file name and the batch it must equal.
fn cases() -> Vec<(&'static str, Value)> {
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

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("json") + "\n"
}

#[test]
fn batches_match_their_golden_files() {
    let update = std::env::var_os("ALCA_UPDATE_GOLDEN").is_some();
    for (name, batch) in cases() {
        let path = golden_path(name);
        if update {
            std::fs::write(&path, pretty(&batch)).expect("write golden");
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with ALCA_UPDATE_GOLDEN=1", path.display()));
        let want: Value = serde_json::from_str(&text).expect("golden is JSON");
        assert_eq!(
            batch,
            want,
            "{name}: compiled batch differs from {}",
            path.display()
        );
    }
}

/// The daemon sends these batches over netlink (`nfnl::ruleset`): a compiler change the encoder
/// does not know would silently fall back to `nft` (tests/tests/netlink_ruleset.rs then holds
/// the encoding to what nft loads).
#[test]
fn every_golden_batch_has_a_netlink_encoding() {
    for (name, batch) in cases() {
        let messages =
            alca_kernel::ruleset::messages(&batch).unwrap_or_else(|e| panic!("{name}: {e}"));
        let commands = batch["nftables"].as_array().expect("commands").len();
        assert!(
            messages.len() >= commands,
            "{name}: {} messages",
            messages.len()
        );
    }
}

fn nft_usable() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let nft = Command::new("nft")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    root && nft
}

/// Runs `nft -c -j -f -` on `batch`; `Err(stderr)` when nft refuses it.
fn nft_check(batch: &Value) -> Result<(), String> {
    nft_stdin(&["-c", "-j", "-f", "-"], batch)
}

/// Runs `nft ARGS` with `batch` on stdin; `Err(stderr)` when nft fails.
fn nft_stdin(args: &[&str], batch: &Value) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(batch.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn nft_accepts_every_golden_batch() {
    if !nft_usable() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    for (name, batch) in cases() {
        if let Err(e) = nft_check(&batch) {
            panic!("nft -c refused {name}: {e}");
        }
    }
    // Sanity: the checker itself can fail.
    let broken: Value = serde_json::json!({"nftables": [{"add": {"chain": {
        "family": "inet", "table": "alca-does-not-exist-0", "name": "x"}}}]});
    assert!(
        nft_check(&broken).is_err(),
        "nft -c accepted a chain in a missing table"
    );
}

#[test]
fn owner_uid_reads_back_from_the_kernel_and_delete_removes_the_table() {
    if !nft_usable() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let project = format!("{:08x}0e0e0e0e", std::process::id());
    let mut s = spec();
    s.project = project.clone();
    s.bridge = alca_contract::net_spec::bridge_name(&project);
    let table = s.table_name();
    nft_stdin(&["-j", "-f", "-"], &replace_batch(&s, 4242)).expect("apply");
    // Applying twice is fine: the batch replaces the table whether or not it exists.
    nft_stdin(&["-j", "-f", "-"], &replace_batch(&s, 4243)).expect("re-apply");
    let listing = Command::new("nft")
        .args(["-j", "list", "table", "inet", &table])
        .output()
        .expect("nft list");
    let json: Value = serde_json::from_slice(&listing.stdout).expect("nft json");
    nft_stdin(&["-j", "-f", "-"], &delete_batch(&project)).expect("delete");
    assert_eq!(owner_uid(&json, &table), Some(4243));
    let gone = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .expect("nft list");
    assert!(
        !gone.status.success(),
        "{table} still exists after delete_batch"
    );
    // Deleting a missing table succeeds too.
    nft_stdin(&["-j", "-f", "-"], &delete_batch(&project)).expect("delete again");
}
