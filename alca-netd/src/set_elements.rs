//! The element batches of a verification (arm, disarm, forget: see [`crate::observe`]) as
//! typed values, sent to nf_tables over netlink. Through `nft` 1.0.6 even the flush of one
//! set costs a read of every project's table; here it is one small transaction whatever the
//! number of projects. Nothing in a batch is text to interpret: one `alca-` table, sets by
//! their constant names, keys built from [`Key`]s. [`ElementBatch::to_json`] is the same
//! batch for `nft -j -f`, which the tests hold the netlink path to.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::lan::Proto;
use crate::nfnl::{set_element, Attr, Message, DEL_SET_ELEM, FAMILY_INET, NEW_SET_ELEM};
use crate::nfnl::{NLM_F_CREATE, NLM_F_REQUEST};
use crate::observe::Key;

/// `NFTA_SET_ELEM_LIST_*`.
const LIST_TABLE: u16 = 1;
const LIST_SET: u16 = 2;
const LIST_ELEMENTS: u16 = 3;

/// One command on one set of the batch's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementOp {
    /// Removes every element.
    Flush { set: &'static str },
    /// Adds `keys`, each expiring after `timeout_secs` when given.
    Add {
        set: &'static str,
        keys: Vec<Key>,
        timeout_secs: Option<u32>,
    },
    /// Removes `keys` (the kernel refuses the batch if one is missing).
    Delete { set: &'static str, keys: Vec<Key> },
    /// Adds addresses to an address set (an `internet-access` allow set), each expiring after
    /// its own timeout in seconds (never 0: an element without timeout would never expire).
    /// An address already there gets the new timeout.
    AddAddrs {
        set: String,
        addrs: Vec<(IpAddr, u32)>,
    },
}

/// Element commands on the sets of one table, run as one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementBatch {
    pub table: String,
    pub ops: Vec<ElementOp>,
}

impl ElementBatch {
    pub fn new(table: &str) -> Self {
        ElementBatch {
            table: table.to_string(),
            ops: Vec::new(),
        }
    }

    /// This batch's commands, then `other`'s (same table), in one transaction.
    pub fn then(mut self, other: &ElementBatch) -> Self {
        debug_assert_eq!(self.table, other.table);
        self.ops.extend(other.ops.iter().cloned());
        self
    }

    /// The same batch as `nft -j -f` input.
    pub fn to_json(&self) -> Value {
        let target = |set: &str| json!({ "family": "inet", "table": self.table, "name": set });
        let commands: Vec<Value> = self
            .ops
            .iter()
            .map(|op| match op {
                ElementOp::Flush { set } => json!({ "flush": { "set": target(set) } }),
                ElementOp::Add {
                    set,
                    keys,
                    timeout_secs,
                } => {
                    let mut t = target(set);
                    t["elem"] = keys.iter().map(|k| json_elem(k, *timeout_secs)).collect();
                    json!({ "add": { "element": t } })
                }
                ElementOp::Delete { set, keys } => {
                    let mut t = target(set);
                    t["elem"] = keys.iter().map(|k| json_elem(k, None)).collect();
                    json!({ "delete": { "element": t } })
                }
                ElementOp::AddAddrs { set, addrs } => {
                    let mut t = target(set);
                    t["elem"] = addrs
                        .iter()
                        .map(|(a, secs)| json!({ "elem": { "val": a.to_string(), "timeout": secs } }))
                        .collect();
                    json!({ "add": { "element": t } })
                }
            })
            .collect();
        json!({ "nftables": commands })
    }

    /// The netlink messages of the batch, numbered from 1.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.ops
            .iter()
            .zip(1..)
            .map(|(op, seq)| self.message(op, seq))
            .collect()
    }

    fn message(&self, op: &ElementOp, seq: u32) -> Vec<u8> {
        let keyed = |keys: &[Key], timeout: Option<u32>| -> Vec<Attr> {
            let timeout_ms = timeout.map(|secs| u64::from(secs) * 1000);
            keys.iter()
                .map(|key| set_element(key_bytes(key), 0, timeout_ms, None))
                .collect()
        };
        let (kind, flags, set, elements) = match op {
            ElementOp::Flush { set } => (DEL_SET_ELEM, 0, *set, vec![]),
            ElementOp::Add {
                set,
                keys,
                timeout_secs,
            } => (NEW_SET_ELEM, NLM_F_CREATE, *set, keyed(keys, *timeout_secs)),
            ElementOp::Delete { set, keys } => (DEL_SET_ELEM, 0, *set, keyed(keys, None)),
            ElementOp::AddAddrs { set, addrs } => {
                let elements = addrs
                    .iter()
                    .map(|(addr, secs)| {
                        let timeout_ms = u64::from((*secs).max(1)) * 1000;
                        set_element(ip_bytes(*addr), 0, Some(timeout_ms), None)
                    })
                    .collect();
                (NEW_SET_ELEM, NLM_F_CREATE, set.as_str(), elements)
            }
        };
        let mut m = Message::new(kind, NLM_F_REQUEST | flags, seq, FAMILY_INET);
        m.string(LIST_TABLE, &self.table).string(LIST_SET, set);
        if !elements.is_empty() {
            m.attr(&Attr::Nest(LIST_ELEMENTS, elements));
        }
        m.finish()
    }
}

