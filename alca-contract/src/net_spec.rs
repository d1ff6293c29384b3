//! The typed request a client sends to `alca-netd`: what one project's containers may reach.
//!
//! It is plain data (never nft text). `validate` is the single gate every request passes
//! before the ruleset compiler sees it; the CLI runs the same check before sending.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::internet::{InternetError, InternetSpec};
use crate::lan::AllowRule;

/// Largest encoded request the daemon reads.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Most allow rules one project may carry.
pub const MAX_ALLOW_RULES: usize = 256;
/// Most resolver addresses one project may carry.
pub const MAX_DNS: usize = 8;
/// Prefix of every nftables table, bridge and container name alca owns.
pub const NAME_PREFIX: &str = "alca-";
/// Length of the project-id part of a bridge name (Linux caps interface names at 15 bytes).
pub const BRIDGE_ID_LEN: usize = 10;

/// A project's network isolation as requested by the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    /// Project id: 8 to 64 lowercase hex digits.
    pub project: String,
    /// The project's own runtime bridge: `alca-` followed by the first ten digits of the id.
    pub bridge: String,
    /// `lan-access = ["*"]`: no filtering at all (the proxy, if any, still applies).
    #[serde(default)]
    pub allow_all: bool,
    /// Destinations let through before the deny set, in order.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
    /// Transparent proxy every container TCP connection is sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<SocketAddr>,
    /// Resolver addresses (on the host side of the bridge) that may be reached on port 53.
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// `network.internet-access` when it is not `["*"]`: DNS only to the project's resolver and
    /// the internet only to the listed destinations. `None` (the default) leaves the internet open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet: Option<InternetSpec>,
}

/// Why a request was refused; each message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("project: {0:?} must be 8 to 64 lowercase hex digits")]
    Project(String),
    #[error("bridge: {found:?} must be {expected:?} (the project's own bridge)")]
    Bridge { found: String, expected: String },
    #[error("allow: {0} rules is more than the limit of {MAX_ALLOW_RULES}")]
    TooManyRules(usize),
    #[error("allow: {0} has port 0; ports run from 1 to 65535")]
    Rule(String),
    #[error("dns: {0} addresses is more than the limit of {MAX_DNS}")]
    TooManyDns(usize),
    #[error("proxy: port 0 is not a valid proxy port")]
    ProxyPort,
    #[error("proxy: {0} {1}")]
    ProxyAddress(IpAddr, &'static str),
    #[error("{0}")]
    Internet(#[from] InternetError),
    #[error("resolver spec: {0}")]
    Resolver(String),
}

impl NetSpec {
    /// The default isolation of `project`: its own bridge, nothing allowed beyond the deny set,
    /// no proxy, no resolver, the internet open.
    pub fn isolated(project: &str) -> NetSpec {
        NetSpec {
            project: project.to_string(),
            bridge: bridge_name(project),
            allow_all: false,
            allow: vec![],
            proxy: None,
            dns: vec![],
            internet: None,
        }
    }

    /// The nftables table name that holds this project's rules.
    pub fn table_name(&self) -> String {
        table_name(&self.project)
    }

    /// Checks every field; the compiler relies on this having passed.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_project_id(&self.project)?;
        let expected = bridge_name(&self.project);
        if self.bridge != expected {
            return Err(SpecError::Bridge {
                found: self.bridge.clone(),
                expected,
            });
        }
        if self.allow.len() > MAX_ALLOW_RULES {
            return Err(SpecError::TooManyRules(self.allow.len()));
        }
        if let Some(rule) = self.allow.iter().find(|r| r.port == Some(0)) {
            return Err(SpecError::Rule(format!("{rule:?}")));
        }
        if self.dns.len() > MAX_DNS {
            return Err(SpecError::TooManyDns(self.dns.len()));
        }
        if let Some(proxy) = self.proxy {
            if proxy.port() == 0 {
                return Err(SpecError::ProxyPort);
            }
            if let Some(problem) = proxy_address_problem(proxy.ip()) {
                return Err(SpecError::ProxyAddress(proxy.ip(), problem));
            }
        }
        if let Some(internet) = &self.internet {
            internet.validate()?;
        }
        Ok(())
    }
}

/// Why `ip` cannot be the DNAT target of a transparent proxy, if it cannot.
///
/// Loopback is refused because the kernel drops packets from a bridge that were DNAT'd to
/// 127.0.0.0/8 or ::1 (they are martians there), so every connection would silently hang.
pub fn proxy_address_problem(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if ip.is_unspecified() {
        Some("is the unspecified address, which no connection can be sent to")
    } else if ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        Some("is a multicast or broadcast address, which cannot accept TCP")
    } else if ip.is_loopback() {
        Some("is a loopback address, which containers cannot be redirected to (the kernel drops such packets)")
    } else {
        None
    }
}

/// Checks a project id: 8 to 64 lowercase hex digits.
pub fn validate_project_id(id: &str) -> Result<(), SpecError> {
    let ok = (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(SpecError::Project(id.chars().take(80).collect()))
    }
}

/// `alca-<id>`: the nftables table of a project.
pub fn table_name(project: &str) -> String {
    format!("{NAME_PREFIX}{project}")
}

