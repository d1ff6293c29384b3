//! The parts of a project's live table that Status compares with its compiled spec (chains,
//! the comment of every rule, the elements of the `deny*` sets), read over nf_tables netlink:
//! a few requests and dumps of that one table, where `nft -j list table` is a process start
//! that reads the table with every set and counter (issue #21: "status reports the truth at
//! every moment, cheaply"). Read-only; the answer has the shape of `nft -j list table` output
//! for just those parts, so [`crate::probe_sets::check_live`] judges it as it judges a listing.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use alca_kernel::table_names::inet_table_exists;
use alca_kernel::{self as nfnl, Message, FAMILY_INET, HEADERS, LIST_ELEM, NLM_F_DUMP};
use alca_kernel::{NEW_CHAIN, NEW_RULE, NEW_SET_ELEM, NLM_F_REQUEST};

/// `NFT_MSG_GETCHAIN`, `NFT_MSG_GETRULE` and `NFT_MSG_GETSETELEM`.
const GET_CHAIN: u16 = nfnl::NEW_TABLE + 4;
const GET_RULE: u16 = nfnl::GET_RULE;
const GET_SET_ELEM: u16 = nfnl::NEW_TABLE + 13;
/// `NFTA_CHAIN_TABLE`/`_NAME`, `NFTA_RULE_TABLE`/`_CHAIN`/`_USERDATA`,
/// `NFTA_SET_ELEM_LIST_TABLE`/`_SET`/`_ELEMENTS`, `NFTA_SET_ELEM_KEY`/`_FLAGS`,
/// `NFTA_DATA_VALUE`.
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_USERDATA: u16 = 7;
const LIST_TABLE: u16 = 1;
const LIST_SET: u16 = 2;
const LIST_ELEMENTS: u16 = 3;
const ELEM_KEY: u16 = 1;
const ELEM_FLAGS: u16 = 3;
const DATA_VALUE: u16 = 1;
/// `NFT_SET_ELEM_INTERVAL_END`, and `NFTNL_UDATA_RULE_COMMENT`.
const INTERVAL_END: u32 = 1;
const UDATA_COMMENT: u8 = 0;

/// The chains, rule comments and `deny*` set elements of the `inet` table `table` that the
/// listing `expected` (a compiled batch) names, as `nft -j list table` shows them; `None`
/// when the table does not exist.
pub fn read(table: &str, expected: &Value) -> io::Result<Option<Value>> {
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
        rules(table)?
            .into_iter()
            .map(|(chain, comment)| json!({"rule": {"chain": chain, "comment": comment}})),
    );
    for set in deny_sets {
        if let Some(elem) = elements(table, &set)? {
            objects.push(json!({"set": {"name": set, "elem": elem}}));
        }
    }
    Ok(Some(json!({ "nftables": objects })))
}

/// The chain names and the `deny*` set names `expected` creates.
fn wanted(expected: &Value) -> (Vec<String>, Vec<String>) {
    let (mut chains, mut sets) = (Vec::new(), Vec::new());
    for obj in crate::probe_sets::objects(expected) {
        if let Some(name) = obj["chain"]["name"].as_str() {
            chains.push(name.to_string());
        }
        if let Some(name) = obj["set"]["name"]
            .as_str()
            .filter(|n| n.starts_with("deny"))
        {
            sets.push(name.to_string());
        }
    }
    chains.sort();
    chains.dedup();
    sets.sort();
    sets.dedup();
    (chains, sets)
}

