//! `network.internet-access` in a project's table (when [`NetSpec::internet`] is set): DNS only
//! to the project's resolver, and the internet only to the listed destinations.
//!
//! * DNS: every new UDP/TCP packet to port 53 of the resolver's family, to any address, is let
//!   through the `isolate` chain and DNAT'ed to the resolver by the nat chain. DNS of the other
//!   family, DoT (853) and every other server are internet destinations like any other:
//!   refused unless an address entry allows them. Only `ct state new` DNS is let through early:
//!   a packet the nat hook never sees (conntrack state invalid) falls to the refusals below.
//! * LAN: unchanged (`lan-access` still decides every private and special range, before these
//!   rules); with `lan-access = ["*"]` the LAN sets and the host's own addresses are accepted
//!   before the internet rules.
//! * Internet: what is left after the LAN rules. Address entries are static rules. Domain
//!   entries share timed allow sets, one pair (`inet4_N`/`inet6_N`, hash sets with
//!   `flags timeout`) per distinct (protocol, port) of the entries: a packet costs one hash
//!   lookup per pair, whatever the number of addresses, and the rules grow with the pairs, not
//!   with the addresses. The daemon fills the sets from the resolver's answers
//!   ([`allow_set_for`]); the kernel removes each element when its timeout runs out. Only TCP
//!   and UDP (so QUIC) pass, on the ports an entry allows; everything else is logged in the
//!   denied log and refused.
//!
//! The chain runs at prerouting before any DNAT, so the check sees the container's original
//! destination also when `network.proxy` redirects the connection afterwards (the same address
//! `ct original ip daddr` holds): a proxy on the host's own address never sees a connection
//! the list refuses.

use std::net::{IpAddr, SocketAddr};

use alca_contract::internet::{InternetEntry, InternetSpec, InternetTarget};
use alca_contract::lan::Proto;
use alca_ruleset_types::{Command, IpFamily, Set, SetKey};

use super::deny::{DENY4_SET, DENY6_SET};
use super::expr::*;
use super::verify_rules::log_denied;

/// The nat chain of a project with `internet-access` and no proxy (with a proxy, the DNS rules
/// go first in the proxy chain: one nat base chain per project either way).
pub const DNS_NAT_CHAIN: &str = "dns";
/// Most addresses one allow set holds; the kernel refuses more (the update then fails, and the
/// resolver refuses the answer: fail closed).
pub const ALLOW_SET_SIZE: u32 = 65_536;

/// Time-boxed grants (`Grant`): addresses allowed on every port (TCP and UDP) until their
/// element times out, per family.
pub const GRANT4_SET: &str = "grant4";
pub const GRANT6_SET: &str = "grant6";
/// Time-boxed grants with a port: keys `daddr . l4proto . dport`, per family.
pub const GRANT_PORT4_SET: &str = "grantp4";
pub const GRANT_PORT6_SET: &str = "grantp6";

/// A (protocol, port) an entry allows: `None` is every protocol (TCP and UDP) or every port.
pub type AllowGroup = (Option<Proto>, Option<u16>);

/// The distinct (protocol, port) of the domain entries, in the order they first appear: the
/// allow sets of group `i` are [`allow_set_name`]`(i, …)`.
pub fn allow_groups(entries: &[InternetEntry]) -> Vec<AllowGroup> {
    let mut groups: Vec<AllowGroup> = Vec::new();
    for e in entries.iter().filter(|e| e.is_domain()) {
        if !groups.contains(&(e.proto, e.port)) {
            groups.push((e.proto, e.port));
        }
    }
    groups
}

/// `inet4_N` / `inet6_N`.
pub fn allow_set_name(group: usize, v6: bool) -> String {
    format!("inet{}_{group}", if v6 { 6 } else { 4 })
}

/// The allow set an address resolved for entry `entry` goes into; `None` when the entry is not
/// a domain entry of `spec` (see [`InternetSpec::check_update`]).
pub fn allow_set_for(spec: &InternetSpec, entry: u16, addr: IpAddr) -> Option<String> {
    let e = spec
        .entries
        .get(usize::from(entry))
        .filter(|e| e.is_domain())?;
    let group = allow_groups(&spec.entries)
        .iter()
        .position(|g| *g == (e.proto, e.port))?;
    let v6 = addr.to_canonical().is_ipv6();
    Some(allow_set_name(group, v6))
}

