//! What makes isolation observable (SPEC §9): a bounded log of denied attempts and the sets
//! `alca network verify` arms for the length of one verification.
//!
//! * `denied4`/`denied6`: dynamic sets keyed `daddr . l4proto . dport`, `size` [`DENIED_SIZE`],
//!   one counter per element, elements expire [`DENIED_TIMEOUT`] seconds after the last
//!   attempt. They are bounded by construction: a flood of attempts only updates counters, and
//!   once the set is full new keys are simply not recorded. The `update` sits in a rule of its
//!   own before the reject rules, because a failed `update` (full set) ends its rule: the
//!   rejects never depend on the log having room.
//! * `probe*`/`fence*`/`passed*`: elements the daemon adds with a timeout while a verification
//!   runs. A packet from the bridge that reaches the input or forward hook (so it got past the
//!   `isolate` chain) and whose key is a probe is recorded in `passed*`; if it is also in
//!   `fence*` (a destination the config says is blocked) it is dropped right there, before any
//!   route can take it off the machine. So a missing rule is seen as a recorded, dropped probe,
//!   never as a packet on the LAN.

use std::borrow::Cow;

use nftables::expr::{Expression, NamedExpression};
use nftables::stmt::{Operator, Set as SetStatement, SetOp, Statement};
use serde::Serialize;
use serde_json::{json, Value};

use super::expr::*;

/// Denied attempts per family, with counters.
pub const DENIED4_SET: &str = "denied4";
pub const DENIED6_SET: &str = "denied6";
/// Destinations probed right now (record only).
pub const PROBE4_SET: &str = "probe4";
pub const PROBE6_SET: &str = "probe6";
/// Probed destinations that must be blocked (recorded and dropped).
pub const FENCE4_SET: &str = "fence4";
pub const FENCE6_SET: &str = "fence6";
/// Probes that got past the isolation chain.
pub const PASSED4_SET: &str = "passed4";
pub const PASSED6_SET: &str = "passed6";
/// Most distinct denied destinations remembered per family.
pub const DENIED_SIZE: u32 = 1024;
/// Seconds a denied destination is remembered after its last attempt.
pub const DENIED_TIMEOUT: u32 = 3600;
/// Most probes (and passed probes) per family in one verification.
pub const PROBE_SIZE: u32 = 64;
/// Seconds armed probe elements live: a verification that dies leaves nothing behind.
pub const PROBE_TIMEOUT: u32 = 120;
/// Regular chain holding the record and fence rules.
pub const VERIFY_CHAIN: &str = "verify";
/// Base chains jumping to [`VERIFY_CHAIN`] at the input and forward hooks.
pub const VERIFY_INPUT_CHAIN: &str = "verify_in";
pub const VERIFY_FORWARD_CHAIN: &str = "verify_fwd";
/// Before the runtime's own filter chains (0) so nothing else decides first.
pub const VERIFY_PRIORITY: i32 = -200;

/// The `set` object with the fields the `nftables` crate lacks (`stmt` for element counters).
#[derive(Serialize)]
struct KeySet<'a> {
    family: &'static str,
    table: &'a str,
    name: &'static str,
    #[serde(rename = "type")]
    kind: [&'static str; 3],
    flags: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<u32>,
    size: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    stmt: Option<[Value; 1]>,
}

/// `{"add": {"set": …}}` for every observation set of `table`.
pub(super) fn observe_sets(table: &str) -> Vec<Value> {
    let mut sets = Vec::new();
    for v6 in [false, true] {
        let addr = if v6 { "ipv6_addr" } else { "ipv4_addr" };
        let kind = [addr, "inet_proto", "inet_service"];
        let pick = |a: &'static str, b: &'static str| if v6 { b } else { a };
        let denied = KeySet {
            family: "inet",
            table,
            name: pick(DENIED4_SET, DENIED6_SET),
            kind,
            flags: vec!["timeout"],
            timeout: Some(DENIED_TIMEOUT),
            size: DENIED_SIZE,
            stmt: Some([json!({ "counter": null })]),
        };
        let armed = |name| KeySet {
            family: "inet",
            table,
            name,
            kind,
            flags: vec!["timeout"],
            timeout: None,
            size: PROBE_SIZE,
            stmt: None,
        };
        let passed = KeySet {
            flags: vec!["timeout"],
            timeout: Some(PROBE_TIMEOUT),
            ..armed(pick(PASSED4_SET, PASSED6_SET))
        };
        for set in [
            denied,
            armed(pick(PROBE4_SET, PROBE6_SET)),
            armed(pick(FENCE4_SET, FENCE6_SET)),
            passed,
        ] {
            sets.push(json!({ "add": { "set": set } }));
        }
    }
    sets
}

