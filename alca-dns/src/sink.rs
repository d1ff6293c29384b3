//! Where the resolver sends the addresses of an allowed answer before it answers: the daemon
//! (`AllowResolved` over D-Bus) in the product, a recorder in tests. The answer waits for the
//! sink's success; any error turns it into SERVFAIL.

use std::future::Future;
use std::time::Duration;

use alca_contract::internet::{InternetEntry, ResolvedAddrs};
use alca_contract::internet_status::InternetEntries;

use crate::policy::indexed;

/// How long one call to the daemon may take before the answer becomes SERVFAIL (a
/// container's resolver gives up after about 5 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// The daemon's `InternetEntries` as the entries a resolver follows: the applied list, each
/// under its index, then the grants under theirs; `None` when the project has no list.
pub fn followed_entries(entries: InternetEntries) -> Option<Vec<(u16, InternetEntry)>> {
    let spec = entries.internet?;
    let mut all = indexed(spec.entries);
    all.extend(entries.grants.into_iter().map(|g| (g.index, g.entry)));
    Some(all)
}

/// Why the addresses could not be allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The daemon answered and said no (bad address, unknown project, not the owner, …).
    #[error("the network daemon refused the addresses: {0}")]
    Refused(String),
    /// The daemon could not be asked (not running, bus gone, timeout).
    #[error("the network daemon is unreachable: {0}")]
    Unreachable(String),
}

/// Adds resolved addresses to the project's kernel allow sets; returns once they are there.
pub trait AllowSink: Send + Sync + Unpin + 'static {
    fn allow(&self, update: ResolvedAddrs) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// The project's entries as the daemon has them applied, with the grants of
    /// `alca network allow`, each under its index; `Ok(None)` when the daemon has no list or
    /// the sink cannot tell.
    fn entries(
        &self,
        project: &str,
    ) -> impl Future<Output = Result<Option<Vec<(u16, InternetEntry)>>, SinkError>> + Send {
        let _ = project;
        async { Ok(None) }
    }
}
