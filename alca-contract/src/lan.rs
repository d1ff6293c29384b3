//! Parsing of the user-facing `network.lan-access` and `network.proxy` strings (upstream syntax).
//!
//! Both the CLI (to report errors at config load) and the daemon (to re-check) use these parsers,
//! so one grammar exists in one place. Nothing here touches the system.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The only `${alca:…}` token the network settings understand.
pub const HOST_IP_TOKEN: &str = "${alca:HOST_IP}";

/// Transport protocol an allow rule is limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// Where an allow rule points before `${alca:HOST_IP}` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Net(IpNet),
    HostIp,
}

/// One parsed `lan-access` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LanEntry {
    /// `"*"`: no network isolation at all.
    Everything,
    Allow {
        target: Target,
        proto: Option<Proto>,
        port: Option<u16>,
    },
}

/// A parsed `network.proxy` value before `${alca:HOST_IP}` is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyEntry {
    pub host: ProxyHost,
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyHost {
    Ip(IpAddr),
    HostIp,
}

/// A resolved allow rule as sent to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    pub net: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Why a `lan-access` or `proxy` string was refused; the message says what form is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanError {
    #[error("empty entry; expected \"*\", an IP, a CIDR, IP:port or tcp://IP:port")]
    Empty,
    #[error("unknown protocol {0:?}; use tcp://, udp:// or *:// (any)")]
    Protocol(String),
    #[error("{0:?} is not an IP address or CIDR (hostnames are not allowed; use an IP address)")]
    Address(String),
    #[error("port {0:?} is not a number from 1 to 65535")]
    Port(String),
    #[error("{0:?} needs a port: protocol entries are written proto://IP:port")]
    ProtocolWithoutPort(String),
    #[error("unknown token {0:?}; the only valid token is {HOST_IP_TOKEN}")]
    Token(String),
    #[error("\"*\" cannot be combined with a protocol or port")]
    WildcardWithExtras,
    #[error("proxy {0:?} must be IP:port, [IPv6]:port or {HOST_IP_TOKEN}:port (hostnames are not allowed)")]
    Proxy(String),
}

/// Parses one `lan-access` entry: `*`, `IP`, `CIDR`, `IP:port`, `[v6]:port`, `proto://IP:port`
/// (proto `tcp`, `udp` or `*` for any), `proto://CIDR`, and the same with `${alca:HOST_IP}` in
/// place of the IP. A port of `*` means every port. As in the Go original
/// (internal/network/shared/rule.go, AGD-028), an entry with a port and no protocol allows TCP
/// only; without a port (or with `:*`) and without a protocol it allows every protocol.
pub fn parse_lan_entry(raw: &str) -> Result<LanEntry, LanError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(LanError::Empty);
    }
    if s == "*" {
        return Ok(LanEntry::Everything);
    }
    let (proto, rest) = split_protocol(s)?;
    if rest == "*" {
        return Err(LanError::WildcardWithExtras);
    }
    let (host, port) = split_host_port(rest, lan_port)?;
    let target = parse_target(host)?;
    if proto.is_some() && port.is_none() && matches!(target, Target::HostIp) && !all_ports(rest) {
        return Err(LanError::ProtocolWithoutPort(raw.to_string()));
    }
    let proto = match proto {
        Scheme::None if port.is_some() => Some(Proto::Tcp),
        Scheme::None | Scheme::Any => None,
        Scheme::Only(p) => Some(p),
    };
    Ok(LanEntry::Allow {
        target,
        proto,
        port,
    })
}

/// Parses `network.proxy`: `IP:port`, `[v6]:port` or `${alca:HOST_IP}:port`.
pub fn parse_proxy(raw: &str) -> Result<ProxyEntry, LanError> {
    let s = raw.trim();
    let bad = || LanError::Proxy(raw.to_string());
    let (host, port) = split_host_port(s, |p| parse_port(p).map(Some)).map_err(|_| bad())?;
    let port = port.ok_or_else(bad)?;
    let host = match parse_target(host).map_err(|e| match e {
        LanError::Token(_) => e,
        _ => bad(),
    })? {
        Target::HostIp => ProxyHost::HostIp,
        Target::Net(net) if net.prefix_len() == net.max_prefix_len() => ProxyHost::Ip(net.addr()),
        Target::Net(_) => return Err(bad()),
    };
    Ok(ProxyEntry { host, port })
}

