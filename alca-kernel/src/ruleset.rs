//! A compiled project batch (the JSON `alca_ruleset` writes for `nft -j -f`) as nf_tables
//! netlink messages, to run as one transaction: tables, sets with their elements, chains and
//! rules, in the batch's order. `nft` 1.0.6 first reads every table of the host into its
//! cache (O(number of projects) per Apply); the kernel needs only these messages.
//!
//! Written to match what `nft` sends for the same batch (`tests/tests/netlink_ruleset.rs`
//! holds the two to the same listing, expression by expression); anything outside the
//! compiler's grammar is [`Unsupported`] and the caller runs `nft` instead.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use serde_json::Value;

use super::rule::{self, single_entry, unsupported, AnonSet, SetIds, Unsupported};
use super::{set_element, Attr, Message, DEL_TABLE, FAMILY_INET, NEW_CHAIN, NEW_RULE, NEW_SET};
use super::{NEW_SET_ELEM, NEW_TABLE, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use super::{TABLE_FLAGS, TABLE_NAME};

/// `NFT_SET_*` flags.
const SET_ANONYMOUS: u32 = 1;
const SET_CONSTANT: u32 = 2;
const SET_INTERVAL: u32 = 4;
const SET_TIMEOUT: u32 = 0x10;
const SET_EVAL: u32 = 0x20;
/// `NFT_SET_ELEM_INTERVAL_END`.
const ELEM_INTERVAL_END: u32 = 1;
/// nft's element user data marking an interval that runs to the end of the address space.
const OPEN_INTERVAL: &[u8] = b"\x01\x04\x01\x00\x00\x00";

/// The messages of `batch`, numbered from 1, creating tables without flags (as `nft -j -f`
/// does: the tests compare the two).
pub fn messages(batch: &Value) -> Result<Vec<Vec<u8>>, Unsupported> {
    owned_messages(batch, 0)
}

/// The messages of `batch`, numbered from 1, with `table_flags` (the daemon's
/// [`super::TABLE_F_OWNER`] and [`super::TABLE_F_PERSIST`]) on each table the batch
/// (re-)creates: an `add table` after the batch's `delete table` of it. An `add table` before
/// that only makes sure the table exists and carries no flags, so that it leaves an existing
/// table's flags alone (the kernel refuses to change an owned table's flags, and lets only an
/// orphan be adopted).
pub fn owned_messages(batch: &Value, table_flags: u32) -> Result<Vec<Vec<u8>>, Unsupported> {
    let commands = batch["nftables"]
        .as_array()
        .ok_or_else(|| unsupported(batch))?;
    let mut encoder = Encoder {
        messages: Vec::new(),
        set_ids: HashMap::new(),
        next_set_id: 1,
        updated: updated_sets(commands),
        table: String::new(),
        table_flags,
        deleted: BTreeSet::new(),
    };
    for command in commands {
        encoder.command(command)?;
    }
    Ok(encoder.messages)
}

/// The sets some rule of the batch updates from the packet path (they need `NFT_SET_EVAL`).
fn updated_sets(commands: &[Value]) -> BTreeSet<String> {
    commands
        .iter()
        .filter_map(|c| c["add"]["rule"]["expr"].as_array())
        .flatten()
        .filter_map(|stmt| stmt["set"]["set"].as_str())
        .filter_map(|set| set.strip_prefix('@'))
        .map(String::from)
        .collect()
}

struct Encoder {
    messages: Vec<Vec<u8>>,
    /// Batch ids of the named sets created so far.
    set_ids: HashMap<String, u32>,
    /// The id the next set (named or anonymous) gets.
    next_set_id: u32,
    updated: BTreeSet<String>,
    /// The table of the current command.
    table: String,
    /// The flags of a table the batch re-creates, and the tables it deleted so far.
    table_flags: u32,
    deleted: BTreeSet<String>,
}

impl Encoder {
    fn message(&mut self, kind: u16, flags: u16, attrs: &[Attr]) {
        let seq = self.messages.len() as u32 + 1;
        let mut m = Message::new(kind, NLM_F_REQUEST | flags, seq, FAMILY_INET);
        for a in attrs {
            m.attr(a);
        }
        self.messages.push(m.finish());
    }

    fn command(&mut self, command: &Value) -> Result<(), Unsupported> {
        let (verb, body) = single_entry(command).ok_or_else(|| unsupported(command))?;
        let (kind, object) = single_entry(body).ok_or_else(|| unsupported(command))?;
        if object["family"] != "inet" || !known_fields(kind, object) {
            return Err(unsupported(command));
        }
        let table = if kind == "table" {
            &object["name"]
        } else {
            &object["table"]
        };
        self.table = table
            .as_str()
            .ok_or_else(|| unsupported(command))?
            .to_string();
        match (verb, kind) {
            ("add", "table") => {
                let mut attrs = vec![Attr::string(TABLE_NAME, &self.table)];
                if self.deleted.contains(&self.table) {
                    attrs.push(Attr::u32_be(TABLE_FLAGS, self.table_flags));
                }
                self.message(NEW_TABLE, 0, &attrs);
                Ok(())
            }
            ("delete", "table") => {
                self.message(DEL_TABLE, 0, &[Attr::string(TABLE_NAME, &self.table)]);
                self.deleted.insert(self.table.clone());
                Ok(())
            }
            ("add", "set") => self.set(object),
            ("add", "chain") => self.chain(object),
            ("add", "rule") => self.rule(object),
            _ => Err(unsupported(command)),
        }
    }

    fn chain(&mut self, chain: &Value) -> Result<(), Unsupported> {
        let name = chain["name"].as_str().ok_or_else(|| unsupported(chain))?;
        let mut attrs = vec![Attr::string(1, &self.table), Attr::string(3, name)];
        if chain.get("hook").is_some() {
            let hook = match chain["hook"].as_str() {
                Some("prerouting") => 0,
                Some("input") => 1,
                Some("forward") => 2,
                Some("output") => 3,
                Some("postrouting") => 4,
                _ => return Err(unsupported(chain)),
            };
            let kind = chain["type"]
                .as_str()
                .filter(|t| ["filter", "nat"].contains(t))
                .ok_or_else(|| unsupported(chain))?;
            let priority = chain["prio"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| unsupported(chain))?;
            if chain["policy"] != "accept" {
                return Err(unsupported(chain));
            }
            attrs.push(Attr::string(7, kind));
            attrs.push(Attr::u32_be(5, 1)); // NF_ACCEPT
            attrs.push(Attr::Nest(
                4,
                vec![
                    Attr::u32_be(1, hook),
                    Attr::Bytes(2, priority.to_be_bytes().to_vec()),
                ],
            ));
        }
        self.message(NEW_CHAIN, NLM_F_CREATE, &attrs);
        Ok(())
    }

    fn set(&mut self, set: &Value) -> Result<(), Unsupported> {
        let name = set["name"].as_str().ok_or_else(|| unsupported(set))?;
        let key = SetKey::of(&set["type"]).ok_or_else(|| unsupported(set))?;
        let mut flags = 0;
        for flag in set["flags"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            flags |= match flag.as_str() {
                Some("interval") => SET_INTERVAL,
                Some("timeout") => SET_TIMEOUT,
                _ => return Err(unsupported(set)),
            };
        }
        if self.updated.contains(name) {
            flags |= SET_EVAL;
        }
        let id = self.next_set_id;
        self.next_set_id += 1;
        let mut attrs = vec![
            Attr::string(1, &self.table),
            Attr::string(2, name),
            Attr::u32_be(3, flags),
            Attr::u32_be(4, key.kind),
            Attr::u32_be(5, key.len),
            Attr::u32_be(10, id),
        ];
        if let Some(size) = set.get("size") {
            let size = size.as_u64().ok_or_else(|| unsupported(set))? as u32;
            attrs.push(Attr::Nest(9, vec![Attr::u32_be(1, size)]));
        }
        if let Some(timeout) = set.get("timeout") {
            let secs = timeout.as_u64().ok_or_else(|| unsupported(set))?;
            attrs.push(Attr::u64_be(11, secs * 1000));
        }
        attrs.push(Attr::Bytes(13, key.userdata.to_vec()));
        match set.get("stmt") {
            None => {}
            Some(s) if *s == serde_json::json!([{ "counter": null }]) => {
                let counter = vec![Attr::string(1, "counter"), Attr::Nest(2, vec![])];
                attrs.push(Attr::Nest(17, counter));
            }
            Some(_) => return Err(unsupported(set)),
        }
        let elements = match set.get("elem") {
            Some(elem) => {
                let list = elem.as_array().ok_or_else(|| unsupported(set))?;
                Some(key.elements(list, flags & SET_INTERVAL != 0)?)
            }
            None => None,
        };
        self.message(NEW_SET, NLM_F_CREATE, &attrs);
        self.set_ids.insert(name.to_string(), id);
        if let Some(elements) = elements {
            self.elements(name, id, elements);
        }
        Ok(())
    }

    fn elements(&mut self, set: &str, id: u32, elements: Vec<Attr>) {
        let attrs = [
            Attr::string(1, &self.table),
            Attr::string(2, set),
            Attr::u32_be(4, id),
            Attr::Nest(3, elements),
        ];
        self.message(NEW_SET_ELEM, NLM_F_CREATE, &attrs);
    }

    fn rule(&mut self, rule: &Value) -> Result<(), Unsupported> {
        let chain = rule["chain"].as_str().ok_or_else(|| unsupported(rule))?;
        let stmts = rule["expr"].as_array().ok_or_else(|| unsupported(rule))?;
        let mut ids = BatchSets {
            named: &self.set_ids,
            next: self.next_set_id,
            anonymous: Vec::new(),
        };
        let exprs = rule::expressions(stmts, &mut ids)?;
        self.next_set_id = ids.next;
        let anonymous = ids.anonymous;
        for (id, set) in anonymous {
            self.anonymous_set(id, set);
        }
        let mut attrs = vec![
            Attr::string(1, &self.table),
            Attr::string(2, chain),
            Attr::Nest(4, exprs),
        ];
        if let Some(comment) = rule.get("comment") {
            let text = comment.as_str().ok_or_else(|| unsupported(rule))?;
            attrs.push(Attr::Bytes(7, comment_userdata(text)?));
        }
        self.message(NEW_RULE, NLM_F_CREATE | NLM_F_APPEND, &attrs);
        Ok(())
    }

    fn anonymous_set(&mut self, id: u32, set: AnonSet) {
        let attrs = [
            Attr::string(1, &self.table),
            Attr::string(2, "__set%d"),
            Attr::u32_be(3, SET_ANONYMOUS | SET_CONSTANT),
            Attr::u32_be(4, set.key_type),
            Attr::u32_be(5, set.key_len),
            Attr::u32_be(10, id),
            Attr::Nest(9, vec![Attr::u32_be(1, set.keys.len() as u32)]),
            Attr::Bytes(13, set.userdata.to_vec()),
        ];
        self.message(NEW_SET, NLM_F_CREATE, &attrs);
        let elements = set.keys.into_iter().map(|k| element(k, 0, None)).collect();
        self.elements("__set%d", id, elements);
    }
}

/// Whether `object` has only fields this encoder writes: any other (a table's `flags`, a rule's
/// `index`, a set's `policy`, …) would change what the kernel does, so it is not dropped but
/// left to nft.
fn known_fields(kind: &str, object: &Value) -> bool {
    let known: &[&str] = match kind {
        "table" => &["family", "name"],
        "chain" => &["family", "table", "name", "hook", "type", "prio", "policy"],
        "set" => &[
            "family", "table", "name", "type", "flags", "size", "timeout", "stmt", "elem",
        ],
        "rule" => &["family", "table", "chain", "expr", "comment"],
        _ => return false,
    };
    object
        .as_object()
        .is_some_and(|fields| fields.keys().all(|k| known.contains(&k.as_str())))
}

/// A rule's view of the batch's sets: the named ones so far, ids for the anonymous ones.
struct BatchSets<'a> {
    named: &'a HashMap<String, u32>,
    next: u32,
    anonymous: Vec<(u32, AnonSet)>,
}

