//! Pure compiler from a validated [`NetSpec`] to one atomic nftables JSON batch (`nft -j -f -`).
//!
//! Strings from users never reach nft text: everything is a typed JSON value.

use serde_json::{json, Value};

use crate::spec::{table_name, NetSpec};

/// Batch that atomically replaces the project's table with its compiled ruleset.
/// `owner_uid` is recorded in the table so ownership survives daemon restarts.
pub fn replace_batch(spec: &NetSpec, owner_uid: u32) -> Value {
    // Placeholder until the full compiler lands: an empty owned table.
    let table = json!({"family": "inet", "name": spec.table_name()});
    let _ = owner_uid;
    json!({"nftables": [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
    ]})
}

/// Batch that deletes the project's table; succeeds whether or not it exists.
pub fn delete_batch(project: &str) -> Value {
    let table = json!({"family": "inet", "name": table_name(project)});
    json!({"nftables": [
        {"add": {"table": table}},
        {"delete": {"table": table}},
    ]})
}
