//! The `proxy` nat chain: every new TCP connection from the project's bridge is DNAT'd to the
//! transparent proxy (which reads the original destination with SO_ORIGINAL_DST).
//!
//! Its priority `dstnat - 10` (-110) orders it before the runtime's own DNAT chains (Docker's
//! iptables-nft and netavark at `dstnat`, -100), so the first NAT binding of a connection is
//! ours. The kernel calls every nat chain from its single NAT hook at -100 (the priority only
//! orders nat chains among themselves), so this chain always runs after the filter chain at
//! -160 has refused denied destinations by their original address: the proxy is never a path
//! around the LAN block (tests/tests/proxy.rs proves it with a real proxy that would carry a
//! LAN connection if it got one).
//!
//! Loop safety: connections to the proxy itself keep their address, and the proxy's own
//! outbound connections start on the host, not on the bridge, so they are never redirected.

use std::net::SocketAddr;

use alca_contract::lan::Proto;
use alca_contract::net_spec::NetSpec;

use super::expr::*;

/// Rules of the `proxy` chain for `spec`, whose proxy is `proxy`.
pub(super) fn proxy_rules(spec: &NetSpec, proxy: SocketAddr) -> Vec<CommentedRule> {
    let bridge = spec.bridge.as_str();
    let v6 = proxy.is_ipv6();
    // Connections to the proxy itself and TCP DNS to an allowed resolver keep their address.
    let mut rules = vec![CommentedRule::commented(
        vec![
            iifname(bridge),
            daddr_ip(proxy.ip()),
            dport(Some(Proto::Tcp), proxy.port()),
            accept(),
        ],
        "proxy itself",
    )];
    rules.extend(spec.dns.iter().filter(|ip| ip.is_ipv6() == v6).map(|ip| {
        CommentedRule::commented(
            vec![
                iifname(bridge),
                daddr_ip(*ip),
                dport(Some(Proto::Tcp), 53),
                accept(),
            ],
            "dns",
        )
    }));
    rules.push(CommentedRule::commented(
        vec![
            iifname(bridge),
            nfproto(v6),
            l4proto(Proto::Tcp),
            dnat_to(proxy),
        ],
        "to proxy",
    ));
    rules
}