/// The `add set` commands of the allow sets.
pub(super) fn allow_sets(table: &str, spec: &InternetSpec) -> Vec<Command> {
    let groups = allow_groups(&spec.entries).len();
    (0..groups)
        .flat_map(|g| [false, true].map(|v6| (g, v6)))
        .map(|(g, v6)| {
            timed_set(
                table,
                &allow_set_name(g, v6),
                SetKey::Addr(IpFamily::of(v6)),
            )
        })
        .chain(
            [false, true]
                .into_iter()
                .flat_map(|v6| grant_sets(table, v6)),
        )
        .collect()
}

/// A set of `key`s with `flags timeout` and [`ALLOW_SET_SIZE`].
fn timed_set(table: &str, name: &str, key: SetKey) -> Command {
    let mut set = Set::new(table, name, key);
    set.timeout_flag = true;
    set.size = Some(ALLOW_SET_SIZE);
    Command::AddSet(set)
}

/// The grant sets of one family: plain addresses, and `daddr . l4proto . dport` keys.
fn grant_sets(table: &str, v6: bool) -> [Command; 2] {
    let family = IpFamily::of(v6);
    let (plain, keyed) = if v6 {
        (GRANT6_SET, GRANT_PORT6_SET)
    } else {
        (GRANT4_SET, GRANT_PORT4_SET)
    };
    [
        timed_set(table, plain, SetKey::Addr(family)),
        timed_set(table, keyed, SetKey::Dest(family)),
    ]
}

/// The `isolate` rule letting new DNS of the resolver's family through, to be DNAT'ed.
pub(super) fn dns_to_resolver(spec: &InternetSpec) -> CommentedRule {
    CommentedRule::commented(
        vec![
            nfproto(spec.resolver.is_ipv6()),
            l4proto_tcp_or_udp(),
            dport(None, 53),
            ct_new(),
            accept(),
        ],
        "dns to resolver",
    )
}

/// With `lan-access = ["*"]`: the LAN and the host's own addresses, accepted before the
/// internet rules.
pub(super) fn lan_open() -> Vec<CommentedRule> {
    [
        daddr_in_set(false, DENY4_SET),
        daddr_in_set(true, DENY6_SET),
        daddr_is_local(),
    ]
    .into_iter()
    .map(|target| CommentedRule::commented(vec![target, accept()], "lan-access *"))
    .collect()
}

/// The rules of what is left after the LAN rules: the entries, then the logged refusal.
pub(super) fn internet_rules(spec: &InternetSpec) -> Vec<CommentedRule> {
    let mut rules: Vec<CommentedRule> = spec
        .entries
        .iter()
        .filter_map(|e| match e.target {
            InternetTarget::Net(net) => {
                let mut stmts = vec![daddr_is(net)];
                stmts.extend(tcp_or_udp_on(e.proto, e.port));
                stmts.push(accept());
                Some(CommentedRule::commented(
                    stmts,
                    format!("internet-access {e}"),
                ))
            }
            InternetTarget::Domain { .. } => None,
        })
        .collect();
    for (g, (proto, port)) in allow_groups(&spec.entries).into_iter().enumerate() {
        for v6 in [false, true] {
            let mut stmts = vec![daddr_in_set(v6, &allow_set_name(g, v6))];
            stmts.extend(tcp_or_udp_on(proto, port));
            stmts.push(accept());
            rules.push(CommentedRule::commented(stmts, "internet-access names"));
        }
    }
    for v6 in [false, true] {
        let (plain, keyed) = if v6 {
            (GRANT6_SET, GRANT_PORT6_SET)
        } else {
            (GRANT4_SET, GRANT_PORT4_SET)
        };
        rules.push(CommentedRule::commented(
            vec![daddr_in_set(v6, plain), l4proto_tcp_or_udp(), accept()],
            "internet-access grants",
        ));
        rules.push(CommentedRule::commented(
            vec![key_in(v6, keyed), accept()],
            "internet-access grants",
        ));
    }
    for v6 in [false, true] {
        rules.push(log_denied(v6, vec![nfproto(v6)]));
    }
    rules.push(CommentedRule::commented(
        vec![l4proto(Proto::Tcp), counter(), reject_tcp_reset()],
        "deny internet",
    ));
    rules.push(CommentedRule::commented(
        vec![counter(), reject_admin_prohibited()],
        "deny internet",
    ));
    rules
}

