//! Whole-table messages with typed ownership: how a table is written (unowned, owned by the
//! writing socket, or owned and persistent), and the probe of whether this kernel keeps an
//! owned table past its owner.

use crate::{Attr, Message, DEL_TABLE, FAMILY_INET, NEW_TABLE, NLM_F_REQUEST};
use crate::{TABLE_FLAGS, TABLE_F_OWNER, TABLE_F_PERSIST, TABLE_NAME};

/// Who may change a table the kernel holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOwner {
    /// Anyone with `CAP_NET_ADMIN`.
    Unowned,
    /// Only the netlink socket that wrote it; the table goes with the socket.
    Socket,
    /// Only the socket that wrote it; it outlives the socket (orphaned until adopted or
    /// deleted). Needs `NFT_TABLE_F_PERSIST` (Linux >= 6.9).
    SocketPersistent,
}

impl TableOwner {
    /// The `NFTA_TABLE_FLAGS` value.
    pub(crate) fn bits(self) -> u32 {
        match self {
            TableOwner::Unowned => 0,
            TableOwner::Socket => TABLE_F_OWNER,
            TableOwner::SocketPersistent => TABLE_F_OWNER | TABLE_F_PERSIST,
        }
    }
}

/// `NEWTABLE inet name` with `owner`'s flags, sequence number `seq`.
pub fn new_table(name: &str, owner: TableOwner, seq: u32) -> Vec<u8> {
    let mut m = Message::new(NEW_TABLE, NLM_F_REQUEST, seq, FAMILY_INET);
    m.attr(&Attr::string(TABLE_NAME, name));
    m.attr(&Attr::u32_be(TABLE_FLAGS, owner.bits()));
    m.finish()
}

/// `DELTABLE inet name`, sequence number `seq`.
pub fn delete_table(name: &str, seq: u32) -> Vec<u8> {
    let mut m = Message::new(DEL_TABLE, NLM_F_REQUEST, seq, FAMILY_INET);
    m.attr(&Attr::string(TABLE_NAME, name));
    m.finish()
}

/// The transaction that creates `name` owned and persistent, then deletes it: a kernel
/// without `NFT_TABLE_F_PERSIST` refuses it (`EOPNOTSUPP`); either way no table is left.
pub fn persist_probe(name: &str) -> [Vec<u8>; 2] {
    [
        new_table(name, TableOwner::SocketPersistent, 1),
        delete_table(name, 1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{attributes, HEADERS};

    #[test]
    fn ownership_is_the_owner_and_persist_flags() {
        assert_eq!(TableOwner::Unowned.bits(), 0);
        assert_eq!(TableOwner::Socket.bits(), 2);
        assert_eq!(TableOwner::SocketPersistent.bits(), 6);
        let [create, delete] = persist_probe("alca-probe");
        assert_eq!(u16::from_ne_bytes([create[4], create[5]]), NEW_TABLE);
        assert_eq!(u16::from_ne_bytes([delete[4], delete[5]]), DEL_TABLE);
        let attrs = attributes(&create[HEADERS..]).unwrap();
        assert_eq!(attrs[0], (TABLE_NAME, &b"alca-probe\0"[..]));
        assert_eq!(attrs[1], (TABLE_FLAGS, &6u32.to_be_bytes()[..]));
    }
}