fn json_elem(key: &Key, timeout_secs: Option<u32>) -> Value {
    let val = json!({ "concat": [key.addr.to_string(), key.proto.to_string(), key.port] });
    match timeout_secs {
        Some(t) => json!({ "elem": { "val": val, "timeout": t } }),
        None => val,
    }
}

/// An address in network byte order (an IPv4-mapped IPv6 address as its IPv4 address).
fn ip_bytes(addr: IpAddr) -> Vec<u8> {
    match addr.to_canonical() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `daddr . l4proto . dport` as the kernel stores it: each field in network byte order,
/// padded to 32-bit registers.
fn key_bytes(key: &Key) -> Vec<u8> {
    let mut bytes = ip_bytes(key.addr);
    let proto: u8 = match key.proto {
        Proto::Tcp => libc::IPPROTO_TCP as u8,
        Proto::Udp => libc::IPPROTO_UDP as u8,
    };
    bytes.extend_from_slice(&[proto, 0, 0, 0]);
    bytes.extend_from_slice(&key.port.to_be_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfnl::{self, ELEM_TIMEOUT};
    use crate::observe::tests::key;

    fn on_table_x(ops: Vec<ElementOp>) -> ElementBatch {
        ElementBatch {
            table: "alca-x".into(),
            ops,
        }
    }

    #[test]
    fn keys_are_laid_out_like_nft_lays_them_out() {
        // What nft 1.0.6 sends for 10.99.0.2 . tcp . 23401 and fd99::2 . tcp . 443.
        assert_eq!(
            key_bytes(&key("10.99.0.2", 23401)),
            [10, 99, 0, 2, 6, 0, 0, 0, 0x5b, 0x69, 0, 0]
        );
        let v6 = key_bytes(&key("fd99::2", 443));
        assert_eq!(v6.len(), 24);
        assert_eq!(&v6[..2], &[0xfd, 0x99]);
        assert_eq!(&v6[16..], &[6, 0, 0, 0, 1, 0xbb, 0, 0]);
    }

    #[test]
    fn each_command_is_one_message_on_the_named_set() {
        let batch = on_table_x(vec![
            ElementOp::Flush { set: "probe4" },
            ElementOp::Add {
                set: "probe4",
                keys: vec![key("10.99.0.2", 80)],
                timeout_secs: Some(120),
            },
        ]);
        let messages = batch.messages();
        assert_eq!(messages.len(), 2);
        for (m, (kind, seq)) in messages
            .iter()
            .zip([(DEL_SET_ELEM, 1u32), (NEW_SET_ELEM, 2)])
        {
            assert_eq!(u16::from_ne_bytes([m[4], m[5]]), kind);
            assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), seq);
            let attrs = nfnl::attributes(&m[nfnl::HEADERS..]).unwrap();
            assert_eq!(attrs[0], (LIST_TABLE, &b"alca-x\0"[..]));
            assert_eq!(attrs[1], (LIST_SET, &b"probe4\0"[..]));
        }
        // A flush names no element; the add carries the timeout in milliseconds.
        assert_eq!(
            nfnl::attributes(&messages[0][nfnl::HEADERS..])
                .unwrap()
                .len(),
            2
        );
        let add = nfnl::attributes(&messages[1][nfnl::HEADERS..]).unwrap();
        let elems = nfnl::attributes(add[2].1).unwrap();
        let elem = nfnl::attributes(elems[0].1).unwrap();
        assert_eq!(elem[0], (ELEM_TIMEOUT, &120_000u64.to_be_bytes()[..]));
    }

    #[test]
    fn the_json_form_is_the_nft_batch_of_the_same_commands() {
        let batch = on_table_x(vec![
            ElementOp::Flush { set: "fence4" },
            ElementOp::Delete {
                set: "denied4",
                keys: vec![key("10.99.0.2", 80)],
            },
        ]);
        let json = batch.to_json();
        assert_eq!(json["nftables"][0]["flush"]["set"]["name"], "fence4");
        let delete = &json["nftables"][1]["delete"]["element"];
        assert_eq!(delete["table"], "alca-x");
        assert_eq!(delete["elem"][0]["concat"], json!(["10.99.0.2", "tcp", 80]));
    }
}
