//! The names of the `inet` tables, from one table-only nf_tables netlink dump: List, the
//! start-up sweep and uninstall need every table's name, and `nft -j list tables` reads every
//! set with its elements first (43 s at 500 projects with nft 1.0.6). Read-only: no batch is
//! ever sent this way.

use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

/// `NFNL_SUBSYS_NFTABLES`, the high byte of every nf_tables message type.
const NFTABLES: u16 = 10 << 8;
/// `NFT_MSG_GETTABLE`.
const GET_TABLES: u16 = NFTABLES + 1;
/// `NFT_MSG_NEWTABLE` (= 0): one answer per table.
const NEW_TABLE: u16 = NFTABLES;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
/// `NFPROTO_INET`.
const FAMILY_INET: u8 = 1;
const NFTA_TABLE_NAME: u16 = 1;
/// `struct nlmsghdr` + `struct nfgenmsg`.
const HEADERS: usize = 16 + 4;
/// A dump of thousands of tables arrives in a few dozen datagrams; this only bounds a
/// misbehaving kernel.
const MAX_DATAGRAMS: usize = 100_000;

/// The names of all `inet` tables of this network namespace.
pub fn inet_table_names() -> std::io::Result<Vec<String>> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.send(&dump_request(), 0)?;
    let mut names = Vec::new();
    for _ in 0..MAX_DATAGRAMS {
        let mut datagram = Vec::with_capacity(1 << 16);
        socket.recv(&mut datagram, 0)?;
        if parse_datagram(&datagram, &mut names)? {
            return Ok(names);
        }
    }
    Err(std::io::Error::other("the table dump did not end"))
}

fn dump_request() -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADERS);
    message.extend_from_slice(&(HEADERS as u32).to_ne_bytes());
    message.extend_from_slice(&GET_TABLES.to_ne_bytes());
    message.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    message.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel assigns it
    message.extend_from_slice(&[FAMILY_INET, 0, 0, 0]); // family, version, resource id
    message
}

/// Adds the table names of one datagram to `names`; `true` once the dump is done.
fn parse_datagram(mut data: &[u8], names: &mut Vec<String>) -> std::io::Result<bool> {
    let garbled = || std::io::Error::other("garbled nf_tables netlink answer");
    while data.len() >= 16 {
        let len = u32::from_ne_bytes(data[0..4].try_into().map_err(|_| garbled())?) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if len < 16 || len > data.len() {
            return Err(garbled());
        }
        let message = &data[..len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = message
                    .get(16..20)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(garbled)?;
                return Err(std::io::Error::from_raw_os_error(-code));
            }
            NEW_TABLE => {
                if let Some(name) = message.get(HEADERS..).and_then(table_name) {
                    names.push(name);
                }
            }
            _ => {}
        }
        data = data.get(align(len)..).unwrap_or_default();
    }
    Ok(false)
}

/// The `NFTA_TABLE_NAME` attribute of one table message.
fn table_name(mut attributes: &[u8]) -> Option<String> {
    while attributes.len() >= 4 {
        let len = u16::from_ne_bytes([attributes[0], attributes[1]]) as usize;
        let kind = u16::from_ne_bytes([attributes[2], attributes[3]]) & 0x3fff;
        let value = attributes.get(4..len)?;
        if kind == NFTA_TABLE_NAME {
            let text = value.split(|b| *b == 0).next()?;
            return String::from_utf8(text.to_vec()).ok();
        }
        attributes = attributes.get(align(len.max(4))..)?;
    }
    None
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(payload);
        m.resize(align(m.len()), 0);
        m
    }

    fn table(name: &str) -> Vec<u8> {
        let mut p = vec![FAMILY_INET, 0, 0, 0];
        let value = [name.as_bytes(), &[0]].concat();
        let flags = [8u16.to_ne_bytes(), 3u16.to_ne_bytes()].concat();
        p.extend_from_slice(&[flags, vec![0; 4]].concat()); // NFTA_TABLE_FLAGS first
        p.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        p.extend_from_slice(&NFTA_TABLE_NAME.to_ne_bytes());
        p.extend_from_slice(&value);
        p.resize(align(p.len()), 0);
        message(NEW_TABLE, &p)
    }

    #[test]
    fn names_come_from_each_table_message_until_done() {
        let mut names = Vec::new();
        let first = [table("alca-0123"), table("filter")].concat();
        assert!(!parse_datagram(&first, &mut names).unwrap());
        let last = [table("x"), message(NLMSG_DONE, &[0; 4])].concat();
        assert!(parse_datagram(&last, &mut names).unwrap());
        assert_eq!(names, ["alca-0123", "filter", "x"]);
    }

    #[test]
    fn errors_and_garbage_are_errors_not_names() {
        let error = message(NLMSG_ERROR, &(-1i32).to_ne_bytes());
        let err = parse_datagram(&error, &mut Vec::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(1));
        let mut cut = table("alca-0123");
        cut.truncate(20);
        cut[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(parse_datagram(&cut, &mut Vec::new()).is_err());
    }

    #[test]
    fn the_request_is_a_table_dump_of_the_inet_family() {
        let r = dump_request();
        assert_eq!(r.len(), HEADERS);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), GET_TABLES);
        assert_eq!(r[16], FAMILY_INET);
    }
}
