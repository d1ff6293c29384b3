//! `network.lan-access` and `network.proxy`, parsed at load with the grammar shared with
//! `alca-netd`, so syntax errors surface before `up`.

use alca_netd::lan::{parse_lan_entry, parse_proxy};
use alca_netd::{LanEntry, ProxyEntry};

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

/// Parses `network.proxy`.
pub fn proxy(raw: &str, file: &std::path::Path) -> Result<(String, ProxyEntry), ConfigError> {
    let origin = Origin::new(file, "network.proxy");
    let parsed = parse_proxy(raw).map_err(|e| {
        origin.err(
            e,
            "write the proxy as IP:port, [IPv6]:port or ${alca:HOST_IP}:port",
        )
    })?;
    Ok((raw.trim().to_string(), parsed))
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
        let e = proxy("localhost:3128", f).unwrap_err().0;
        assert!(e.contains("network.proxy: proxy \"localhost:3128\""), "{e}");
        let e = lan_access(&["${alca:GATEWAY}".into()], f).unwrap_err().0;
        assert!(e.contains("the only valid token is ${alca:HOST_IP}"), "{e}");
    }
}
