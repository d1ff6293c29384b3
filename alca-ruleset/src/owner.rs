//! Records which uid owns a project's table inside the table itself, and reads it back from
//! `nft -j list table …`/`nft -j list ruleset` output.
//!
//! nft 1.0.6 drops table, chain and set comments in JSON (both ways), so the owner is the single
//! element of a set `owner` of type `uid`: it survives daemon restarts, is shown by
//! `nft list table inet alca-<id>` as `set owner { type uid; elements = { 1000 } }`, and is
//! replaced atomically together with the rules.

use serde_json::Value;

use alca_ruleset_types::{Command, Element, Set, SetKey};

/// Name of the set holding the owner uid.
pub const OWNER_SET: &str = "owner";

/// The command creating the owner set of `table` with `uid` as its element.
pub(super) fn owner_set(table: &str, uid: u32) -> Command {
    let mut set = Set::new(table, OWNER_SET, SetKey::Uid);
    set.elements = Some(vec![Element::Uid(uid)]);
    Command::AddSet(set)
}

/// The owner uid recorded in `table`, found in the JSON output of `nft -j list table inet
/// TABLE` or `nft -j list ruleset`; `None` when the table or its owner set is missing.
pub fn owner_uid(listing: &Value, table: &str) -> Option<u32> {
    listing
        .get("nftables")?
        .as_array()?
        .iter()
        .filter_map(|obj| obj.get("set"))
        .find(|set| {
            set.get("family").and_then(Value::as_str) == Some("inet")
                && set.get("table").and_then(Value::as_str) == Some(table)
                && set.get("name").and_then(Value::as_str) == Some(OWNER_SET)
        })
        .and_then(|set| single_element(set.get("elem")?))
}

/// nft lists a one-element set as a bare value or as a one-item array.
fn single_element(elem: &Value) -> Option<u32> {
    let value = match elem {
        Value::Array(items) if items.len() == 1 => &items[0],
        Value::Array(_) => return None,
        other => other,
    };
    value.as_u64().and_then(|uid| u32::try_from(uid).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_back_what_nft_lists() {
        let listing = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "alca-0123456789abcdef", "handle": 9}},
            {"set": {"family": "inet", "name": "owner", "table": "alca-0123456789abcdef",
                     "type": "uid", "handle": 3, "elem": [1000]}},
            {"set": {"family": "inet", "name": "owner", "table": "alca-ffffffffffff",
                     "type": "uid", "handle": 3, "elem": 0}}
        ]});
        assert_eq!(owner_uid(&listing, "alca-0123456789abcdef"), Some(1000));
        assert_eq!(owner_uid(&listing, "alca-ffffffffffff"), Some(0));
        assert_eq!(owner_uid(&listing, "alca-00000000"), None);
    }

    #[test]
    fn refuses_ambiguous_or_foreign_values() {
        let two = json!({"nftables": [{"set": {"family": "inet", "name": "owner",
            "table": "alca-x", "elem": [1, 2]}}]});
        assert_eq!(owner_uid(&two, "alca-x"), None);
        let big = json!({"nftables": [{"set": {"family": "inet", "name": "owner",
            "table": "alca-x", "elem": [u64::from(u32::MAX) + 1]}}]});
        assert_eq!(owner_uid(&big, "alca-x"), None);
        assert_eq!(owner_uid(&json!({"nope": 1}), "alca-x"), None);
    }
}
