//! The output-hook variant of a project's table, for rules applied INSIDE a rootless
//! container's own network namespace (applied by `alca_netd::netns_rules`).
//!
//! A rootless container has no bridge on the host: its packets leave its namespace through
//! slirp4netns' tap device and become the user's own sockets on the host, which no host rule
//! can tell apart. Inside the namespace they are locally generated, so they cross the OUTPUT
//! hook, not prerouting or forward. The table holds the same owner set, deny sets, denied log
//! sets and `isolate` chain as the host variant (same [`filter::isolate_rules`]); only the base
//! chain differs:
//!
//! * base chain `output` (filter, hook output, priority [`NETNS_OUTPUT_PRIORITY`], the largest
//!   there is): it runs after every NAT output chain (-100) of the namespace, so it judges the
//!   final destination, and a base chain the container adds later at the same priority is
//!   inserted before it by the kernel (equal priorities go in front), so it stays last;
//! * its rules: traffic to the namespace's own addresses (`fib daddr type local`: loopback and
//!   the container's own addresses, which never leave the namespace) is accepted, everything
//!   else jumps to `isolate`. The loopback test is by address type, not by interface name: a
//!   container holding NET_ADMIN can rename its interfaces.
//!
//! * base chain `postrouting` (filter, hook postrouting, the same largest priority): the last
//!   word on where a packet goes. A container holding NET_ADMIN can add a chain of its own that
//!   rewrites a packet's destination (`ip daddr set …`) after the output chain judged it; at
//!   postrouting, last of all, the deny sets are checked again on the final destination and
//!   such a packet is dropped (`reject` is not allowed at postrouting). Its rules: packets that
//!   leave by a loopback device (by device type, rename-proof) stay in the namespace, then
//!   neighbour discovery, the user's allow rules and DNS as in `isolate`, then the deny sets.
//!   It does not accept established connections: a rewritten packet of one would pass.
//!
//! No proxy chain: a transparent proxy reads the original destination from the host's
//! conntrack, which slirp4netns' fresh host-side connections do not carry (the daemon refuses a
//! proxy for such a project), and no verify chains (those match the host bridge).

use ipnet::IpNet;

use alca_ruleset_types::{ChainType, Hook, Ruleset};

use alca_contract::net_spec::NetSpec;

use super::deny::{DENY4_SET, DENY6_SET};
use super::expr::{
    accept, counter, daddr_in_set, daddr_is_local, drop, jump, neighbour_discovery,
    oiftype_loopback, rule, CommentedRule,
};
use super::ISOLATE_CHAIN;
use super::{base_chain, filter, regular_chain, table_head};

/// Name of the output base chain inside a container's namespace.
pub const NETNS_OUTPUT_CHAIN: &str = "output";
/// Name of the postrouting base chain (the late check) inside a container's namespace.
pub const NETNS_LATE_CHAIN: &str = "postrouting";
/// The largest hook priority: after every NAT chain, and last among equals (see module doc).
pub const NETNS_OUTPUT_PRIORITY: i32 = i32::MAX;

/// Batch that atomically replaces the project's table inside a container's namespace with its
/// output-hook ruleset. `onlink` are the HOST's on-link prefixes: slirp4netns connects from the
/// host, so they are as much the LAN from inside as from the bridge. Empty (no chains) for a
/// spec that filters nothing (`allow_all` without a proxy).
pub fn replace_batch_in_netns(spec: &NetSpec, owner_uid: u32, onlink: &[IpNet]) -> Ruleset {
    let name = spec.table_name();
    let isolate = filter::isolate_rules(spec);
    let mut cmds = table_head(spec, owner_uid, onlink, !isolate.is_empty());
    if !isolate.is_empty() {
        cmds.push(base_chain(
            &name,
            NETNS_OUTPUT_CHAIN,
            (Hook::Output, ChainType::Filter, NETNS_OUTPUT_PRIORITY),
        ));
        cmds.push(regular_chain(&name, ISOLATE_CHAIN));
        let own = CommentedRule::commented(vec![daddr_is_local(), accept()], "own addresses");
        let rest = CommentedRule::new(vec![jump(ISOLATE_CHAIN)]);
        for r in [own, rest] {
            cmds.push(rule(&name, NETNS_OUTPUT_CHAIN, r));
        }
        cmds.extend(isolate.into_iter().map(|r| rule(&name, ISOLATE_CHAIN, r)));
    }
    if !spec.allow_all {
        cmds.push(base_chain(
            &name,
            NETNS_LATE_CHAIN,
            (Hook::Postrouting, ChainType::Filter, NETNS_OUTPUT_PRIORITY),
        ));
        cmds.extend(
            late_rules(spec)
                .into_iter()
                .map(|r| rule(&name, NETNS_LATE_CHAIN, r)),
        );
    }
    Ruleset { commands: cmds }
}

