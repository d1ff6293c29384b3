//! One project's rules as `up` applies them, and the check `run` makes before it execs into a
//! container: a container the runtime brought back (boot, `docker restart`, a daemon that never
//! restored) may be running without its rules, so `run` re-applies them when the daemon can and
//! otherwise refuses with the fix. One place builds the spec (DNS per runtime) for both.

use std::path::Path;

use anyhow::{bail, Context};

use super::{netd::connect_guard, spec, NetworkGuard};
use crate::config::Config;
use crate::runtime::{Runtime, RuntimeKind};

/// Builds the project's spec for `runtime` (its network is `network`) and applies it. With
/// `internet-access`, the project's resolver is started first (the rules send DNS to it).
pub fn apply(
    config: &Config,
    root: &Path,
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
    let mut spec = spec::build(config, id, dns, &|| spec::gateway_host_ip(&gateways))?;
    spec.internet = super::internet_spec::build(config, root, id, &gateways)?;
    spec.validate()?;
    guard.apply(&spec)
}

/// Before `run` execs into the project's container: its rules are in place, re-applied here if
/// they are missing; an error (daemon unreachable, apply refused) means no exec.
pub fn ensure_before_exec(
    config: &Config,
    root: &Path,
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
    // A resolver that died (or a reboot) leaves the rules sending DNS nowhere: re-apply, which
    // starts it again.
    let resolver_ok =
        !super::internet_spec::restricted(config) || super::resolver_process::is_running(root);
    match guard.is_applied(id) {
        Ok(true) if resolver_ok => return Ok(()),
        Ok(true) => {}
        Ok(false) => {}
        Err(e) => return Err(refuse(format!("{e:#}"))),
    }
    apply(config, root, id, container, runtime, guard.as_ref())
        .map_err(|e| refuse(format!("{e:#}")))?;
    if !guard
        .is_applied(id)
        .context("checking the re-applied rules")?
    {
        bail!(refuse("the daemon did not apply them".into()));
    }
    eprintln!("alca: the network rules of {container} were missing and were applied again");
    Ok(())
}
