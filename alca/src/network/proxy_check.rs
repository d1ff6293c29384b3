//! `alca status`'s check of `network.proxy`: the container's TCP is DNAT'd to the proxy address
//! in the host's network namespace, so a redirect-mode proxy must listen there, on one of the
//! host's own addresses, or every container connection fails.
//!
//! The check sends no packet: it reads the kernel's table of listening TCP sockets
//! (`/proc/net/tcp`, `/proc/net/tcp6`) of the namespace `alca` runs in. A test connection would
//! reach the proxy addressed to itself, which a redirect proxy that does not refuse its own
//! address forwards to itself again, in a loop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

/// What the host knows about the proxy address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyHealth {
    /// A TCP socket listens on the address (or on the wildcard address of its family).
    Listening,
    /// The address is the host's, but nothing listens on that port.
    NotListening,
    /// The address is not one of the host's: DNAT would send the connections elsewhere, where
    /// SO_ORIGINAL_DST cannot be read.
    NotLocal,
    /// The socket tables could not be read (not Linux, or no /proc): the reason.
    Unknown(String),
}

/// Checks `addr` against this host's addresses and listening sockets.
pub fn check(addr: SocketAddr) -> ProxyHealth {
    if !cfg!(target_os = "linux") {
        return ProxyHealth::Unknown("the rules live in the container runtime's VM".into());
    }
    if !is_host_address(addr.ip()) {
        return ProxyHealth::NotLocal;
    }
    let mut tables = String::new();
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(path) {
            Ok(text) => tables.push_str(&text),
            Err(e) if path.ends_with('6') && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return ProxyHealth::Unknown(format!("cannot read {path}: {e}")),
        }
    }
    if listens(&tables, addr) {
        ProxyHealth::Listening
    } else {
        ProxyHealth::NotListening
    }
}

/// Whether `ip` is assigned to this host: only then can a socket be bound to it.
fn is_host_address(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Whether the `/proc/net/tcp{,6}` text lists a socket in LISTEN state that accepts `addr`: on
/// its address or on the wildcard address (`::` accepts IPv4 too unless it is v6-only, which
/// the table does not say; counted as accepting).
fn listens(tables: &str, addr: SocketAddr) -> bool {
    tables.lines().filter_map(listening_socket).any(|local| {
        local.port() == addr.port()
            && (local.ip().to_canonical() == addr.ip().to_canonical()
                || local.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                || (local.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) && addr.is_ipv4()))
    })
}

/// The local address of one table line whose state is LISTEN (`0A`).
fn listening_socket(line: &str) -> Option<SocketAddr> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    let state = fields.nth(1)?;
    if state != "0A" {
        return None;
    }
    let (ip_hex, port_hex) = local.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    Some(SocketAddr::new(kernel_ip(ip_hex)?, port))
}

/// An address as the kernel prints it: 32-bit words of network-order bytes, each printed as a
/// native-endian integer.
fn kernel_ip(hex: &str) -> Option<IpAddr> {
    let words = (0..hex.len() / 8)
        .map(|i| {
            Some(
                u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16)
                    .ok()?
                    .to_ne_bytes(),
            )
        })
        .collect::<Option<Vec<[u8; 4]>>>()?;
    match (hex.len(), words.as_slice()) {
        (8, [w]) => Some(IpAddr::from(*w)),
        (32, _) => {
            let bytes: [u8; 16] = words.concat().try_into().ok()?;
            Some(IpAddr::from(bytes))
        }
        _ => None,
    }
}

/// The lines `status` prints for the proxy at `addr`.
pub fn status_lines(addr: SocketAddr, health: &ProxyHealth) -> Vec<String> {
    let line = match health {
        ProxyHealth::Listening => format!("Proxy: {addr} (a proxy listens there)"),
        ProxyHealth::NotListening => format!(
            "Proxy: {addr} unreachable: nothing listens there on this host; every TCP \
             connection of the container fails until a redirect-mode proxy does"
        ),
        ProxyHealth::NotLocal => format!(
            "Proxy: {addr} unreachable from the rules: {} is not an address of this host, and \
             a redirect-mode proxy must run on the host that redirects the connections to read \
             their original destination (SO_ORIGINAL_DST)",
            addr.ip()
        ),
        ProxyHealth::Unknown(why) => format!("Proxy: {addr} (not checked: {why})"),
    };
    vec![line]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A `/proc/net/tcp{,6}` line for `local` in state `state`, formatted as the kernel does.
    fn line(local: SocketAddr, state: &str) -> String {
        let words: Vec<[u8; 4]> = match local.ip() {
            IpAddr::V4(v4) => vec![v4.octets()],
            IpAddr::V6(v6) => v6
                .octets()
                .chunks(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
        };
        let hex: String = words
            .iter()
            .map(|w| format!("{:08X}", u32::from_ne_bytes(*w)))
            .collect();
        format!(
            "   0: {hex}:{:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 71 1",
            local.port()
        )
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_listening_sockets_of_both_families() {
        let table = [
            "  sl  local_address rem_address   st tx_queue",
            &line(sa("192.0.2.10:3128"), "0A"),
            &line(sa("192.0.2.10:9000"), "01"),
            &line(sa("[2001:db8::7]:8080"), "0A"),
        ]
        .join("\n");
        assert!(listens(&table, sa("192.0.2.10:3128")));
        assert!(
            !listens(&table, sa("192.0.2.10:9000")),
            "an established socket"
        );
        assert!(!listens(&table, sa("192.0.2.11:3128")), "another address");
        assert!(listens(&table, sa("[2001:db8::7]:8080")));
        assert!(!listens(&table, sa("[2001:db8::8]:8080")));
    }

    #[test]
    fn wildcard_listeners_accept_every_address_of_their_family() {
        let v4 = line(sa("0.0.0.0:3128"), "0A");
        assert!(listens(&v4, sa("192.0.2.10:3128")));
        assert!(!listens(&v4, sa("[2001:db8::7]:3128")));
        let v6 = line(sa("[::]:3128"), "0A");
        assert!(listens(&v6, sa("192.0.2.10:3128")));
        assert!(listens(&v6, sa("[2001:db8::7]:3128")));
        assert!(!listens(&v6, sa("[2001:db8::7]:3129")));
    }

    #[test]
    fn a_local_listener_is_found_and_its_absence_reported() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(check(addr), ProxyHealth::Listening);
        assert_eq!(
            status_lines(addr, &ProxyHealth::Listening),
            [format!("Proxy: {addr} (a proxy listens there)")]
        );
        drop(listener);
        // A test running in parallel may be given the freed port at once: try a few fresh
        // ports before calling the absence missed.
        let freed = (0..3)
            .map(|_| {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let a = l.local_addr().unwrap();
                drop(l);
                a
            })
            .chain([addr])
            .any(|a| check(a) == ProxyHealth::NotListening);
        assert!(freed, "a closed port was reported as listening");
        let said = status_lines(addr, &ProxyHealth::NotListening).join("\n");
        assert!(
            said.starts_with(&format!("Proxy: {addr} unreachable: nothing listens")),
            "{said}"
        );
    }

    #[test]
    fn an_address_of_another_host_is_unreachable_from_the_rules() {
        let addr = sa("203.0.113.77:3128");
        assert_eq!(check(addr), ProxyHealth::NotLocal);
        let said = status_lines(addr, &ProxyHealth::NotLocal).join("\n");
        assert!(
            said.contains("203.0.113.77 is not an address of this host"),
            "{said}"
        );
    }
}
