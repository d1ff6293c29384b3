//! The host's upstream DNS resolvers, which Docker's embedded DNS (127.0.0.11) forwards to from
//! inside the container's namespace: on a LAN address (a home router, a corporate resolver) the
//! deny set would refuse them, and with them every name lookup, unless the spec allows them.

use std::net::IpAddr;

use alca_contract::net_spec::resolvers_from_resolv_conf;

/// The resolv.conf dockerd reads, and the one it falls back to behind systemd-resolved.
const RESOLV_CONF: &str = "/etc/resolv.conf";
const RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The resolvers Docker's embedded DNS forwards to on this host (empty when none is known).
pub fn docker_upstream_resolvers() -> Vec<IpAddr> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let servers = resolvers_from_resolv_conf(&read(RESOLV_CONF));
    if servers.is_empty() {
        // Only 127.0.0.53 (systemd-resolved): dockerd uses the upstream list instead.
        return resolvers_from_resolv_conf(&read(RESOLVED_UPSTREAM));
    }
    servers
}
