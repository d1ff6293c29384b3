//! The rules of the `isolate` chain: what a packet arriving on the project's bridge may reach.
//!
//! Order: replies of existing connections, neighbour discovery, the cross-family TCP refusal
//! of a proxied project, the user's allow rules, DNS, the proxy itself, then the deny sets and
//! the host's own addresses. Whatever is left (the internet) returns to the base chain, whose
//! policy accepts it, unless `internet-access` limits it (see `internet`).

use std::net::SocketAddr;

use ipnet::IpNet;

use crate::lan::{AllowRule, Proto};
use crate::spec::NetSpec;

use super::deny::{DENY4_SET, DENY6_SET};
use super::expr::*;
use super::internet;
use super::observe::log_denied;
use super::ISOLATE_CHAIN;

/// The base chain's only rule: `iifname BRIDGE jump isolate`.
pub(super) fn jump_from_bridge(bridge: &str) -> CommentedRule {
    jump_from_bridge_to(bridge, ISOLATE_CHAIN)
}

/// `iifname NAME jump CHAIN`.
pub(super) fn jump_from_bridge_to(bridge: &str, chain: &str) -> CommentedRule {
    CommentedRule::new(vec![iifname(bridge), jump(chain)])
}

/// All rules of the `isolate` chain; empty when the project needs no filtering at all
/// (`allow_all` without a proxy).
pub(super) fn isolate_rules(spec: &NetSpec) -> Vec<CommentedRule> {
    let net = spec.internet.as_ref();
    if spec.allow_all && spec.proxy.is_none() && net.is_none() {
        return Vec::new();
    }
    let mut rules = vec![CommentedRule::new(vec![
        ct_established_or_related(),
        accept(),
    ])];
    if let Some(proxy) = spec.proxy {
        rules.push(cross_family_tcp_refusal(proxy));
    }
    rules.extend(net.map(internet::dns_to_resolver));
    if spec.allow_all {
        if let Some(net) = net {
            rules.extend(spec.proxy.map(proxy_allow));
            rules.extend(internet::lan_open());
            rules.extend(internet::internet_rules(net));
        }
        return rules;
    }
    let mut nd = neighbour_discovery();
    nd.push(accept());
    rules.push(CommentedRule::new(nd));
    rules.extend(spec.allow.iter().map(allow_rule));
    // With `internet-access`, DNS goes only to the project's resolver (above).
    let resolvers = if net.is_some() {
        &[][..]
    } else {
        &spec.dns[..]
    };
    rules.extend(resolvers.iter().map(|ip| {
        CommentedRule::commented(
            vec![
                daddr_ip(*ip),
                l4proto_tcp_or_udp(),
                dport(None, 53),
                accept(),
            ],
            "dns",
        )
    }));
    if let Some(proxy) = spec.proxy {
        rules.push(proxy_allow(proxy));
    }
    rules.extend(deny_rules());
    rules.extend(net.map(internet::internet_rules).unwrap_or_default());
    rules
}

/// One `lan-access` entry: `ip daddr NET [meta l4proto P] [tcp|udp|th dport N] accept`.
/// A port without a protocol (upstream's `*://IP:port`) allows TCP and UDP; the parser turns
/// a plain `IP:port` into TCP only, as upstream does.
fn allow_rule(rule: &AllowRule) -> CommentedRule {
    let mut stmts = vec![daddr_is(rule.net)];
    stmts.extend(proto_port(rule.proto, rule.port));
    stmts.push(accept());
    CommentedRule::commented(stmts, format!("lan-access {}", describe(rule)))
}

/// The `lan-access` line a rule came from, for `nft list` readers.
fn describe(rule: &AllowRule) -> String {
    let net = rule.net;
    let host = if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    };
    let host_port = |port: u16| match net {
        IpNet::V6(_) => format!("[{host}]:{port}"),
        IpNet::V4(_) => format!("{host}:{port}"),
    };
    match (rule.proto, rule.port) {
        (Some(proto), Some(port)) => format!("{proto}://{}", host_port(port)),
        (Some(proto), None) => format!("{proto}://{host}"),
        (None, Some(port)) => host_port(port),
        (None, None) => host,
    }
}

/// A proxy serves one family; TCP of the other family cannot be redirected to it and must not
/// bypass it, so it is refused.
fn cross_family_tcp_refusal(proxy: SocketAddr) -> CommentedRule {
    CommentedRule::commented(
        vec![
            nfproto(!proxy.is_ipv6()),
            l4proto(Proto::Tcp),
            counter(),
            reject_tcp_reset(),
        ],
        "proxy family only",
    )
}

/// The proxy itself is reachable even when it sits on a denied or host-local address.
fn proxy_allow(proxy: SocketAddr) -> CommentedRule {
    CommentedRule::commented(
        vec![
            daddr_ip(proxy.ip()),
            dport(Some(Proto::Tcp), proxy.port()),
            accept(),
        ],
        "proxy",
    )
}

/// Deny sets then host-local addresses, each refused loudly: TCP with a reset, everything else
/// with ICMP administratively prohibited, counted. Each target's TCP and UDP attempts are first
/// recorded in the bounded denied log (see `observe`).
fn deny_rules() -> Vec<CommentedRule> {
    let targets = [
        (Some(false), daddr_in_set(false, DENY4_SET), "deny lan"),
        (Some(true), daddr_in_set(true, DENY6_SET), "deny lan"),
        (None, daddr_is_local(), "deny host"),
    ];
    targets
        .into_iter()
        .flat_map(|(family, target, why)| {
            let logs = match family {
                Some(v6) => vec![log_denied(v6, vec![target.clone()])],
                None => [false, true]
                    .map(|v6| log_denied(v6, vec![nfproto(v6), target.clone()]))
                    .to_vec(),
            };
            logs.into_iter().chain([
                CommentedRule::commented(
                    vec![
                        target.clone(),
                        l4proto(Proto::Tcp),
                        counter(),
                        reject_tcp_reset(),
                    ],
                    why,
                ),
                CommentedRule::commented(vec![target, counter(), reject_admin_prohibited()], why),
            ])
        })
        .collect()
}
