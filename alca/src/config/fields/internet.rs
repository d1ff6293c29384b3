//! `network.internet-access`, `network.dns-upstream` and `network.dns-ttl-floor`, checked at
//! load with the grammar shared with `alca-netd` (`alca_contract::internet`), so a typo surfaces
//! before `up`, naming the file, the field and the fix.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use alca_contract::internet::{parse_internet_access, InternetAccess, DEFAULT_TTL_MAX_SECS};
use alca_contract::net_spec::MAX_DNS;

use crate::config::error::Origin;
use crate::config::ConfigError;

/// The DNS port an upstream without `:port` is asked on.
const DNS_PORT: u16 = 53;

const ACCESS_FIX: &str = "write [\"*\"] (open internet), [] (no internet), or entries such as \
     \"github.com\", \"*.githubusercontent.com\", \"registry.npmjs.org:443\", \
     \"tcp://ssh.example.com:22\", \"203.0.113.0/24\"";

/// Checks one file's `internet-access` list and returns it trimmed. Each entry is checked on its
/// own (so the error names its index), then the list as a whole (`"*"` must stand alone).
pub fn internet_access(raw: &[String], file: &Path) -> Result<Vec<String>, ConfigError> {
    for (i, entry) in raw.iter().enumerate() {
        if entry.trim() == "*" {
            continue;
        }
        parse_internet_access(std::slice::from_ref(entry)).map_err(|e| {
            Origin::new(file, format!("network.internet-access[{i}]")).err(e, ACCESS_FIX)
        })?;
    }
    parse_internet_access(raw).map_err(|e| {
        Origin::new(file, "network.internet-access").err(
            e,
            "keep [\"*\"] alone for an open internet, or remove \"*\" to allow only the listed entries",
        )
    })?;
    Ok(raw.iter().map(|s| s.trim().to_string()).collect())
}

/// Merges the lists of two files as `lan-access` does (arrays append), where `"*"` in either
/// one opens the internet (as `"*"` in any `lan-access` layer turns isolation off).
pub fn merge_internet_access(base: Vec<String>, overlay: Vec<String>) -> Vec<String> {
    let star = |l: &[String]| l.iter().any(|s| s == "*");
    if star(&base) || star(&overlay) {
        return vec!["*".to_string()];
    }
    let mut out = base;
    for e in overlay {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Parses the merged list; `root_file` is named when only the merge broke a limit.
pub fn finish_internet_access(
    raw: &[String],
    root_file: &Path,
) -> Result<InternetAccess, ConfigError> {
    parse_internet_access(raw).map_err(|e| {
        ConfigError::at(
            root_file,
            "network.internet-access",
            format!("{e} (after merging the files it extends or includes)"),
            "remove entries or allow a wider domain such as \"*.example.com\"",
        )
    })
}

/// Parses `dns-upstream`: each entry an IP, `IP:port` or `[IPv6]:port` (port 53 when omitted).
pub fn dns_upstream(raw: &[String], file: &Path) -> Result<Vec<SocketAddr>, ConfigError> {
    if raw.len() > MAX_DNS {
        return Err(Origin::new(file, "network.dns-upstream").err(
            format!("{} servers is more than the limit of {MAX_DNS}", raw.len()),
            format!("list at most {MAX_DNS} servers"),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, entry)| {
            let origin = Origin::new(file, format!("network.dns-upstream[{i}]"));
            upstream(entry).map_err(|problem| {
                origin.err(
                    problem,
                    "write the DNS server's address as IP, IP:port or [IPv6]:port, e.g. \
                     \"192.0.2.53\" or \"[2001:db8::53]:5353\"",
                )
            })
        })
        .collect()
}

fn upstream(entry: &str) -> Result<SocketAddr, String> {
    let s = entry.trim();
    let addr = match s.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, DNS_PORT),
            Err(_) => return Err(format!("{s:?} is not an IP address with an optional port")),
        },
    };
    let ip = addr.ip().to_canonical();
    if addr.port() == 0 {
        return Err(format!("{s:?} has port 0"));
    }
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return Err(format!(
            "{s:?} is not a unicast address a query can be sent to"
        ));
    }
    Ok(addr)
}

