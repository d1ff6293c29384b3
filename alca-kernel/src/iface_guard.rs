//! A table that drops what arrives from interfaces named like a prefix plus a fixed number of
//! characters, unless the interface is in the table's set: the nf_tables encoding of the
//! daemon's guard (the daemon names the table, the set, the prefix and the priority), as
//! `nft` 1.0.6 writes `iifname "alca-??????????" iifname != @ruled counter drop`.

use crate::rule::{bitwise, cmp, expr, meta};
use crate::tables::TableOwner;
use crate::{Attr, Message, FAMILY_INET, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use crate::{DEL_SET_ELEM, DEL_TABLE, NEW_CHAIN, NEW_RULE, NEW_SET, NEW_SET_ELEM, NEW_TABLE};
use crate::{TABLE_FLAGS, TABLE_NAME};

/// What the guard table is called and what it guards.
#[derive(Debug, Clone, Copy)]
pub struct IfaceGuard {
    /// The `inet` table.
    pub table: &'static str,
    /// The set of interfaces let through.
    pub set: &'static str,
    /// Priority of its input and forward chains.
    pub priority: i32,
    /// Guarded interfaces: this prefix…
    pub prefix: &'static str,
    /// …and names exactly this long (at most 15).
    pub name_len: usize,
}

/// `IFNAMSIZ`: interface names are compared as 16 bytes, NUL-padded.
const IFNAMSIZ: usize = 16;
/// nft's `ifname` datatype id (`TYPE_IFNAME`), for its listing.
const TYPE_IFNAME: u32 = 41;
/// `NFT_META_IIFNAME`, `NFT_REG_1`, `NFT_REG_2`, `NFT_CMP_EQ`/`_NEQ`, `NFT_LOOKUP_F_INV`.
const META_IIFNAME: u32 = 6;
const REG_1: u32 = 1;
const REG_2: u32 = 2;
const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;
const LOOKUP_INV: u32 = 1;
/// The batch id of the set.
const SET_ID: u32 = 1;

fn message(kind: u16, flags: u16, attrs: Vec<Attr>) -> Vec<u8> {
    let mut m = Message::new(kind, NLM_F_REQUEST | flags, 0, FAMILY_INET);
    for a in &attrs {
        m.attr(a);
    }
    m.finish()
}

/// `name` as the kernel compares interface names.
fn ifname_key(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.resize(IFNAMSIZ, 0);
    key
}

/// The element list of `ifaces` for the set.
fn elements(ifaces: &[String]) -> Attr {
    let list = ifaces
        .iter()
        .map(|b| crate::set_element(ifname_key(b), 0, None, None))
        .collect();
    Attr::Nest(3, list)
}

impl IfaceGuard {
    fn table_attr(&self) -> Attr {
        Attr::string(TABLE_NAME, self.table)
    }

    /// The transaction that (re-)creates the guard table, owned by `owner`, with `members` in its
    /// set: `[add table, delete table, add table with flags, set, chains, rules]`, like a project
    /// batch, so it replaces whatever is there, adopting an orphaned table.
    pub fn install(&self, owner: TableOwner, members: &[String]) -> Vec<Vec<u8>> {
        let table_attr = || self.table_attr();
        let mut out = vec![
            message(NEW_TABLE, 0, vec![table_attr()]),
            message(DEL_TABLE, 0, vec![table_attr()]),
            message(
                NEW_TABLE,
                0,
                vec![table_attr(), Attr::u32_be(TABLE_FLAGS, owner.bits())],
            ),
            message(
                NEW_SET,
                NLM_F_CREATE,
                vec![
                    table_attr(),
                    Attr::string(2, self.set),
                    Attr::u32_be(3, 0),
                    Attr::u32_be(4, TYPE_IFNAME),
                    Attr::u32_be(5, IFNAMSIZ as u32),
                    Attr::u32_be(10, SET_ID),
                ],
            ),
        ];
        if !members.is_empty() {
            out.push(message(
                NEW_SET_ELEM,
                NLM_F_CREATE,
                vec![
                    table_attr(),
                    Attr::string(2, self.set),
                    Attr::u32_be(4, SET_ID),
                    elements(members),
                ],
            ));
        }
        for (chain, hook) in [("input", 1u32), ("forward", 2)] {
            out.push(message(
                NEW_CHAIN,
                NLM_F_CREATE,
                vec![
                    table_attr(),
                    Attr::string(3, chain),
                    Attr::string(7, "filter"),
                    Attr::u32_be(5, 1), // NF_ACCEPT
                    Attr::Nest(
                        4,
                        vec![
                            Attr::u32_be(1, hook),
                            Attr::Bytes(2, self.priority.to_be_bytes().to_vec()),
                        ],
                    ),
                ],
            ));
            out.push(message(
                NEW_RULE,
                NLM_F_CREATE | NLM_F_APPEND,
                vec![
                    table_attr(),
                    Attr::string(2, chain),
                    Attr::Nest(4, self.drop_non_members()),
                ],
            ));
        }
        out
    }

    /// `iifname` is the prefix plus exactly enough characters and not in the set: counter, drop.
    fn drop_non_members(&self) -> Vec<Attr> {
        let load = |reg| meta(META_IIFNAME, reg);
        let (prefix_str, name_len) = (self.prefix, self.name_len);
        // The prefix and the NUL after the 15th character…
        let mut prefix_mask = vec![0u8; IFNAMSIZ];
        prefix_mask[..prefix_str.len()].fill(0xff);
        prefix_mask[name_len] = 0xff;
        let mut prefix = vec![0u8; IFNAMSIZ];
        prefix[..prefix_str.len()].copy_from_slice(prefix_str.as_bytes());
        // …and a 15th character: the name is exactly 15 long.
        let mut last_mask = vec![0u8; IFNAMSIZ];
        last_mask[name_len - 1] = 0xff;
        vec![
            load(REG_1),
            bitwise(REG_1, prefix_mask),
            cmp(REG_1, CMP_EQ, prefix),
            load(REG_2),
            bitwise(REG_2, last_mask),
            cmp(REG_2, CMP_NEQ, vec![0; IFNAMSIZ]),
            load(REG_1),
            expr(
                "lookup",
                vec![
                    Attr::u32_be(2, REG_1),
                    Attr::string(1, self.set),
                    Attr::u32_be(4, SET_ID),
                    Attr::u32_be(5, LOOKUP_INV),
                ],
            ),
            expr("counter", vec![]),
            expr(
                "immediate",
                vec![
                    Attr::u32_be(1, 0),                                           // NFT_REG_VERDICT
                    Attr::Nest(2, vec![Attr::Nest(2, vec![Attr::u32_be(1, 0)])]), // NF_DROP
                ],
            ),
        ]
    }

    /// The messages that, inside another transaction, put `iface` in the set (`member`) or take
    /// it out: an add (with `NLM_F_CREATE`: no error if there) then, to take out, a delete, so
    /// neither depends on what the set held.
    pub fn mark(&self, iface: &str, member: bool) -> Vec<Vec<u8>> {
        let attrs = || {
            vec![
                self.table_attr(),
                Attr::string(2, self.set),
                elements(&[iface.to_string()]),
            ]
        };
        let mut out = vec![message(NEW_SET_ELEM, NLM_F_CREATE, attrs())];
        if !member {
            out.push(message(DEL_SET_ELEM, 0, attrs()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARD: IfaceGuard = IfaceGuard {
        table: "alca-guard",
        set: "ruled",
        priority: -250,
        prefix: "alca-",
        name_len: 15,
    };

    #[test]
    fn names_are_compared_as_sixteen_padded_bytes() {
        assert_eq!(ifname_key("alca-0123456789"), b"alca-0123456789\0".to_vec());
    }

    #[test]
    fn the_guard_replaces_itself_and_marks_in_one_message_or_two() {
        let kinds = |ms: &[Vec<u8>]| -> Vec<u16> {
            ms.iter()
                .map(|m| u16::from_ne_bytes([m[4], m[5]]))
                .collect()
        };
        let install = GUARD.install(TableOwner::SocketPersistent, &["alca-0123456789".into()]);
        assert_eq!(
            kinds(&install)[..5],
            [
                crate::NEW_TABLE,
                crate::DEL_TABLE,
                crate::NEW_TABLE,
                crate::NEW_SET,
                crate::NEW_SET_ELEM
            ]
        );
        assert_eq!(
            kinds(&GUARD.mark("alca-0123456789", true)),
            [crate::NEW_SET_ELEM]
        );
        assert_eq!(
            kinds(&GUARD.mark("alca-0123456789", false)),
            [crate::NEW_SET_ELEM, crate::DEL_SET_ELEM]
        );
    }
}
