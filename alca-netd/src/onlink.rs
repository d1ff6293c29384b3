//! "LAN" is the networks the host is directly connected to plus the special ranges: the daemon
//! reads the prefixes of the host's own addresses over rtnetlink (both families) and adds them
//! to every isolated project's deny sets, so an on-link network in public space (a campus, an
//! enterprise, an IPv6 home LAN) is refused like a private one. Container plumbing is left
//! out: loopback, bridge ports, veths, and the bridges of Docker, Podman and alca. Address and
//! link changes are watched; when the prefixes change, the affected projects are re-applied.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::MulticastGroup;

use crate::bridge_links::{kind_of, link_name, netlink_error, LinkError, LinkKind, Netlink};
use crate::daemon::Daemon;

/// Narrowest prefix length taken for a connected network: an address with a shorter one (a /0
/// or /1 of a misconfigured tunnel) would deny the whole internet, so it is skipped.
const MIN_PREFIX4: u8 = 8;
const MIN_PREFIX6: u8 = 16;
/// How long the watcher lets a burst of changes (an interface coming up) settle.
const SETTLE: Duration = Duration::from_millis(300);

/// Whether an interface belongs to containers (its networks are not the host's LAN).
pub fn is_container_link(name: &str, kind: &LinkKind, loopback: bool, bridge_port: bool) -> bool {
    let container_bridge = name == "docker0"
        || name.starts_with("br-")
        || name.starts_with("podman")
        || name.starts_with("cni-")
        || name.starts_with("alca-");
    loopback
        || bridge_port
        || matches!(kind, LinkKind::Other(k) if k == "veth")
        || name.starts_with("veth")
        || (*kind == LinkKind::Bridge && container_bridge)
        || name.starts_with("alca-")
}

/// The on-link prefixes of the host's non-container interfaces, sorted, without duplicates.
pub async fn host_prefixes() -> Result<Vec<IpNet>, LinkError> {
    let netlink = Netlink::connect()?;
    let links = netlink.links().await?;
    let addrs: Vec<AddressMessage> = netlink
        .handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(netlink_error)?;
    let lan_links: Vec<u32> = links
        .iter()
        .filter(|l| {
            let name = link_name(l).unwrap_or("");
            let loopback = l.header.flags.contains(LinkFlags::Loopback);
            let port = l
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Controller(_)));
            !is_container_link(name, &kind_of(l), loopback, port)
        })
        .map(|l| l.header.index)
        .collect();
    let mut nets: Vec<IpNet> = addrs
        .iter()
        .filter(|a| lan_links.contains(&a.header.index))
        .filter_map(prefix_of)
        .collect();
    nets.sort();
    nets.dedup();
    Ok(nets)
}

/// The network of one address (`IFA_ADDRESS` and the prefix length), if wide enough to be a LAN.
fn prefix_of(msg: &AddressMessage) -> Option<IpNet> {
    let addr = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Address(ip) => Some(*ip),
        _ => None,
    })?;
    let len = msg.header.prefix_len;
    let min = if addr.is_ipv6() {
        MIN_PREFIX6
    } else {
        MIN_PREFIX4
    };
    if len < min {
        return None;
    }
    IpNet::new(addr, len).ok().map(|n| n.trunc())
}

/// Reads the host's prefixes into `daemon` (re-applying the projects they change).
pub async fn refresh(daemon: &Arc<Daemon>) -> Result<(), LinkError> {
    let nets = host_prefixes().await?;
    let daemon = Arc::clone(daemon);
    let report = tokio::task::spawn_blocking(move || daemon.set_onlink(nets))
        .await
        .map_err(|e| LinkError::Netlink(format!("worker failed: {e}")))?;
    for problem in report {
        tracing::error!("{problem}");
    }
    Ok(())
}

/// Follows address and link changes for as long as the daemon runs; each settled burst of
/// changes is one [`refresh`]. A refresh that fails is logged and retried at the next change.
pub async fn watch(daemon: Arc<Daemon>) {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ];
    let (connection, _handle, mut events) = match rtnetlink::new_multicast_connection(&groups) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "cannot follow address changes (on-link networks stay as read at start): {e}"
            );
            return;
        }
    };
    let task = tokio::spawn(connection);
    while events.next().await.is_some() {
        tokio::time::sleep(SETTLE).await;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, events.next()).await {}
        if let Err(e) = refresh(&daemon).await {
            tracing::error!("cannot read the host's on-link networks: {e}");
        }
    }
    task.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_plumbing_is_not_the_lan() {
        let bridge = LinkKind::Bridge;
        let veth = LinkKind::Other("veth".into());
        let eth = LinkKind::Other("plain (no link kind)".into());
        for (name, kind) in [
            ("docker0", &bridge),
            ("br-0123456789ab", &bridge),
            ("podman0", &bridge),
            ("cni-podman0", &bridge),
            ("alca-0123456789", &bridge),
            ("vethab12cd", &veth),
            ("alca-lan0", &veth),
        ] {
            assert!(is_container_link(name, kind, false, false), "{name}");
        }
        assert!(is_container_link("lo", &eth, true, false));
        assert!(
            is_container_link("eth1", &eth, false, true),
            "a bridge port"
        );
        for (name, kind) in [
            ("eth0", &eth),
            ("br0", &bridge),
            ("wlan0", &eth),
            ("virbr0", &bridge),
        ] {
            assert!(!is_container_link(name, kind, false, false), "{name}");
        }
    }

    #[tokio::test]
    async fn the_host_prefixes_leave_loopback_out() {
        let nets = host_prefixes().await.unwrap();
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!nets.iter().any(|n| n.contains(&lo)), "{nets:?}");
    }
}
