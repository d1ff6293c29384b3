//! The only place that talks to nftables: applies one batch atomically (the compiler's typed
//! [`Ruleset`], encoded for nf_tables netlink by [`ruleset`]) or one element batch, both over the daemon's
//! one nf_tables socket, and lists the `alca-` tables. The tables it creates are owned by that
//! socket and persist past it where the kernel can ([`TableFlags`]). A batch the encoder
//! cannot encode is refused, never handed to `nft` (which would create an unowned table).
//! Batches touching anything but `alca-` tables are refused here.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::conntrack;
use crate::guard;
use crate::table_shape;
use alca_contract::net_spec::{validate_project_id, NetSpec, NAME_PREFIX};
use alca_kernel::set_elements::ElementBatch;
use alca_kernel::table_names;
use alca_kernel::tables::{persist_probe, TableOwner};
use alca_kernel::{self, ruleset};
use alca_ruleset::Ruleset;

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
        "internal error: the daemon has no netlink encoding for its own batch ({0}); nothing \
         was changed (a batch through nft would create a table the daemon does not own)"
    )]
    Unencodable(String),
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
    fn apply(&self, batch: &Ruleset) -> Result<(), FirewallError>;
    /// Runs one element batch as a single atomic transaction.
    fn apply_elements(&self, batch: &ElementBatch) -> Result<(), FirewallError>;
    /// Names of the `inet` tables whose name starts with `alca-`.
    fn alca_tables(&self) -> Result<Vec<String>, FirewallError>;
    /// `nft -j list table inet NAME` (rules with counters, sets with elements); `None` when
    /// the table does not exist.
    fn list_table(&self, name: &str) -> Result<Option<Value>, FirewallError>;
    /// What [`crate::probe_sets::check_live`] needs of the live table `name` to compare it with
    /// `expected` (its compiled batch): a listing here, a netlink read of just those parts in
    /// [`Nft`] ([`table_shape`]); `None` when the table does not exist.
    fn live_shape(&self, name: &str, expected: &Ruleset) -> Result<Option<Value>, FirewallError> {
        let _ = expected;
        self.list_table(name)
    }
    /// Whether the `alca-` table `name` exists.
    fn has_alca_table(&self, name: &str) -> Result<bool, FirewallError> {
        Ok(self.alca_tables()?.iter().any(|t| t == name))
    }
    /// [`Firewall::apply`] of a project's batch that, in the same transaction, marks the
    /// project's `bridge` in the guard as having rules (`ruled`) or not ([`guard::mark`]).
    fn apply_project(
        &self,
        batch: &Ruleset,
        bridge: &str,
        ruled: bool,
    ) -> Result<(), FirewallError> {
        let _ = (bridge, ruled);
        self.apply(batch)
    }
    /// [`Firewall::apply_project`] followed, in the same transaction, by the element adds of
    /// `keep` (the live allow-set elements a re-apply carries over): the new table never runs
    /// without them. Two transactions here unless the implementation can do one.
    fn apply_project_keeping(
        &self,
        batch: &Ruleset,
        bridge: &str,
        ruled: bool,
        keep: &ElementBatch,
    ) -> Result<(), FirewallError> {
        self.apply_project(batch, bridge, ruled)?;
        self.apply_elements(keep)
    }
    /// (Re-)creates the guard with `ruled` as the bridges that have rules ([`guard::install`]).
    fn install_guard(&self, ruled: &[String]) -> Result<(), FirewallError> {
        let _ = ruled;
        Ok(())
    }
    /// The netlink port id the implementation writes from (0: none), to tell its own
    /// nf_tables events from everyone else's.
    fn own_port(&self) -> u32 {
        0
    }
    /// Whether the tables it writes are owned by the daemon and outlive it.
    fn owned_tables(&self) -> bool {
        false
    }
    /// Ends the connections from `bridge` that `spec` refuses ([`conntrack::cut`]; all of
    /// them without a spec); logged, never failing the Apply or Remove that already ran.
    fn cut_connections(&self, bridge: &str, spec: Option<&NetSpec>, proxy_changed: bool) {
        let _ = (bridge, spec, proxy_changed);
    }
}

