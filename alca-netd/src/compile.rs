//! Pure compiler from a validated [`NetSpec`] to one atomic nftables JSON batch (`nft -j -f -`).
//!
//! Strings from users never reach nft text: every value is a typed `nftables` schema object,
//! serialised to JSON at the end. The layout of one project's table `inet alca-<id>`:
//!
//! * set `owner` (type uid): the uid that owns the table (see [`owner_uid`]);
//! * sets `deny4`/`deny6` (interval): the destinations no container may reach (SPEC §3);
//! * base chain `prerouting` (filter, priority -160): after conntrack (-200), before any DNAT
//!   (-100), so it sees every packet the container sends, forwarded or to the host, with its
//!   original destination. Its only rule jumps to `isolate` for packets arriving on the
//!   project's bridge: a container cannot choose its ingress bridge, so spoofed source
//!   addresses gain nothing and a new container IP after a restart changes nothing;
//! * base chain `proxy` (nat, priority dstnat - 10): DNAT of the bridge's TCP to the proxy.
//!
//! The kernel allows at most 1024 base chains per hook; each project uses one per hook point
//! (two at prerouting), which bounds the number of isolated projects per host at ~500.

mod deny;
mod expr;
mod filter;
mod owner;
mod proxy;

use std::borrow::Cow;

use nftables::schema::{Chain, NfCmd, NfListObject, Table};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde_json::{json, Value};

use crate::spec::{table_name, NetSpec};

pub use owner::{owner_uid, OWNER_SET};

/// Name of the filter base chain at prerouting.
pub const FILTER_BASE_CHAIN: &str = "prerouting";
/// Name of the regular chain holding the isolation rules of the bridge's packets.
pub const ISOLATE_CHAIN: &str = "isolate";
/// Name of the nat base chain sending TCP to the proxy.
pub const PROXY_CHAIN: &str = "proxy";
/// Priority of the filter base chain: after conntrack (-200), before DNAT (-100).
pub const FILTER_PRIORITY: i32 = -160;
/// Priority of the proxy chain: `dstnat - 10`, before Docker's/netavark's DNAT at -100.
pub const PROXY_PRIORITY: i32 = -110;

/// Batch that atomically replaces the project's table with its compiled ruleset.
///
/// `[add table, delete table, add table, sets…, chains…, rules…]`: one transaction that works
/// whether or not the table exists. `owner_uid` is recorded in the table's `owner` set so
/// ownership survives daemon restarts. The spec must have passed [`NetSpec::validate`].
pub fn replace_batch(spec: &NetSpec, owner_uid: u32) -> Value {
    let name = spec.table_name();
    let mut cmds = reset_table(&name);
    cmds.push(add(NfListObject::Table(table(&name))));
    cmds.push(owner::owner_set(&name, owner_uid));
    let filter = filter::isolate_rules(spec);
    if !filter.is_empty() {
        if !spec.allow_all {
            cmds.extend(deny::deny_sets(&name).into_iter().map(add));
        }
        cmds.push(add(base_chain(
            &name,
            FILTER_BASE_CHAIN,
            NfChainType::Filter,
            FILTER_PRIORITY,
        )));
        cmds.push(add(regular_chain(&name, ISOLATE_CHAIN)));
    }
    let nat = spec
        .proxy
        .map(|proxy| proxy::proxy_rules(spec, proxy))
        .unwrap_or_default();
    if !nat.is_empty() {
        cmds.push(add(base_chain(
            &name,
            PROXY_CHAIN,
            NfChainType::NAT,
            PROXY_PRIORITY,
        )));
    }
    if !filter.is_empty() {
        cmds.push(add(expr::rule(
            &name,
            FILTER_BASE_CHAIN,
            filter::jump_from_bridge(&spec.bridge),
        )));
        cmds.extend(
            filter
                .into_iter()
                .map(|r| add(expr::rule(&name, ISOLATE_CHAIN, r))),
        );
    }
    cmds.extend(
        nat.into_iter()
            .map(|r| add(expr::rule(&name, PROXY_CHAIN, r))),
    );
    json!({ "nftables": cmds })
}

/// Batch that deletes the project's table; succeeds whether or not it exists.
pub fn delete_batch(project: &str) -> Value {
    json!({ "nftables": reset_table(&table_name(project)) })
}

/// `add table` then `delete table`: removes the table whether or not it existed.
fn reset_table(name: &str) -> Vec<Value> {
    vec![
        add(NfListObject::Table(table(name))),
        to_json(&NfCmd::Delete(NfListObject::Table(table(name)))),
    ]
}

fn table(name: &str) -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: Cow::Owned(name.to_string()),
        handle: None,
    }
}

fn base_chain(table: &str, name: &str, kind: NfChainType, prio: i32) -> NfListObject<'static> {
    NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: Cow::Owned(table.to_string()),
        name: Cow::Owned(name.to_string()),
        _type: Some(kind),
        hook: Some(NfHook::Prerouting),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    })
}

fn regular_chain(table: &str, name: &str) -> NfListObject<'static> {
    NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: Cow::Owned(table.to_string()),
        name: Cow::Owned(name.to_string()),
        ..Chain::default()
    })
}

/// `{"add": obj}` as JSON.
fn add(obj: NfListObject<'_>) -> Value {
    to_json(&NfCmd::Add(obj))
}

fn to_json(cmd: &NfCmd<'_>) -> Value {
    // Invariant: the schema types are plain structs and enums without maps or fallible
    // serialisers, so turning them into a `Value` cannot fail.
    serde_json::to_value(cmd).expect("nftables schema values always serialise")
}