impl SetIds for BatchSets<'_> {
    fn named(&self, name: &str) -> Option<u32> {
        self.named.get(name).copied()
    }

    fn anonymous(&mut self, set: AnonSet) -> u32 {
        let id = self.next;
        self.next += 1;
        self.anonymous.push((id, set));
        id
    }
}

/// `NFTNL_UDATA_RULE_COMMENT`: the comment and its NUL, in one type-length-value.
fn comment_userdata(text: &str) -> Result<Vec<u8>, Unsupported> {
    let len = u8::try_from(text.len() + 1).map_err(|_| Unsupported("a long comment".into()))?;
    Ok([&[0, len][..], text.as_bytes(), &[0]].concat())
}

/// An element as the ruleset writes it: no timeout.
fn element(key: Vec<u8>, flags: u32, userdata: Option<&[u8]>) -> Attr {
    set_element(key, flags, None, userdata)
}

/// The key of a named set: its datatype id and length, and nft's user data for it.
struct SetKey {
    kind: u32,
    len: u32,
    userdata: &'static [u8],
}

/// nft datatype ids (`TYPE_*`) and the shift that concatenates them.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_UID: u32 = 24;
const TYPE_BITS: u32 = 6;

impl SetKey {
    fn of(kind: &Value) -> Option<SetKey> {
        let concat = |addr: u32, len: u32| SetKey {
            kind: ((addr << TYPE_BITS | TYPE_INET_PROTOCOL) << TYPE_BITS) | TYPE_INET_SERVICE,
            len: len + 4 + 4,
            userdata: b"\x00\x04\x00\x00\x00\x00\x03\x08\x00\x04\x0d\x00\x00\x00\x01\x00",
        };
        let address = |kind, len| SetKey {
            kind,
            len,
            userdata: b"\x00\x04\x02\x00\x00\x00",
        };
        if let Some(parts) = kind.as_array() {
            let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
            return match parts[..] {
                ["ipv4_addr", "inet_proto", "inet_service"] => Some(concat(TYPE_IPADDR, 4)),
                ["ipv6_addr", "inet_proto", "inet_service"] => Some(concat(TYPE_IP6ADDR, 16)),
                _ => None,
            };
        }
        match kind.as_str()? {
            "uid" => Some(SetKey {
                kind: TYPE_UID,
                len: 4,
                userdata: b"\x00\x04\x01\x00\x00\x00",
            }),
            "ipv4_addr" => Some(address(TYPE_IPADDR, 4)),
            "ipv6_addr" => Some(address(TYPE_IP6ADDR, 16)),
            _ => None,
        }
    }