/// Checks `dns-ttl-floor` (seconds an answered address stays allowed at least).
pub fn dns_ttl_floor(secs: i64, file: &Path) -> Result<u32, ConfigError> {
    u32::try_from(secs)
        .ok()
        .filter(|s| *s <= DEFAULT_TTL_MAX_SECS)
        .ok_or_else(|| {
            Origin::new(file, "network.dns-ttl-floor").err(
                format!("{secs} is not a number of seconds from 0 to {DEFAULT_TTL_MAX_SECS}"),
                "write a number of seconds such as 30 (clients such as the JVM cache answers for 30 s)",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> &'static Path {
        Path::new("/p/.alca.toml")
    }

    #[test]
    fn entries_are_checked_naming_the_index_and_the_fix() {
        let ok = internet_access(&[" github.com ".into(), "*.wild.test:443".into()], f()).unwrap();
        assert_eq!(ok, ["github.com", "*.wild.test:443"]);
        let e = internet_access(&["github.com".into(), "*.com".into()], f())
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("/p/.alca.toml: network.internet-access[1]: \"*.com\" would allow"),
            "{e}"
        );
        assert!(e.contains("; write [\"*\"] (open internet)"), "{e}");
        let e = internet_access(&["*".into(), "github.com".into()], f())
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("/p/.alca.toml: network.internet-access: \"*\" must be the only entry"),
            "{e}"
        );
        assert!(internet_access(&[], f()).unwrap().is_empty());
    }

    #[test]
    fn a_star_in_any_file_opens_and_lists_append() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merge_internet_access(s(&["a.test"]), s(&["b.test", "a.test"])),
            s(&["a.test", "b.test"])
        );
        assert_eq!(merge_internet_access(s(&["a.test"]), s(&["*"])), s(&["*"]));
        assert_eq!(merge_internet_access(s(&["*"]), s(&[])), s(&["*"]));
        assert_eq!(
            finish_internet_access(&s(&["*"]), f()).unwrap(),
            InternetAccess::Everything
        );
    }

    #[test]
    fn upstreams_take_an_optional_port() {
        let got = dns_upstream(
            &[
                "192.0.2.53".into(),
                "[2001:db8::53]:5353".into(),
                "127.0.0.1:5300".into(),
            ],
            f(),
        )
        .unwrap();
        assert_eq!(got[0], "192.0.2.53:53".parse().unwrap());
        assert_eq!(got[1], "[2001:db8::53]:5353".parse().unwrap());
        for bad in [
            "dns.example",
            "0.0.0.0",
            "224.0.0.1:53",
            "192.0.2.1:0",
            "192.0.2.1:x",
        ] {
            let e = dns_upstream(&["192.0.2.1".into(), bad.into()], f())
                .unwrap_err()
                .0;
            assert!(
                e.starts_with("/p/.alca.toml: network.dns-upstream[1]: "),
                "{bad}: {e}"
            );
            assert!(e.contains("write the DNS server's address"), "{e}");
        }
        let many: Vec<String> = (1..=9).map(|i| format!("192.0.2.{i}")).collect();
        assert!(dns_upstream(&many, f())
            .unwrap_err()
            .0
            .contains("limit of 8"));
    }

    #[test]
    fn the_floor_is_bounded() {
        assert_eq!(dns_ttl_floor(0, f()).unwrap(), 0);
        assert_eq!(dns_ttl_floor(30, f()).unwrap(), 30);
        for bad in [-1, 3601, i64::MAX] {
            let e = dns_ttl_floor(bad, f()).unwrap_err().0;
            assert!(
                e.starts_with("/p/.alca.toml: network.dns-ttl-floor: "),
                "{e}"
            );
        }
    }
}