/// `ip daddr . meta l4proto . th dport` (or `ip6 daddr …`): the key of every observation set.
pub(super) fn key(v6: bool) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![
        daddr_expr(v6),
        l4proto_expr(),
        th_dport_expr(),
    ]))
}

fn update(v6: bool, set: &str) -> Statement<'static> {
    Statement::Set(SetStatement {
        op: SetOp::Update,
        elem: key(v6),
        set: Cow::Owned(format!("@{set}")),
    })
}

fn key_in(v6: bool, set: &str) -> Statement<'static> {
    set_match(key(v6), Operator::EQ, set)
}

/// `TARGET meta l4proto { tcp, udp } update @denied4|6 { key }`: records a TCP or UDP attempt
/// that the following rules refuse. `target` must only match packets of family `v6`.
pub(super) fn log_denied(v6: bool, target: Stmts) -> CommentedRule {
    let mut stmts = target;
    stmts.push(l4proto_tcp_or_udp());
    stmts.push(update(v6, if v6 { DENIED6_SET } else { DENIED4_SET }));
    CommentedRule::commented(stmts, "log denied")
}

/// Rules of the `verify` chain: record every armed probe, drop the fenced ones.
pub(super) fn verify_rules() -> Vec<CommentedRule> {
    let mut rules = Vec::new();
    for v6 in [false, true] {
        let (probe, passed) = if v6 {
            (PROBE6_SET, PASSED6_SET)
        } else {
            (PROBE4_SET, PASSED4_SET)
        };
        rules.push(CommentedRule::commented(
            vec![key_in(v6, probe), update(v6, passed)],
            "verify record",
        ));
    }
    for v6 in [false, true] {
        let fence = if v6 { FENCE6_SET } else { FENCE4_SET };
        rules.push(CommentedRule::commented(
            vec![key_in(v6, fence), counter(), drop()],
            "verify fence",
        ));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_bounded_and_counts_each_destination() {
        let sets = observe_sets("alca-x");
        let denied: Vec<&Value> = sets
            .iter()
            .map(|s| &s["add"]["set"])
            .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("denied")))
            .collect();
        assert_eq!(denied.len(), 2);
        for set in denied {
            assert_eq!(set["size"], DENIED_SIZE);
            assert_eq!(set["timeout"], DENIED_TIMEOUT);
            assert_eq!(set["stmt"], json!([{ "counter": null }]));
        }
        assert!(sets
            .iter()
            .all(|s| s["add"]["set"]["size"].as_u64() > Some(0)));
    }

    #[test]
    fn the_log_rule_carries_no_verdict() {
        let rule = log_denied(false, vec![daddr_in_set(false, "deny4")]);
        let text = serde_json::to_string(&rule.stmts).unwrap();
        assert!(
            text.contains("\"update\"") && text.contains("@denied4"),
            "{text}"
        );
        assert!(!text.contains("reject") && !text.contains("accept") && !text.contains("drop"));
    }

    #[test]
    fn fences_drop_only_after_every_probe_is_recorded() {
        let got: Vec<String> = verify_rules()
            .into_iter()
            .map(|r| r.comment.unwrap_or_default())
            .collect();
        assert_eq!(
            got,
            [
                "verify record",
                "verify record",
                "verify fence",
                "verify fence"
            ]
        );
    }
}
