//! Seeing isolation (SPEC §9), daemon side and pure: the typed probe list `alca network verify`
//! sends, the check of a live table against the ruleset its saved spec compiles to (the typed
//! [`Ruleset`] on one side, the live table as `nft -j list table` shows it on the other), the
//! batches that arm and disarm the probe fence, and the reading of the denied log and of the
//! probes that got through, all from `nft -j list table` output.
//!
//! "Last seen" of a denied destination is derived from its element's `expires`: every attempt
//! refreshes the element's timeout ([`DENIED_TIMEOUT`]), so it was last seen
//! `DENIED_TIMEOUT - expires` seconds ago. That is exact to the second and needs no clock in
//! the kernel log.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{json, Value};

use alca_contract::lan::Proto;
use alca_contract::probe::{Denied, Key, Probe};
use alca_kernel::set_elements::{ConcatKey, ElementBatch, ElementOp, L4Proto};
use alca_ruleset::types::Element;
use alca_ruleset::{
    Ruleset, DENIED4_SET, DENIED6_SET, DENIED_TIMEOUT, FENCE4_SET, FENCE6_SET, PASSED4_SET,
    PASSED6_SET, PROBE4_SET, PROBE6_SET, PROBE_TIMEOUT, VERIFY_CHAIN,
};

const ARMED_SETS: [&str; 6] = [
    PROBE4_SET,
    PROBE6_SET,
    FENCE4_SET,
    FENCE6_SET,
    PASSED4_SET,
    PASSED6_SET,
];

/// A destination as an element of the observation sets.
pub fn element_key(key: &Key) -> ConcatKey {
    ConcatKey {
        addr: key.addr,
        proto: match key.proto {
            Proto::Tcp => L4Proto::Tcp,
            Proto::Udp => L4Proto::Udp,
        },
        port: key.port,
    }
}

/// Empties the probe, fence and passed sets of `table`.
pub fn disarm_batch(table: &str) -> ElementBatch {
    let mut batch = ElementBatch::new(table);
    batch.ops = ARMED_SETS
        .iter()
        .map(|&set| ElementOp::Flush { set })
        .collect();
    batch
}

/// Empties the armed sets, then adds every probe (and the fenced ones to the fence) with a
/// timeout, so a verification that dies leaves nothing behind.
pub fn arm_batch(table: &str, probes: &[Probe]) -> ElementBatch {
    let mut batch = disarm_batch(table);
    let family = |v6: bool| probes.iter().filter(move |p| p.key.addr.is_ipv6() == v6);
    for v6 in [false, true] {
        let (probe_set, fence_set) = if v6 {
            (PROBE6_SET, FENCE6_SET)
        } else {
            (PROBE4_SET, FENCE4_SET)
        };
        let all: Vec<ConcatKey> = family(v6).map(|p| element_key(&p.key)).collect();
        let fenced: Vec<ConcatKey> = family(v6)
            .filter(|p| p.fence)
            .map(|p| element_key(&p.key))
            .collect();
        for (set, keys) in [(probe_set, all), (fence_set, fenced)] {
            if !keys.is_empty() {
                batch.ops.push(ElementOp::Add {
                    set,
                    keys,
                    timeout_secs: Some(PROBE_TIMEOUT),
                });
            }
        }
    }
    batch
}

