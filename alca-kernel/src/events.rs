//! nf_tables change events (the `NFNLGRP_NFTABLES` multicast group): which table each change
//! of the ruleset touched, and which netlink socket made it. the daemon's `heal` reads them to see
//! its tables change under it.

use std::io;

use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket};

use super::{attributes, messages, HEADERS};
use super::{DEL_CHAIN, DEL_RULE, DEL_SET, DEL_SET_ELEM, DEL_TABLE};
use super::{NEW_CHAIN, NEW_RULE, NEW_SET, NEW_SET_ELEM, NEW_TABLE};

/// `NFNLGRP_NFTABLES`.
const GROUP_NFTABLES: u32 = 7;

/// One change of the ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The table it touched.
    pub table: String,
    /// The port id of the socket whose transaction made it (0: the kernel itself).
    pub port: u32,
}

/// A socket subscribed to the nf_tables events of the calling thread's network namespace.
pub struct Events {
    socket: Socket,
}

impl Events {
    pub fn subscribe() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.add_membership(GROUP_NFTABLES)?;
        // A flood of events must not end the listening: an overrun (ENOBUFS) is reported
        // by `next` as a change of every table.
        let _ = socket.set_rx_buf_sz(4 << 20);
        Ok(Events { socket })
    }

    /// Waits for the next datagram of events and returns its changes of tables; `None` when
    /// events were lost (the receive buffer overran): anything may have changed.
    pub fn next(&self) -> io::Result<Option<Vec<Change>>> {
        let mut datagram = Vec::with_capacity(1 << 16);
        match self.socket.recv(&mut datagram, 0) {
            Ok(_) => Ok(Some(changes(&datagram)?)),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Events {
    /// [`Events::next`] without waiting: `None` when nothing is queued.
    pub fn next_now(&self) -> io::Result<Option<Option<Vec<Change>>>> {
        let mut datagram = Vec::with_capacity(1 << 16);
        match self.socket.recv(&mut datagram, libc::MSG_DONTWAIT) {
            Ok(_) => Ok(Some(Some(changes(&datagram)?))),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Some(None)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The table changes of one datagram of events.
pub fn changes(datagram: &[u8]) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    for (kind, message) in messages(datagram)? {
        let object = [
            NEW_TABLE,
            DEL_TABLE,
            NEW_CHAIN,
            DEL_CHAIN,
            NEW_RULE,
            DEL_RULE,
            NEW_SET,
            DEL_SET,
            NEW_SET_ELEM,
            DEL_SET_ELEM,
        ];
        if !object.contains(&kind) {
            continue;
        }
        let port = u32::from_ne_bytes([message[12], message[13], message[14], message[15]]);
        // Attribute 1 names the table in each of these messages (`NFTA_TABLE_NAME`,
        // `NFTA_CHAIN_TABLE`, `NFTA_RULE_TABLE`, `NFTA_SET_TABLE`, `NFTA_SET_ELEM_LIST_TABLE`).
        let table = message
            .get(HEADERS..)
            .and_then(attributes)
            .and_then(|attrs| attrs.into_iter().find(|(k, _)| *k == 1))
            .map(|(_, v)| {
                String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or(v)).into_owned()
            });
        if let Some(table) = table {
            out.push(Change { table, port });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, FAMILY_INET};

    #[test]
    fn a_change_names_its_table_and_sender() {
        let mut m = Message::new(DEL_RULE, 0, 5, FAMILY_INET);
        m.string(1, "alca-0123456789").string(2, "isolate");
        let mut bytes = m.finish();
        bytes[12..16].copy_from_slice(&77u32.to_ne_bytes());
        let other = Message::new(crate::GET_TABLE, 0, 1, FAMILY_INET).finish();
        let got = changes(&[bytes, other].concat()).unwrap();
        assert_eq!(
            got,
            [Change {
                table: "alca-0123456789".into(),
                port: 77
            }]
        );
    }
}
