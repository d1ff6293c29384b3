//! The host's addresses and local-bridge routes as an unprivileged user sees them (`ip -j`),
//! for the verify matrix. Missing `ip` (macOS) gives an empty view: the matrix then falls back
//! to its fixed targets.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use ipnet::IpNet;
use serde_json::Value;

use super::matrix::HostView;

/// Most addresses and routes read (the matrix takes far fewer).
const MAX_ENTRIES: usize = 64;

/// Reads the live view; problems give an empty part, never an error.
pub fn read() -> HostView {
    let addrs = ip_json(&["-j", "addr", "show"])
        .map(|v| parse_addrs(&v))
        .unwrap_or_default();
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        if let Some(v) = ip_json(&[family, "-j", "route", "show"]) {
            routes.extend(parse_routes(&v, is_bridge));
        }
    }
    routes.truncate(MAX_ENTRIES);
    HostView {
        addrs,
        bridge_routes: routes,
    }
}

fn ip_json(args: &[&str]) -> Option<Value> {
    let out = Command::new("ip").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn is_bridge(dev: &str) -> bool {
    !dev.contains('/')
        && Path::new("/sys/class/net")
            .join(dev)
            .join("bridge")
            .is_dir()
}

/// `(ifname, address)` of every non-loopback address in `ip -j addr` output.
pub fn parse_addrs(v: &Value) -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    for link in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        let dev = link["ifname"].as_str().unwrap_or_default();
        for a in link["addr_info"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let Some(ip) = a["local"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            if !ip.is_loopback() && a["scope"] != "host" {
                out.push((dev.to_string(), ip));
            }
        }
    }
    out.truncate(MAX_ENTRIES);
    out
}

/// `(dev, network)` of routes through local bridges in `ip -j route` output.
pub fn parse_routes(v: &Value, bridge: impl Fn(&str) -> bool) -> Vec<(String, IpNet)> {
    v.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            let dev = r["dev"].as_str()?;
            let net: IpNet = r["dst"].as_str()?.parse().ok()?;
            // Link-local and multicast routes name no container.
            let scoped = match net.addr() {
                IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80 || a.is_multicast(),
                IpAddr::V4(a) => a.is_link_local() || a.is_multicast(),
            };
            let routed = net.prefix_len() < net.max_prefix_len() && !scoped;
            (routed && bridge(dev)).then(|| (dev.to_string(), net))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_addresses_and_bridge_routes() {
        let addrs = json!([
            {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "scope": "host"}]},
            {"ifname": "eth0", "addr_info": [
                {"family": "inet", "local": "203.0.113.9", "scope": "global"},
                {"family": "inet6", "local": "fe80::1", "scope": "link"}]},
        ]);
        assert_eq!(
            parse_addrs(&addrs),
            vec![
                ("eth0".to_string(), "203.0.113.9".parse().unwrap()),
                ("eth0".to_string(), "fe80::1".parse().unwrap())
            ]
        );
        let routes = json!([
            {"dst": "default", "gateway": "203.0.113.1", "dev": "eth0"},
            {"dst": "172.17.0.0/16", "dev": "docker0"},
            {"dst": "fe80::/64", "dev": "docker0"},
            {"dst": "10.99.0.0/24", "dev": "alca-lan0"},
        ]);
        let got = parse_routes(&routes, |d| d == "docker0");
        assert_eq!(
            got,
            vec![("docker0".to_string(), "172.17.0.0/16".parse().unwrap())]
        );
    }
}