/// The `proto://` prefix of a `lan-access` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// No prefix: TCP when a port is given, else any protocol.
    None,
    /// `*://`: any protocol.
    Any,
    Only(Proto),
}

impl Scheme {
    pub(crate) fn is_some(self) -> bool {
        self != Scheme::None
    }
}

pub(crate) fn split_protocol(s: &str) -> Result<(Scheme, &str), LanError> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Ok((Scheme::None, s));
    };
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "*" => Scheme::Any,
        "tcp" => Scheme::Only(Proto::Tcp),
        "udp" => Scheme::Only(Proto::Udp),
        _ => return Err(LanError::Protocol(scheme.to_string())),
    };
    Ok((scheme, rest))
}

/// Whether an entry's address part ends in the all-ports wildcard `:*`.
fn all_ports(host_port: &str) -> bool {
    host_port.ends_with(":*")
}

/// Splits `host[:port]`, where an IPv6 host with a port is bracketed: `[::1]:80`; `parse_port`
/// reads the port (`None`: every port).
pub(crate) fn split_host_port(
    s: &str,
    parse_port: fn(&str) -> Result<Option<u16>, LanError>,
) -> Result<(&str, Option<u16>), LanError> {
    // A `${alca:…}` token contains a colon of its own.
    if s.starts_with("${") {
        let end = s.find('}').ok_or_else(|| LanError::Token(s.to_string()))? + 1;
        let (host, after) = s.split_at(end);
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if after.is_empty() => Ok((host, None)),
            None => Err(LanError::Address(s.to_string())),
        };
    }
    if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| LanError::Address(s.to_string()))?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, parse_port(port)?)),
            None if after.is_empty() => Ok((host, None)),
            None => Err(LanError::Address(s.to_string())),
        };
    }
    // A bare IPv6 address or CIDR has several colons and no port.
    if s.matches(':').count() > 1 {
        return Ok((s, None));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Ok((host, parse_port(port)?)),
        None => Ok((s, None)),
    }
}

fn parse_port(p: &str) -> Result<u16, LanError> {
    match p.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(LanError::Port(p.to_string())),
    }
}

/// A `lan-access` port: a number, or `*` for every port (`None`).
pub(crate) fn lan_port(p: &str) -> Result<Option<u16>, LanError> {
    if p == "*" {
        return Ok(None);
    }
    parse_port(p).map(Some)
}

