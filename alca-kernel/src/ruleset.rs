//! A compiled project batch (a typed [`Ruleset`] from `alca_ruleset`) as nf_tables netlink
//! messages, to run as one transaction: tables, sets with their elements, chains and rules, in
//! the batch's order. `nft` 1.0.6 first reads every table of the host into its cache
//! (O(number of projects) per Apply); the kernel needs only these messages.
//!
//! Written to match what `nft` sends for the same batch: `tests/fixtures/` holds what
//! `nft --debug=netlink` prints for every golden ruleset, and `tests/nft_fixtures.rs` renders
//! these messages the same way and compares, without root; `tests/tests/netlink_ruleset.rs`
//! (root) holds the two to the same listing in a live kernel. The input is closed: every shape
//! has an encoding, and a value without one ([`Unsupported`]) refuses the whole batch (the
//! daemon never hands a batch to `nft`, which would create a table it does not own).

use std::collections::{BTreeSet, HashMap};

use ipnet::IpNet;

use alca_ruleset_types::{
    BaseChain, Chain, ChainType, Command, Element, Hook, IpFamily, Policy, Rule, Ruleset, Set,
    SetKey, Stmt,
};

use super::rule::{self, unsupported, AnonSet, SetIds, Unsupported};
use super::{set_element, Attr, Message, DEL_TABLE, FAMILY_INET, NEW_CHAIN, NEW_RULE, NEW_SET};
use super::{NEW_SET_ELEM, NEW_TABLE, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use super::{TABLE_FLAGS, TABLE_NAME};
use crate::tables::TableOwner;

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

/// The messages of `ruleset`, numbered from 1, creating tables without flags (as `nft -j -f`
/// does: the tests compare the two).
pub fn messages(ruleset: &Ruleset) -> Result<Vec<Vec<u8>>, Unsupported> {
    owned_messages(ruleset, TableOwner::Unowned)
}

/// The messages of `ruleset`, numbered from 1, with `owner`'s flags on each table the batch
/// (re-)creates: an `add table` after the batch's `delete table` of it. An `add table` before
/// that only makes sure the table exists and carries no flags, so that it leaves an existing
/// table's flags alone (the kernel refuses to change an owned table's flags, and lets only an
/// orphan be adopted).
pub fn owned_messages(ruleset: &Ruleset, owner: TableOwner) -> Result<Vec<Vec<u8>>, Unsupported> {
    let mut encoder = Encoder {
        messages: Vec::new(),
        set_ids: HashMap::new(),
        next_set_id: 1,
        updated: updated_sets(ruleset),
        table_flags: owner.bits(),
        deleted: BTreeSet::new(),
    };
    for command in &ruleset.commands {
        encoder.command(command)?;
    }
    Ok(encoder.messages)
}

/// The sets some rule of the batch updates from the packet path (they need `NFT_SET_EVAL`).
fn updated_sets(ruleset: &Ruleset) -> BTreeSet<String> {
    ruleset
        .rules()
        .flat_map(|r| &r.stmts)
        .filter_map(|stmt| match stmt {
            Stmt::Update { set, .. } => Some(set.clone()),
            _ => None,
        })
        .collect()
}

struct Encoder {
    messages: Vec<Vec<u8>>,
    /// Batch ids of the named sets created so far.
    set_ids: HashMap<String, u32>,
    /// The id the next set (named or anonymous) gets.
    next_set_id: u32,
    updated: BTreeSet<String>,
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

    fn command(&mut self, command: &Command) -> Result<(), Unsupported> {
        match command {
            Command::AddTable(table) => {
                let mut attrs = vec![Attr::string(TABLE_NAME, table)];
                if self.deleted.contains(table) {
                    attrs.push(Attr::u32_be(TABLE_FLAGS, self.table_flags));
                }
                self.message(NEW_TABLE, 0, &attrs);
                Ok(())
            }
            Command::DeleteTable(table) => {
                self.message(DEL_TABLE, 0, &[Attr::string(TABLE_NAME, table)]);
                self.deleted.insert(table.clone());
                Ok(())
            }
            Command::AddSet(set) => self.set(set),
            Command::AddChain(chain) => {
                self.chain(chain);
                Ok(())
            }
            Command::AddRule(rule) => self.rule(rule),
        }
    }

    fn chain(&mut self, chain: &Chain) {
        let mut attrs = vec![Attr::string(1, &chain.table), Attr::string(3, &chain.name)];
        if let Some(BaseChain {
            kind,
            hook,
            priority,
            policy,
        }) = chain.base
        {
            let hook = match hook {
                Hook::Prerouting => 0,
                Hook::Input => 1,
                Hook::Forward => 2,
                Hook::Output => 3,
                Hook::Postrouting => 4,
            };
            let kind = match kind {
                ChainType::Filter => "filter",
                ChainType::Nat => "nat",
            };
            let policy = match policy {
                Policy::Accept => 1, // NF_ACCEPT
            };
            attrs.push(Attr::string(7, kind));
            attrs.push(Attr::u32_be(5, policy));
            attrs.push(Attr::Nest(
                4,
                vec![
                    Attr::u32_be(1, hook),
                    Attr::Bytes(2, priority.to_be_bytes().to_vec()),
                ],
            ));
        }
        self.message(NEW_CHAIN, NLM_F_CREATE, &attrs);
    }

    fn set(&mut self, set: &Set) -> Result<(), Unsupported> {
        let key = SetKeyType::of(set.key);
        let mut flags = 0;
        if set.interval {
            flags |= SET_INTERVAL;
        }
        if set.timeout_flag {
            flags |= SET_TIMEOUT;
        }
        if self.updated.contains(&set.name) {
            flags |= SET_EVAL;
        }
        let id = self.next_set_id;
        self.next_set_id += 1;
        let mut attrs = vec![
            Attr::string(1, &set.table),
            Attr::string(2, &set.name),
            Attr::u32_be(3, flags),
            Attr::u32_be(4, key.kind),
            Attr::u32_be(5, key.len),
            Attr::u32_be(10, id),
        ];
        if let Some(size) = set.size {
            attrs.push(Attr::Nest(9, vec![Attr::u32_be(1, size)]));
        }
        if let Some(secs) = set.timeout_secs {
            attrs.push(Attr::u64_be(11, u64::from(secs) * 1000));
        }
        attrs.push(Attr::Bytes(13, key.userdata.to_vec()));
        if set.counter {
            let counter = vec![Attr::string(1, "counter"), Attr::Nest(2, vec![])];
            attrs.push(Attr::Nest(17, counter));
        }
        let elements = match &set.elements {
            Some(list) => Some(key.elements(set.key, list, set.interval)?),
            None => None,
        };
        self.message(NEW_SET, NLM_F_CREATE, &attrs);
        self.set_ids.insert(set.name.clone(), id);
        if let Some(elements) = elements {
            self.elements(&set.table, &set.name, id, elements);
        }
        Ok(())
    }

    fn elements(&mut self, table: &str, set: &str, id: u32, elements: Vec<Attr>) {
        let attrs = [
            Attr::string(1, table),
            Attr::string(2, set),
            Attr::u32_be(4, id),
            Attr::Nest(3, elements),
        ];
        self.message(NEW_SET_ELEM, NLM_F_CREATE, &attrs);
    }

    fn rule(&mut self, rule: &Rule) -> Result<(), Unsupported> {
        let mut ids = BatchSets {
            named: &self.set_ids,
            next: self.next_set_id,
            anonymous: Vec::new(),
        };
        let exprs = rule::expressions(&rule.stmts, &mut ids)?;
        self.next_set_id = ids.next;
        let anonymous = ids.anonymous;
        for (id, set) in anonymous {
            self.anonymous_set(&rule.table, id, set);
        }
        let mut attrs = vec![
            Attr::string(1, &rule.table),
            Attr::string(2, &rule.chain),
            Attr::Nest(4, exprs),
        ];
        if let Some(text) = &rule.comment {
            attrs.push(Attr::Bytes(7, comment_userdata(text)?));
        }
        self.message(NEW_RULE, NLM_F_CREATE | NLM_F_APPEND, &attrs);
        Ok(())
    }

    fn anonymous_set(&mut self, table: &str, id: u32, set: AnonSet) {
        let attrs = [
            Attr::string(1, table),
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
        self.elements(table, "__set%d", id, elements);
    }
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
struct SetKeyType {
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

impl SetKeyType {
    fn of(key: SetKey) -> SetKeyType {
        let concat = |addr: u32, len: u32| SetKeyType {
            kind: ((addr << TYPE_BITS | TYPE_INET_PROTOCOL) << TYPE_BITS) | TYPE_INET_SERVICE,
            len: len + 4 + 4,
            userdata: b"\x00\x04\x00\x00\x00\x00\x03\x08\x00\x04\x0d\x00\x00\x00\x01\x00",
        };
        let address = |kind, len| SetKeyType {
            kind,
            len,
            userdata: b"\x00\x04\x02\x00\x00\x00",
        };
        match key {
            SetKey::Dest(IpFamily::V4) => concat(TYPE_IPADDR, 4),
            SetKey::Dest(IpFamily::V6) => concat(TYPE_IP6ADDR, 16),
            SetKey::Uid => SetKeyType {
                kind: TYPE_UID,
                len: 4,
                userdata: b"\x00\x04\x01\x00\x00\x00",
            },
            SetKey::Addr(IpFamily::V4) => address(TYPE_IPADDR, 4),
            SetKey::Addr(IpFamily::V6) => address(TYPE_IP6ADDR, 16),
        }
    }

    /// The elements of `list`: uids as they are; addresses and prefixes of an interval set as
    /// sorted ranges, each a start and an end element, the way nft writes them.
    fn elements(
        &self,
        key: SetKey,
        list: &[Element],
        interval: bool,
    ) -> Result<Vec<Attr>, Unsupported> {
        let family = match key {
            SetKey::Uid => {
                return list
                    .iter()
                    .map(|e| match e {
                        Element::Uid(uid) => Ok(element(uid.to_ne_bytes().to_vec(), 0, None)),
                        other => Err(unsupported(other)),
                    })
                    .collect()
            }
            SetKey::Addr(family) if interval => family,
            _ => return Err(Unsupported("elements of this set".into())),
        };
        let bytes = self.len as usize;
        let mut ranges: Vec<(u128, Option<u128>)> = list
            .iter()
            .map(|e| match e {
                Element::Net(net) if IpFamily::of(matches!(net, IpNet::V6(_))) == family => {
                    Ok(range(*net))
                }
                other => Err(unsupported(other)),
            })
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

/// `[start, end)` of an address or prefix (its network); no end when the range runs to the
/// last address.
fn range(net: IpNet) -> (u128, Option<u128>) {
    let (value, bits) = match net.network() {
        std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        std::net::IpAddr::V6(a) => (u128::from(a), 128),
    };
    let last = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    // The number of addresses in the range; none for all of IPv6 (2^128).
    let Some(size) = 1u128.checked_shl(bits - u32::from(net.prefix_len())) else {
        return (0, None);
    };
    let end = value.checked_add(size).filter(|e| *e <= last);
    (value, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_ruleset_types::{L4Proto, Match};

    fn kinds(messages: &[Vec<u8>]) -> Vec<u16> {
        messages
            .iter()
            .map(|m| u16::from_ne_bytes([m[4], m[5]]))
            .collect()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_end_after_their_last_address_unless_they_reach_the_top() {
        assert_eq!(range(net("10.0.0.1/32")), (0x0a000001, Some(0x0a000002)));
        assert_eq!(range(net("10.0.0.0/8")), (0x0a000000, Some(0x0b000000)));
        assert_eq!(range(net("240.0.0.0/4")), (0xf0000000, None));
        assert_eq!(range(net("ff00::/8")).1, None);
        // An address with host bits set stands for its network, as the JSON encoder writes it.
        assert_eq!(range(net("10.0.0.1/8")), (0x0a000000, Some(0x0b000000)));
    }

    #[test]
    fn an_interval_set_starts_with_an_end_element_unless_it_covers_zero() {
        let v4 = SetKey::Addr(IpFamily::V4);
        let key = SetKeyType::of(v4);
        let list = [
            Element::Net(net("192.168.0.0/16")),
            Element::Net(net("10.1.1.1/32")),
        ];
        let elements = key.elements(v4, &list, true).unwrap();
        assert_eq!(elements.len(), 5, "leading end, then two ranges");
        let text = format!("{:?}", elements[1]);
        assert!(text.contains("[10, 1, 1, 1]"), "sorted by address: {text}");
        let overlapping = [
            Element::Net(net("10.0.0.0/8")),
            Element::Net(net("10.1.1.1/32")),
        ];
        assert!(key.elements(v4, &overlapping, true).is_err());
    }

    fn table(t: &str) -> Command {
        Command::AddTable(t.into())
    }

    #[test]
    fn a_batch_becomes_one_message_per_object_and_its_anonymous_sets() {
        let t = "alca-x";
        let mut owner = Set::new(t, "owner", SetKey::Uid);
        owner.elements = Some(vec![Element::Uid(1000)]);
        let ruleset = Ruleset {
            commands: vec![
                table(t),
                Command::DeleteTable(t.into()),
                table(t),
                Command::AddSet(owner),
                Command::AddChain(Chain {
                    table: t.into(),
                    name: "c".into(),
                    base: None,
                }),
                Command::AddRule(Rule {
                    table: t.into(),
                    chain: "c".into(),
                    stmts: vec![
                        Stmt::Match(Match::L4protoIn(vec![L4Proto::Tcp, L4Proto::Udp])),
                        Stmt::Accept,
                    ],
                    comment: Some("x".into()),
                }),
            ],
        };
        let messages = messages(&ruleset).unwrap();
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
        let ruleset = Ruleset {
            commands: vec![table(t), Command::DeleteTable(t.into()), table(t)],
        };
        let owner = TableOwner::SocketPersistent;
        let messages = owned_messages(&ruleset, owner).unwrap();
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
        assert_eq!(table_flags(&messages[2]), Some(owner.bits()));
    }

    /// Other families, verbs and fields (`flush`, a table's `flags`, a set's `policy`, a rule's
    /// `index`, a `drop` policy) cannot be written in the closed types; what is left are values
    /// without an encoding: elements that do not fit their set, a comment nft cannot store.
    #[test]
    fn values_without_an_encoding_are_refused() {
        let t = "alca-x";
        let with = |set: Set| Ruleset {
            commands: vec![table(t), Command::AddSet(set)],
        };
        let mut uid_in_addr = Set::new(t, "s", SetKey::Addr(IpFamily::V4));
        uid_in_addr.interval = true;
        uid_in_addr.elements = Some(vec![Element::Uid(1)]);
        let mut v6_in_v4 = uid_in_addr.clone();
        v6_in_v4.elements = Some(vec![Element::Net(net("fd00::/8"))]);
        let mut not_interval = v6_in_v4.clone();
        not_interval.interval = false;
        not_interval.elements = Some(vec![Element::Net(net("10.0.0.0/8"))]);
        let long_comment = Ruleset {
            commands: vec![
                table(t),
                Command::AddRule(Rule {
                    table: t.into(),
                    chain: "c".into(),
                    stmts: vec![Stmt::Accept],
                    comment: Some("x".repeat(300)),
                }),
            ],
        };
        for ruleset in [
            with(uid_in_addr),
            with(v6_in_v4),
            with(not_interval),
            long_comment,
        ] {
            assert!(messages(&ruleset).is_err(), "{ruleset:?}");
        }
    }
}