/// The objects of an `nft -j` listing.
fn objects(doc: &Value) -> impl Iterator<Item = &Value> {
    doc["nftables"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
}

/// Comment counts of the rules per chain, and the element sets of the `deny*` sets.
#[derive(Debug, Default, PartialEq)]
struct Shape {
    chains: BTreeMap<String, BTreeMap<String, usize>>,
    deny: BTreeMap<String, Vec<String>>,
}

impl Shape {
    /// The shape `expected` creates.
    fn of_ruleset(expected: &Ruleset) -> Shape {
        let mut s = Shape::default();
        for chain in expected.chains() {
            s.chains.entry(chain.name.clone()).or_default();
        }
        for rule in expected.rules() {
            let comment = rule.comment.as_deref().unwrap_or("(no comment)");
            *s.chains
                .entry(rule.chain.clone())
                .or_default()
                .entry(comment.to_string())
                .or_default() += 1;
        }
        for set in expected.sets().filter(|set| set.name.starts_with("deny")) {
            let mut elems: Vec<String> = set
                .elements
                .iter()
                .flatten()
                .map(|e| match e {
                    Element::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                        net.addr().to_string()
                    }
                    Element::Net(net) => format!("{}/{}", net.network(), net.prefix_len()),
                    Element::Uid(uid) => uid.to_string(),
                })
                .collect();
            elems.sort();
            s.deny.insert(set.name.clone(), elems);
        }
        s
    }
}

/// The shape of a live table listed by `nft -j list table` (or read as such, [`crate::table_shape`]).
fn shape(doc: &Value) -> Shape {
    let mut s = Shape::default();
    for obj in objects(doc) {
        if let Some(chain) = obj.get("chain") {
            let name = chain["name"].as_str().unwrap_or_default().to_string();
            s.chains.entry(name).or_default();
        } else if let Some(rule) = obj.get("rule") {
            let chain = rule["chain"].as_str().unwrap_or_default().to_string();
            let comment = rule["comment"]
                .as_str()
                .unwrap_or("(no comment)")
                .to_string();
            *s.chains
                .entry(chain)
                .or_default()
                .entry(comment)
                .or_default() += 1;
        } else if let Some(set) = obj.get("set") {
            let name = set["name"].as_str().unwrap_or_default();
            if name.starts_with("deny") {
                let mut elems: Vec<String> = match &set["elem"] {
                    Value::Array(items) => items.iter().map(element_text).collect(),
                    Value::Null => vec![],
                    one => vec![element_text(one)],
                };
                elems.sort();
                s.deny.insert(name.to_string(), elems);
            }
        }
    }
    s
}

/// `10.0.0.0/8` for `{"prefix": {"addr": "10.0.0.0", "len": 8}}`, the address for a bare one.
fn element_text(e: &Value) -> String {
    let e = e.get("elem").map(|x| &x["val"]).unwrap_or(e);
    // Addresses are re-printed so that nft's and Rust's spellings compare equal.
    let addr = |v: &Value| match v.as_str().map(str::parse::<IpAddr>) {
        Some(Ok(ip)) => ip.to_string(),
        _ => v.to_string(),
    };
    match e.get("prefix") {
        // nft lists a full-length prefix as the bare address.
        Some(p)
            if matches!(
                (addr(&p["addr"]).contains(':'), p["len"].as_u64()),
                (false, Some(32)) | (true, Some(128))
            ) =>
        {
            addr(&p["addr"])
        }
        Some(p) => format!("{}/{}", addr(&p["addr"]), p["len"]),
        None => addr(e),
    }
}

/// The differences between a live table (`nft -j list table`) and the batch its saved spec
/// compiles to: missing or extra rules per chain (by comment), missing chains, changed deny
/// sets. Empty when the live table has the expected shape.
pub fn check_live(live: &Value, expected: &Ruleset) -> Vec<String> {
    let (live, want) = (shape(live), Shape::of_ruleset(expected));
    let mut problems = Vec::new();
    for (chain, rules) in &want.chains {
        let Some(have) = live.chains.get(chain) else {
            problems.push(format!("chain {chain} is missing"));
            continue;
        };
        for (comment, n) in rules {
            let got = have.get(comment).copied().unwrap_or(0);
            if got < *n {
                problems.push(format!(
                    "chain {chain}: {} of {n} rule(s) \"{comment}\" missing",
                    n - got
                ));
            }
        }
        for (comment, got) in have {
            let n = rules.get(comment).copied().unwrap_or(0);
            if *got > n {
                problems.push(format!(
                    "chain {chain}: {} unexpected rule(s) \"{comment}\"",
                    got - n
                ));
            }
        }
    }
    for (set, elems) in &want.deny {
        let have = live.deny.get(set).cloned().unwrap_or_default();
        for e in elems.iter().filter(|e| !have.contains(e)) {
            problems.push(format!("set {set} lacks {e}"));
        }
    }
    problems
}

