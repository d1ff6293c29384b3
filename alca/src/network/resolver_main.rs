//! The resolver process: `alca __serve-dns STATE_DIR`, started by [`super::resolver_process`].
//! It reads its spec on stdin, connects to the daemon, gives up root when root started it
//! (DNS parsing never runs as root: [`super::resolver_privileges`]), binds on the project
//! gateway, prints `ready ADDRESS` and serves until SIGTERM/SIGINT/SIGHUP.

use std::io::Read;
use std::path::Path;

use alca_dns::netd_sink::NetdSink;
use alca_dns::query_log::LOG_FILE;
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
    let announce = |addr| detached::announce_ready(&format!("{READY_WORD} {addr}"));
    Ok(alca_dns::resolver_run::run(spec, sink, log, announce).await?)
}
