//! Connection tracking over ctnetlink: the dump of every connection's original tuple and the
//! delete of one connection, as typed values (the daemon decides which connections go). No crate
//! writes ctnetlink messages on the netlink-sys socket the daemon already uses, and the few
//! attributes needed are written here.

use std::io;
use std::net::IpAddr;

use crate::{attributes, messages, Attr, Message, HEADERS, NLM_F_ACK, NLM_F_DUMP};
use crate::{NLMSG_DONE, NLMSG_ERROR, NLM_F_REQUEST};

/// `IPPROTO_TCP` and `IPPROTO_UDP`, as [`Tuple::proto`] carries them.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

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

/// Deletes the connections whose original tuples are `doomed`; the number deleted (one that
/// ended meanwhile is not counted).
pub fn delete(doomed: &[Tuple]) -> io::Result<usize> {
    let socket = crate::socket()?;
    let mut deleted = 0;
    for t in doomed {
        socket.send(&delete_message(t), 0)?;
        let mut answer = Vec::with_capacity(4096);
        socket.recv(&mut answer, 0)?;
        // ENOENT: it ended meanwhile.
        if let Some((NLMSG_ERROR, m)) = messages(&answer)?.first().copied() {
            match crate::error_code(m)? {
                0 => deleted += 1,
                code if -code == libc::ENOENT => {}
                code => return Err(io::Error::from_raw_os_error(-code)),
            }
        }
    }
    Ok(deleted)
}

/// Every connection conntrack holds, by its original tuple.
pub fn dump() -> io::Result<Vec<Tuple>> {
    let socket = crate::socket()?;
    let request = Message::new(CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, 0).finish();
    socket.send(&request, 0)?;
    let mut out = Vec::new();
    for _ in 0..MAX_DATAGRAMS {
        let mut datagram = Vec::with_capacity(1 << 16);
        socket.recv(&mut datagram, 0)?;
        for (kind, message) in messages(&datagram)? {
            match kind {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => match crate::error_code(message)? {
                    0 => return Ok(out),
                    code => return Err(io::Error::from_raw_os_error(-code)),
                },
                _ => {
                    if let Some((_, tuple)) = parse(message) {
                        out.push(tuple);
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
fn delete_message(t: &Tuple) -> Vec<u8> {
    let family = if t.src.is_ipv4() { AF_INET } else { AF_INET6 };
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
    fn a_delete_names_the_original_tuple() {
        let t = tuple("10.99.0.2", IPPROTO_TCP, 22);
        let m = delete_message(&t);
        let mut full = m.clone();
        // An entry as the kernel dumps it has the same CTA_TUPLE_ORIG.
        full[4..6].copy_from_slice(&CT_GET.to_ne_bytes());
        assert_eq!(parse(&full), Some((AF_INET, t)));
    }
}
