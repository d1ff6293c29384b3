//! The one nft-JSON encoder of a [`Ruleset`]: what `nft -j -f` reads. It serves `nft -c` in the
//! golden tests, the goldens themselves (`tests/golden/*.json`, which pin every byte of it),
//! and the tests that load a ruleset through `nft` to compare it with the daemon's netlink
//! writer (`alca_kernel::ruleset`, the other encoder of the same value). The daemon itself
//! never runs it. Every value is a typed field turned into a JSON string or number here: no
//! user string is ever parsed by nft as syntax.

use ipnet::IpNet;
use serde_json::{json, Value};

use alca_ruleset_types::{
    BaseChain, Chain, ChainType, Command, CtState, DestKey, Element, Hook, Icmpv6Type, IfType,
    IpFamily, L4Proto, Match, Policy, PortHeader, Reject, Rule, Ruleset, Set, SetKey, Stmt,
};

/// `{"nftables": [command, …]}`.
pub fn nft_json(ruleset: &Ruleset) -> Value {
    let commands: Vec<Value> = ruleset.commands.iter().map(command_json).collect();
    json!({ "nftables": commands })
}

/// One command: `{"add": {KIND: OBJECT}}` or `{"delete": {"table": …}}`.
pub fn command_json(command: &Command) -> Value {
    match command {
        Command::AddTable(name) => json!({"add": {"table": table(name)}}),
        Command::DeleteTable(name) => json!({"delete": {"table": table(name)}}),
        Command::AddSet(s) => json!({"add": {"set": set(s)}}),
        Command::AddChain(c) => json!({"add": {"chain": chain(c)}}),
        Command::AddRule(r) => json!({"add": {"rule": rule(r)}}),
    }
}

/// The statements of a rule, as the `expr` list of its JSON.
pub fn stmts_json(stmts: &[Stmt]) -> Value {
    Value::Array(stmts.iter().map(stmt).collect())
}

fn table(name: &str) -> Value {
    json!({"family": "inet", "name": name})
}

fn set(s: &Set) -> Value {
    let mut obj = json!({
        "family": "inet",
        "table": s.table,
        "name": s.name,
        "type": set_type(s.key),
    });
    let mut flags = Vec::new();
    if s.interval {
        flags.push("interval");
    }
    if s.timeout_flag {
        flags.push("timeout");
    }
    if !flags.is_empty() {
        obj["flags"] = json!(flags);
    }
    if let Some(size) = s.size {
        obj["size"] = json!(size);
    }
    if let Some(timeout) = s.timeout_secs {
        obj["timeout"] = json!(timeout);
    }
    if s.counter {
        obj["stmt"] = json!([{ "counter": null }]);
    }
    if let Some(elements) = &s.elements {
        obj["elem"] = elements.iter().map(element).collect();
    }
    obj
}

fn addr_type(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ipv4_addr",
        IpFamily::V6 => "ipv6_addr",
    }
}

fn set_type(key: SetKey) -> Value {
    match key {
        SetKey::Uid => json!("uid"),
        SetKey::Addr(f) => json!(addr_type(f)),
        SetKey::Dest(f) => json!([addr_type(f), "inet_proto", "inet_service"]),
    }
}

fn element(e: &Element) -> Value {
    match e {
        Element::Uid(uid) => json!(uid),
        Element::Net(net) => net_value(*net),
    }
}

/// An address (`10.0.0.1`) for a full-length prefix, else `{"prefix": {…}}` of its network.
fn net_value(net: IpNet) -> Value {
    if net.prefix_len() == net.max_prefix_len() {
        return json!(net.addr().to_string());
    }
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
}

fn chain(c: &Chain) -> Value {
    let mut obj = json!({"family": "inet", "table": c.table, "name": c.name});
    if let Some(BaseChain {
        kind,
        hook,
        priority,
        policy,
    }) = c.base
    {
        obj["type"] = json!(match kind {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        });
        obj["hook"] = json!(match hook {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        });
        obj["prio"] = json!(priority);
        obj["policy"] = json!(match policy {
            Policy::Accept => "accept",
        });
    }
    obj
}

