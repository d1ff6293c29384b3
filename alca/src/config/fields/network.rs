//! `network.lan-access` and `network.proxy`, parsed at load with the grammar shared with
//! `alca-netd`, so syntax errors surface before `up`.

use alca_contract::lan::{parse_lan_entry, parse_proxy, ProxyHost};
use alca_contract::net_spec::proxy_address_problem;
use alca_contract::{LanEntry, ProxyEntry};

use crate::config::error::Origin;
use crate::config::ConfigError;

/// Parses every `lan-access` entry of one file, keeping the raw text next to the parsed form.
pub fn lan_access(
    raw: &[String],
    file: &std::path::Path,
) -> Result<Vec<(String, LanEntry)>, ConfigError> {
    raw.iter()
        .enumerate()
        .map(|(i, entry)| {
            let origin = Origin::new(file, format!("network.lan-access[{i}]"));
            let parsed = parse_lan_entry(entry).map_err(|e| {
                origin.err(
                    e,
                    "write \"*\", an IP, a CIDR, IP:port, tcp://IP:port or ${alca:HOST_IP}:port",
                )
            })?;
            Ok((entry.trim().to_string(), parsed))
        })
        .collect()
}

/// Parses `network.proxy`: an IP (or `${alca:HOST_IP}`) and a port the container's TCP can be
/// DNAT'd to. Hostnames are refused: the rules are compiled to addresses, and a name resolved
/// once would silently go stale.
pub fn proxy(raw: &str, file: &std::path::Path) -> Result<(String, ProxyEntry), ConfigError> {
    let origin = Origin::new(file, "network.proxy");
    let parsed = parse_proxy(raw).map_err(|e| {
        if names_a_host(raw) {
            origin.err(
                format!(
                    "{:?} names a host, but the proxy must be an IP address",
                    raw.trim()
                ),
                "write the proxy's address as IP:port, [IPv6]:port or ${alca:HOST_IP}:port \
                 (for a proxy on this host), e.g. \"${alca:HOST_IP}:3128\"",
            )
        } else {
            origin.err(
                e,
                "write the proxy as IP:port, [IPv6]:port or ${alca:HOST_IP}:port",
            )
        }
    })?;
    if let ProxyHost::Ip(ip) = parsed.host {
        if let Some(problem) = proxy_address_problem(ip) {
            return Err(origin.err(
                format!("{ip} {problem}"),
                "run the proxy on an address of the host that containers can reach and write \
                 ${alca:HOST_IP}:port (or that address)",
            ));
        }
    }
    Ok((raw.trim().to_string(), parsed))
}

/// Whether the host part of `host:port` looks like a DNS name rather than a mistyped address.
fn names_a_host(raw: &str) -> bool {
    let s = raw.trim();
    let host = s.rsplit_once(':').map_or(s, |(h, _)| h);
    !host.is_empty()
        && !host.starts_with('[')
        && !host.starts_with("${")
        && host.chars().any(|c| c.is_ascii_alphabetic())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn errors_name_the_entry() {
        let f = Path::new("/p/.alca.toml");
        let ok = lan_access(&["10.0.0.0/8".into(), "*".into()], f).unwrap();
        assert_eq!(ok[1].1, LanEntry::Everything);
        let e = lan_access(&["10.0.0.1".into(), "example.com".into()], f)
            .unwrap_err()
            .0;
        assert!(
            e.contains("network.lan-access[1]: \"example.com\" is not an IP"),
            "{e}"
        );
        let e = lan_access(&["${alca:GATEWAY}".into()], f).unwrap_err().0;
        assert!(e.contains("the only valid token is ${alca:HOST_IP}"), "{e}");
    }

    #[test]
    fn proxy_hostnames_are_refused_naming_file_field_and_fix() {
        let f = Path::new("/p/.alca.toml");
        for name in ["localhost:3128", "proxy.corp.example:8080", "squid:3128"] {
            let e = proxy(name, f).unwrap_err().0;
            assert_eq!(
                e,
                format!(
                    "/p/.alca.toml: network.proxy: {name:?} names a host, but the proxy must be \
                     an IP address; write the proxy's address as IP:port, [IPv6]:port or \
                     ${{alca:HOST_IP}}:port (for a proxy on this host), e.g. \"${{alca:HOST_IP}}:3128\""
                )
            );
        }
        let e = proxy("10.0.0.1", f).unwrap_err().0;
        assert!(
            e.starts_with("/p/.alca.toml: network.proxy: proxy \"10.0.0.1\" must be IP:port"),
            "{e}"
        );
        assert!(
            e.ends_with("; write the proxy as IP:port, [IPv6]:port or ${alca:HOST_IP}:port"),
            "{e}"
        );
        assert!(proxy("[fd00::1]:3128", f).is_ok());
        assert!(proxy("${alca:HOST_IP}:3128", f).is_ok());
    }

    #[test]
    fn proxy_addresses_no_container_can_reach_are_refused_at_load() {
        let f = Path::new("/p/.alca.toml");
        for bad in [
            "127.0.0.1:3128",
            "[::1]:3128",
            "0.0.0.0:3128",
            "224.0.0.9:3128",
        ] {
            let e = proxy(bad, f).unwrap_err().0;
            assert!(e.starts_with("/p/.alca.toml: network.proxy: "), "{e}");
            assert!(e.contains("${alca:HOST_IP}:port"), "{e}");
        }
        let e = proxy("127.0.0.1:15001", f).unwrap_err().0;
        assert!(e.contains("127.0.0.1 is a loopback address"), "{e}");
    }
}
