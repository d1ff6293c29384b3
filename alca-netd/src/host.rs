//! The host's own address for `${alca:HOST_IP}`: the primary address of the default-route interface.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::route::RouteAttribute;
use rtnetlink::{Handle, RouteMessageBuilder};

/// Why the host address could not be found.
#[derive(Debug, thiserror::Error)]
#[error("cannot determine the host IP for ${{alca:HOST_IP}}: {0}")]
pub struct HostIpError(pub String);

/// Returns the primary IPv4 address of the interface holding the default route.
///
/// Synchronous for the CLI; the netlink queries run on a private runtime in their own thread,
/// so this may be called from anywhere, including inside another async runtime.
pub fn host_ip() -> Result<IpAddr, HostIpError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| HostIpError(e.to_string()))?;
            rt.block_on(host_ip_async())
        })
        .join()
        .unwrap_or_else(|_| Err(HostIpError("netlink query thread panicked".into())))
    })
}

/// Async form of [`host_ip`].
pub async fn host_ip_async() -> Result<IpAddr, HostIpError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| HostIpError(e.to_string()))?;
    let task = tokio::spawn(connection);
    let result = lookup(&handle).await;
    task.abort();
    result
}

async fn lookup(handle: &Handle) -> Result<IpAddr, HostIpError> {
    let index = default_route_interface(handle)
        .await?
        .ok_or_else(|| HostIpError("there is no IPv4 default route".into()))?;
    first_ipv4_address(handle, index)
        .await?
        .map(IpAddr::V4)
        .ok_or_else(|| {
            HostIpError(format!(
                "the default-route interface (index {index}) has no IPv4 address"
            ))
        })
}

/// The output interface of the main table's IPv4 default route with the lowest metric.
async fn default_route_interface(handle: &Handle) -> Result<Option<u32>, HostIpError> {
    let request = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let mut routes = handle.route().get(request).execute();
    let mut best: Option<(u32, u32)> = None; // (metric, oif)
    while let Some(route) = routes
        .try_next()
        .await
        .map_err(|e| HostIpError(e.to_string()))?
    {
        if route.header.destination_prefix_length != 0 {
            continue;
        }
        let mut oif = None;
        let mut metric = 0;
        for attr in &route.attributes {
            match attr {
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Priority(p) => metric = *p,
                _ => {}
            }
        }
        if let Some(oif) = oif {
            if best.is_none_or(|(m, _)| metric < m) {
                best = Some((metric, oif));
            }
        }
    }
    Ok(best.map(|(_, oif)| oif))
}

async fn first_ipv4_address(handle: &Handle, index: u32) -> Result<Option<Ipv4Addr>, HostIpError> {
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|e| HostIpError(e.to_string()))?
    {
        for attr in &msg.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = attr {
                return Ok(Some(*ip));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compares with what `ip route get` reports as the source for the default route.
    #[test]
    fn matches_the_default_route_source() {
        let out = std::process::Command::new("ip")
            .args(["-4", "-o", "route", "show", "default"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(dev) = text.split_whitespace().skip_while(|w| *w != "dev").nth(1) else {
            // No default route on this machine: the error must say so.
            assert!(host_ip().unwrap_err().to_string().contains("default route"));
            return;
        };
        let addrs = std::process::Command::new("ip")
            .args(["-4", "-o", "addr", "show", "dev", dev])
            .output()
            .unwrap();
        let ip = host_ip().unwrap();
        assert!(
            String::from_utf8_lossy(&addrs.stdout).contains(&format!("inet {ip}/")),
            "{ip} is not an address of {dev}"
        );
    }
}