fn rule(r: &Rule) -> Value {
    let mut obj = json!({
        "family": "inet",
        "table": r.table,
        "chain": r.chain,
        "expr": stmts_json(&r.stmts),
    });
    if let Some(comment) = &r.comment {
        obj["comment"] = json!(comment);
    }
    obj
}

fn stmt(s: &Stmt) -> Value {
    match s {
        Stmt::Match(m) => matches(m),
        Stmt::Counter => json!({"counter": null}),
        Stmt::Accept => json!({"accept": null}),
        Stmt::Drop => json!({"drop": null}),
        Stmt::Jump(target) => json!({"jump": {"target": target}}),
        Stmt::Reject(Reject::TcpReset) => json!({"reject": {"type": "tcp reset"}}),
        Stmt::Reject(Reject::AdminProhibited) => {
            json!({"reject": {"type": "icmpx", "expr": "admin-prohibited"}})
        }
        Stmt::Dnat(to) => json!({"dnat": {
            "addr": to.ip().to_string(),
            "family": if to.is_ipv6() { "ip6" } else { "ip" },
            "port": to.port(),
        }}),
        Stmt::Update { key, set } => json!({"set": {
            "op": "update",
            "elem": dest_key(*key),
            "set": format!("@{set}"),
        }}),
    }
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"left": left, "op": "==", "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn ip_header(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ip",
        IpFamily::V6 => "ip6",
    }
}

fn daddr(family: IpFamily) -> Value {
    payload(ip_header(family), "daddr")
}

fn l4proto_name(p: L4Proto) -> &'static str {
    match p {
        L4Proto::Tcp => "tcp",
        L4Proto::Udp => "udp",
    }
}

fn dest_key(DestKey(family): DestKey) -> Value {
    json!({"concat": [daddr(family), meta("l4proto"), payload("th", "dport")]})
}

fn matches(m: &Match) -> Value {
    match m {
        Match::Iifname(name) => eq(meta("iifname"), json!(name)),
        Match::Oiftype(IfType::Loopback) => eq(meta("oiftype"), json!("loopback")),
        Match::Nfproto(f) => eq(
            meta("nfproto"),
            json!(match f {
                IpFamily::V4 => "ipv4",
                IpFamily::V6 => "ipv6",
            }),
        ),
        Match::L4proto(p) => eq(meta("l4proto"), json!(l4proto_name(*p))),
        Match::L4protoIn(ps) => {
            let names: Vec<&str> = ps.iter().map(|p| l4proto_name(*p)).collect();
            eq(meta("l4proto"), json!({ "set": names }))
        }
        Match::Daddr(net) => {
            let family = IpFamily::of(matches!(net, IpNet::V6(_)));
            eq(daddr(family), net_value(*net))
        }
        Match::DaddrInSet(f, set) => eq(daddr(*f), json!(format!("@{set}"))),
        Match::Dport(header, port) => {
            let header = match header {
                PortHeader::Tcp => "tcp",
                PortHeader::Udp => "udp",
                PortHeader::Th => "th",
            };
            eq(payload(header, "dport"), json!(port))
        }
        Match::Ip6Hoplimit(n) => eq(payload("ip6", "hoplimit"), json!(n)),
        Match::Icmpv6TypeIn(types) => {
            let names: Vec<&str> = types
                .iter()
                .map(|t| match t {
                    Icmpv6Type::NeighborSolicit => "nd-neighbor-solicit",
                    Icmpv6Type::NeighborAdvert => "nd-neighbor-advert",
                })
                .collect();
            eq(payload("icmpv6", "type"), json!({ "set": names }))
        }
        Match::CtStateIn(states) => {
            let names: Vec<&str> = states
                .iter()
                .map(|s| match s {
                    CtState::Established => "established",
                    CtState::Related => "related",
                    CtState::New => "new",
                })
                .collect();
            json!({"match": {"left": {"ct": {"key": "state"}}, "op": "in", "right": names}})
        }
        Match::FibDaddrLocal => eq(
            json!({"fib": {"result": "type", "flags": ["daddr"]}}),
            json!("local"),
        ),
        Match::DestInSet(key, set) => eq(dest_key(*key), json!(format!("@{set}"))),
    }
}