/// `alca-<first ten id digits>`: the runtime bridge interface of a project.
pub fn bridge_name(project: &str) -> String {
    let id: String = project.chars().take(BRIDGE_ID_LEN).collect();
    format!("{NAME_PREFIX}{id}")
}

/// The upstream resolvers Docker's embedded DNS (127.0.0.11) forwards to, from the text of the
/// resolv.conf dockerd uses (`/etc/resolv.conf`, or `/run/systemd/resolve/resolv.conf` when the
/// former only names 127.0.0.53). The embedded DNS sends these queries from the container's
/// namespace, across the project bridge, so a resolver on a LAN address is refused unless it is
/// in [`NetSpec::dns`]. Loopback servers are skipped (dockerd drops them); at most [`MAX_DNS`].
pub fn resolvers_from_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        // A scoped IPv6 server (`fe80::1%eth0`) keeps only its address.
        .filter_map(|addr| addr.split('%').next()?.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .take(MAX_DNS)
        .collect()
}

/// A valid spec with nothing allowed, for the unit tests of the crates that use the contract.
#[doc(hidden)]
pub fn sample_spec() -> NetSpec {
    NetSpec::isolated("0123456789abcdef")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NetSpec {
        sample_spec()
    }

    #[test]
    fn accepts_a_minimal_spec() {
        assert_eq!(spec().validate(), Ok(()));
        assert_eq!(spec().table_name(), "alca-0123456789abcdef");
    }

    #[test]
    fn refuses_foreign_bridges_and_bad_ids() {
        let mut s = spec();
        s.bridge = "docker0".into();
        assert!(matches!(s.validate(), Err(SpecError::Bridge { .. })));
        let mut s = spec();
        s.project = "ABC; flush ruleset".into();
        assert!(matches!(s.validate(), Err(SpecError::Project(_))));
    }

    #[test]
    fn refuses_oversized_lists() {
        let mut s = spec();
        s.dns = vec!["10.0.0.1".parse().unwrap(); MAX_DNS + 1];
        assert_eq!(s.validate(), Err(SpecError::TooManyDns(MAX_DNS + 1)));
        let mut s = spec();
        let rule = AllowRule {
            net: "10.0.0.1/32".parse().unwrap(),
            proto: None,
            port: None,
        };
        s.allow = vec![rule; MAX_ALLOW_RULES + 1];
        assert_eq!(
            s.validate(),
            Err(SpecError::TooManyRules(MAX_ALLOW_RULES + 1))
        );
    }

    #[test]
    fn refuses_proxies_no_container_can_be_redirected_to() {
        for bad in [
            "0.0.0.0:3128",
            "[::]:3128",
            "127.0.0.1:3128",
            "[::1]:3128",
            "[::ffff:127.0.0.1]:3128",
            "224.0.0.1:3128",
            "255.255.255.255:3128",
        ] {
            let mut s = spec();
            s.proxy = Some(bad.parse().unwrap());
            assert!(
                matches!(s.validate(), Err(SpecError::ProxyAddress(..))),
                "{bad}"
            );
        }
        let mut s = spec();
        s.proxy = Some("10.0.0.1:3128".parse().unwrap());
        assert_eq!(s.validate(), Ok(()));
        let msg = SpecError::ProxyAddress("127.0.0.1".parse().unwrap(), "is a loopback address, x")
            .to_string();
        assert_eq!(msg, "proxy: 127.0.0.1 is a loopback address, x");
    }

    #[test]
    fn reads_resolvers_like_dockerd() {
        let text = "# generated\nnameserver 127.0.0.53\nnameserver 10.255.255.53\n\
                    search lan\nnameserver fe80::1%eth0\nnameserver bogus\n";
        let want: Vec<IpAddr> = vec!["10.255.255.53".parse().unwrap(), "fe80::1".parse().unwrap()];
        assert_eq!(resolvers_from_resolv_conf(text), want);
        let many = "nameserver 10.0.0.1\n".repeat(MAX_DNS + 3);
        assert_eq!(resolvers_from_resolv_conf(&many).len(), MAX_DNS);
    }

    #[test]
    fn checks_the_internet_part_and_keeps_the_old_wire_form_without_it() {
        let mut s = spec();
        s.internet = Some(InternetSpec {
            entries: vec![crate::internet::parse_internet_entry("allowed.test:8080").unwrap()],
            resolver: "10.89.0.1:5353".parse().unwrap(),
            ttl_floor_secs: 30,
            ttl_max_secs: 3600,
        });
        assert_eq!(s.validate(), Ok(()));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<NetSpec>(&json).unwrap(), s);
        s.internet.as_mut().unwrap().resolver = "0.0.0.0:53".parse().unwrap();
        let err = s.validate().unwrap_err();
        assert!(matches!(
            err,
            SpecError::Internet(InternetError::Resolver(_))
        ));
        assert!(err.to_string().starts_with("internet.resolver:"), "{err}");
        assert!(!serde_json::to_string(&spec()).unwrap().contains("internet"));
    }

    #[test]
    fn decoder_rejects_unknown_fields() {
        let json =
            r#"{"project":"0123456789abcdef","bridge":"alca-0123456789","nft":"flush ruleset"}"#;
        assert!(serde_json::from_str::<NetSpec>(json).is_err());
    }
}
