//! The names of the `inet` tables, from one table-only nf_tables netlink dump: List, the
//! start-up sweep and uninstall need every table's name, and `nft -j list tables` reads every
//! set with its elements first (43 s at 500 projects with nft 1.0.6); and whether one table
//! exists (Status, a new project's Apply). Read-only: no batch is ever sent this way.

use crate::{Message, FAMILY_INET, GET_TABLE, HEADERS, NEW_TABLE, NLM_F_DUMP, NLM_F_REQUEST};

const NFTA_TABLE_NAME: u16 = 1;

/// The names of all `inet` tables of this network namespace.
pub fn inet_table_names() -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    crate::dump(&dump_request(), |kind, message| {
        if let Some(name) = table_name(kind, message) {
            names.push(name);
        }
    })?;
    Ok(names)
}

/// Whether the `inet` table `name` exists: one `NFT_MSG_GETTABLE` for it, answered with the
/// table or `ENOENT`.
pub fn inet_table_exists(name: &str) -> std::io::Result<bool> {
    let mut request = Message::new(GET_TABLE, NLM_F_REQUEST, 1, FAMILY_INET);
    request.string(NFTA_TABLE_NAME, name);
    let mut found = false;
    match crate::request(&request.finish(), |kind, message| {
        found |= table_name(kind, message).as_deref() == Some(name);
    }) {
        Ok(()) => Ok(found),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

fn dump_request() -> Vec<u8> {
    Message::new(GET_TABLE, NLM_F_REQUEST | NLM_F_DUMP, 1, FAMILY_INET).finish()
}

/// The `NFTA_TABLE_NAME` of a table message.
fn table_name(kind: u16, message: &[u8]) -> Option<String> {
    if kind != NEW_TABLE {
        return None;
    }
    let attributes = crate::attributes(message.get(HEADERS..)?)?;
    let (_, value) = attributes
        .into_iter()
        .find(|(k, _)| *k == NFTA_TABLE_NAME)?;
    let text = value.split(|b| *b == 0).next()?;
    String::from_utf8(text.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Vec<u8> {
        let mut m = Message::new(NEW_TABLE, 2, 1, FAMILY_INET);
        m.bytes(3, &[0; 4]).string(NFTA_TABLE_NAME, name); // NFTA_TABLE_FLAGS first
        m.finish()
    }

    #[test]
    fn the_name_comes_from_each_table_message() {
        let dump = [table("alca-0123"), table("filter")].concat();
        let names: Vec<_> = crate::messages(&dump)
            .unwrap()
            .into_iter()
            .filter_map(|(kind, m)| table_name(kind, m))
            .collect();
        assert_eq!(names, ["alca-0123", "filter"]);
    }

    #[test]
    fn other_messages_and_garbage_are_not_names() {
        assert_eq!(table_name(crate::NLMSG_DONE, &table("x")), None);
        let mut cut = table("alca-0123");
        cut.truncate(HEADERS + 6);
        assert_eq!(table_name(NEW_TABLE, &cut), None);
    }

    #[test]
    fn the_request_is_a_table_dump_of_the_inet_family() {
        let r = dump_request();
        assert_eq!(r.len(), HEADERS);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), GET_TABLE);
        assert_eq!(r[16], FAMILY_INET);
    }
}
