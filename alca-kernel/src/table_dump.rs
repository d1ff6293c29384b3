//! Read-only dumps of one `inet` table over nf_tables netlink, for the daemon's cheap check of
//! a live table against its compiled spec: whether a chain exists, the chain and comment of
//! every rule, and the raw keys of a set's elements. No app types: names in, bytes out.

use std::io;

use crate::{self as nfnl};
use crate::{
    attributes, dump, Message, FAMILY_INET, HEADERS, LIST_ELEM, NEW_CHAIN, NEW_RULE, NEW_SET_ELEM,
    NFTABLES, NLM_F_DUMP, NLM_F_REQUEST,
};

/// `NFT_MSG_GETCHAIN`, `NFT_MSG_GETRULE` and `NFT_MSG_GETSETELEM`.
const GET_CHAIN: u16 = NFTABLES + 4;
const GET_RULE: u16 = NFTABLES + 7;
const GET_SET_ELEM: u16 = NFTABLES + 13;
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

/// One `NFT_MSG_GETCHAIN` for the chain: answered with it or `ENOENT`.
pub fn chain_exists(table: &str, chain: &str) -> io::Result<bool> {
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
pub fn rule_comments(table: &str) -> io::Result<Vec<(String, Option<String>)>> {
    let mut request = Message::new(GET_RULE, NLM_F_REQUEST | NLM_F_DUMP, 1, FAMILY_INET);
    request.string(RULE_TABLE, table);
    let mut out = Vec::new();
    let mut garbled = false;
    dump(&request.finish(), |kind, message| {
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
    let attrs = attributes(message.get(HEADERS..)?)?;
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

/// The elements of a set as (key, is an interval end).
pub type ElementKeys = Vec<(Vec<u8>, bool)>;

/// (key, is an interval end) of every element of the set `set`; `None` when the set does not
/// exist.
pub fn set_element_keys(table: &str, set: &str) -> io::Result<Option<ElementKeys>> {
    let mut request = Message::new(GET_SET_ELEM, NLM_F_REQUEST | NLM_F_DUMP, 1, FAMILY_INET);
    request.string(LIST_TABLE, table).string(LIST_SET, set);
    let mut keys: ElementKeys = Vec::new();
    let mut garbled = false;
    let dumped = dump(&request.finish(), |kind, message| {
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
    Ok(Some(keys))
}

/// (key, is an interval end) of each element of one set-element message.
fn element_keys(message: &[u8]) -> Option<Vec<(Vec<u8>, bool)>> {
    let attrs = attributes(message.get(HEADERS..)?)?;
    let Some((_, list)) = attrs.iter().find(|(k, _)| *k == LIST_ELEMENTS) else {
        return Some(Vec::new());
    };
    let mut out = Vec::new();
    for (kind, item) in attributes(list)? {
        if kind != LIST_ELEM {
            continue;
        }
        let fields = attributes(item)?;
        let (_, key) = fields.iter().find(|(k, _)| *k == ELEM_KEY)?;
        let (_, value) = attributes(key)?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_comes_from_the_rule_user_data() {
        assert_eq!(comment(b"\x00\x05deny\x00").as_deref(), Some("deny"));
        assert_eq!(comment(b"\x01\x01x\x00\x03ab\x00").as_deref(), Some("ab"));
        assert_eq!(comment(b"\x00\x09cut"), None);
        assert_eq!(comment(b""), None);
    }
}
