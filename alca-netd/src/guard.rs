//! The guard: table `inet alca-guard`, which drops every packet arriving from an alca project
//! bridge that has no applied project rules, so that "no rules yet" (a bridge created before
//! its Apply, a table lost while the daemon was down) means "no traffic", never "open".
//!
//! A project bridge is an interface named `alca-` plus ten more characters (15 in all:
//! [`alca_contract::net_spec::bridge_name`]); other `alca-` interfaces (shorter names) are left alone.
//! Bridges with rules are the elements of the guard's set `ruled`, which each project batch
//! updates in the same transaction as its table ([`mark`]), so a bridge is never ruled
//! without its table nor guarded with it. The guard has input and forward chains (the
//! container's packets to the host, and through it); it is owned and persistent like the
//! project tables, written as nf_tables messages over the daemon's socket
//! ([`alca_kernel::iface_guard`] encodes them).

use alca_contract::net_spec::{BRIDGE_ID_LEN, NAME_PREFIX};
use alca_kernel::iface_guard::IfaceGuard;
use alca_kernel::tables::TableOwner;

/// The guard's table (not a project id: never swept as stale).
pub const GUARD_TABLE: &str = "alca-guard";
/// The set of bridges with rules.
pub const RULED_SET: &str = "ruled";
/// Priority of its chains: ahead of the filter hooks' usual users (0) and of the projects'
/// verification chains (-200), so an unruled bridge's packets are not even logged there.
pub const GUARD_PRIORITY: i32 = -250;
/// The guard as the kernel crate encodes it.
const GUARD: IfaceGuard = IfaceGuard {
    table: GUARD_TABLE,
    set: RULED_SET,
    priority: GUARD_PRIORITY,
    prefix: NAME_PREFIX,
    name_len: NAME_PREFIX.len() + BRIDGE_ID_LEN,
};

/// The transaction that (re-)creates the guard, owned by `owner`, with `ruled` as the bridges
/// that have rules; it replaces whatever is there, adopting an orphaned guard.
pub fn install(owner: TableOwner, ruled: &[String]) -> Vec<Vec<u8>> {
    GUARD.install(owner, ruled)
}

/// The messages that, in a project's transaction, add its bridge to `ruled` (`ruled`) or take
/// it out.
pub fn mark(bridge: &str, ruled: bool) -> Vec<Vec<u8>> {
    GUARD.mark(bridge, ruled)
}