/// Whether the live table can fence probes: the verify chain and its rules are intact.
pub fn fence_ready(live: &Value) -> bool {
    let s = shape(live);
    s.chains
        .get(VERIFY_CHAIN)
        .is_some_and(|r| r.get("verify record") == Some(&2) && r.get("verify fence") == Some(&2))
}

/// The elements of set `name` as (key, element object), skipping anything unreadable.
fn keyed_elems(live: &Value, name: &str) -> Vec<(Key, Value)> {
    objects(live)
        .filter_map(|o| o.get("set"))
        .filter(|s| s["name"] == name)
        .flat_map(|s| s["elem"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            let body = e
                .get("elem")
                .cloned()
                .unwrap_or_else(|| json!({ "val": e }));
            let parts = body["val"]["concat"].as_array()?.clone();
            let key = Key {
                addr: parts.first()?.as_str()?.parse().ok()?,
                proto: serde_json::from_value(parts.get(1)?.clone()).ok()?,
                port: u16::try_from(parts.get(2)?.as_u64()?).ok()?,
            };
            Some((key, body))
        })
        .collect()
}

/// The probes armed right now.
pub fn read_armed(live: &Value) -> Vec<Key> {
    [PROBE4_SET, PROBE6_SET]
        .iter()
        .flat_map(|s| keyed_elems(live, s))
        .map(|(k, _)| k)
        .collect()
}

/// Deletes the log entries the probes themselves caused, so the log shows only what the
/// container tried on its own. `logged` must be in the denied sets right now.
pub fn forget_batch(table: &str, logged: &[Key]) -> ElementBatch {
    let mut batch = ElementBatch::new(table);
    batch.ops = logged
        .iter()
        .map(|k| ElementOp::Delete {
            set: if k.addr.is_ipv6() {
                DENIED6_SET
            } else {
                DENIED4_SET
            },
            keys: vec![element_key(k)],
        })
        .collect();
    batch
}

/// The probes recorded as past the isolation chain.
pub fn read_passed(live: &Value) -> Vec<Key> {
    let mut keys: Vec<Key> = [PASSED4_SET, PASSED6_SET]
        .iter()
        .flat_map(|s| keyed_elems(live, s))
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys
}

