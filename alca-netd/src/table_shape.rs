//! The parts of a project's live table that Status compares with its compiled spec (chains,
//! the comment of every rule, the elements of the `deny*` sets), read over nf_tables netlink:
//! a few requests and dumps of that one table, where `nft -j list table` is a process start
//! that reads the table with every set and counter (issue #21: "status reports the truth at
//! every moment, cheaply"). Read-only; the answer has the shape of `nft -j list table` output
//! for just those parts, so [`crate::probe_sets::check_live`] judges it as it judges a listing.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use alca_kernel::table_dump::{chain_exists, rule_comments, set_element_keys};
use alca_kernel::table_names::inet_table_exists;
use alca_ruleset::Ruleset;

/// The chains, rule comments and `deny*` set elements of the `inet` table `table` that
/// `expected` (a compiled batch) names, as `nft -j list table` shows them; `None` when the
/// table does not exist.
pub fn read(table: &str, expected: &Ruleset) -> io::Result<Option<Value>> {
    if !inet_table_exists(table)? {
        return Ok(None);
    }
    let mut objects = Vec::new();
    let (chains, deny_sets) = wanted(expected);
    for chain in chains {
        if chain_exists(table, &chain)? {
            objects.push(json!({"chain": {"name": chain}}));
        }
    }
    objects.extend(
        rule_comments(table)?
            .into_iter()
            .map(|(chain, comment)| json!({"rule": {"chain": chain, "comment": comment}})),
    );
    for set in deny_sets {
        if let Some(elem) = set_element_keys(table, &set)?.map(ranges_as_listed) {
            objects.push(json!({"set": {"name": set, "elem": elem}}));
        }
    }
    Ok(Some(json!({ "nftables": objects })))
}

/// The chain names and the `deny*` set names `expected` creates.
fn wanted(expected: &Ruleset) -> (Vec<String>, Vec<String>) {
    let mut chains: Vec<String> = expected.chains().map(|c| c.name.clone()).collect();
    let mut sets: Vec<String> = expected
        .sets()
        .map(|s| s.name.clone())
        .filter(|n| n.starts_with("deny"))
        .collect();
    chains.sort();
    chains.dedup();
    sets.sort();
    sets.dedup();
    (chains, sets)
}

/// The `[start, end)` ranges the start and end elements of an interval set describe, each as
/// nft lists it. A start without an end runs to the last address.
fn ranges_as_listed(mut keys: Vec<(Vec<u8>, bool)>) -> Vec<Value> {
    // Ends sort before starts at the same key: adjacent ranges share that key.
    keys.sort_by(|a, b| (&a.0, !a.1).cmp(&(&b.0, !b.1)));
    let mut out = Vec::new();
    let mut open: Option<&[u8]> = None;
    for (key, end) in &keys {
        match (*end, open) {
            (false, _) => open = Some(key),
            (true, Some(start)) => {
                out.push(listed(start, Some(key)));
                open = None;
            }
            (true, None) => {} // the end of the gap before the first range
        }
    }
    if let Some(start) = open {
        out.push(listed(start, None));
    }
    out
}

/// One range `[start, end)` (`end` `None`: to the last address) as nft lists it.
fn listed(start: &[u8], end: Option<&[u8]>) -> Value {
    let bits = start.len() * 8;
    let number = |b: &[u8]| b.iter().fold(0u128, |v, x| v << 8 | u128::from(*x));
    let address = |v: u128| -> Value {
        let ip = match bits {
            32 => IpAddr::V4(Ipv4Addr::from(v as u32)),
            128 => IpAddr::V6(Ipv6Addr::from(v)),
            _ => return Value::String(format!("{v:#x}")),
        };
        Value::String(ip.to_string())
    };
    let first = number(start);
    let last = match end {
        Some(e) => number(e).wrapping_sub(1),
        None if bits >= 128 => u128::MAX,
        None => (1u128 << bits) - 1,
    };
    // A prefix: the range's size is a power of two and its start is aligned to it.
    let span = last.wrapping_sub(first);
    let host_bits = 128 - span.leading_zeros() as usize;
    let is_prefix = last >= first
        && span.checked_add(1).is_none_or(|n| n.is_power_of_two())
        && (host_bits == 128 || first % (1u128 << host_bits) == 0)
        && host_bits <= bits;
    match (is_prefix, span) {
        (true, 0) => address(first),
        (true, _) => json!({"prefix": {"addr": address(first), "len": bits - host_bits}}),
        (false, _) => json!({"range": [address(first), address(last)]}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: &str) -> Vec<u8> {
        a.parse::<Ipv4Addr>().unwrap().octets().to_vec()
    }

    #[test]
    fn start_and_end_elements_list_as_nft_lists_them() {
        let keys = vec![
            (v4("0.0.0.0"), true),
            (v4("10.0.0.0"), false),
            (v4("11.0.0.0"), true),
            (v4("100.99.0.3"), false),
            (v4("100.99.0.4"), true),
            (v4("192.168.0.0"), false),
            (v4("192.168.0.10"), true),
            (v4("240.0.0.0"), false),
        ];
        // Descending, as the kernel's rbtree dump gives them.
        let mut reversed = keys.clone();
        reversed.reverse();
        let listed = ranges_as_listed(reversed);
        assert_eq!(
            listed,
            [
                json!({"prefix": {"addr": "10.0.0.0", "len": 8}}),
                json!("100.99.0.3"),
                json!({"range": ["192.168.0.0", "192.168.0.9"]}),
                json!({"prefix": {"addr": "240.0.0.0", "len": 4}}),
            ]
        );
    }

    #[test]
    fn adjacent_ranges_stay_apart_and_ipv6_prefixes_read_back() {
        let v6 = |a: &str| a.parse::<Ipv6Addr>().unwrap().octets().to_vec();
        let keys = vec![
            (v4("10.0.0.0"), false),
            (v4("10.128.0.0"), true),
            (v4("10.128.0.0"), false),
            (v4("11.0.0.0"), true),
        ];
        assert_eq!(
            ranges_as_listed(keys),
            [
                json!({"prefix": {"addr": "10.0.0.0", "len": 9}}),
                json!({"prefix": {"addr": "10.128.0.0", "len": 9}}),
            ]
        );
        let keys = vec![(v6("fc00::"), false), (v6("fe00::"), true)];
        assert_eq!(
            ranges_as_listed(keys),
            [json!({"prefix": {"addr": "fc00::", "len": 7}})]
        );
        assert_eq!(
            ranges_as_listed(vec![(v6("::"), false)]),
            [json!({"prefix": {"addr": "::", "len": 0}})]
        );
    }
}
