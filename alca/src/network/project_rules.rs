//! One project's rules as `up` applies them, and the check `run` makes before it execs into a
//! container: a container the runtime brought back (boot, `docker restart`, a daemon that never
//! restored) may be running without its rules, so `run` re-applies them when the daemon can and
//! otherwise refuses with the fix. One place builds the spec (DNS per runtime) for both.

use anyhow::{bail, Context};

use super::{netd::connect_guard, rootless, spec, NetworkGuard};
use crate::config::Config;
use crate::runtime::{Runtime, RuntimeKind};

/// Builds the project's spec for `runtime` (its network is `network`, also the container's
/// name) and applies it; for a rootless runtime inside the container's own namespace.
pub fn apply(
    config: &Config,
    id: &str,
    network: &str,
    runtime: &dyn Runtime,
    guard: &dyn NetworkGuard,
) -> anyhow::Result<()> {
    if runtime.rootless() {
        return rootless::apply(config, id, network, runtime, guard);
    }
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
/// they are missing; an error (daemon unreachable, apply refused) means no exec. A rootless
/// container's rules are checked in the namespace it has now (a restart makes a new one).
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
    let guard = guard.as_ref();
    let refuse = |why: String| {
        anyhow::anyhow!(
            "the network rules of container {container} are not in place ({why}), so nothing \
             was run in it: start the network helper (`sudo alca network-helper install`) and \
             run `alca up`"
        )
    };
    let is_applied: Box<dyn Fn() -> anyhow::Result<bool>> = if runtime.rootless() {
        let pid =
            rootless::container_pid(runtime, container).map_err(|e| refuse(format!("{e:#}")))?;
        Box::new(move || guard.netns_applied(id, pid))
    } else {
        Box::new(|| guard.is_applied(id))
    };
    match is_applied() {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(refuse(format!("{e:#}"))),
    }
    apply(config, id, container, runtime, guard).map_err(|e| refuse(format!("{e:#}")))?;
    if !is_applied().context("checking the re-applied rules")? {
        bail!(refuse("the daemon did not apply them".into()));
    }
    eprintln!("alca: the network rules of {container} were missing and were applied again");
    Ok(())
}
