//! The internet part of a project's spec at `up`: with an `internet-access` list, the
//! project's resolver is started on the network's IPv4 gateway and named in
//! [`alca_contract::internet::InternetSpec::resolver`], with the list and the TTL bounds.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use alca_contract::internet::{InternetAccess, InternetEntry, InternetSpec, DEFAULT_TTL_MAX_SECS};
use anyhow::Context;

use super::resolver_process::ResolverSpec;
use super::NetworkGuard;
use crate::config::Config;

/// The DNS port of the host's resolvers.
const DNS_PORT: u16 = 53;

/// Whether the project limits the internet (`internet-access` is not `["*"]`).
pub fn restricted(config: &Config) -> bool {
    !matches!(config.network.internet_access, InternetAccess::Everything)
}

/// `None` for an open internet (a resolver a former list started is stopped: nothing sends
/// DNS to it any more); otherwise starts (or keeps) the resolver where `guard`'s daemon hears
/// it and returns the spec.
/// `gateway_up_later`: the runtime puts the gateway up only when the first container starts
/// (Podman), so the resolver binds before the address exists.
pub fn build(
    config: &Config,
    root: &Path,
    project: &str,
    gateways: &[IpAddr],
    gateway_up_later: bool,
    guard: &dyn NetworkGuard,
) -> anyhow::Result<Option<InternetSpec>> {
    let InternetAccess::Only(entries) = &config.network.internet_access else {
        guard.stop_resolver(root, project)?;
        return Ok(None);
    };
    let listen = gateways.iter().copied().find(IpAddr::is_ipv4).context(
        "network.internet-access needs the project network's IPv4 gateway for its DNS resolver, \
         and the network reports none: recreate it with `alca up -f`",
    )?;
    let net = &config.network;
    let upstreams = if net.dns_upstream.is_empty() {
        super::resolvers::docker_upstream_resolvers()
            .into_iter()
            .map(|ip| SocketAddr::new(ip, DNS_PORT))
            .collect()
    } else {
        net.dns_upstream.clone()
    };
    if upstreams.is_empty() {
        anyhow::bail!(
            "network.internet-access: the host names no DNS server in its resolv.conf for the \
             project's resolver to ask; set network.dns-upstream = [\"IP[:port]\"]"
        );
    }
    let spec = ResolverSpec {
        project: project.to_string(),
        listen,
        entries: entries.clone(),
        upstreams,
        gateway_up_later,
    };
    let resolver = guard.ensure_resolver(root, &spec)?;
    Ok(Some(internet_spec(config, entries, resolver)))
}

/// The internet part `up` applied, for `alca network verify` (which starts nothing): the list
/// with the running resolver's address, or port 0 on `listen` when none runs (its DNS rows
/// then fail, as they should).
pub fn applied(
    config: &Config,
    root: &Path,
    project: &str,
    listen: Option<IpAddr>,
    guard: &dyn NetworkGuard,
) -> Option<InternetSpec> {
    let InternetAccess::Only(entries) = &config.network.internet_access else {
        return None;
    };
    let resolver = guard
        .resolver_address(root, project)
        .unwrap_or_else(|| SocketAddr::new(listen.unwrap_or(IpAddr::from([0, 0, 0, 0])), 0));
    Some(internet_spec(config, entries, resolver))
}

fn internet_spec(config: &Config, entries: &[InternetEntry], resolver: SocketAddr) -> InternetSpec {
    InternetSpec {
        entries: entries.to_vec(),
        resolver,
        ttl_floor_secs: config.network.dns_ttl_floor,
        ttl_max_secs: DEFAULT_TTL_MAX_SECS,
    }
}
