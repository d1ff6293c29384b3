//! One project's rules as `up` applies them, and the check `run` makes before it execs into a
//! container: a container the runtime brought back (boot, `docker restart`, a daemon that never
//! restored) may be running without its rules, so `run` re-applies them when the daemon can and
//! otherwise refuses with the fix. One place builds the spec (DNS per runtime) for both.

use anyhow::{bail, Context};

use super::{netd::connect_guard, spec, NetworkGuard};
use crate::config::Config;
use crate::runtime::{Runtime, RuntimeKind};

/// Builds the project's spec for `runtime` (its network is `network`) and applies it.
pub fn apply(
    config: &Config,
    id: &str,
    network: &str,
    runtime: &dyn Runtime,
    guard: &dyn NetworkGuard,
) -> anyhow::Result<()> {
    let gateways = runtime
        .network(network)?
        .map(|n| n.gateways)
        .unwrap_or_default();
    let dns = match runtime.kind() {
        // aardvark-dns answers on the network gateway.
        RuntimeKind::Podman => gateways.clone(),
        // The embedded DNS forwards to the host's resolvers across the project bridge.
        RuntimeKind::Docker => super::resolvers::docker_upstream_resolvers(),
    };
    let spec = spec::build(config, id, dns, &|| spec::gateway_host_ip(&gateways))?;
    guard.apply(&spec)
}

/// Before `run` execs into the project's container: its rules are in place, re-applied here if
/// they are missing; an error (daemon unreachable, apply refused) means no exec.
pub fn ensure_before_exec(
    config: &Config,
    id: &str,
    container: &str,
    runtime: &dyn Runtime,
) -> anyhow::Result<()> {
    if !spec::isolation_required(config) {
        return Ok(());
    }
    let guard = connect_guard();
    let refuse = |why: String| {
        anyhow::anyhow!(
            "the network rules of container {container} are not in place ({why}), so nothing \
             was run in it: start the network helper (`sudo alca network-helper install`) and \
             run `alca up`"
        )
    };
    match guard.is_applied(id) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(refuse(format!("{e:#}"))),
    }
    apply(config, id, container, runtime, guard.as_ref()).map_err(|e| refuse(format!("{e:#}")))?;
    if !guard
        .is_applied(id)
        .context("checking the re-applied rules")?
    {
        bail!(refuse("the daemon did not apply them".into()));
    }
    eprintln!("alca: the network rules of {container} were missing and were applied again");
    Ok(())
}