/// The real packet filter: writes over the daemon's nf_tables socket, reads through `nft`'s
/// JSON listing or netlink dumps.
pub struct Nft {
    bin: String,
    /// Batches go to nf_tables over this one socket, which owns the tables they create.
    netlink: alca_kernel::Connection,
    /// What the kernel lets the daemon's tables have, found on first use.
    flags: OnceLock<TableFlags>,
}

/// The flags the daemon's tables get: owner and persist together, or neither.
///
/// Owner without persist (kernels before 6.9) would make every table, the guard included, go
/// with the daemon's socket: a daemon crash would open every project. So there the tables stay
/// unowned, as before: `nft flush ruleset` can remove them, and the daemon restores them when
/// it sees that happen ([`crate::heal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFlags {
    pub persist: bool,
}

impl TableFlags {
    /// How the daemon's tables are owned with these flags.
    pub fn owner(self) -> TableOwner {
        if self.persist {
            TableOwner::SocketPersistent
        } else {
            TableOwner::Unowned
        }
    }
}

/// A table name no project can have (not hex), used only inside [`Nft::table_flags`]'s probe.
const PROBE_TABLE: &str = "alca-flags-probe";

impl Default for Nft {
    fn default() -> Self {
        // Bus activation starts us with an almost empty environment: do not rely on PATH.
        let bin = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nft");
        Nft {
            bin: bin.into(),
            netlink: alca_kernel::Connection::default(),
            flags: OnceLock::new(),
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
    /// An `Nft` that does not ask the kernel and writes its tables with `flags` (tests: the
    /// behaviour of a kernel without persist).
    pub fn with_table_flags(flags: TableFlags) -> Self {
        let nft = Nft::default();
        let _ = nft.flags.set(flags);
        nft
    }

    /// Whether the kernel has `NFT_TABLE_F_PERSIST`: asked once, on the daemon's socket, by a
    /// transaction that creates an owned persistent table and deletes it again (the kernel
    /// refuses unknown table flags with `EOPNOTSUPP`; either way no table is left).
    pub fn table_flags(&self) -> TableFlags {
        *self.flags.get_or_init(|| {
            let persist = match self.netlink.transact(&persist_probe(PROBE_TABLE)) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(
                        "this kernel cannot keep an owned table past its owner ({e}): \
                         project tables stay unowned (needs Linux >= 6.9)"
                    );
                    false
                }
            };
            TableFlags { persist }
        })
    }

    /// The netlink port id of the daemon's socket (0 before its first batch).
    pub fn port(&self) -> u32 {
        self.netlink.port()
    }

    /// [`ruleset::owned_messages`] of `batch`, then `extra`, as one transaction.
    fn apply_with(&self, batch: &Ruleset, extra: Vec<Vec<u8>>) -> Result<(), FirewallError> {
        ensure_only_alca(batch)?;
        let owner = self.table_flags().owner();
        let mut messages = ruleset::owned_messages(batch, owner)
            .map_err(|e| FirewallError::Unencodable(e.to_string()))?;
        messages.extend(extra);
        self.transact(&messages)
    }

    /// Runs raw nf_tables messages (the guard's) as one transaction on the daemon's socket.
    pub fn transact(&self, messages: &[Vec<u8>]) -> Result<(), FirewallError> {
        self.netlink
            .transact(messages)
            .map_err(FirewallError::netlink)
    }

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
    fn apply(&self, batch: &Ruleset) -> Result<(), FirewallError> {
        self.apply_with(batch, Vec::new())
    }

    fn apply_project(
        &self,
        batch: &Ruleset,
        bridge: &str,
        ruled: bool,
    ) -> Result<(), FirewallError> {
        self.apply_with(batch, guard::mark(bridge, ruled))
    }

