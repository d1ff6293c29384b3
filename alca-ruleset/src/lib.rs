//! Pure compiler from a validated [`NetSpec`] to one atomic batch, a closed typed [`Ruleset`]
//! (`alca-ruleset-types`), and that ruleset's nft-JSON encoder ([`nft_json`]).
//!
//! Strings from users never reach nft text: every value is a typed field of the ruleset. The
//! daemon hands the ruleset to the kernel writer (`alca_kernel::ruleset`, netlink); the JSON
//! encoding is for `nft -c`, the goldens and tests. The layout of one project's table
//! `inet alca-<id>`:
//!
//! * set `owner` (type uid): the uid that owns the table (see [`owner_uid`]);
//! * sets `deny4`/`deny6` (interval): the destinations no container may reach (SPEC §3);
//! * base chain `prerouting` (filter, priority -160): after conntrack (-200), before any DNAT
//!   (-100), so it sees every packet the container sends, forwarded or to the host, with its
//!   original destination. Its only rule jumps to `isolate` for packets arriving on the
//!   project's bridge: a container cannot choose its ingress bridge, so spoofed source
//!   addresses gain nothing and a new container IP after a restart changes nothing;
//! * base chain `proxy` (nat, priority dstnat - 10): DNAT of the bridge's TCP to the proxy
//!   (named `dns` when only `internet-access` needs it), after the DNAT of DNS to the
//!   project's resolver;
//! * with `internet-access`: the timed allow sets `inet4_N`/`inet6_N` (see `internet`);
//! * sets `denied*`, `probe*`, `fence*`, `passed*` and base chains `verify_in`/`verify_fwd`
//!   (input/forward, priority -200) jumping to `verify`: the bounded log of denied attempts and
//!   the probe fence of `alca network verify` (see `observe`).
//!
//! The kernel allows at most 1024 base chains per hook; each project uses one per hook point
//! (two at prerouting, one at input and forward), which bounds the number of isolated projects per host at ~500.
//!
//! [`HostQuirks`] adapt the layout to hosts whose own firewall needs it (OrbStack's VM).

mod deny;
mod expr;
mod filter;
pub mod golden_cases;
mod internet;
mod netns_output;
mod nft_json;
mod owner;
mod proxy;
mod verify_rules;

use ipnet::IpNet;

use alca_contract::net_spec::{table_name, NetSpec};
use alca_ruleset_types::{BaseChain, Chain, ChainType, Command, Hook, Policy};

pub use alca_ruleset_types as types;
pub use alca_ruleset_types::Ruleset;

pub use internet::{
    allow_groups, allow_set_for, allow_set_name, AllowGroup, ALLOW_SET_SIZE, DNS_NAT_CHAIN,
    GRANT4_SET, GRANT6_SET, GRANT_PORT4_SET, GRANT_PORT6_SET,
};
pub use netns_output::{
    replace_batch_in_netns, NETNS_LATE_CHAIN, NETNS_OUTPUT_CHAIN, NETNS_OUTPUT_PRIORITY,
};
pub use nft_json::{command_json, nft_json, stmts_json};
pub use owner::{owner_uid, OWNER_SET};
pub use verify_rules::*;

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
/// Name of the forward base chain added for hosts that offload flows (see [`HostQuirks`]).
pub const FLOWTABLE_GUARD_CHAIN: &str = "forward";
/// `filter - 2`: ahead of OrbStack's own forward chain (`filter - 1`) that offloads flows.
pub const FLOWTABLE_GUARD_PRIORITY: i32 = -2;

/// What the host's own firewall does that changes where our chains must sit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostQuirks {
    /// The host adds forwarded flows to an nftables flowtable from a forward chain at
    /// `filter - 1` (OrbStack: table `inet orbstack`). Offloaded packets skip every later
    /// hook, so the isolation rules are also run from a forward chain at `filter - 2`, as the
    /// Go original does, besides the prerouting chain.
    pub flowtable_offload: bool,
}