    /// The elements of `list`: uids as they are; addresses and prefixes of an interval set as
    /// sorted ranges, each a start and an end element, the way nft writes them.
    fn elements(&self, list: &[Value], interval: bool) -> Result<Vec<Attr>, Unsupported> {
        if self.kind == TYPE_UID {
            return list
                .iter()
                .map(|v| {
                    let uid = v.as_u64().and_then(|u| u32::try_from(u).ok());
                    let uid = uid.ok_or_else(|| unsupported(v))?;
                    Ok(element(uid.to_ne_bytes().to_vec(), 0, None))
                })
                .collect();
        }
        if !interval || !(self.kind == TYPE_IPADDR || self.kind == TYPE_IP6ADDR) {
            return Err(Unsupported("elements of this set".into()));
        }
        let bytes = self.len as usize;
        let mut ranges: Vec<(u128, Option<u128>)> = list
            .iter()
            .map(|v| range(v, bytes).ok_or_else(|| unsupported(v)))
            .collect::<Result<_, _>>()?;
        ranges.sort();
        let overlap = ranges
            .windows(2)
            .any(|w| w[0].1.is_none_or(|end| end > w[1].0));
        if overlap {
            return Err(Unsupported("overlapping intervals".into()));
        }
        let to_key = |v: u128| v.to_be_bytes()[16 - bytes..].to_vec();
        let mut out = Vec::new();
        if ranges.first().is_some_and(|r| r.0 != 0) {
            out.push(element(to_key(0), ELEM_INTERVAL_END, None));
        }
        for (start, end) in ranges {
            match end {
                Some(end) => {
                    out.push(element(to_key(start), 0, None));
                    out.push(element(to_key(end), ELEM_INTERVAL_END, None));
                }
                None => out.push(element(to_key(start), 0, Some(OPEN_INTERVAL))),
            }
        }
        Ok(out)
    }
}