/// TCP and UDP only, on the protocol and port an entry names.
fn tcp_or_udp_on(proto: Option<Proto>, port: Option<u16>) -> Stmts {
    match (proto, port) {
        (None, None) => vec![l4proto_tcp_or_udp()],
        _ => proto_port(proto, port),
    }
}

/// The nat rules sending the bridge's DNS of the resolver's family to the resolver.
pub(super) fn dns_nat_rules(bridge: &str, resolver: SocketAddr) -> Vec<CommentedRule> {
    [Proto::Udp, Proto::Tcp]
        .into_iter()
        .map(|proto| {
            CommentedRule::commented(
                vec![
                    iifname(bridge),
                    nfproto(resolver.is_ipv6()),
                    dport(Some(proto), 53),
                    dnat_to(resolver),
                ],
                "dns to resolver",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::internet::parse_internet_entry;

    fn spec(entries: &[&str]) -> InternetSpec {
        InternetSpec {
            entries: entries
                .iter()
                .map(|e| parse_internet_entry(e).unwrap())
                .collect(),
            resolver: "10.89.0.1:5353".parse().unwrap(),
            ttl_floor_secs: 30,
            ttl_max_secs: 3600,
        }
    }

    #[test]
    fn domain_entries_share_a_set_pair_per_protocol_and_port() {
        let s = spec(&[
            "a.test:8080",
            "*.wild.test",
            "192.88.99.0/24",
            "b.test:8080",
            "udp://c.test:443",
            "d.test",
        ]);
        assert_eq!(
            allow_groups(&s.entries),
            [
                (Some(Proto::Tcp), Some(8080)),
                (None, None),
                (Some(Proto::Udp), Some(443)),
            ]
        );
        let v4: IpAddr = "192.88.99.2".parse().unwrap();
        let v6: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(allow_set_for(&s, 3, v4).as_deref(), Some("inet4_0"));
        assert_eq!(allow_set_for(&s, 5, v6).as_deref(), Some("inet6_1"));
        assert_eq!(allow_set_for(&s, 4, v4).as_deref(), Some("inet4_2"));
        assert_eq!(
            allow_set_for(&s, 2, v4),
            None,
            "an address entry has no set"
        );
        assert_eq!(allow_set_for(&s, 9, v4), None);
        assert_eq!(allow_sets("alca-x", &s).len(), 6 + 4);
    }

    #[test]
    fn the_rules_grow_with_the_groups_not_the_entries() {
        let few = internet_rules(&spec(&["a.test", "b.test"])).len();
        let many: Vec<String> = (0..200).map(|i| format!("n{i}.test")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(internet_rules(&spec(&many)).len(), few);
    }

    #[test]
    fn everything_not_allowed_is_logged_then_refused() {
        let rules = internet_rules(&spec(&["192.88.99.2:443", "a.test"]));
        let comments: Vec<String> = rules
            .iter()
            .map(|r| r.comment.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            comments,
            [
                "internet-access 192.88.99.2:443",
                "internet-access names",
                "internet-access names",
                "internet-access grants",
                "internet-access grants",
                "internet-access grants",
                "internet-access grants",
                "log denied",
                "log denied",
                "deny internet",
                "deny internet",
            ]
        );
        let text = crate::stmts_json(&rules[0].stmts).to_string();
        assert!(text.contains("\"tcp\"") && text.contains("443"), "{text}");
        // An entry without protocol or port still lets only TCP and UDP through.
        let text = crate::stmts_json(&rules[1].stmts).to_string();
        assert!(
            text.contains("\"udp\"") && text.contains("@inet4_0"),
            "{text}"
        );
    }
}