/// One `NFT_MSG_GETCHAIN` for the chain: answered with it or `ENOENT`.
fn chain_exists(table: &str, chain: &str) -> io::Result<bool> {
    let mut request = Message::new(GET_CHAIN, NLM_F_REQUEST, 1, FAMILY_INET);
    request.string(CHAIN_TABLE, table).string(CHAIN_NAME, chain);
    let mut found = false;
    match nfnl::request(&request.finish(), |kind, _| found |= kind == NEW_CHAIN) {
        Ok(()) => Ok(found),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// (chain, comment) of every rule of `table`: one rule dump the kernel filters by table.
fn rules(table: &str) -> io::Result<Vec<(String, Option<String>)>> {
    let mut request = Message::new(GET_RULE, NLM_F_REQUEST | NLM_F_DUMP, 1, FAMILY_INET);
    request.string(RULE_TABLE, table);
    let mut out = Vec::new();
    let mut garbled = false;
    nfnl::dump(&request.finish(), |kind, message| {
        if kind != NEW_RULE {
            return;
        }
        match rule(message) {
            Some((t, chain, comment)) if t == table => out.push((chain, comment)),
            Some(_) => {}
            None => garbled = true,
        }
    })?;
    if garbled {
        return Err(nfnl::garbled());
    }
    Ok(out)
}

/// (table, chain, comment) of one rule message.
fn rule(message: &[u8]) -> Option<(String, String, Option<String>)> {
    let attrs = nfnl::attributes(message.get(HEADERS..)?)?;
    let text = |kind: u16| {
        let (_, v) = attrs.iter().find(|(k, _)| *k == kind)?;
        String::from_utf8(v.split(|b| *b == 0).next()?.to_vec()).ok()
    };
    let comment = attrs
        .iter()
        .find(|(k, _)| *k == RULE_USERDATA)
        .and_then(|(_, u)| comment(u));
    Some((text(RULE_TABLE)?, text(RULE_CHAIN)?, comment))
}

/// The comment in a rule's user data (type-length-value items, nft's `NFTNL_UDATA_*`).
fn comment(mut udata: &[u8]) -> Option<String> {
    while udata.len() >= 2 {
        let (kind, len) = (udata[0], usize::from(udata[1]));
        let value = udata.get(2..2 + len)?;
        if kind == UDATA_COMMENT {
            return String::from_utf8(value.split(|b| *b == 0).next()?.to_vec()).ok();
        }
        udata = &udata[2 + len..];
    }
    None
}

/// The elements of the interval set `set` as nft lists them (addresses and prefixes; other
/// ranges as `{"range": [first, last]}`); `None` when the set does not exist.
fn elements(table: &str, set: &str) -> io::Result<Option<Vec<Value>>> {
    let mut request = Message::new(GET_SET_ELEM, NLM_F_REQUEST | NLM_F_DUMP, 1, FAMILY_INET);
    request.string(LIST_TABLE, table).string(LIST_SET, set);
    let mut keys: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut garbled = false;
    let dumped = nfnl::dump(&request.finish(), |kind, message| {
        if kind != NEW_SET_ELEM {
            return;
        }
        match element_keys(message) {
            Some(k) => keys.extend(k),
            None => garbled = true,
        }
    });
    match dumped {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    }
    if garbled {
        return Err(nfnl::garbled());
    }
    Ok(Some(ranges_as_listed(keys)))
}

/// (key, is an interval end) of each element of one set-element message.
fn element_keys(message: &[u8]) -> Option<Vec<(Vec<u8>, bool)>> {
    let attrs = nfnl::attributes(message.get(HEADERS..)?)?;
    let Some((_, list)) = attrs.iter().find(|(k, _)| *k == LIST_ELEMENTS) else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for (kind, item) in nfnl::attributes(list)? {
        if kind != LIST_ELEM {
            continue;
        }
        let fields = nfnl::attributes(item)?;
        let (_, key) = fields.iter().find(|(k, _)| *k == ELEM_KEY)?;
        let (_, value) = nfnl::attributes(key)?
            .into_iter()
            .find(|(k, _)| *k == DATA_VALUE)?;
        let flags = match fields.iter().find(|(k, _)| *k == ELEM_FLAGS) {
            Some((_, f)) => u32::from_be_bytes((*f).try_into().ok()?),
            None => 0,
        };
        out.push((value.to_vec(), flags & INTERVAL_END != 0));
    }
    Some(out)
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

    #[test]
    fn the_comment_comes_from_the_rule_user_data() {
        assert_eq!(comment(b"\x00\x05deny\x00").as_deref(), Some("deny"));
        assert_eq!(comment(b"\x01\x01x\x00\x03ab\x00").as_deref(), Some("ab"));
        assert_eq!(comment(b"\x00\x09cut"), None);
        assert_eq!(comment(b""), None);
    }
}
