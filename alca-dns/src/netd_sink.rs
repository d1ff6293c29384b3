//! The product's [`AllowSink`]: the daemon's `AllowResolved` and `InternetEntries` over one
//! long-lived system-bus connection (the daemon checks on each call that the caller owns the
//! project and caches that authorization, so a call per answer stays cheap).

use alca_contract::client::Netd1Proxy;
use alca_contract::errors::NetdError;
use alca_contract::internet::{InternetEntry, ResolvedAddrs};
use alca_contract::internet_status::InternetEntries;

use crate::sink::{followed_entries, AllowSink, SinkError, CALL_TIMEOUT};

/// The daemon, over the system bus.
pub struct NetdSink {
    proxy: Netd1Proxy<'static>,
}

impl NetdSink {
    /// Connects and narrows the connection to `project`'s resolver calls before any DNS is
    /// read: whatever uid the bus credits it to, a resolver taken over through a parsing bug
    /// can then do nothing but what a working one does.
    pub async fn connect(project: &str) -> Result<NetdSink, SinkError> {
        let unreachable = |e: zbus::Error| SinkError::Unreachable(e.to_string());
        let conn = zbus::connection::Builder::system()
            .method_timeout(CALL_TIMEOUT)
            .build()
            .await
            .map_err(unreachable)?;
        let proxy = Netd1Proxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(unreachable)?;
        proxy
            .narrow_to_resolver(project)
            .await
            .map_err(sink_error)?;
        Ok(NetdSink { proxy })
    }
}

fn sink_error(e: NetdError) -> SinkError {
    match e {
        NetdError::ZBus(e) => SinkError::Unreachable(e.to_string()),
        other => SinkError::Refused(other.message()),
    }
}

impl AllowSink for NetdSink {
    async fn allow(&self, update: ResolvedAddrs) -> Result<(), SinkError> {
        let body = serde_json::to_string(&update)
            .map_err(|e| SinkError::Refused(format!("cannot encode the update: {e}")))?;
        self.proxy.allow_resolved(&body).await.map_err(sink_error)
    }

    async fn entries(&self, project: &str) -> Result<Option<Vec<(u16, InternetEntry)>>, SinkError> {
        let json = self
            .proxy
            .internet_entries(project)
            .await
            .map_err(sink_error)?;
        let entries: InternetEntries = serde_json::from_str(&json)
            .map_err(|e| SinkError::Refused(format!("unreadable InternetEntries reply: {e}")))?;
        Ok(followed_entries(entries))
    }
}