/// Batch that atomically replaces the project's table with its compiled ruleset.
///
/// `[add table, delete table, add table, sets…, chains…, rules…]`: one transaction that works
/// whether or not the table exists. `owner_uid` is recorded in the table's `owner` set so
/// ownership survives daemon restarts. The spec must have passed [`NetSpec::validate`].
pub fn replace_batch(spec: &NetSpec, owner_uid: u32) -> Ruleset {
    replace_batch_with_quirks(spec, owner_uid, HostQuirks::default())
}

/// [`replace_batch`] for a host with `quirks`.
pub fn replace_batch_with_quirks(spec: &NetSpec, owner_uid: u32, quirks: HostQuirks) -> Ruleset {
    replace_batch_on(spec, owner_uid, quirks, &[])
}

/// [`replace_batch_with_quirks`] on a host directly connected to `onlink` (the prefixes of its own
/// interfaces), which join the deny sets.
pub fn replace_batch_on(
    spec: &NetSpec,
    owner_uid: u32,
    quirks: HostQuirks,
    onlink: &[IpNet],
) -> Ruleset {
    let guard_flowtable = quirks.flowtable_offload;
    let name = spec.table_name();
    let filter = filter::isolate_rules(spec);
    let mut cmds = table_head(spec, owner_uid, onlink, !filter.is_empty());
    if !filter.is_empty() {
        cmds.push(base_chain(
            &name,
            FILTER_BASE_CHAIN,
            (Hook::Prerouting, ChainType::Filter, FILTER_PRIORITY),
        ));
        if guard_flowtable {
            cmds.push(base_chain(
                &name,
                FLOWTABLE_GUARD_CHAIN,
                (Hook::Forward, ChainType::Filter, FLOWTABLE_GUARD_PRIORITY),
            ));
        }
        cmds.push(regular_chain(&name, ISOLATE_CHAIN));
        cmds.push(regular_chain(&name, VERIFY_CHAIN));
        for (chain, hook) in [
            (VERIFY_INPUT_CHAIN, Hook::Input),
            (VERIFY_FORWARD_CHAIN, Hook::Forward),
        ] {
            let kind = (hook, ChainType::Filter, VERIFY_PRIORITY);
            cmds.push(base_chain(&name, chain, kind));
        }
    }
    let mut nat = spec
        .internet
        .as_ref()
        .map(|net| internet::dns_nat_rules(&spec.bridge, net.resolver))
        .unwrap_or_default();
    nat.extend(
        spec.proxy
            .map(|proxy| proxy::proxy_rules(spec, proxy))
            .unwrap_or_default(),
    );
    let nat_chain = if spec.proxy.is_some() {
        PROXY_CHAIN
    } else {
        DNS_NAT_CHAIN
    };
    if !nat.is_empty() {
        cmds.push(base_chain(
            &name,
            nat_chain,
            (Hook::Prerouting, ChainType::Nat, PROXY_PRIORITY),
        ));
    }
    if !filter.is_empty() {
        cmds.push(expr::rule(
            &name,
            FILTER_BASE_CHAIN,
            filter::jump_from_bridge(&spec.bridge),
        ));
        if guard_flowtable {
            cmds.push(expr::rule(
                &name,
                FLOWTABLE_GUARD_CHAIN,
                filter::jump_from_bridge(&spec.bridge),
            ));
        }
        cmds.extend(
            filter
                .into_iter()
                .map(|r| expr::rule(&name, ISOLATE_CHAIN, r)),
        );
        for chain in [VERIFY_INPUT_CHAIN, VERIFY_FORWARD_CHAIN] {
            let jump = filter::jump_from_bridge_to(&spec.bridge, VERIFY_CHAIN);
            cmds.push(expr::rule(&name, chain, jump));
        }
        cmds.extend(
            verify_rules::verify_rules()
                .into_iter()
                .map(|r| expr::rule(&name, VERIFY_CHAIN, r)),
        );
    }
    cmds.extend(nat.into_iter().map(|r| expr::rule(&name, nat_chain, r)));
    Ruleset { commands: cmds }
}

