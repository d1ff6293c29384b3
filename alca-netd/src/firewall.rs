//! The only place that talks to nftables: applies one batch atomically (the compiler's JSON,
//! encoded for nf_tables netlink by [`ruleset`], or run by `nft -j -f -` where that encoder
//! has no encoding), or one element batch over netlink, and lists the `alca-` tables. Batches touching anything but `alca-` tables are refused here.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::nfnl::rule::single_entry;
use crate::nfnl::{self, ruleset};
use crate::set_elements::ElementBatch;
use crate::spec::{validate_project_id, NAME_PREFIX};
use crate::table_names;

/// Why nftables could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
    #[error("nft refused the transaction: {0}")]
    Nft(String),
    #[error("nft printed output that is not nftables JSON: {0}")]
    Output(String),
    #[error("refusing a batch that touches {0:?}: only tables named alca-… may be changed")]
    Foreign(String),
    #[error("nf_tables refused the transaction: {0}")]
    Netlink(std::io::Error),
    #[error(
        "nf_tables refused the transaction: the kernel allows at most 1024 base chains per hook \
         point, and this host has reached it (each isolated project takes one at prerouting, two \
         with a proxy): remove the projects no longer used (`alca down`, `alca cleanup`)"
    )]
    HookLimit,
}

impl FirewallError {
    /// What a refused netlink transaction means: `E2BIG` is the kernel's hook limit.
    fn netlink(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(libc::E2BIG) {
            FirewallError::HookLimit
        } else {
            FirewallError::Netlink(e)
        }
    }
}

/// What the daemon needs from the packet filter; a fake stands in for it in unit tests.
pub trait Firewall: Send + Sync {
    /// Runs one batch as a single atomic transaction.
    fn apply(&self, batch: &Value) -> Result<(), FirewallError>;
    /// Runs one element batch as a single atomic transaction: through [`Firewall::apply`]
    /// unless the implementation has a cheaper way.
    fn apply_elements(&self, batch: &ElementBatch) -> Result<(), FirewallError> {
        self.apply(&batch.to_json())
    }
    /// Names of the `inet` tables whose name starts with `alca-`.
    fn alca_tables(&self) -> Result<Vec<String>, FirewallError>;
    /// `nft -j list table inet NAME` (rules with counters, sets with elements); `None` when
    /// the table does not exist.
    fn list_table(&self, name: &str) -> Result<Option<Value>, FirewallError>;
    /// Whether the `alca-` table `name` exists.
    fn has_alca_table(&self, name: &str) -> Result<bool, FirewallError> {
        Ok(self.alca_tables()?.iter().any(|t| t == name))
    }
}

/// The real packet filter, driven through the `nft` binary in JSON mode.
pub struct Nft {
    bin: String,
    /// Batches go to nf_tables over this one socket.
    netlink: nfnl::Connection,
}

impl Default for Nft {
    fn default() -> Self {
        // Bus activation starts us with an almost empty environment: do not rely on PATH.
        let bin = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nft");
        Nft {
            bin: bin.into(),
            netlink: nfnl::Connection::default(),
        }
    }
}

impl Nft {
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, FirewallError> {
        let spawn_err = |source| FirewallError::Spawn {
            bin: self.bin.clone(),
            source,
        };
        let mut child = Command::new(&self.bin)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).map_err(spawn_err)?;
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(FirewallError::Nft(err));
        }
        Ok(out.stdout)
    }
}

impl Nft {
    /// Whether `nft list tables` works at all (nf_tables loaded, permission granted).
    pub fn has_table_listing(&self) -> bool {
        self.run(&["-j", "list", "tables"], None).is_ok()
    }

    /// Whether a table exists (read-only; used to detect the host's own firewall).
    pub fn has_table(&self, family: &str, name: &str) -> bool {
        if family == "inet" {
            if let Ok(exists) = table_names::inet_table_exists(name) {
                return exists;
            }
        }
        let Ok(out) = self.run(&["-j", "list", "tables", family], None) else {
            return false;
        };
        let json: Value = serde_json::from_slice(&out).unwrap_or_default();
        json["nftables"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|item| item.get("table"))
            .any(|t| t["family"] == family && t["name"] == name)
    }
}

impl Firewall for Nft {
    fn apply(&self, batch: &Value) -> Result<(), FirewallError> {
        ensure_only_alca(batch)?;
        match ruleset::messages(batch) {
            Ok(messages) => self
                .netlink
                .transact(&messages)
                .map_err(FirewallError::netlink),
            Err(unsupported) => {
                tracing::warn!("{unsupported}: the batch goes through nft instead");
                let text = batch.to_string();
                self.run(&["-j", "-f", "-"], Some(text.as_bytes()))
                    .map(|_| ())
            }
        }
    }

    /// Over netlink ([`ElementBatch::messages`]): through nft, each costs a read of every table.
    fn apply_elements(&self, batch: &ElementBatch) -> Result<(), FirewallError> {
        if !is_project_table(&batch.table) {
            return Err(FirewallError::Foreign(batch.table.clone()));
        }
        self.netlink
            .transact(&batch.messages())
            .map_err(FirewallError::netlink)
    }

    /// One table-only netlink dump ([`table_names`]); `nft -j list tables` (which reads
    /// every set first) only if that dump cannot be had.
    fn alca_tables(&self) -> Result<Vec<String>, FirewallError> {
        if let Ok(names) = table_names::inet_table_names() {
            return Ok(names
                .into_iter()
                .filter(|n| n.starts_with(NAME_PREFIX))
                .collect());
        }
        let out = self.run(&["-j", "list", "tables", "inet"], None)?;
        let json: Value =
            serde_json::from_slice(&out).map_err(|e| FirewallError::Output(e.to_string()))?;
        Ok(alca_table_names(&json))
    }

