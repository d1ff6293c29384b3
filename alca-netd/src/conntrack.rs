//! Narrowing cuts live connections: after an Apply that changed a project's rules, or its
//! Remove, the connections its containers opened that the new rules would refuse are deleted
//! from conntrack (ctnetlink, typed messages on a socket of the daemon), so an open LAN
//! connection does not outlive its permission: the project's `ct state established` accept
//! would otherwise keep it going. No crate writes ctnetlink messages on the netlink-sys
//! socket the daemon already uses, and the few attributes needed are written here.
//!
//! A project's connections are those whose original source is on its bridge's subnets (the
//! bridge's own addresses, read with `getifaddrs`). What the new rules refuse follows the
//! compiled ruleset's order ([`crate::compile`]): the allow rules, the resolvers on port 53,
//! then the deny sets and the host's own addresses; the rest (the internet) stays allowed, or
//! with `internet-access` only what an address entry allows (and every DNS connection, which
//! must start again at the project's resolver). A
//! proxied project's TCP is sent to the proxy, so when the proxy changes every TCP connection
//! of the project is cut. After a Remove every connection of the bridge is cut.

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::compile::deny_nets;
use crate::internet::{InternetSpec, InternetTarget};
use crate::lan::Proto;
use crate::nfnl::{self, attributes, messages, Attr, Message, HEADERS, NLM_F_ACK, NLM_F_DUMP};
use crate::nfnl::{NLMSG_DONE, NLMSG_ERROR, NLM_F_REQUEST};
use crate::spec::NetSpec;

/// `NFNL_SUBSYS_CTNETLINK` and its `IPCTNL_MSG_CT_GET` / `_DELETE`.
const CT_GET: u16 = (1 << 8) | 1;
const CT_DELETE: u16 = (1 << 8) | 2;
/// `CTA_TUPLE_ORIG`, `CTA_TUPLE_IP`, `CTA_TUPLE_PROTO`, `CTA_IP_V4_SRC`…, `CTA_PROTO_*`.
const TUPLE_ORIG: u16 = 1;
const TUPLE_IP: u16 = 1;
const TUPLE_PROTO: u16 = 2;
const IP_V4_SRC: u16 = 1;
const IP_V4_DST: u16 = 2;
const IP_V6_SRC: u16 = 3;
const IP_V6_DST: u16 = 4;
const PROTO_NUM: u16 = 1;
const PROTO_SRC_PORT: u16 = 2;
const PROTO_DST_PORT: u16 = 3;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// Bounds the datagrams of one dump.
const MAX_DATAGRAMS: usize = 100_000;

/// The original direction of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// Whether `spec`'s rules refuse a new connection to `t` (see the module's note); `local`:
/// the host's own addresses.
pub fn refused(spec: &NetSpec, t: &Tuple, local: &[IpAddr]) -> bool {
    let proto = match t.proto {
        IPPROTO_TCP => Some(Proto::Tcp),
        IPPROTO_UDP => Some(Proto::Udp),
        _ => None,
    };
    let lan = || {
        deny_nets(t.dst.is_ipv6())
            .iter()
            .any(|net: &IpNet| net.contains(&t.dst))
            || local.contains(&t.dst)
    };
    if let Some(net) = &spec.internet {
        // New DNS goes to the project's resolver: every DNS connection starts again there.
        if proto.is_some() && t.dport == 53 {
            return true;
        }
        // The internet is refused but for the address entries (the allow sets of the domain
        // entries start empty with the new rules: their connections start again too).
        if !lan() && !internet_address_allows(net, t, proto) {
            return true;
        }
    }
    if spec.allow_all {
        return false;
    }
    let allowed = spec.allow.iter().any(|rule| {
        rule.net.contains(&t.dst)
            && rule.proto.is_none_or(|p| Some(p) == proto)
            && rule
                .port
                .is_none_or(|port| proto.is_some() && port == t.dport)
    });
    let dns = spec.dns.contains(&t.dst) && proto.is_some() && t.dport == 53;
    if allowed || dns {
        return false;
    }
    lan()
}

/// Whether an address entry of `internet-access` lets a TCP or UDP connection to `t` through.
fn internet_address_allows(net: &InternetSpec, t: &Tuple, proto: Option<Proto>) -> bool {
    proto.is_some()
        && net.entries.iter().any(|e| match e.target {
            InternetTarget::Net(n) => {
                n.contains(&t.dst)
                    && e.proto.is_none_or(|p| Some(p) == proto)
                    && e.port.is_none_or(|port| port == t.dport)
            }
            InternetTarget::Domain { .. } => false,
        })
}