/// The commands every project table starts with, on a bridge or in a container's namespace:
/// replace the table, its owner set, and when it `filters` its deny and observation sets.
fn table_head(spec: &NetSpec, owner_uid: u32, onlink: &[IpNet], filters: bool) -> Vec<Command> {
    let name = spec.table_name();
    let mut cmds = reset_table(&name);
    cmds.push(Command::AddTable(name.clone()));
    cmds.push(owner::owner_set(&name, owner_uid));
    if filters {
        if !spec.allow_all || spec.internet.is_some() {
            cmds.extend(deny::deny_sets(&name, onlink));
        }
        if let Some(net) = &spec.internet {
            cmds.extend(internet::allow_sets(&name, net));
        }
        cmds.extend(verify_rules::observe_sets(&name));
    }
    cmds
}

/// Batch that deletes the project's table; succeeds whether or not it exists.
pub fn delete_batch(project: &str) -> Ruleset {
    Ruleset {
        commands: reset_table(&table_name(project)),
    }
}

/// `add table` then `delete table`: removes the table whether or not it existed.
fn reset_table(name: &str) -> Vec<Command> {
    vec![
        Command::AddTable(name.to_string()),
        Command::DeleteTable(name.to_string()),
    ]
}

/// A base chain at `(hook, type, priority)` whose policy accepts.
fn base_chain(table: &str, name: &str, (hook, kind, priority): (Hook, ChainType, i32)) -> Command {
    Command::AddChain(Chain {
        table: table.to_string(),
        name: name.to_string(),
        base: Some(BaseChain {
            kind,
            hook,
            priority,
            policy: Policy::Accept,
        }),
    })
}

