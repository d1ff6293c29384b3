//! `alca status`'s check of `network.proxy`: the DNAT rules live on the host, so the proxy must
//! accept TCP there, on this host's own address, or every container connection fails.
//!
//! Only the configured proxy address is ever contacted (one connect, short timeout).

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// How long `status` waits for the proxy to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);

/// What the host found at the proxy address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHealth {
    pub addr: SocketAddr,
    /// `Err(reason)` when a TCP connect from the host failed.
    pub reachable: Result<(), String>,
    /// Whether the address is one of this host's own (binding to it succeeds).
    pub local: bool,
}

/// Connects once to `addr` and checks that it is an address of this host.
pub fn check(addr: SocketAddr, timeout: Duration) -> ProxyHealth {
    let reachable = TcpStream::connect_timeout(&addr, timeout)
        .map(drop)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                format!("no answer within {} ms", timeout.as_millis())
            }
            _ => e.to_string(),
        });
    ProxyHealth {
        addr,
        reachable,
        local: is_host_address(addr.ip()),
    }
}

/// Whether `ip` is assigned to this host: only then can a socket be bound to it.
fn is_host_address(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The lines `status` prints for the proxy.
pub fn status_lines(health: &ProxyHealth) -> Vec<String> {
    let addr = health.addr;
    let mut lines = vec![match &health.reachable {
        Ok(()) => format!("Proxy: {addr} (reachable)"),
        Err(why) => format!(
            "Proxy: {addr} unreachable from the host ({why}); every TCP connection of the \
             container fails until a redirect-mode proxy listens there"
        ),
    }];
    if !health.local {
        lines.push(format!(
            "  Warning: {} is not an address of this host; the connections are redirected here, \
             so a proxy elsewhere cannot read their original destination (SO_ORIGINAL_DST)",
            addr.ip()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_listening_local_proxy_is_reachable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let health = check(addr, CONNECT_TIMEOUT);
        assert_eq!(health.reachable, Ok(()));
        assert!(health.local);
        assert_eq!(
            status_lines(&health),
            [format!("Proxy: {addr} (reachable)")]
        );
    }

    #[test]
    fn a_proxy_that_does_not_listen_is_reported_unreachable() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let health = check(addr, CONNECT_TIMEOUT);
        assert!(health.reachable.is_err(), "{health:?}");
        let lines = status_lines(&health);
        assert!(
            lines[0].starts_with(&format!("Proxy: {addr} unreachable from the host (")),
            "{lines:?}"
        );
        assert!(
            lines[0].contains("redirect-mode proxy listens there"),
            "{lines:?}"
        );
    }

    #[test]
    fn an_address_of_another_host_is_flagged() {
        let health = ProxyHealth {
            addr: "192.0.2.7:3128".parse().unwrap(),
            reachable: Err("no answer within 1500 ms".into()),
            local: false,
        };
        let lines = status_lines(&health);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[1].contains("192.0.2.7 is not an address of this host"),
            "{lines:?}"
        );
        assert!(!is_host_address("192.0.2.7".parse().unwrap()));
        assert!(is_host_address("127.0.0.1".parse().unwrap()));
    }
}
