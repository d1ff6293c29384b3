//! A resolver from its [`ResolverSpec`] to its end: the handler, the sockets on the gateway,
//! the ready announcement, and serving until SIGTERM, SIGINT or SIGHUP. One copy for both
//! ways a resolver runs: `alca __serve-dns` on Linux (D-Bus sink) and `alca-dns-resolver` in
//! the helper container (channel sink).

use std::net::SocketAddr;
use std::path::PathBuf;

use alca_contract::resolver_spec::ResolverSpec;
use tokio::signal::unix::{signal, SignalKind};

use crate::query_log::QueryLog;
use crate::sink::AllowSink;
use crate::{bind, bind_before_up, Policy, ResolverHandler};

/// Binds on `spec.listen` (a free port), calls `announce` with the address, then serves until
/// a signal. `log`: the query log's path.
pub async fn run<S: AllowSink>(
    spec: ResolverSpec,
    sink: S,
    log: PathBuf,
    announce: impl FnOnce(SocketAddr) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let listen = spec.listen;
    let handler = ResolverHandler::new(
        spec.project,
        Policy::new(spec.entries),
        spec.upstreams,
        sink,
        QueryLog::new(log),
    );
    let listening = if spec.gateway_up_later {
        bind_before_up(listen, 0, handler).await
    } else {
        bind(listen, 0, handler).await
    }
    .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    let stop = listening.stopper();
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
            _ = hangup.recv() => {}
        }
        stop();
    });
    announce(listening.addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot report readiness: {e}")))?;
    listening
        .run()
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("the resolver stopped: {e}")))
}
