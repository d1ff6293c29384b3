//! Where the resolver sends the addresses of an allowed answer before it answers: the daemon
//! (`AllowResolved` over D-Bus) in the product, a recorder in tests. The answer waits for the
//! sink's success; any error turns it into SERVFAIL.

use std::future::Future;

use alca_contract::internet::{InternetEntry, ResolvedAddrs};

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
