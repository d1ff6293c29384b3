//! Constructors for the few typed nftables expressions and statements the compiler uses, so the
//! rule builders read like the nft rules they produce.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, SetItem, CT,
};
use nftables::schema::{NfListObject, Rule};
use nftables::stmt::{
    AnonymousCounter, Counter, JumpTarget, Match, NATFamily, Operator, Reject, RejectType,
    Statement, NAT,
};
use nftables::types::{NfFamily, RejectCode};

use crate::lan::Proto;

/// The statements of one rule.
pub(super) type Stmts = Vec<Statement<'static>>;

/// A rule in `table`/`chain` made of `stmts`, with a human-readable comment.
pub(super) fn rule(table: &str, chain: &str, rule: CommentedRule) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: Cow::Owned(table.to_string()),
        chain: Cow::Owned(chain.to_string()),
        expr: Cow::Owned(rule.stmts),
        comment: rule.comment.map(Cow::Owned),
        ..Rule::default()
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

fn str_expr(s: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(s.into()))
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::EQ, right)
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(field),
        },
    )))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn anon_set(items: &[&'static str]) -> Expression<'static> {
    Expression::Named(NamedExpression::Set(
        items
            .iter()
            .map(|i| SetItem::Element(Expression::String(Cow::Borrowed(i))))
            .collect(),
    ))
}

/// The nft header name of an address family: `ip` or `ip6`.
fn ip_header(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

/// An address (`10.0.0.1`) or prefix (`10.0.0.0/8`) value.
pub(super) fn net_value(net: IpNet) -> Expression<'static> {
    if net.prefix_len() == net.max_prefix_len() {
        return str_expr(net.addr().to_string());
    }
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(str_expr(net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

/// `ip daddr NET` / `ip6 daddr NET`.
pub(super) fn daddr_is(net: IpNet) -> Statement<'static> {
    let v6 = matches!(net, IpNet::V6(_));
    eq(payload(ip_header(v6), "daddr"), net_value(net))
}

/// `ip daddr ADDR` / `ip6 daddr ADDR`.
pub(super) fn daddr_ip(ip: IpAddr) -> Statement<'static> {
    daddr_is(IpNet::from(ip))
}

/// `ip daddr @SET` / `ip6 daddr @SET`.
pub(super) fn daddr_in_set(v6: bool, set: &str) -> Statement<'static> {
    set_match(daddr_expr(v6), Operator::EQ, set)
}

/// `LEFT @SET` (or `LEFT != @SET`).
pub(super) fn set_match(left: Expression<'static>, op: Operator, set: &str) -> Statement<'static> {
    matches(left, op, str_expr(format!("@{set}")))
}

/// `ip daddr` / `ip6 daddr`.
pub(super) fn daddr_expr(v6: bool) -> Expression<'static> {
    payload(ip_header(v6), "daddr")
}

/// `meta l4proto`.
pub(super) fn l4proto_expr() -> Expression<'static> {
    meta(MetaKey::L4proto)
}

/// `th dport`: the destination port of TCP and UDP alike.
pub(super) fn th_dport_expr() -> Expression<'static> {
    payload("th", "dport")
}

/// `meta nfproto ipv4|ipv6`.
pub(super) fn nfproto(v6: bool) -> Statement<'static> {
    let family = if v6 { "ipv6" } else { "ipv4" };
    eq(meta(MetaKey::Nfproto), str_expr(family))
}

/// `meta l4proto tcp|udp`.
pub(super) fn l4proto(proto: Proto) -> Statement<'static> {
    eq(meta(MetaKey::L4proto), str_expr(proto.to_string()))
}

/// `meta l4proto { tcp, udp }`.
pub(super) fn l4proto_tcp_or_udp() -> Statement<'static> {
    eq(meta(MetaKey::L4proto), anon_set(&["tcp", "udp"]))
}

/// `tcp dport P` / `udp dport P`, or `th dport P` (any transport) without a protocol.
pub(super) fn dport(proto: Option<Proto>, port: u16) -> Statement<'static> {
    let header = match proto {
        Some(Proto::Tcp) => "tcp",
        Some(Proto::Udp) => "udp",
        None => "th",
    };
    eq(
        payload(header, "dport"),
        Expression::Number(u32::from(port)),
    )
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
pub(super) fn iifname(name: &str) -> Statement<'static> {
    eq(meta(MetaKey::Iifname), str_expr(name))
}

/// `ct state { established, related }`.
pub(super) fn ct_established_or_related() -> Statement<'static> {
    let state = Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed("state"),
        family: None,
        dir: None,
    }));
    let flags = Expression::List(vec![str_expr("established"), str_expr("related")]);
    matches(state, Operator::IN, flags)
}

/// `ct state { new }`: the first packet of a connection, the one the nat hook sees.
pub(super) fn ct_new() -> Statement<'static> {
    let state = Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed("state"),
        family: None,
        dir: None,
    }));
    matches(state, Operator::IN, Expression::List(vec![str_expr("new")]))
}

/// `icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255`: neighbour
/// discovery, without which the container cannot resolve its IPv6 gateway at all. A hop limit
/// of 255 proves the packet was not routed.
pub(super) fn neighbour_discovery() -> Stmts {
    vec![
        eq(
            payload("icmpv6", "type"),
            anon_set(&["nd-neighbor-solicit", "nd-neighbor-advert"]),
        ),
        eq(payload("ip6", "hoplimit"), Expression::Number(255)),
    ]
}

/// `fib daddr type local`: the destination is one of this host's own addresses.
pub(super) fn daddr_is_local() -> Statement<'static> {
    let fib = Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: HashSet::from([FibFlag::Daddr]),
    }));
    eq(fib, str_expr("local"))
}

pub(super) fn counter() -> Statement<'static> {
    Statement::Counter(Counter::Anonymous(None::<AnonymousCounter>))
}

pub(super) fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

pub(super) fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

pub(super) fn jump(target: &str) -> Statement<'static> {
    Statement::Jump(JumpTarget {
        target: Cow::Owned(target.to_string()),
    })
}

/// `reject with tcp reset`.
pub(super) fn reject_tcp_reset() -> Statement<'static> {
    Statement::Reject(Some(Reject::new(Some(RejectType::TCPReset), None)))
}

/// `reject with icmpx admin-prohibited` (ICMP or ICMPv6 as the packet's family needs).
pub(super) fn reject_admin_prohibited() -> Statement<'static> {
    Statement::Reject(Some(Reject::new(
        Some(RejectType::ICMPX),
        Some(RejectCode::AdminProhibited),
    )))
}

/// `dnat ip to ADDR:PORT` / `dnat ip6 to [ADDR]:PORT`.
pub(super) fn dnat_to(target: SocketAddr) -> Statement<'static> {
    let family = if target.is_ipv6() {
        NATFamily::IP6
    } else {
        NATFamily::IP
    };
    Statement::DNAT(Some(NAT {
        addr: Some(str_expr(target.ip().to_string())),
        family: Some(family),
        port: Some(Expression::Number(u32::from(target.port()))),
        flags: None,
    }))
}
