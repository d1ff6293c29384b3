//! The resolver process: `alca __serve-dns STATE_DIR`, started by [`super::resolver_process`].
//! It reads its spec on stdin, connects to the daemon, gives up root when root started it
//! (DNS parsing never runs as root: [`super::resolver_privileges`]), binds on the project
//! gateway, prints `ready ADDRESS` and serves until SIGTERM/SIGINT/SIGHUP.

use std::io::Read;
use std::path::Path;

use alca_dns::netd_sink::NetdSink;
use alca_dns::query_log::{QueryLog, LOG_FILE};
use alca_dns::{bind, bind_before_up, Policy, ResolverHandler};
use anyhow::Context;

use super::resolver_process::{ResolverSpec, READY_WORD};
use crate::detached;

/// Worker threads of the resolver's runtime.
const THREADS: usize = 2;

pub fn serve(state_dir: &Path) -> anyhow::Result<()> {
    detached::close_inherited_fds();
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("cannot read the resolver spec on stdin")?;
    let spec: ResolverSpec =
        serde_json::from_slice(&input).context("the resolver spec on stdin is invalid")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()
        .context("cannot start the resolver's runtime")?;
    runtime.block_on(run(spec, state_dir))
}

async fn run(spec: ResolverSpec, state_dir: &Path) -> anyhow::Result<()> {
    let sink = NetdSink::connect(&spec.project)
        .await
        .context("cannot reach the network daemon")?;
    // Before the first socket that takes DNS exists.
    let log = state_dir.join(LOG_FILE);
    let rotated = alca_dns::query_log::rotated(&log);
    super::resolver_privileges::drop_root(state_dir, &[&log, &rotated])?;
    let handler = ResolverHandler::new(
        spec.project.clone(),
        Policy::new(spec.entries.clone()),
        spec.upstreams.clone(),
        sink,
        QueryLog::new(log),
    );
    let listening = if spec.gateway_up_later {
        bind_before_up(spec.listen, 0, handler).await
    } else {
        bind(spec.listen, 0, handler).await
    }
    .with_context(|| format!("cannot listen on {}", spec.listen))?;
    let stop = listening.stopper();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
        ];
        let mut streams: Vec<_> = kinds.into_iter().filter_map(|k| signal(k).ok()).collect();
        let waits = streams.iter_mut().map(|s| Box::pin(s.recv()));
        futures::future::select_all(waits).await;
        stop();
    });
    detached::announce_ready(&format!("{READY_WORD} {}", listening.addr))
        .context("cannot report readiness")?;
    listening.run().await.context("the resolver stopped")
}