fn regular_chain(table: &str, name: &str) -> Command {
    Command::AddChain(Chain {
        table: table.to_string(),
        name: name.to_string(),
        base: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::lan::{AllowRule, Proto};
    use serde_json::{json, Value};

    // The tests read the JSON encoding (the goldens pin it to the typed value).
    fn replace_batch(spec: &NetSpec, owner_uid: u32) -> Value {
        nft_json(&super::replace_batch(spec, owner_uid))
    }

    fn replace_batch_with_quirks(spec: &NetSpec, owner_uid: u32, quirks: HostQuirks) -> Value {
        nft_json(&super::replace_batch_with_quirks(spec, owner_uid, quirks))
    }

    fn spec() -> NetSpec {
        alca_contract::net_spec::sample_spec()
    }

    fn cmds(batch: &Value) -> &Vec<Value> {
        batch["nftables"].as_array().expect("command list")
    }

    /// Comments of the rules in `chain`, in order.
    fn comments(batch: &Value, chain: &str) -> Vec<String> {
        cmds(batch)
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .filter(|r| r["chain"] == chain)
            .map(|r| r["comment"].as_str().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn batch_starts_by_replacing_the_table_atomically() {
        let batch = replace_batch(&spec(), 1000);
        let first: Vec<&str> = cmds(&batch)
            .iter()
            .take(3)
            .filter_map(|c| c.as_object()?.keys().next().map(String::as_str))
            .collect();
        assert_eq!(first, ["add", "delete", "add"]);
        assert_eq!(
            owner_uid(
                &json!({"nftables": cmds(&batch).iter().filter_map(|c| c.get("add")).cloned().collect::<Vec<_>>()}),
                "alca-0123456789abcdef"
            ),
            Some(1000)
        );
    }

    #[test]
    fn allow_rules_keep_their_order_and_precede_every_deny() {
        let mut s = spec();
        let rule = |net: &str, proto, port| AllowRule {
            net: net.parse().unwrap(),
            proto,
            port,
        };
        s.allow = vec![
            rule("10.0.0.5/32", Some(Proto::Udp), Some(53)),
            rule("192.168.0.0/16", None, None),
        ];
        let got = comments(&replace_batch(&s, 0), ISOLATE_CHAIN);
        let first_deny = got.iter().position(|c| c.starts_with("deny")).unwrap();
        let a = got
            .iter()
            .position(|c| c == "lan-access udp://10.0.0.5:53")
            .unwrap();
        let b = got
            .iter()
            .position(|c| c == "lan-access 192.168.0.0/16")
            .unwrap();
        assert!(a < b && b < first_deny, "{got:?}");
        assert_eq!(got.last().map(String::as_str), Some("deny host"));
    }

    #[test]
    fn allow_all_without_proxy_keeps_only_the_owner() {
        let mut s = spec();
        s.allow_all = true;
        let batch = replace_batch(&s, 7);
        let added: Vec<&str> = cmds(&batch)
            .iter()
            .filter_map(|c| c.get("add")?.as_object()?.keys().next().map(String::as_str))
            .collect();
        assert_eq!(added, ["table", "table", "set"]);
    }

    /// Base chains as (name, hook, priority).
    fn base_chains(batch: &Value) -> Vec<(String, String, i64)> {
        cmds(batch)
            .iter()
            .filter_map(|c| c["add"].get("chain"))
            .filter(|c| c.get("hook").is_some())
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["hook"].as_str().unwrap().to_string(),
                    c["prio"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn flowtable_hosts_also_filter_at_forward_ahead_of_the_offload() {
        let plain = replace_batch(&spec(), 0);
        let verify = [
            ("verify_in".to_string(), "input".to_string(), -200),
            ("verify_fwd".to_string(), "forward".to_string(), -200),
        ];
        let prerouting = ("prerouting".to_string(), "prerouting".to_string(), -160);
        assert_eq!(
            base_chains(&plain),
            [prerouting.clone(), verify[0].clone(), verify[1].clone()]
        );
        assert!(comments(&plain, FLOWTABLE_GUARD_CHAIN).is_empty());
        let quirks = HostQuirks {
            flowtable_offload: true,
        };
        let orb = replace_batch_with_quirks(&spec(), 0, quirks);
        assert_eq!(
            base_chains(&orb),
            [
                prerouting,
                ("forward".to_string(), "forward".to_string(), -2),
                verify[0].clone(),
                verify[1].clone(),
            ]
        );
        let jumps: Vec<&Value> = cmds(&orb)
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .filter(|r| r["chain"] == FLOWTABLE_GUARD_CHAIN)
            .collect();
        assert_eq!(jumps.len(), 1);
        assert!(jumps[0]["expr"].to_string().contains("\"jump\""));
        assert!(jumps[0]["expr"].to_string().contains(&spec().bridge));
        // Without filtering (allow_all, no proxy) there is nothing to guard.
        let mut open = spec();
        open.allow_all = true;
        assert!(base_chains(&replace_batch_with_quirks(&open, 0, quirks)).is_empty());
    }

    #[test]
    fn a_proxy_refuses_the_other_family_before_any_allow() {
        let mut s = spec();
        s.proxy = Some("10.0.0.1:3128".parse().unwrap());
        s.allow = vec![AllowRule {
            net: "fd00::/8".parse().unwrap(),
            proto: None,
            port: None,
        }];
        let batch = replace_batch(&s, 0);
        let got = comments(&batch, ISOLATE_CHAIN);
        let refusal = got.iter().position(|c| c == "proxy family only").unwrap();
        let allow = got
            .iter()
            .position(|c| c.starts_with("lan-access"))
            .unwrap();
        assert!(refusal < allow, "{got:?}");
        assert_eq!(comments(&batch, PROXY_CHAIN), ["proxy itself", "to proxy"]);
    }
}