fn parse_target(host: &str) -> Result<Target, LanError> {
    if host == HOST_IP_TOKEN {
        return Ok(Target::HostIp);
    }
    if host.starts_with("${") {
        return Err(LanError::Token(host.to_string()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Target::Net(IpNet::from(ip)));
    }
    host.parse::<IpNet>()
        .map(|net| Target::Net(net.trunc()))
        .map_err(|_| LanError::Address(host.to_string()))
}

impl LanEntry {
    /// Resolves `${alca:HOST_IP}` with the host address found at `up` time; `None` for `"*"`.
    pub fn resolve(&self, host_ip: IpAddr) -> Option<AllowRule> {
        match *self {
            LanEntry::Everything => None,
            LanEntry::Allow {
                target,
                proto,
                port,
            } => Some(AllowRule {
                net: match target {
                    Target::Net(net) => net,
                    Target::HostIp => IpNet::from(host_ip),
                },
                proto,
                port,
            }),
        }
    }

    /// Whether resolving this entry needs the host IP.
    pub fn needs_host_ip(&self) -> bool {
        matches!(
            self,
            LanEntry::Allow {
                target: Target::HostIp,
                ..
            }
        )
    }
}

impl ProxyEntry {
    pub fn resolve(&self, host_ip: IpAddr) -> SocketAddr {
        let ip = match self.host {
            ProxyHost::Ip(ip) => ip,
            ProxyHost::HostIp => host_ip,
        };
        SocketAddr::new(ip, self.port)
    }

    pub fn needs_host_ip(&self) -> bool {
        self.host == ProxyHost::HostIp
    }
}

/// The `lan-access` line that would allow a connection, as shown by `alca network log`.
pub fn suggest_lan_access(dest: IpAddr, proto: Proto, port: u16) -> String {
    let addr = SocketAddr::new(dest, port);
    match proto {
        Proto::Tcp => addr.to_string(),
        Proto::Udp => format!("udp://{addr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(net: &str, proto: Option<Proto>, port: Option<u16>) -> LanEntry {
        LanEntry::Allow {
            target: Target::Net(net.parse().unwrap()),
            proto,
            port,
        }
    }

    #[test]
    fn parses_every_upstream_form() {
        assert_eq!(parse_lan_entry("*").unwrap(), LanEntry::Everything);
        assert_eq!(
            parse_lan_entry("10.0.0.5").unwrap(),
            allow("10.0.0.5/32", None, None)
        );
        assert_eq!(
            parse_lan_entry("192.168.1.0/24").unwrap(),
            allow("192.168.1.0/24", None, None)
        );
        assert_eq!(
            parse_lan_entry("192.168.1.7/24").unwrap(),
            allow("192.168.1.0/24", None, None)
        );
        assert_eq!(
            parse_lan_entry("10.99.0.2:18080").unwrap(),
            allow("10.99.0.2/32", Some(Proto::Tcp), Some(18080))
        );
        assert_eq!(
            parse_lan_entry("udp://10.99.0.2:53").unwrap(),
            allow("10.99.0.2/32", Some(Proto::Udp), Some(53))
        );
        assert_eq!(
            parse_lan_entry("*://10.99.0.2:18080").unwrap(),
            allow("10.99.0.2/32", None, Some(18080))
        );
        assert_eq!(
            parse_lan_entry("*://${alca:HOST_IP}:8080").unwrap(),
            LanEntry::Allow {
                target: Target::HostIp,
                proto: None,
                port: Some(8080)
            }
        );
        assert_eq!(
            parse_lan_entry("TCP://10.0.0.0/8").unwrap(),
            allow("10.0.0.0/8", Some(Proto::Tcp), None)
        );
        assert_eq!(
            parse_lan_entry("fd00::1").unwrap(),
            allow("fd00::1/128", None, None)
        );
        assert_eq!(
            parse_lan_entry("fd00::/8").unwrap(),
            allow("fd00::/8", None, None)
        );
        assert_eq!(
            parse_lan_entry("[fd00::1]:443").unwrap(),
            allow("fd00::1/128", Some(Proto::Tcp), Some(443))
        );
        assert_eq!(
            parse_lan_entry("${alca:HOST_IP}:8080").unwrap(),
            LanEntry::Allow {
                target: Target::HostIp,
                proto: Some(Proto::Tcp),
                port: Some(8080)
            }
        );
        assert_eq!(
            parse_lan_entry("tcp://${alca:HOST_IP}:22").unwrap(),
            LanEntry::Allow {
                target: Target::HostIp,
                proto: Some(Proto::Tcp),
                port: Some(22)
            }
        );
    }

    /// The Go original's ParseLANAccessRule doc and internal/network/shared/rule_test.go:
    /// "192.168.1.100:8080" → port 8080, TCP default; "192.168.1.100:*" → all ports, all
    /// protocols; "[2001:db8::/32]:*" → IPv6 CIDR, all ports; a protocol prefix is kept.
    #[test]
    fn port_wildcard_and_tcp_default_as_upstream() {
        let any = |net: &str| allow(net, None, None);
        assert_eq!(
            parse_lan_entry("192.168.1.100:*").unwrap(),
            any("192.168.1.100/32")
        );
        assert_eq!(parse_lan_entry("10.99.0.3:*").unwrap(), any("10.99.0.3/32"));
        assert_eq!(
            parse_lan_entry("tcp://192.168.1.100:*").unwrap(),
            allow("192.168.1.100/32", Some(Proto::Tcp), None)
        );
        assert_eq!(
            parse_lan_entry("tcp://10.0.0.0/8:*").unwrap(),
            allow("10.0.0.0/8", Some(Proto::Tcp), None)
        );
        assert_eq!(parse_lan_entry("[fe80::1]:*").unwrap(), any("fe80::1/128"));
        assert_eq!(
            parse_lan_entry("[2001:db8::/32]:*").unwrap(),
            any("2001:db8::/32")
        );
        assert_eq!(
            parse_lan_entry("192.168.1.0/24:8080").unwrap(),
            allow("192.168.1.0/24", Some(Proto::Tcp), Some(8080))
        );
        assert_eq!(
            parse_lan_entry("*://192.168.1.100:443").unwrap(),
            allow("192.168.1.100/32", None, Some(443))
        );
        assert_eq!(
            parse_lan_entry("tcp://${alca:HOST_IP}:*").unwrap(),
            LanEntry::Allow {
                target: Target::HostIp,
                proto: Some(Proto::Tcp),
                port: None
            }
        );
        // A proxy still needs a real port.
        assert!(parse_proxy("127.0.0.1:*").is_err());
    }

    #[test]
    fn rejects_bad_entries_with_a_reason() {
        assert_eq!(parse_lan_entry(" "), Err(LanError::Empty));
        assert_eq!(
            parse_lan_entry("example.com"),
            Err(LanError::Address("example.com".into()))
        );
        assert_eq!(
            parse_lan_entry("10.0.0.1:0"),
            Err(LanError::Port("0".into()))
        );
        assert_eq!(
            parse_lan_entry("10.0.0.1:99999"),
            Err(LanError::Port("99999".into()))
        );
        assert_eq!(
            parse_lan_entry("icmp://10.0.0.1"),
            Err(LanError::Protocol("icmp".into()))
        );
        assert_eq!(
            parse_lan_entry("${alca:GATEWAY}"),
            Err(LanError::Token("${alca:GATEWAY}".into()))
        );
        assert_eq!(
            parse_lan_entry("tcp://*"),
            Err(LanError::WildcardWithExtras)
        );
        assert_eq!(
            parse_lan_entry("10.0.0.0/33"),
            Err(LanError::Address("10.0.0.0/33".into()))
        );
        assert!(parse_lan_entry("[fd00::1").is_err());
    }

    #[test]
    fn parses_proxy_forms() {
        let p = parse_proxy("127.0.0.1:15001").unwrap();
        assert_eq!(
            p.resolve("10.0.0.1".parse().unwrap()),
            "127.0.0.1:15001".parse().unwrap()
        );
        let p = parse_proxy("[fd00::1]:3128").unwrap();
        assert_eq!(p.host, ProxyHost::Ip("fd00::1".parse().unwrap()));
        let p = parse_proxy("${alca:HOST_IP}:1080").unwrap();
        assert!(p.needs_host_ip());
        assert_eq!(
            p.resolve("10.1.2.3".parse().unwrap()),
            "10.1.2.3:1080".parse().unwrap()
        );
    }

    #[test]
    fn rejects_bad_proxies() {
        for bad in [
            "proxy.local:3128",
            "10.0.0.1",
            "10.0.0.0/8:80",
            "10.0.0.1:0",
            "",
        ] {
            assert_eq!(
                parse_proxy(bad),
                Err(LanError::Proxy(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_proxy("${alca:NOPE}:80"),
            Err(LanError::Token("${alca:NOPE}".into()))
        );
    }

    #[test]
    fn suggests_the_line_that_would_allow() {
        assert_eq!(
            suggest_lan_access("10.99.0.2".parse().unwrap(), Proto::Tcp, 18080),
            "10.99.0.2:18080"
        );
        assert_eq!(
            suggest_lan_access("fd00::2".parse().unwrap(), Proto::Udp, 53),
            "udp://[fd00::2]:53"
        );
    }
}