/// The denied log, most recent first.
pub fn read_denied(live: &Value) -> Vec<Denied> {
    let mut all: Vec<Denied> = [DENIED4_SET, DENIED6_SET]
        .iter()
        .flat_map(|s| keyed_elems(live, s))
        .map(|(key, body)| {
            let expires = body["expires"].as_u64().unwrap_or(0);
            Denied {
                key,
                packets: body["counter"]["packets"].as_u64().unwrap_or(0),
                last_seen_secs: u64::from(DENIED_TIMEOUT).saturating_sub(expires),
            }
        })
        .collect();
    all.sort_by_key(|d| (d.last_seen_secs, d.key));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::key;
    use alca_contract::lan::Proto;
    use alca_ruleset::{nft_json, replace_batch};

    /// What `nft -j list table` shows for a batch: the objects without the `add` wrapper.
    fn listed(batch: &Ruleset) -> Value {
        let objs: Vec<Value> = nft_json(batch)["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.get("add").unwrap_or(o).clone())
            .collect();
        json!({ "nftables": objs })
    }

    #[test]
    fn an_intact_table_has_no_problems_and_a_ready_fence() {
        let batch = replace_batch(&alca_contract::net_spec::sample_spec(), 1000);
        assert_eq!(check_live(&listed(&batch), &batch), Vec::<String>::new());
        assert!(fence_ready(&listed(&batch)));
    }

    #[test]
    fn a_removed_rule_or_element_is_named() {
        let batch = replace_batch(&alca_contract::net_spec::sample_spec(), 1000);
        let mut live = listed(&batch);
        let items = live["nftables"].as_array_mut().unwrap();
        let deny = items
            .iter()
            .position(|o| o["rule"]["comment"] == "deny lan")
            .unwrap();
        items.remove(deny);
        for o in items.iter_mut() {
            if o["set"]["name"] == "deny4" {
                let elems = o["set"]["elem"].as_array_mut().unwrap();
                elems.retain(|e| e["prefix"]["addr"] != "10.0.0.0");
            }
        }
        items.push(json!({"rule": {"chain": "isolate", "comment": "sneaky"}}));
        let problems = check_live(&live, &batch);
        assert_eq!(
            problems,
            [
                "chain isolate: 1 of 4 rule(s) \"deny lan\" missing",
                "chain isolate: 1 unexpected rule(s) \"sneaky\"",
                "set deny4 lacks 10.0.0.0/8",
            ]
        );
    }

    #[test]
    fn arming_flushes_first_and_fences_only_what_is_asked() {
        let probes = [
            Probe {
                key: key("10.255.255.254", 9),
                fence: true,
            },
            Probe {
                key: key("10.99.0.2", 18080),
                fence: false,
            },
            Probe {
                key: key("fd00::1", 9),
                fence: true,
            },
        ];
        crate::firewall::ensure_only_alca(&forget_batch("alca-x", &[probes[2].key])).unwrap();
        let forget = forget_batch("alca-x", &[probes[2].key]).to_json();
        assert_eq!(
            forget["nftables"][0]["delete"]["element"]["name"],
            "denied6"
        );
        let both = disarm_batch("alca-x").then(&forget_batch("alca-x", &[probes[2].key]));
        let both = both.to_json()["nftables"].as_array().unwrap().clone();
        assert_eq!(both.len(), 7, "six flushes, then the one delete");
        assert!(both[6].get("delete").is_some());
        crate::firewall::ensure_only_alca(&arm_batch("alca-x", &probes)).unwrap();
        let batch = arm_batch("alca-x", &probes).to_json();
        let cmds = batch["nftables"].as_array().unwrap();
        assert!(cmds[..6].iter().all(|c| c.get("flush").is_some()));
        let added = |name: &str| -> usize {
            cmds.iter()
                .filter(|c| c["add"]["element"]["name"] == name)
                .map(|c| c["add"]["element"]["elem"].as_array().unwrap().len())
                .sum()
        };
        assert_eq!(
            (
                added("probe4"),
                added("fence4"),
                added("probe6"),
                added("fence6")
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(
            cmds[6]["add"]["element"]["elem"][0]["elem"]["timeout"],
            PROBE_TIMEOUT
        );
    }

    #[test]
    fn reads_the_denied_log_and_passed_probes_as_nft_lists_them() {
        let live = json!({"nftables": [
            {"set": {"family": "inet", "name": "denied4", "table": "alca-x",
              "elem": [
                {"elem": {"val": {"concat": ["10.99.0.2", "tcp", 18080]}, "expires": 3590,
                          "counter": {"packets": 3, "bytes": 180}}},
                {"elem": {"val": {"concat": ["224.0.0.251", "udp", 53]}, "expires": 3599,
                          "counter": {"packets": 4, "bytes": 188}}}
              ]}},
            {"set": {"family": "inet", "name": "passed6", "table": "alca-x",
              "elem": [{"elem": {"val": {"concat": ["fd00::1", "tcp", 9]}, "expires": 100}}]}}
        ]});
        let denied = read_denied(&live);
        assert_eq!(denied.len(), 2);
        assert_eq!(denied[0].key.addr.to_string(), "224.0.0.251");
        assert_eq!(denied[0].key.proto, Proto::Udp);
        assert_eq!((denied[1].packets, denied[1].last_seen_secs), (3, 10));
        assert_eq!(read_passed(&live), vec![key("fd00::1", 9)]);
    }
}