    fn apply_project_keeping(
        &self,
        batch: &Ruleset,
        bridge: &str,
        ruled: bool,
        keep: &ElementBatch,
    ) -> Result<(), FirewallError> {
        if !is_project_table(&keep.table) {
            return Err(FirewallError::Foreign(keep.table.clone()));
        }
        let mut extra = guard::mark(bridge, ruled);
        extra.extend(keep.messages());
        self.apply_with(batch, extra)
    }

    fn install_guard(&self, ruled: &[String]) -> Result<(), FirewallError> {
        let owner = self.table_flags().owner();
        self.transact(&guard::install(owner, ruled))
    }

    fn own_port(&self) -> u32 {
        self.port()
    }

    fn owned_tables(&self) -> bool {
        self.table_flags().persist
    }

    fn cut_connections(&self, bridge: &str, spec: Option<&NetSpec>, proxy_changed: bool) {
        match conntrack::cut(bridge, spec, proxy_changed) {
            Ok(0) => {}
            Ok(n) => tracing::info!(bridge, "ended {n} connection(s) the new rules refuse"),
            Err(e) => tracing::error!(
                bridge,
                "cannot end the connections the new rules refuse: {e}"
            ),
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

    /// Over netlink ([`table_shape`]); a listing only if that cannot be had.
    fn live_shape(&self, name: &str, expected: &Ruleset) -> Result<Option<Value>, FirewallError> {
        if !is_project_table(name) {
            return Ok(None);
        }
        match table_shape::read(name, expected) {
            Ok(shape) => Ok(shape),
            Err(e) => {
                tracing::warn!(table = name, "netlink read failed ({e}); listing with nft");
                self.list_table(name)
            }
        }
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

/// A batch whose every command names the table it acts on.
pub trait NamesTables {
    /// The table of each command.
    fn tables(&self) -> Vec<&str>;
}

impl NamesTables for Ruleset {
    fn tables(&self) -> Vec<&str> {
        self.commands.iter().map(|c| c.table()).collect()
    }
}

impl NamesTables for ElementBatch {
    fn tables(&self) -> Vec<&str> {
        vec![&self.table]
    }
}

/// Refuses a batch unless every command names an `alca-` table.
pub fn ensure_only_alca(batch: &impl NamesTables) -> Result<(), FirewallError> {
    match batch
        .tables()
        .into_iter()
        .find(|t| !t.starts_with(NAME_PREFIX))
    {
        Some(foreign) => Err(FirewallError::Foreign(foreign.chars().take(120).collect())),
        None => Ok(()),
    }
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

    /// `flush ruleset`, other families and malformed commands cannot be written in the closed
    /// [`Ruleset`]; what is left to refuse is a foreign table name.
    #[test]
    fn allows_batches_on_alca_tables_only() {
        use alca_ruleset::types::{Chain, Command, Rule};
        let ok = Ruleset {
            commands: vec![
                Command::AddTable("alca-deadbeef".into()),
                Command::AddChain(Chain {
                    table: "alca-deadbeef".into(),
                    name: "c".into(),
                    base: None,
                }),
            ],
        };
        assert!(ensure_only_alca(&ok).is_ok());
        let rule = |table: &str| {
            Command::AddRule(Rule {
                table: table.into(),
                chain: "x".into(),
                stmts: vec![],
                comment: None,
            })
        };
        for bad in [
            vec![Command::DeleteTable("filter".into())],
            vec![Command::AddTable("alca-deadbeef".into()), rule("nat")],
        ] {
            let bad = Ruleset { commands: bad };
            assert!(ensure_only_alca(&bad).is_err(), "{bad:?}");
        }
        assert!(ensure_only_alca(&ElementBatch::new("alca-x")).is_ok());
        assert!(ensure_only_alca(&ElementBatch::new("filter")).is_err());
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