/// The subnets of `bridge` (empty when it does not exist) and every local address.
fn addresses(bridge: &str) -> io::Result<(Vec<IpNet>, Vec<IpAddr>)> {
    let mut subnets = Vec::new();
    let mut local = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let addr = ifa.address.as_ref();
        let mask = ifa.netmask.as_ref();
        let (ip, prefix) = if let (Some(a), Some(m)) = (
            addr.and_then(|a| a.as_sockaddr_in()),
            mask.and_then(|m| m.as_sockaddr_in()),
        ) {
            (IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones() as u8)
        } else if let (Some(a), Some(m)) = (
            addr.and_then(|a| a.as_sockaddr_in6()),
            mask.and_then(|m| m.as_sockaddr_in6()),
        ) {
            (IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones() as u8)
        } else {
            continue;
        };
        local.push(ip);
        if ifa.interface_name == bridge {
            if let Ok(net) = IpNet::new(ip, prefix) {
                subnets.push(net.trunc());
            }
        }
    }
    Ok((subnets, local))
}

/// Deletes the connections from `bridge`'s subnets that `spec` refuses (all of them when
/// `spec` is `None`: the project was removed; all TCP ones too when `proxy_changed`). The
/// number deleted.
pub fn cut(bridge: &str, spec: Option<&NetSpec>, proxy_changed: bool) -> io::Result<usize> {
    let (subnets, local) = addresses(bridge)?;
    if subnets.is_empty() {
        return Ok(0); // no bridge, no containers on it
    }
    let doomed: Vec<(u8, Tuple)> = dump()?
        .into_iter()
        .filter(|(_, t)| subnets.iter().any(|n| n.contains(&t.src)))
        .filter(|(_, t)| match spec {
            None => true,
            Some(_) if proxy_changed && t.proto == IPPROTO_TCP => true,
            Some(spec) => refused(spec, t, &local),
        })
        .collect();
    let socket = nfnl::socket()?;
    let mut deleted = 0;
    for (family, t) in &doomed {
        socket.send(&delete_message(*family, t), 0)?;
        let mut answer = Vec::with_capacity(4096);
        socket.recv(&mut answer, 0)?;
        // ENOENT: it ended meanwhile.
        if let Some((NLMSG_ERROR, m)) = messages(&answer)?.first().copied() {
            match nfnl::error_code(m)? {
                0 => deleted += 1,
                code if -code == libc::ENOENT => {}
                code => return Err(io::Error::from_raw_os_error(-code)),
            }
        }
    }
    Ok(deleted)
}

fn dump() -> io::Result<Vec<(u8, Tuple)>> {
    let socket = nfnl::socket()?;
    let request = Message::new(CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, 0).finish();
    socket.send(&request, 0)?;
    let mut out = Vec::new();
    for _ in 0..MAX_DATAGRAMS {
        let mut datagram = Vec::with_capacity(1 << 16);
        socket.recv(&mut datagram, 0)?;
        for (kind, message) in messages(&datagram)? {
            match kind {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => match nfnl::error_code(message)? {
                    0 => return Ok(out),
                    code => return Err(io::Error::from_raw_os_error(-code)),
                },
                _ => {
                    if let Some(entry) = parse(message) {
                        out.push(entry);
                    }
                }
            }
        }
    }
    Err(io::Error::other("the conntrack dump did not end"))
}

/// The family and original tuple of one conntrack message.
fn parse(message: &[u8]) -> Option<(u8, Tuple)> {
    let family = *message.get(16)?;
    let attrs = attributes(message.get(HEADERS..)?)?;
    let (_, orig) = attrs.into_iter().find(|(k, _)| *k == TUPLE_ORIG)?;
    let orig = attributes(orig)?;
    let ip = attributes(orig.iter().find(|(k, _)| *k == TUPLE_IP)?.1)?;
    let proto = attributes(orig.iter().find(|(k, _)| *k == TUPLE_PROTO)?.1)?;
    let addr = |kind: u16| -> Option<IpAddr> {
        let v = ip.iter().find(|(k, _)| *k == kind)?.1;
        match v.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?)),
            16 => Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?)),
            _ => None,
        }
    };
    let (src, dst) = match family {
        AF_INET => (addr(IP_V4_SRC)?, addr(IP_V4_DST)?),
        AF_INET6 => (addr(IP_V6_SRC)?, addr(IP_V6_DST)?),
        _ => return None,
    };
    let field = |kind: u16| proto.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v);
    let port = |kind| {
        field(kind)
            .and_then(|v| <[u8; 2]>::try_from(v).ok())
            .map(u16::from_be_bytes)
            .unwrap_or(0)
    };
    let tuple = Tuple {
        src,
        dst,
        proto: *field(PROTO_NUM)?.first()?,
        sport: port(PROTO_SRC_PORT),
        dport: port(PROTO_DST_PORT),
    };
    Some((family, tuple))
}

