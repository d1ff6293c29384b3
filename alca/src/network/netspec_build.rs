//! Building the [`NetSpec`] sent to `alca-netd` from a project's effective config.
//!
//! `${alca:HOST_IP}` is resolved here, at `up` time, and only when an entry uses it: it is the
//! gateway of the project's own network (the host's address on the project bridge), as the Go
//! original documents it ("the bridge network gateway"), so it exists on an offline machine too.

use std::net::{IpAddr, SocketAddr};

use alca_contract::lan::ProxyHost;
use alca_contract::net_spec::bridge_name;
use alca_contract::{NetSpec, SpecError};

use crate::config::Config;

/// Why `${alca:HOST_IP}` could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("cannot determine the host IP for ${{alca:HOST_IP}}: {0}")]
pub struct HostIpError(pub String);

/// Why a spec could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("network.lan-access / network.proxy: {0}")]
    HostIp(#[from] HostIpError),
    #[error("network spec: {0}")]
    Invalid(#[from] SpecError),
}

/// `${alca:HOST_IP}` for a project network with these gateways: its IPv4 gateway (else its
/// first gateway).
pub fn gateway_host_ip(gateways: &[IpAddr]) -> Result<IpAddr, HostIpError> {
    gateways
        .iter()
        .find(|g| g.is_ipv4())
        .or(gateways.first())
        .copied()
        .ok_or_else(|| {
            HostIpError(
                "the project's network reports no gateway; recreate it with `alca up -f`".into(),
            )
        })
}

/// Whether a `lan-access` entry or the proxy names `${alca:HOST_IP}`.
pub fn needs_host_ip(config: &Config) -> bool {
    let net = &config.network;
    net.lan_access.iter().any(|e| e.needs_host_ip())
        || net.proxy.as_ref().is_some_and(|p| p.needs_host_ip())
}

/// Whether the project needs the network helper: anything but `lan-access = ["*"]` without a
/// proxy and with an open internet needs host firewall rules.
pub fn isolation_required(config: &Config) -> bool {
    !config.network.allows_everything()
        || config.network.proxy.is_some()
        || super::internet_spec::restricted(config)
}

/// The configured proxy's address, `${alca:HOST_IP}` resolved (asked only if used).
pub fn proxy_address(
    config: &Config,
    host_ip: &dyn Fn() -> Result<IpAddr, HostIpError>,
) -> Result<Option<SocketAddr>, HostIpError> {
    let Some(proxy) = &config.network.proxy else {
        return Ok(None);
    };
    let ip = match proxy.host {
        ProxyHost::Ip(ip) => ip,
        ProxyHost::HostIp => host_ip()?,
    };
    Ok(Some(SocketAddr::new(ip, proxy.port)))
}

/// The validated spec for project `project_id`. `dns` are resolver addresses on the host side
/// of the bridge (Podman's aardvark-dns on the gateway); `host_ip` is asked only if needed.
pub fn build(
    config: &Config,
    project_id: &str,
    dns: Vec<IpAddr>,
    host_ip: &dyn Fn() -> Result<IpAddr, HostIpError>,
) -> Result<NetSpec, BuildError> {
    let net = &config.network;
    let host = if needs_host_ip(config) {
        Some(host_ip()?)
    } else {
        None
    };
    // Entries that do not need the host IP resolve without it; the placeholder is never used.
    let resolve_ip = host.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let spec = NetSpec {
        project: project_id.to_string(),
        bridge: bridge_name(project_id),
        allow_all: net.allows_everything(),
        allow: net
            .lan_access
            .iter()
            .filter_map(|e| e.resolve(resolve_ip))
            .collect(),
        proxy: net.proxy.as_ref().map(|p| p.resolve(resolve_ip)),
        dns,
        internet: None,
    };
    spec.validate()?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use alca_contract::lan::{parse_lan_entry, parse_proxy};

    use crate::config::Network;

    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn config(lan: &[&str], proxy: Option<&str>) -> Config {
        let mut c = crate::drift::sample_config();
        c.network = Network {
            lan_access_raw: lan.iter().map(|s| s.to_string()).collect(),
            lan_access: lan.iter().map(|s| parse_lan_entry(s).unwrap()).collect(),
            proxy_raw: proxy.map(String::from),
            proxy: proxy.map(|p| parse_proxy(p).unwrap()),
            ..Network::default()
        };
        c
    }

    fn no_host() -> Result<IpAddr, HostIpError> {
        Err(HostIpError("not asked for".into()))
    }

    #[test]
    fn default_config_needs_isolation_and_allows_nothing() {
        let c = config(&[], None);
        assert!(isolation_required(&c));
        let spec = build(&c, ID, vec![], &no_host).unwrap();
        assert_eq!(spec.bridge, "alca-0123456789");
        assert!(!spec.allow_all);
        assert!(spec.allow.is_empty());
    }

    #[test]
    fn wildcard_needs_no_isolation_unless_proxied() {
        assert!(!isolation_required(&config(&["*"], None)));
        assert!(isolation_required(&config(&["*"], Some("10.99.0.2:3128"))));
    }

    /// Go internal/runtime/host_ip.go GetHostIP: "the gateway IP reachable from inside
    /// containers" (`(index .IPAM.Config 0).Gateway`); here of the project's own network.
    #[test]
    fn host_ip_is_the_project_network_gateway() {
        let v4: IpAddr = "172.20.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(gateway_host_ip(&[v6, v4]).unwrap(), v4);
        assert_eq!(gateway_host_ip(&[v6]).unwrap(), v6);
        assert!(gateway_host_ip(&[])
            .unwrap_err()
            .to_string()
            .contains("no gateway"));
    }

    #[test]
    fn host_ip_resolved_only_when_used() {
        let c = config(&["10.99.0.2:80", "${alca:HOST_IP}:8080"], None);
        assert!(build(&c, ID, vec![], &no_host).is_err());
        let spec = build(&c, ID, vec![], &|| Ok("192.0.2.7".parse().unwrap())).unwrap();
        assert_eq!(spec.allow.len(), 2);
        assert_eq!(spec.allow[1].net.to_string(), "192.0.2.7/32");
        assert_eq!(spec.allow[1].port, Some(8080));
        let plain = config(&["10.99.0.2"], Some("10.99.0.2:3128"));
        let spec = build(&plain, ID, vec!["10.89.0.1".parse().unwrap()], &no_host).unwrap();
        assert_eq!(spec.proxy.unwrap().to_string(), "10.99.0.2:3128");
        assert_eq!(spec.dns.len(), 1);
    }

    #[test]
    fn proxy_address_asks_for_the_host_ip_only_for_the_token() {
        assert_eq!(proxy_address(&config(&[], None), &no_host).unwrap(), None);
        let plain = config(&[], Some("10.99.0.2:3128"));
        assert_eq!(
            proxy_address(&plain, &no_host).unwrap(),
            Some("10.99.0.2:3128".parse().unwrap())
        );
        let token = config(&[], Some("${alca:HOST_IP}:3128"));
        assert!(proxy_address(&token, &no_host).is_err());
        assert_eq!(
            proxy_address(&token, &|| Ok("192.0.2.7".parse().unwrap())).unwrap(),
            Some("192.0.2.7:3128".parse().unwrap())
        );
    }
}