/// The rules of the late check at postrouting (see the module doc).
fn late_rules(spec: &NetSpec) -> Vec<CommentedRule> {
    let mut nd = neighbour_discovery();
    nd.push(accept());
    let mut rules = vec![
        CommentedRule::commented(vec![oiftype_loopback(), accept()], "stays inside"),
        CommentedRule::new(nd),
    ];
    rules.extend(spec.allow.iter().map(filter::allow_rule));
    rules.extend(spec.dns.iter().map(|ip| filter::dns_rule(*ip)));
    for (v6, set) in [(false, DENY4_SET), (true, DENY6_SET)] {
        rules.push(CommentedRule::commented(
            vec![daddr_in_set(v6, set), counter(), drop()],
            "deny lan (late)",
        ));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{nft_json, replace_batch_on, HostQuirks};
    use serde_json::{json, Value};

    /// The tests read the JSON encoding (the goldens pin it to the typed value).
    fn replace_batch_in_netns(spec: &NetSpec, owner_uid: u32, onlink: &[IpNet]) -> Value {
        nft_json(&super::replace_batch_in_netns(spec, owner_uid, onlink))
    }

    fn cmds(batch: &Value) -> Vec<Value> {
        batch["nftables"].as_array().cloned().unwrap_or_default()
    }

    fn rules_of(batch: &Value, chain: &str) -> Vec<Value> {
        cmds(batch)
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .filter(|r| r["chain"] == chain)
            .map(|r| r["expr"].clone())
            .collect()
    }

    #[test]
    fn the_base_chains_are_output_and_postrouting_at_the_largest_priority() {
        let batch = replace_batch_in_netns(&alca_contract::net_spec::sample_spec(), 1001, &[]);
        let bases: Vec<(String, String, i64)> = cmds(&batch)
            .iter()
            .filter_map(|c| c["add"].get("chain"))
            .filter(|c| c.get("hook").is_some())
            .map(|c| {
                (
                    c["name"].as_str().unwrap().into(),
                    c["hook"].as_str().unwrap().into(),
                    c["prio"].as_i64().unwrap(),
                )
            })
            .collect();
        let max = i64::from(i32::MAX);
        assert_eq!(
            bases,
            [
                ("output".into(), "output".into(), max),
                ("postrouting".into(), "postrouting".into(), max),
            ]
        );
        // No rule names an interface: a renamed tap or loopback changes nothing.
        assert!(!batch.to_string().contains("iifname"), "{batch}");
        assert!(!batch.to_string().contains("oifname"), "{batch}");
    }

    #[test]
    fn own_addresses_pass_then_everything_else_is_isolated_like_on_the_bridge() {
        let spec = alca_contract::net_spec::sample_spec();
        let batch = replace_batch_in_netns(&spec, 1001, &[]);
        let output = rules_of(&batch, NETNS_OUTPUT_CHAIN);
        assert_eq!(output.len(), 2);
        assert!(output[0].to_string().contains("\"fib\""), "{}", output[0]);
        assert!(output[0].to_string().contains("\"accept\""));
        assert_eq!(output[1], json!([{"jump": {"target": "isolate"}}]));
        // The same isolate chain and deny sets as the host variant.
        let host = nft_json(&replace_batch_on(&spec, 1001, HostQuirks::default(), &[]));
        assert_eq!(
            rules_of(&batch, ISOLATE_CHAIN),
            rules_of(&host, ISOLATE_CHAIN)
        );
        let sets = |b: &Value| -> Vec<Value> {
            cmds(b)
                .iter()
                .filter_map(|c| c["add"].get("set").cloned())
                .collect()
        };
        assert_eq!(sets(&batch), sets(&host));
    }

    #[test]
    fn the_late_check_drops_denied_final_destinations_after_the_allowed_ones() {
        let mut spec = alca_contract::net_spec::sample_spec();
        spec.allow = vec![alca_contract::lan::AllowRule {
            net: "10.99.0.2/32".parse().unwrap(),
            proto: Some(alca_contract::lan::Proto::Tcp),
            port: Some(8080),
        }];
        spec.dns = vec!["10.0.2.3".parse().unwrap()];
        let batch = replace_batch_in_netns(&spec, 1001, &[]);
        let late = rules_of(&batch, NETNS_LATE_CHAIN);
        let text: Vec<String> = late.iter().map(Value::to_string).collect();
        assert_eq!(late.len(), 6, "{text:?}");
        assert!(text[0].contains("oiftype") && text[0].contains("loopback"));
        assert!(text[2].contains("10.99.0.2") && text[2].contains("8080"));
        assert!(text[3].contains("10.0.2.3"));
        for t in &text[4..] {
            assert!(t.contains("@deny") && t.contains("\"drop\""), "{t}");
        }
        // Nothing accepts by connection state there: a rewritten packet of one would pass.
        assert!(!text.iter().any(|t| t.contains("\"ct\"")), "{text:?}");
        assert!(!text.iter().any(|t| t.contains("reject")), "{text:?}");
    }

    #[test]
    fn allow_all_without_proxy_installs_no_chain() {
        let mut spec = alca_contract::net_spec::sample_spec();
        spec.allow_all = true;
        let batch = replace_batch_in_netns(&spec, 7, &[]);
        assert!(!batch.to_string().contains("\"chain\""), "{batch}");
    }

    #[test]
    fn the_batch_encodes_to_netlink() {
        let batch =
            super::replace_batch_in_netns(&alca_contract::net_spec::sample_spec(), 1001, &[]);
        alca_kernel::ruleset::owned_messages(&batch, alca_kernel::tables::TableOwner::Unowned)
            .unwrap();
    }
}
