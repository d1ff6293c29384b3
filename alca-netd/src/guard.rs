//! The guard: table `inet alca-guard`, which drops every packet arriving from an alca project
//! bridge that has no applied project rules, so that "no rules yet" (a bridge created before
//! its Apply, a table lost while the daemon was down) means "no traffic", never "open".
//!
//! A project bridge is an interface named `alca-` plus ten more characters (15 in all:
//! [`alca_contract::net_spec::bridge_name`]); other `alca-` interfaces (shorter names) are left alone.
//! Bridges with rules are the elements of the guard's set `ruled`, which each project batch
//! updates in the same transaction as its table ([`mark`]), so a bridge is never ruled
//! without its table nor guarded with it. The guard has input and forward chains (the
//! container's packets to the host, and through it); it is owned and persistent like the
//! project tables, written as nf_tables messages over the daemon's socket.

use alca_contract::net_spec::{BRIDGE_ID_LEN, NAME_PREFIX};
use alca_kernel::rule::{bitwise, cmp, expr, meta};
use alca_kernel::{self, Attr, Message, NLM_F_CREATE, NLM_F_REQUEST};

/// The guard's table (not a project id: never swept as stale).
pub const GUARD_TABLE: &str = "alca-guard";
/// The set of bridges with rules.
pub const RULED_SET: &str = "ruled";
/// Priority of its chains: ahead of the filter hooks' usual users (0) and of the projects'
/// verification chains (-200), so an unruled bridge's packets are not even logged there.
pub const GUARD_PRIORITY: i32 = -250;
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
/// The batch id of the `ruled` set.
const RULED_ID: u32 = 1;

fn message(kind: u16, flags: u16, attrs: Vec<Attr>) -> Vec<u8> {
    let mut m = Message::new(kind, NLM_F_REQUEST | flags, 0, alca_kernel::FAMILY_INET);
    for a in &attrs {
        m.attr(a);
    }
    m.finish()
}

fn table_attr() -> Attr {
    Attr::string(1, GUARD_TABLE)
}

/// `name` as the kernel compares interface names.
fn ifname_key(name: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.resize(IFNAMSIZ, 0);
    key
}

/// The element list of `bridges` for the `ruled` set.
fn elements(bridges: &[String]) -> Attr {
    let list = bridges
        .iter()
        .map(|b| alca_kernel::set_element(ifname_key(b), 0, None, None))
        .collect();
    Attr::Nest(3, list)
}

/// The transaction that (re-)creates the guard with `ruled` as the bridges that have rules:
/// `[add table, delete table, add table with flags, set, chains, rules]`, like a project batch,
/// so it replaces whatever is there, adopting an orphaned guard.
pub fn install(table_flags: u32, ruled: &[String]) -> Vec<Vec<u8>> {
    let mut out = vec![
        message(alca_kernel::NEW_TABLE, 0, vec![table_attr()]),
        message(alca_kernel::DEL_TABLE, 0, vec![table_attr()]),
        message(
            alca_kernel::NEW_TABLE,
            0,
            vec![
                table_attr(),
                Attr::u32_be(alca_kernel::TABLE_FLAGS, table_flags),
            ],
        ),
        message(
            alca_kernel::NEW_SET,
            NLM_F_CREATE,
            vec![
                table_attr(),
                Attr::string(2, RULED_SET),
                Attr::u32_be(3, 0),
                Attr::u32_be(4, TYPE_IFNAME),
                Attr::u32_be(5, IFNAMSIZ as u32),
                Attr::u32_be(10, RULED_ID),
            ],
        ),
    ];
    if !ruled.is_empty() {
        out.push(message(
            alca_kernel::NEW_SET_ELEM,
            NLM_F_CREATE,
            vec![
                table_attr(),
                Attr::string(2, RULED_SET),
                Attr::u32_be(4, RULED_ID),
                elements(ruled),
            ],
        ));
    }
    for (chain, hook) in [("input", 1u32), ("forward", 2)] {
        out.push(message(
            alca_kernel::NEW_CHAIN,
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
                        Attr::Bytes(2, GUARD_PRIORITY.to_be_bytes().to_vec()),
                    ],
                ),
            ],
        ));
        out.push(message(
            alca_kernel::NEW_RULE,
            NLM_F_CREATE | alca_kernel::NLM_F_APPEND,
            vec![
                table_attr(),
                Attr::string(2, chain),
                Attr::Nest(4, drop_unruled_bridges()),
            ],
        ));
    }
    out
}

/// `iifname` is `alca-` plus exactly ten characters and not in `@ruled`: counter, drop.
fn drop_unruled_bridges() -> Vec<Attr> {
    let load = |reg| meta(META_IIFNAME, reg);
    let name_len = NAME_PREFIX.len() + BRIDGE_ID_LEN;
    // The prefix and the NUL after the 15th character…
    let mut prefix_mask = vec![0u8; IFNAMSIZ];
    prefix_mask[..NAME_PREFIX.len()].fill(0xff);
    prefix_mask[name_len] = 0xff;
    let mut prefix = vec![0u8; IFNAMSIZ];
    prefix[..NAME_PREFIX.len()].copy_from_slice(NAME_PREFIX.as_bytes());
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
                Attr::string(1, RULED_SET),
                Attr::u32_be(4, RULED_ID),
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

/// The messages that, in a project's transaction, add its bridge to `ruled` (`ruled`) or take
/// it out: an add (with `NLM_F_CREATE`: no error if there) then, to take out, a delete, so
/// neither depends on what the set held.
pub fn mark(bridge: &str, ruled: bool) -> Vec<Vec<u8>> {
    let attrs = || {
        vec![
            table_attr(),
            Attr::string(2, RULED_SET),
            elements(&[bridge.to_string()]),
        ]
    };
    let mut out = vec![message(alca_kernel::NEW_SET_ELEM, NLM_F_CREATE, attrs())];
    if !ruled {
        out.push(message(alca_kernel::DEL_SET_ELEM, 0, attrs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let install = install(6, &["alca-0123456789".into()]);
        assert_eq!(
            kinds(&install)[..5],
            [
                alca_kernel::NEW_TABLE,
                alca_kernel::DEL_TABLE,
                alca_kernel::NEW_TABLE,
                alca_kernel::NEW_SET,
                alca_kernel::NEW_SET_ELEM
            ]
        );
        assert_eq!(
            kinds(&mark("alca-0123456789", true)),
            [alca_kernel::NEW_SET_ELEM]
        );
        assert_eq!(
            kinds(&mark("alca-0123456789", false)),
            [alca_kernel::NEW_SET_ELEM, alca_kernel::DEL_SET_ELEM]
        );
    }
}