/// `IPCTNL_MSG_CT_DELETE` of the connection whose original tuple is `t`.
fn delete_message(family: u8, t: &Tuple) -> Vec<u8> {
    let ip_bytes = |a: IpAddr| match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let (src, dst) = if family == AF_INET {
        (IP_V4_SRC, IP_V4_DST)
    } else {
        (IP_V6_SRC, IP_V6_DST)
    };
    let mut proto = vec![Attr::Bytes(PROTO_NUM, vec![t.proto])];
    if t.proto == IPPROTO_TCP || t.proto == IPPROTO_UDP {
        proto.push(Attr::Bytes(PROTO_SRC_PORT, t.sport.to_be_bytes().to_vec()));
        proto.push(Attr::Bytes(PROTO_DST_PORT, t.dport.to_be_bytes().to_vec()));
    }
    let tuple = Attr::Nest(
        TUPLE_ORIG,
        vec![
            Attr::Nest(
                TUPLE_IP,
                vec![
                    Attr::Bytes(src, ip_bytes(t.src)),
                    Attr::Bytes(dst, ip_bytes(t.dst)),
                ],
            ),
            Attr::Nest(TUPLE_PROTO, proto),
        ],
    );
    let mut m = Message::new(CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, 1, family);
    m.attr(&tuple);
    m.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lan::AllowRule;

    fn tuple(dst: &str, proto: u8, dport: u16) -> Tuple {
        Tuple {
            src: "172.29.0.2".parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            sport: 40000,
            dport,
        }
    }

    #[test]
    fn refusal_follows_allow_dns_deny_and_host() {
        let mut spec = crate::spec::sample_spec();
        spec.allow = vec![AllowRule {
            net: "10.99.0.0/24".parse().unwrap(),
            proto: Some(Proto::Tcp),
            port: Some(8080),
        }];
        spec.dns = vec!["172.29.0.1".parse().unwrap()];
        let local: Vec<IpAddr> = vec!["192.0.2.7".parse().unwrap()];
        assert!(!refused(
            &spec,
            &tuple("10.99.0.2", IPPROTO_TCP, 8080),
            &local
        ));
        assert!(refused(&spec, &tuple("10.99.0.2", IPPROTO_TCP, 22), &local));
        assert!(refused(
            &spec,
            &tuple("10.99.0.2", IPPROTO_UDP, 8080),
            &local
        ));
        assert!(!refused(
            &spec,
            &tuple("172.29.0.1", IPPROTO_UDP, 53),
            &local
        ));
        assert!(refused(&spec, &tuple("192.0.2.7", IPPROTO_TCP, 80), &local));
        assert!(!refused(
            &spec,
            &tuple("192.88.99.2", IPPROTO_TCP, 80),
            &local
        ));
        spec.allow_all = true;
        assert!(!refused(
            &spec,
            &tuple("10.99.0.2", IPPROTO_TCP, 22),
            &local
        ));
    }

    #[test]
    fn with_internet_access_only_address_entries_keep_internet_connections() {
        let mut spec = crate::spec::sample_spec();
        spec.allow_all = true;
        spec.internet = Some(InternetSpec {
            entries: ["allowed.test", "192.88.99.0/24:443"]
                .iter()
                .map(|e| crate::internet::parse_internet_entry(e).unwrap())
                .collect(),
            resolver: "172.29.0.1:5353".parse().unwrap(),
            ttl_floor_secs: 30,
            ttl_max_secs: 3600,
        });
        let local: Vec<IpAddr> = vec!["192.0.2.7".parse().unwrap()];
        let cut = |dst, proto, port| refused(&spec, &tuple(dst, proto, port), &local);
        assert!(!cut("192.88.99.2", IPPROTO_TCP, 443));
        assert!(
            cut("192.88.99.2", IPPROTO_UDP, 443),
            "the entry is TCP only"
        );
        assert!(cut("192.88.99.2", IPPROTO_TCP, 80));
        assert!(cut("93.184.216.34", IPPROTO_TCP, 443), "a name's address");
        assert!(
            cut("10.99.0.2", IPPROTO_UDP, 53),
            "DNS starts again at the resolver"
        );
        assert!(
            !cut("10.99.0.2", IPPROTO_TCP, 22),
            "the LAN is open with allow_all"
        );
    }

    #[test]
    fn a_delete_names_the_original_tuple() {
        let t = tuple("10.99.0.2", IPPROTO_TCP, 22);
        let m = delete_message(AF_INET, &t);
        let mut full = m.clone();
        // An entry as the kernel dumps it has the same CTA_TUPLE_ORIG.
        full[4..6].copy_from_slice(&CT_GET.to_ne_bytes());
        assert_eq!(parse(&full), Some((AF_INET, t)));
    }
}