/// `[start, end)` of an address or prefix of `bytes`-long addresses; no end when the range
/// runs to the last address.
fn range(v: &Value, bytes: usize) -> Option<(u128, Option<u128>)> {
    let (addr, len) = match v {
        Value::String(a) => (a.as_str(), bytes * 8),
        other => (
            other["prefix"]["addr"].as_str()?,
            usize::try_from(other["prefix"]["len"].as_u64()?).ok()?,
        ),
    };
    let bits = bytes * 8;
    let value = match (addr.parse::<IpAddr>().ok()?, bytes) {
        (IpAddr::V4(a), 4) => u128::from(u32::from(a)),
        (IpAddr::V6(a), 16) => u128::from(a),
        _ => return None,
    };
    if len > bits {
        return None;
    }
    let last = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    // The number of addresses in the range; none for all of IPv6 (2^128).
    let Some(size) = 1u128.checked_shl((bits - len) as u32) else {
        return (value == 0).then_some((0, None));
    };
    if value % size != 0 {
        return None;
    }
    let end = value.checked_add(size).filter(|e| *e <= last);
    Some((value, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(messages: &[Vec<u8>]) -> Vec<u16> {
        messages
            .iter()
            .map(|m| u16::from_ne_bytes([m[4], m[5]]))
            .collect()
    }

    #[test]
    fn ranges_end_after_their_last_address_unless_they_reach_the_top() {
        assert_eq!(
            range(&json!("10.0.0.1"), 4),
            Some((0x0a000001, Some(0x0a000002)))
        );
        let p = json!({"prefix": {"addr": "10.0.0.0", "len": 8}});
        assert_eq!(range(&p, 4), Some((0x0a000000, Some(0x0b000000))));
        let top = json!({"prefix": {"addr": "240.0.0.0", "len": 4}});
        assert_eq!(range(&top, 4), Some((0xf0000000, None)));
        let top6 = json!({"prefix": {"addr": "ff00::", "len": 8}});
        assert_eq!(range(&top6, 16).unwrap().1, None);
        let unaligned = json!({"prefix": {"addr": "10.0.0.1", "len": 8}});
        assert_eq!(range(&unaligned, 4), None);
    }

    #[test]
    fn an_interval_set_starts_with_an_end_element_unless_it_covers_zero() {
        let key = SetKey::of(&json!("ipv4_addr")).unwrap();
        let list = [
            json!({"prefix": {"addr": "192.168.0.0", "len": 16}}),
            json!("10.1.1.1"),
        ];
        let elements = key.elements(&list, true).unwrap();
        assert_eq!(elements.len(), 5, "leading end, then two ranges");
        let text = format!("{:?}", elements[1]);
        assert!(text.contains("[10, 1, 1, 1]"), "sorted by address: {text}");
        let overlapping = [
            json!({"prefix": {"addr": "10.0.0.0", "len": 8}}),
            json!("10.1.1.1"),
        ];
        assert!(key.elements(&overlapping, true).is_err());
    }

    #[test]
    fn a_batch_becomes_one_message_per_object_and_its_anonymous_sets() {
        let t = "alca-x";
        let batch = json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": t}}},
            {"delete": {"table": {"family": "inet", "name": t}}},
            {"add": {"table": {"family": "inet", "name": t}}},
            {"add": {"set": {"family": "inet", "table": t, "name": "owner", "type": "uid", "elem": [1000]}}},
            {"add": {"chain": {"family": "inet", "table": t, "name": "c"}}},
            {"add": {"rule": {"family": "inet", "table": t, "chain": "c", "comment": "x", "expr": [
                {"match": {"left": {"meta": {"key": "l4proto"}}, "op": "==", "right": {"set": ["tcp", "udp"]}}},
                {"accept": null}
            ]}}}
        ]});
        let messages = messages(&batch).unwrap();
        assert_eq!(
            kinds(&messages),
            [
                NEW_TABLE,
                DEL_TABLE,
                NEW_TABLE,
                NEW_SET,
                NEW_SET_ELEM,
                NEW_CHAIN,
                NEW_SET,
                NEW_SET_ELEM,
                NEW_RULE
            ]
        );
        let seqs: Vec<u32> = messages
            .iter()
            .map(|m| u32::from_ne_bytes(m[8..12].try_into().unwrap()))
            .collect();
        assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
    }

    #[test]
    fn only_a_re_created_table_carries_the_owner_flags() {
        let t = "alca-x";
        let batch = json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": t}}},
            {"delete": {"table": {"family": "inet", "name": t}}},
            {"add": {"table": {"family": "inet", "name": t}}},
        ]});
        let flags = crate::TABLE_F_OWNER | crate::TABLE_F_PERSIST;
        let messages = owned_messages(&batch, flags).unwrap();
        let table_flags = |m: &Vec<u8>| {
            crate::attributes(&m[crate::HEADERS..])
                .unwrap()
                .into_iter()
                .find(|(kind, _)| *kind == TABLE_FLAGS)
                .map(|(_, v)| u32::from_be_bytes(v.try_into().unwrap()))
        };
        assert_eq!(
            table_flags(&messages[0]),
            None,
            "the first add leaves flags alone"
        );
        assert_eq!(table_flags(&messages[2]), Some(flags));
    }

    #[test]
    fn other_families_verbs_and_fields_are_unsupported() {
        for command in [
            json!({"add": {"table": {"family": "ip", "name": "alca-x"}}}),
            json!({"flush": {"table": {"family": "inet", "name": "alca-x"}}}),
            json!({"add": {"set": {"family": "inet", "table": "alca-x", "name": "s", "type": "mark"}}}),
            json!({"add": {"set": {"family": "inet", "table": "alca-x", "name": "s", "type": "uid", "policy": "memory"}}}),
            json!({"add": {"chain": {"family": "inet", "table": "alca-x", "name": "c", "hook": "input", "type": "filter", "prio": 0, "policy": "drop"}}}),
            json!({"add": {"table": {"family": "inet", "name": "alca-x", "flags": ["dormant"]}}}),
            json!({"add": {"rule": {"family": "inet", "table": "alca-x", "chain": "c", "index": 0, "expr": [{"accept": null}]}}}),
            json!({"add": {"chain": {"family": "inet", "table": "alca-x", "name": "c", "dev": "eth0"}}}),
        ] {
            assert!(
                messages(&json!({ "nftables": [command] })).is_err(),
                "{command}"
            );
        }
    }
}
