//! Constructors for the few typed matches and statements the compiler uses, so the rule
//! builders read like the nft rules they produce.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use alca_contract::lan::Proto;
use alca_ruleset_types::{
    Command, CtState, DestKey, Icmpv6Type, IfType, IpFamily, L4Proto, Match, PortHeader, Reject,
    Rule, Stmt,
};

/// The statements of one rule.
pub(super) type Stmts = Vec<Stmt>;

/// A rule in `table`/`chain` made of `stmts`, with a human-readable comment.
pub(super) fn rule(table: &str, chain: &str, rule: CommentedRule) -> Command {
    Command::AddRule(Rule {
        table: table.to_string(),
        chain: chain.to_string(),
        stmts: rule.stmts,
        comment: rule.comment,
    })
}

/// Statements plus an optional comment shown by `nft list`.
#[derive(Debug, Clone)]
pub(super) struct CommentedRule {
    pub stmts: Stmts,
    pub comment: Option<String>,
}

impl CommentedRule {
    pub fn new(stmts: Stmts) -> Self {
        CommentedRule {
            stmts,
            comment: None,
        }
    }

    pub fn commented(stmts: Stmts, comment: impl Into<String>) -> Self {
        CommentedRule {
            stmts,
            comment: Some(comment.into()),
        }
    }
}

fn is(m: Match) -> Stmt {
    Stmt::Match(m)
}

/// The contract's protocol as the ruleset names it.
pub(super) fn l4(proto: Proto) -> L4Proto {
    match proto {
        Proto::Tcp => L4Proto::Tcp,
        Proto::Udp => L4Proto::Udp,
    }
}

/// `ip daddr NET` / `ip6 daddr NET`.
pub(super) fn daddr_is(net: IpNet) -> Stmt {
    is(Match::Daddr(net))
}

/// `ip daddr ADDR` / `ip6 daddr ADDR`.
pub(super) fn daddr_ip(ip: IpAddr) -> Stmt {
    daddr_is(IpNet::from(ip))
}

/// `ip daddr @SET` / `ip6 daddr @SET`.
pub(super) fn daddr_in_set(v6: bool, set: &str) -> Stmt {
    is(Match::DaddrInSet(IpFamily::of(v6), set.to_string()))
}

/// `ip daddr . meta l4proto . th dport` (or `ip6 daddr …`): the key of the observation and
/// grant sets.
pub(super) fn key(v6: bool) -> DestKey {
    DestKey(IpFamily::of(v6))
}

/// `KEY @SET` for the [`key`] of family `v6`.
pub(super) fn key_in(v6: bool, set: &str) -> Stmt {
    is(Match::DestInSet(key(v6), set.to_string()))
}

/// `meta nfproto ipv4|ipv6`.
pub(super) fn nfproto(v6: bool) -> Stmt {
    is(Match::Nfproto(IpFamily::of(v6)))
}

/// `meta l4proto tcp|udp`.
pub(super) fn l4proto(proto: Proto) -> Stmt {
    is(Match::L4proto(l4(proto)))
}

/// `meta l4proto { tcp, udp }`.
pub(super) fn l4proto_tcp_or_udp() -> Stmt {
    is(Match::L4protoIn(vec![L4Proto::Tcp, L4Proto::Udp]))
}

/// `tcp dport P` / `udp dport P`, or `th dport P` (any transport) without a protocol.
pub(super) fn dport(proto: Option<Proto>, port: u16) -> Stmt {
    let header = match proto {
        Some(Proto::Tcp) => PortHeader::Tcp,
        Some(Proto::Udp) => PortHeader::Udp,
        None => PortHeader::Th,
    };
    is(Match::Dport(header, port))
}

/// The protocol and port matches of an allow entry: `tcp|udp dport N`, `meta l4proto P`, or
/// `meta l4proto { tcp, udp } th dport N` for a port without a protocol; nothing for neither.
pub(super) fn proto_port(proto: Option<Proto>, port: Option<u16>) -> Stmts {
    match (proto, port) {
        (Some(proto), Some(port)) => vec![dport(Some(proto), port)],
        (Some(proto), None) => vec![l4proto(proto)],
        (None, Some(port)) => vec![l4proto_tcp_or_udp(), dport(None, port)],
        (None, None) => vec![],
    }
}

/// `iifname NAME`.
pub(super) fn iifname(name: &str) -> Stmt {
    is(Match::Iifname(name.to_string()))
}

/// `meta oiftype loopback`: the packet leaves by a loopback device (by type: a NET_ADMIN
/// container can rename interfaces, not make another loopback).
pub(super) fn oiftype_loopback() -> Stmt {
    is(Match::Oiftype(IfType::Loopback))
}

/// `ct state { established, related }`.
pub(super) fn ct_established_or_related() -> Stmt {
    is(Match::CtStateIn(vec![
        CtState::Established,
        CtState::Related,
    ]))
}

/// `ct state { new }`: the first packet of a connection, the one the nat hook sees.
pub(super) fn ct_new() -> Stmt {
    is(Match::CtStateIn(vec![CtState::New]))
}

/// `icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255`: neighbour
/// discovery, without which the container cannot resolve its IPv6 gateway at all. A hop limit
/// of 255 proves the packet was not routed.
pub(super) fn neighbour_discovery() -> Stmts {
    vec![
        is(Match::Icmpv6TypeIn(vec![
            Icmpv6Type::NeighborSolicit,
            Icmpv6Type::NeighborAdvert,
        ])),
        is(Match::Ip6Hoplimit(255)),
    ]
}

/// `fib daddr type local`: the destination is one of this host's own addresses.
pub(super) fn daddr_is_local() -> Stmt {
    is(Match::FibDaddrLocal)
}

pub(super) fn counter() -> Stmt {
    Stmt::Counter
}

pub(super) fn accept() -> Stmt {
    Stmt::Accept
}

pub(super) fn drop() -> Stmt {
    Stmt::Drop
}

pub(super) fn jump(target: &str) -> Stmt {
    Stmt::Jump(target.to_string())
}

/// `reject with tcp reset`.
pub(super) fn reject_tcp_reset() -> Stmt {
    Stmt::Reject(Reject::TcpReset)
}

/// `reject with icmpx admin-prohibited` (ICMP or ICMPv6 as the packet's family needs).
pub(super) fn reject_admin_prohibited() -> Stmt {
    Stmt::Reject(Reject::AdminProhibited)
}

/// `dnat ip to ADDR:PORT` / `dnat ip6 to [ADDR]:PORT`.
pub(super) fn dnat_to(target: SocketAddr) -> Stmt {
    Stmt::Dnat(target)
}
