//! One project's rules as `up` applies them, and the check `run` makes before it execs into a
//! container: a container the runtime brought back (boot, `docker restart`, a daemon that never
//! restored) may be running without its rules, so `run` re-applies them when the daemon can and
//! otherwise refuses with the fix. One place builds the spec (DNS per runtime) for both, and
//! for `network verify`.

use std::net::IpAddr;
use std::path::Path;

use alca_contract::NetSpec;
use anyhow::{bail, Context};

use super::{guard_select::connect_guard, netspec_build, rootless, NetworkGuard};
use crate::config::Config;
use crate::runtime::{Runtime, RuntimeKind};

/// The project's spec as `runtime` runs its network `network`, and that network's gateways.
/// The one place the spec is built: `up` and `run` apply it, `network verify` judges it.
pub fn project_spec(
    config: &Config,
    id: &str,
    network: &str,
    runtime: &dyn Runtime,
) -> anyhow::Result<(NetSpec, Vec<IpAddr>)> {
    let gateways = runtime
        .network(network)?
        .map(|n| n.gateways)
        .unwrap_or_default();
    let dns = dns_allowance(
        runtime.kind(),
        &gateways,
        super::resolvers::docker_upstream_resolvers,
    );
    let spec = netspec_build::build(config, id, dns, &|| {
        netspec_build::gateway_host_ip(&gateways)
    })?;
    Ok((spec, gateways))
}

/// The DNS servers a project may reach on port 53 although the deny set covers them: where
/// the runtime's own resolver answers or forwards. `host_resolvers` is read only for Docker.
pub fn dns_allowance(
    kind: RuntimeKind,
    gateways: &[IpAddr],
    host_resolvers: impl FnOnce() -> Vec<IpAddr>,
) -> Vec<IpAddr> {
    match kind {
        // aardvark-dns answers on the network gateway.
        RuntimeKind::Podman => gateways.to_vec(),
        // The embedded DNS forwards to the host's resolvers across the project bridge.
        RuntimeKind::Docker => host_resolvers(),
    }
}

/// Builds the project's spec for `runtime` (its network is `network`, also the container's
/// name) and applies it; for a rootless runtime inside the container's own namespace. With
/// `internet-access`, the project's resolver is started first (the rules send DNS to it).
pub fn apply(
    config: &Config,
    root: &Path,
    id: &str,
    network: &str,
    runtime: &dyn Runtime,
    guard: &dyn NetworkGuard,
) -> anyhow::Result<()> {
    if runtime.rootless() {
        return rootless::apply(config, id, network, runtime, guard);
    }
    let (mut spec, gateways) = project_spec(config, id, network, runtime)?;
    // netavark puts a network's gateway up with its first container, after the rules.
    let gateway_up_later = runtime.kind() == RuntimeKind::Podman;
    spec.internet =
        super::internet_spec::build(config, root, id, &gateways, gateway_up_later, guard)?;
    spec.validate()?;
    guard.apply(&spec)
}

/// Gives the guard a rootless project's spec before its container's namespace exists (the
/// container's OCI hook applies it at each start).
pub fn hold_for_netns(config: &Config, id: &str, guard: &dyn NetworkGuard) -> anyhow::Result<()> {
    guard.hold_netns_spec(&rootless::spec(config, id, RuntimeKind::Podman)?)
}

/// Before `run` execs into the project's container: its rules are in place, re-applied here if
/// they are missing; an error (daemon unreachable, apply refused) means no exec. A rootless
/// container's rules are checked in the namespace it has now (a restart makes a new one).
pub fn ensure_before_exec(
    config: &Config,
    root: &Path,
    id: &str,
    container: &str,
    runtime: &dyn Runtime,
) -> anyhow::Result<()> {
    if !netspec_build::isolation_required(config) {
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
    // A resolver that died (or a reboot) leaves the rules sending DNS nowhere: re-apply, which
    // starts it again.
    let resolver_ok =
        !super::internet_spec::restricted(config) || guard.resolver_address(root, id).is_some();
    match is_applied() {
        Ok(true) if resolver_ok => return Ok(()),
        Ok(_) => {}
        Err(e) => return Err(refuse(format!("{e:#}"))),
    }
    apply(config, root, id, container, runtime, guard).map_err(|e| refuse(format!("{e:#}")))?;
    if !is_applied().context("checking the re-applied rules")? {
        bail!(refuse("the daemon did not apply them".into()));
    }
    eprintln!("alca: the network rules of {container} were missing and were applied again");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_allowance_is_the_gateway_for_podman_and_the_host_resolvers_for_docker() {
        let gw: IpAddr = "10.89.0.1".parse().unwrap();
        let host: IpAddr = "192.168.1.1".parse().unwrap();
        assert_eq!(
            dns_allowance(RuntimeKind::Podman, &[gw], || panic!("not read for Podman")),
            vec![gw]
        );
        assert_eq!(
            dns_allowance(RuntimeKind::Docker, &[gw], || vec![host]),
            vec![host]
        );
    }
}
