//! CLI side of rootless isolation (docs/rootless.md): a rootless Podman container has no
//! bridge on the host, so its rules go inside its own network namespace, applied by the daemon
//! between `podman init` and `podman start`; `run` checks them in the namespace the container
//! has now (a restart makes a new one) before it execs. The daemon also holds the spec, handed
//! over before `podman init`, for the container's OCI hook to apply at every start.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use alca_contract::{oci_hook, NetSpec};
use anyhow::{bail, Context};

use super::netspec_build::HostIpError;
use super::{netspec_build, NetworkGuard};
use crate::config::Config;
use crate::runtime::{Runtime, RuntimeKind};

/// slirp4netns' gateway: the host (its loopback when `allow_host_loopback` is on).
pub const SLIRP_HOST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 2));
/// slirp4netns' DNS forwarder (to the host's resolvers), the container's first nameserver.
pub const SLIRP_DNS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 2, 3));

/// The `--network` of a rootless project's container. Podman: slirp4netns, with its
/// host-loopback alias only when the config opens `${alca:HOST_IP}` (which is [`SLIRP_HOST`]
/// there). Docker: its default bridge, inside rootlesskit's namespace (the rules in the
/// container's own namespace refuse the siblings on it).
pub fn network_mode(config: &Config, kind: RuntimeKind) -> String {
    match kind {
        RuntimeKind::Docker => "bridge".into(),
        RuntimeKind::Podman if netspec_build::needs_host_ip(config) => {
            "slirp4netns:allow_host_loopback=true".into()
        }
        RuntimeKind::Podman => "slirp4netns".into(),
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

/// Refuses what rootless isolation cannot enforce yet (`internet-access`): `up` asks before it
/// pulls or creates anything, and every spec built here asks again.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    if super::internet_spec::restricted(config) {
        bail!(
            "network.internet-access is not supported for rootless containers yet: use a \
             rootful runtime, or internet-access = [\"*\"] in .alca.toml"
        );
    }
    Ok(())
}

/// The project's spec for a rootless container of `kind`. Podman (slirp4netns): DNS is
/// slirp4netns' forwarder, `${alca:HOST_IP}` its host alias. Docker (default bridge in
/// rootlesskit): the container's resolv.conf is the host's, so DNS goes to the host's
/// resolvers; `dockerd-rootless.sh` turns slirp4netns' host loopback off, so there is no
/// host address to open.
pub fn spec(config: &Config, id: &str, kind: RuntimeKind) -> anyhow::Result<NetSpec> {
    check_config(config)?;
    let spec = match kind {
        RuntimeKind::Podman => {
            netspec_build::build(config, id, vec![SLIRP_DNS], &|| Ok(SLIRP_HOST))?
        }
        RuntimeKind::Docker => {
            let dns = super::resolvers::docker_upstream_resolvers();
            netspec_build::build(config, id, dns, &|| {
                Err(HostIpError(
                    "${alca:HOST_IP} has no address on rootless Docker (dockerd-rootless.sh \
                     disables slirp4netns' host loopback); use a rootful runtime or rootless \
                     Podman"
                        .into(),
                ))
            })?
        }
    };
    Ok(spec)
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
    let spec = spec(config, id, runtime.kind())?;
    let pid = container_pid(runtime, container)?;
    guard.apply_in_netns(&spec, pid)
}

/// The annotation that makes Podman run the daemon's OCI hook for the project's container.
pub fn hook_annotation(id: &str) -> (String, String) {
    (oci_hook::ANNOTATION.to_string(), id.to_string())
}

/// Refuses rootless isolation when the OCI hook is not installed (an install from before it
/// existed): without it a `podman restart` would run the container without rules.
pub fn require_hook_file(path: &Path) -> anyhow::Result<()> {
    if path.is_file() {
        return Ok(());
    }
    bail!(
        "{} is missing: without this OCI hook a rootless container restarted by Podman would \
         run without its network rules. Install the network helper again \
         (`sudo alca network-helper install`)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::lan::parse_lan_entry;

    #[test]
    fn the_host_loopback_alias_is_on_only_when_host_ip_is_used() {
        let mut config = crate::drift::sample_config();
        assert_eq!(network_mode(&config, RuntimeKind::Podman), "slirp4netns");
        assert_eq!(network_mode(&config, RuntimeKind::Docker), "bridge");
        config.network.lan_access_raw = vec!["${alca:HOST_IP}:8080".into()];
        config.network.lan_access = vec![parse_lan_entry("${alca:HOST_IP}:8080").unwrap()];
        assert_eq!(
            network_mode(&config, RuntimeKind::Podman),
            "slirp4netns:allow_host_loopback=true"
        );
        let err = spec(&config, "0123456789abcdef", RuntimeKind::Docker).unwrap_err();
        assert!(err.to_string().contains("HOST_IP"), "{err}");
        let spec = netspec_build::build(&config, "0123456789abcdef", vec![SLIRP_DNS], &|| {
            Ok(SLIRP_HOST)
        })
        .unwrap();
        assert_eq!(spec.allow[0].net.addr(), SLIRP_HOST);
        assert_eq!(spec.dns, vec![SLIRP_DNS]);
    }

    #[test]
    fn a_missing_hook_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.json");
        let err = require_hook_file(&path).unwrap_err().to_string();
        assert!(err.contains("network-helper install"), "{err}");
        std::fs::write(&path, "{}").unwrap();
        require_hook_file(&path).unwrap();
    }
}
