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

use alca_contract::probe::PROBE_SIZE;
use alca_ruleset_types::{Command, IpFamily, Set, SetKey, Stmt};

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
/// Seconds armed probe elements live: a verification that dies leaves nothing behind.
pub const PROBE_TIMEOUT: u32 = 120;
/// Regular chain holding the record and fence rules.
pub const VERIFY_CHAIN: &str = "verify";
/// Base chains jumping to [`VERIFY_CHAIN`] at the input and forward hooks.
pub const VERIFY_INPUT_CHAIN: &str = "verify_in";
pub const VERIFY_FORWARD_CHAIN: &str = "verify_fwd";
/// Before the runtime's own filter chains (0) so nothing else decides first.
pub const VERIFY_PRIORITY: i32 = -200;

/// `add set` commands for every observation set of `table`: keys `daddr . l4proto . dport`,
/// `flags timeout`, bounded.
pub(super) fn observe_sets(table: &str) -> Vec<Command> {
    let mut sets = Vec::new();
    for v6 in [false, true] {
        let pick = |a: &'static str, b: &'static str| if v6 { b } else { a };
        let armed = |name: &str| {
            let mut set = Set::new(table, name, SetKey::Dest(IpFamily::of(v6)));
            set.timeout_flag = true;
            set.size = Some(PROBE_SIZE);
            set
        };
        let denied = Set {
            size: Some(DENIED_SIZE),
            timeout_secs: Some(DENIED_TIMEOUT),
            counter: true,
            ..armed(pick(DENIED4_SET, DENIED6_SET))
        };
        let passed = Set {
            timeout_secs: Some(PROBE_TIMEOUT),
            ..armed(pick(PASSED4_SET, PASSED6_SET))
        };
        for set in [
            denied,
            armed(pick(PROBE4_SET, PROBE6_SET)),
            armed(pick(FENCE4_SET, FENCE6_SET)),
            passed,
        ] {
            sets.push(Command::AddSet(set));
        }
    }
    sets
}

fn update(v6: bool, set: &str) -> Stmt {
    Stmt::Update {
        key: key(v6),
        set: set.to_string(),
    }
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
    use serde_json::{json, Value};

    #[test]
    fn the_log_is_bounded_and_counts_each_destination() {
        let sets: Vec<Value> = observe_sets("alca-x")
            .iter()
            .map(crate::command_json)
            .collect();
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
        let text = crate::stmts_json(&rule.stmts).to_string();
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
