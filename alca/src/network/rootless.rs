//! CLI side of rootless isolation (docs/rootless.md): a rootless Podman container has no
//! bridge on the host, so its rules go inside its own network namespace, applied by the daemon
//! between `podman init` and `podman start`; `run` checks them in the namespace the container
//! has now (a restart makes a new one) before it execs.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Context;

use super::{netspec_build, NetworkGuard};
use crate::config::Config;
use crate::runtime::Runtime;

/// slirp4netns' gateway: the host (its loopback when `allow_host_loopback` is on).
pub const SLIRP_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2));
/// slirp4netns' DNS forwarder (to the host's resolvers), the container's first nameserver.
pub const SLIRP_DNS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3));

/// The `--network` of a rootless project's container: slirp4netns, with its host-loopback
/// alias only when the config opens `${alca:HOST_IP}` (which is [`SLIRP_HOST`] there).
pub fn network_mode(config: &Config) -> String {
    if netspec_build::needs_host_ip(config) {
        "slirp4netns:allow_host_loopback=true".into()
    } else {
        "slirp4netns".into()
    }
}

/// The pid of the container's first process (its namespaces), from the runtime.
pub fn container_pid(runtime: &dyn Runtime, container: &str) -> anyhow::Result<u32> {
    runtime
        .container(container)?
        .and_then(|info| info.pid)
        .filter(|pid| *pid > 0)
        .with_context(|| format!("container {container} has no process, so no namespace"))
}

/// Builds the project's spec for slirp4netns and applies it inside the namespace of the
/// container (created and initialised, or running).
pub fn apply(
    config: &Config,
    id: &str,
    container: &str,
    runtime: &dyn Runtime,
    guard: &dyn NetworkGuard,
) -> anyhow::Result<()> {
    let spec = netspec_build::build(config, id, vec![SLIRP_DNS], &|| Ok(SLIRP_HOST))?;
    let pid = container_pid(runtime, container)?;
    guard.apply_in_netns(&spec, pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::lan::parse_lan_entry;

    #[test]
    fn the_host_loopback_alias_is_on_only_when_host_ip_is_used() {
        let mut config = crate::drift::sample_config();
        assert_eq!(network_mode(&config), "slirp4netns");
        config.network.lan_access_raw = vec!["${alca:HOST_IP}:8080".into()];
        config.network.lan_access = vec![parse_lan_entry("${alca:HOST_IP}:8080").unwrap()];
        assert_eq!(
            network_mode(&config),
            "slirp4netns:allow_host_loopback=true"
        );
        let spec = netspec_build::build(&config, "0123456789abcdef", vec![SLIRP_DNS], &|| {
            Ok(SLIRP_HOST)
        })
        .unwrap();
        assert_eq!(spec.allow[0].net.addr(), SLIRP_HOST);
        assert_eq!(spec.dns, vec![SLIRP_DNS]);
    }
}