    /// Lists that one table only: nft 1.0.6 then fetches just it, where `list tables` reads
    /// every table with all its sets (seconds with hundreds of projects).
    fn list_table(&self, name: &str) -> Result<Option<Value>, FirewallError> {
        // nft joins its arguments into one command line: only project table names go there.
        if !is_project_table(name) {
            return Ok(None);
        }
        let out = match self.run(&["-j", "list", "table", "inet", name], None) {
            Ok(out) => out,
            Err(FirewallError::Nft(msg)) if is_missing_table(&msg) => return Ok(None),
            Err(e) => return Err(e),
        };
        let json =
            serde_json::from_slice(&out).map_err(|e| FirewallError::Output(e.to_string()))?;
        Ok(Some(json))
    }

    /// One netlink request for the table; a listing only if that cannot be had.
    fn has_alca_table(&self, name: &str) -> Result<bool, FirewallError> {
        if !is_project_table(name) {
            return Ok(false);
        }
        match table_names::inet_table_exists(name) {
            Ok(exists) => Ok(exists),
            Err(_) => Ok(self.list_table(name)?.is_some()),
        }
    }
}

/// `alca-<project id>` with a valid id (hex digits only).
fn is_project_table(name: &str) -> bool {
    name.strip_prefix(NAME_PREFIX)
        .is_some_and(|id| validate_project_id(id).is_ok())
}

/// nft's answer when the table it was asked to list does not exist (the kernel's ENOENT).
fn is_missing_table(stderr: &str) -> bool {
    stderr.lines().next().map(str::trim) == Some("Error: No such file or directory")
}

/// Picks the `alca-` table names out of `nft -j list tables` output.
pub fn alca_table_names(listing: &Value) -> Vec<String> {
    let items = listing["nftables"].as_array().map(Vec::as_slice);
    items
        .unwrap_or_default()
        .iter()
        .filter_map(|item| item.get("table"))
        .filter(|t| t["family"] == "inet")
        .filter_map(|t| t["name"].as_str())
        .filter(|name| name.starts_with(NAME_PREFIX))
        .map(str::to_string)
        .collect()
}

/// Refuses a batch unless every command names an `alca-` table.
pub fn ensure_only_alca(batch: &Value) -> Result<(), FirewallError> {
    let foreign =
        |what: &Value| FirewallError::Foreign(what.to_string().chars().take(120).collect());
    let commands = batch["nftables"].as_array().ok_or_else(|| foreign(batch))?;
    for command in commands {
        let Some((verb, body)) = single_entry(command) else {
            return Err(foreign(command));
        };
        if verb == "metainfo" {
            continue;
        }
        let Some((kind, object)) = single_entry(body) else {
            return Err(foreign(command));
        };
        let table = if kind == "table" {
            &object["name"]
        } else {
            &object["table"]
        };
        match table.as_str() {
            Some(name) if name.starts_with(NAME_PREFIX) => {}
            _ => return Err(foreign(command)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hook_limit_is_named_and_other_errors_keep_their_errno() {
        let limit = FirewallError::netlink(std::io::Error::from_raw_os_error(libc::E2BIG));
        assert!(matches!(limit, FirewallError::HookLimit));
        assert!(limit.to_string().contains("1024 base chains"), "{limit}");
        let other = FirewallError::netlink(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert!(
            matches!(&other, FirewallError::Netlink(e) if e.raw_os_error() == Some(libc::ENOENT))
        );
    }

    #[test]
    fn missing_table_and_project_table_names() {
        assert!(is_missing_table(
            "Error: No such file or directory\nlist table inet alca-x\n                ^^^^^^"
        ));
        assert!(!is_missing_table("Error: Operation not permitted"));
        assert!(!is_missing_table(""));
        assert!(is_project_table("alca-0123abcd"));
        assert!(!is_project_table("alca-x; flush ruleset"));
        assert!(!is_project_table("other"));
    }

    #[test]
    fn allows_batches_on_alca_tables_only() {
        let ok = json!({"nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"add": {"table": {"family": "inet", "name": "alca-deadbeef"}}},
            {"add": {"chain": {"family": "inet", "table": "alca-deadbeef", "name": "c"}}},
        ]});
        assert!(ensure_only_alca(&ok).is_ok());
        for bad in [
            json!({"nftables": [{"flush": {"ruleset": null}}]}),
            json!({"nftables": [{"delete": {"table": {"family": "inet", "name": "filter"}}}]}),
            json!({"nftables": [{"add": {"rule": {"family": "ip", "table": "nat", "chain": "x"}}}]}),
            json!({"nftables": [{"add": {"table": {"name": "alca-x"}, "rule": {}}}]}),
            json!({"other": []}),
        ] {
            assert!(ensure_only_alca(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_only_inet_alca_tables() {
        let listing = json!({"nftables": [
            {"metainfo": {}},
            {"table": {"family": "inet", "name": "alca-0123456789abcdef"}},
            {"table": {"family": "ip", "name": "alca-0123456789abcdef"}},
            {"table": {"family": "inet", "name": "testenv-uplink-guard"}},
        ]});
        assert_eq!(alca_table_names(&listing), vec!["alca-0123456789abcdef"]);
    }
}
