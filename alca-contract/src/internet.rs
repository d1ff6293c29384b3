//! `network.internet-access`, the domain allow-list for the internet: the grammar of an entry and
//! the typed values the CLI, the project's DNS resolver and the daemon share.
//!
//! Nothing here touches the system. The flow is: the CLI parses the config into
//! [`InternetEntry`]s and sends them in [`crate::NetSpec::internet`]; the daemon compiles the
//! address entries into static rules and creates empty, timed allow sets for the domain entries;
//! the project's unprivileged resolver forwards only names an entry [`matches`](InternetEntry::matches_name)
//! and, before it answers the container, sends each A/AAAA address as a [`ResolvedAddr`] to the
//! daemon, which checks it against the applied spec and adds it to the sets.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::lan::{lan_port, split_host_port, split_protocol, LanError, Proto, Scheme};

/// Most `internet-access` entries one project may carry.
pub const MAX_INTERNET_ENTRIES: usize = 256;
/// Most addresses one [`ResolvedAddrs`] update may carry (a DNS answer rarely has more than 16).
pub const MAX_RESOLVED_PER_UPDATE: usize = 64;
/// Default lower bound of an allow-set element's lifetime, in seconds: the JVM and other clients
/// cache an answer for 30 s, so the address must stay allowed at least that long.
pub const DEFAULT_TTL_FLOOR_SECS: u32 = 30;
/// Default upper bound of an allow-set element's lifetime, in seconds.
pub const DEFAULT_TTL_MAX_SECS: u32 = 3600;
/// Hard upper bound the daemon accepts for either bound (one day).
pub const MAX_TTL_SECS: u32 = 86_400;
/// Longest domain name (RFC 1035 §2.3.4, without the final dot).
const MAX_NAME_LEN: usize = 253;

/// What an entry names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum InternetTarget {
    /// `example.com` (that name only) or `*.example.com` (`subdomains`: every name below it, not
    /// the name itself). Stored lowercase, without a final dot.
    Domain { name: String, subdomains: bool },
    /// An IP address or CIDR, allowed without DNS.
    Net(IpNet),
}

/// One parsed `internet-access` entry (`"*"` is not an entry: it is the absence of the list).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetEntry {
    pub target: InternetTarget,
    /// `None`: every protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Proto>,
    /// `None`: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// The parsed `network.internet-access` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InternetAccess {
    /// `["*"]` (the default): the internet is open, as in the Go original.
    Everything,
    /// Only these destinations (`[]`: no internet and no outside DNS).
    Only(Vec<InternetEntry>),
}

/// The internet part of a project's [`crate::NetSpec`], present when the list is not `["*"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetSpec {
    /// The entries in config order; a [`ResolvedAddr::entry`] is an index into this list.
    pub entries: Vec<InternetEntry>,
    /// The project's resolver, on the host side of the bridge: every DNS packet (UDP and TCP 53,
    /// to any address) from the project's containers is sent here.
    pub resolver: SocketAddr,
    /// Bounds of an allow-set element's lifetime: a record's TTL is raised to `ttl_floor_secs`
    /// and cut to `ttl_max_secs`.
    pub ttl_floor_secs: u32,
    pub ttl_max_secs: u32,
}

/// One address the project's resolver saw in an answer to a name that `entry` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedAddr {
    /// Index into [`InternetSpec::entries`]; that entry must be a domain.
    pub entry: u16,
    pub addr: IpAddr,
    /// The record's TTL as received; the daemon applies the spec's bounds.
    pub ttl_secs: u32,
}

/// The resolver's request to the daemon: add these addresses to the project's allow sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedAddrs {
    pub project: String,
    pub addrs: Vec<ResolvedAddr>,
}

/// Why an `internet-access` string, an internet spec or an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InternetError {
    #[error("{0}")]
    Grammar(#[from] LanError),
    #[error("{0:?} is not a domain name, IP address or CIDR; expected e.g. \"github.com\", \"*.githubusercontent.com\", \"203.0.113.0/24\"")]
    Name(String),
    #[error("{0:?} would allow a whole top-level domain; name at least two labels, e.g. \"*.example.com\"")]
    WildcardTooWide(String),
    #[error("\"*\" must be the only entry: [\"*\"] opens the internet, so other entries would have no effect")]
    WildcardWithOthers,
    #[error("\"*\" cannot be combined with a protocol or port; list the domains instead")]
    WildcardWithExtras,
    #[error("internet.entries: {0} entries is more than the limit of {MAX_INTERNET_ENTRIES}")]
    TooManyEntries(usize),
    #[error("internet.resolver: {0} must be a unicast address with a port other than 0")]
    Resolver(SocketAddr),
    #[error("internet.ttl: floor {floor} s and maximum {max} s must satisfy floor <= maximum <= {MAX_TTL_SECS} and maximum > 0")]
    TtlBounds { floor: u32, max: u32 },
    #[error("addrs: {0} addresses is more than the limit of {MAX_RESOLVED_PER_UPDATE} per update")]
    TooManyAddrs(usize),
    #[error("addrs: entry {0} is not a domain entry of the applied spec")]
    NotADomainEntry(u16),
    #[error("addrs: {0} is not a unicast address a connection can go to")]
    Addr(IpAddr),
}

/// Parses the whole list: `["*"]` is [`InternetAccess::Everything`], anything else a list of
/// entries (see [`parse_internet_entry`]).
pub fn parse_internet_access<S: AsRef<str>>(raw: &[S]) -> Result<InternetAccess, InternetError> {
    let is_star = |s: &S| s.as_ref().trim() == "*";
    if raw.iter().any(is_star) {
        return if raw.len() == 1 {
            Ok(InternetAccess::Everything)
        } else {
            Err(InternetError::WildcardWithOthers)
        };
    }
    if raw.len() > MAX_INTERNET_ENTRIES {
        return Err(InternetError::TooManyEntries(raw.len()));
    }
    raw.iter()
        .map(|s| parse_internet_entry(s.as_ref()))
        .collect::<Result<_, _>>()
        .map(InternetAccess::Only)
}

/// Parses one entry: a domain, `*.domain` (subdomains only), an IP or CIDR, each optionally with
/// `:port` (or `:*`) and `proto://` (`tcp`, `udp`, `*`), with the same rules as `lan-access`:
/// a port without a protocol means TCP only; no port (or `:*`) and no protocol means every
/// protocol. `${alca:…}` tokens are not accepted here.
pub fn parse_internet_entry(raw: &str) -> Result<InternetEntry, InternetError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(LanError::Empty.into());
    }
    let (scheme, rest) = split_protocol(s)?;
    if rest == "*" || rest.starts_with("*:") {
        return Err(InternetError::WildcardWithExtras);
    }
    if rest.starts_with("${") {
        return Err(InternetError::Name(raw.to_string()));
    }
    let (host, port) = split_host_port(rest, lan_port)?;
    let target = parse_target(host).ok_or_else(|| InternetError::Name(raw.to_string()))??;
    let proto = match scheme {
        Scheme::None if port.is_some() => Some(Proto::Tcp),
        Scheme::None | Scheme::Any => None,
        Scheme::Only(p) => Some(p),
    };
    Ok(InternetEntry {
        target,
        proto,
        port,
    })
}

/// An IP/CIDR or a domain; `None` when it is neither.
fn parse_target(host: &str) -> Option<Result<InternetTarget, InternetError>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Ok(InternetTarget::Net(IpNet::from(ip))));
    }
    if let Ok(net) = host.parse::<IpNet>() {
        return Some(Ok(InternetTarget::Net(net.trunc())));
    }
    let (subdomains, name) = match host.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, host),
    };
    let name = normalize_name(name)?;
    if subdomains && !name.contains('.') {
        return Some(Err(InternetError::WildcardTooWide(host.to_string())));
    }
    Some(Ok(InternetTarget::Domain { name, subdomains }))
}

/// `name` lowercased without its final dot, when it is a valid host name (letters, digits and
/// inner hyphens; labels of 1 to 63 bytes; at most 253 bytes). Underscores are accepted in labels
/// because service names (`_dmarc`) use them.
pub fn normalize_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('.').all(label_ok);
    // An all-digit last label would be an IPv4 address the parser above refused.
    let numeric_tld = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    (ok && !numeric_tld).then_some(name)
}

impl InternetEntry {
    /// Whether a query for `name` (any case, with or without its final dot) is allowed by this
    /// entry. Address entries match no name.
    pub fn matches_name(&self, name: &str) -> bool {
        let InternetTarget::Domain {
            name: allowed,
            subdomains,
        } = &self.target
        else {
            return false;
        };
        let Some(name) = normalize_name(name) else {
            return false;
        };
        if *subdomains {
            name.len() > allowed.len() + 1
                && name.ends_with(allowed.as_str())
                && name.as_bytes()[name.len() - allowed.len() - 1] == b'.'
        } else {
            name == *allowed
        }
    }

    pub fn is_domain(&self) -> bool {
        matches!(self.target, InternetTarget::Domain { .. })
    }
}

/// The indices of the entries that allow a query for `name`; empty means REFUSED.
pub fn entries_for_name(entries: &[InternetEntry], name: &str) -> Vec<u16> {
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.matches_name(name))
        .filter_map(|(i, _)| u16::try_from(i).ok())
        .collect()
}

impl fmt::Display for InternetEntry {
    /// The entry as a user writes it in `internet-access`, in its shortest form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.target {
            InternetTarget::Domain { name, subdomains } if *subdomains => format!("*.{name}"),
            InternetTarget::Domain { name, .. } => name.clone(),
            InternetTarget::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                match net.addr() {
                    IpAddr::V6(v6) if self.port.is_some() => format!("[{v6}]"),
                    ip => ip.to_string(),
                }
            }
            InternetTarget::Net(net) => net.to_string(),
        };
        match (self.proto, self.port) {
            (Some(Proto::Tcp), Some(port)) => write!(f, "{host}:{port}"),
            (Some(proto), Some(port)) => write!(f, "{proto}://{host}:{port}"),
            (None, Some(port)) => write!(f, "*://{host}:{port}"),
            (Some(proto), None) => write!(f, "{proto}://{host}:*"),
            (None, None) => f.write_str(&host),
        }
    }
}

/// The `internet-access` line that would allow a connection to `name` (when a refused query or a
/// resolved name is known) or to the bare address, as shown by `alca network log`.
pub fn suggest_internet_access(
    name: Option<&str>,
    dest: IpAddr,
    proto: Proto,
    port: u16,
) -> String {
    let target = match name.and_then(normalize_name) {
        Some(name) => InternetTarget::Domain {
            name,
            subdomains: false,
        },
        None => InternetTarget::Net(IpNet::from(dest)),
    };
    InternetEntry {
        target,
        proto: Some(proto),
        port: Some(port),
    }
    .to_string()
}

impl InternetSpec {
    /// Checks every field; the compiler and the update path rely on this having passed.
    pub fn validate(&self) -> Result<(), InternetError> {
        if self.entries.len() > MAX_INTERNET_ENTRIES {
            return Err(InternetError::TooManyEntries(self.entries.len()));
        }
        for e in &self.entries {
            if e.port == Some(0) {
                return Err(LanError::Port("0".into()).into());
            }
            if let InternetTarget::Domain { name, subdomains } = &e.target {
                if normalize_name(name).as_deref() != Some(name.as_str())
                    || (*subdomains && !name.contains('.'))
                {
                    return Err(InternetError::Name(name.chars().take(80).collect()));
                }
            }
        }
        let r = self.resolver;
        if r.port() == 0 || !is_unicast(r.ip()) {
            return Err(InternetError::Resolver(r));
        }
        if self.ttl_max_secs == 0
            || self.ttl_floor_secs > self.ttl_max_secs
            || self.ttl_max_secs > MAX_TTL_SECS
        {
            return Err(InternetError::TtlBounds {
                floor: self.ttl_floor_secs,
                max: self.ttl_max_secs,
            });
        }
        Ok(())
    }

    /// The lifetime of an allow-set element for a record with `ttl_secs`.
    pub fn element_timeout(&self, ttl_secs: u32) -> u32 {
        ttl_secs.clamp(self.ttl_floor_secs, self.ttl_max_secs)
    }

    /// Checks an update against this (applied) spec: sizes, entry indices, addresses.
    pub fn check_update(&self, update: &ResolvedAddrs) -> Result<(), InternetError> {
        if update.addrs.len() > MAX_RESOLVED_PER_UPDATE {
            return Err(InternetError::TooManyAddrs(update.addrs.len()));
        }
        for a in &update.addrs {
            let is_domain = self
                .entries
                .get(usize::from(a.entry))
                .is_some_and(InternetEntry::is_domain);
            if !is_domain {
                return Err(InternetError::NotADomainEntry(a.entry));
            }
            if !is_unicast(a.addr) {
                return Err(InternetError::Addr(a.addr));
            }
        }
        Ok(())
    }
}

/// Whether a connection can go to `ip`: not unspecified, loopback, multicast or broadcast.
fn is_unicast(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip == IpAddr::from([255, 255, 255, 255]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(
        name: &str,
        subdomains: bool,
        proto: Option<Proto>,
        port: Option<u16>,
    ) -> InternetEntry {
        InternetEntry {
            target: InternetTarget::Domain {
                name: name.into(),
                subdomains,
            },
            proto,
            port,
        }
    }

    #[test]
    fn parses_the_issue_example() {
        let raw = [
            "github.com",
            "*.githubusercontent.com",
            "registry.npmjs.org:443",
            "tcp://ssh.example.com:22",
            "203.0.113.0/24",
        ];
        let InternetAccess::Only(entries) = parse_internet_access(&raw).unwrap() else {
            panic!("a list");
        };
        assert_eq!(entries[0], domain("github.com", false, None, None));
        assert_eq!(
            entries[1],
            domain("githubusercontent.com", true, None, None)
        );
        assert_eq!(
            entries[2],
            domain("registry.npmjs.org", false, Some(Proto::Tcp), Some(443))
        );
        assert_eq!(
            entries[3],
            domain("ssh.example.com", false, Some(Proto::Tcp), Some(22))
        );
        assert_eq!(
            entries[4].target,
            InternetTarget::Net("203.0.113.0/24".parse().unwrap())
        );
        for (e, r) in entries.iter().zip(raw) {
            let shown = e.to_string();
            assert_eq!(parse_internet_entry(&shown).unwrap(), *e, "{r} -> {shown}");
        }
    }

    #[test]
    fn star_alone_is_everything_and_empty_is_nothing() {
        assert_eq!(
            parse_internet_access(&["*"]).unwrap(),
            InternetAccess::Everything
        );
        let none: [&str; 0] = [];
        assert_eq!(
            parse_internet_access(&none).unwrap(),
            InternetAccess::Only(vec![])
        );
        assert_eq!(
            parse_internet_access(&["*", "github.com"]),
            Err(InternetError::WildcardWithOthers)
        );
    }

    #[test]
    fn refuses_what_is_not_a_destination() {
        for bad in [
            "",
            "exa mple.com",
            "-bad.com",
            "*.com",
            "*",
            "tcp://*:443",
            "${alca:HOST_IP}",
            "gopher://a.test",
            "a.test:0",
            "a.test:99999",
            "1.2.3.4.5",
            "a..test",
        ] {
            assert!(parse_internet_entry(bad).is_err(), "{bad:?}");
        }
        let msg = parse_internet_entry("*.com").unwrap_err().to_string();
        assert!(msg.contains("*.example.com"), "{msg}");
    }

    #[test]
    fn names_match_exactly_or_below_the_wildcard() {
        let exact = parse_internet_entry("Allowed.Test.").unwrap();
        assert!(exact.matches_name("allowed.test"));
        assert!(exact.matches_name("ALLOWED.test."));
        assert!(!exact.matches_name("a.allowed.test"));
        let wild = parse_internet_entry("*.wild.test").unwrap();
        assert!(wild.matches_name("a.wild.test"));
        assert!(wild.matches_name("b.a.wild.test"));
        assert!(!wild.matches_name("wild.test"));
        assert!(!wild.matches_name("notwild.test"));
        let entries = vec![exact, wild, parse_internet_entry("10.0.0.1").unwrap()];
        assert_eq!(entries_for_name(&entries, "x.wild.test"), vec![1]);
        assert!(entries_for_name(&entries, "blocked.test").is_empty());
    }

    #[test]
    fn suggestions_parse_back_to_an_entry_that_allows_the_connection() {
        let s = suggest_internet_access(
            Some("blocked.test."),
            "198.51.100.7".parse().unwrap(),
            Proto::Tcp,
            8080,
        );
        assert_eq!(s, "blocked.test:8080");
        let s = suggest_internet_access(None, "2001:db8::7".parse().unwrap(), Proto::Udp, 443);
        assert_eq!(s, "udp://[2001:db8::7]:443");
        assert!(parse_internet_entry(&s).is_ok());
    }

    fn spec() -> InternetSpec {
        InternetSpec {
            entries: vec![
                parse_internet_entry("allowed.test:8080").unwrap(),
                parse_internet_entry("198.51.100.0/24").unwrap(),
            ],
            resolver: "10.89.0.1:5353".parse().unwrap(),
            ttl_floor_secs: DEFAULT_TTL_FLOOR_SECS,
            ttl_max_secs: DEFAULT_TTL_MAX_SECS,
        }
    }

    #[test]
    fn spec_and_updates_are_checked() {
        assert_eq!(spec().validate(), Ok(()));
        let mut s = spec();
        s.resolver = "127.0.0.1:53".parse().unwrap();
        assert!(matches!(s.validate(), Err(InternetError::Resolver(_))));
        let mut s = spec();
        s.ttl_floor_secs = 10;
        s.ttl_max_secs = 5;
        assert!(matches!(s.validate(), Err(InternetError::TtlBounds { .. })));
        let mut s = spec();
        s.entries[0].target = InternetTarget::Domain {
            name: "Bad Name".into(),
            subdomains: false,
        };
        assert!(matches!(s.validate(), Err(InternetError::Name(_))));

        let update = |entry, addr: &str| ResolvedAddrs {
            project: "0123456789abcdef".into(),
            addrs: vec![ResolvedAddr {
                entry,
                addr: addr.parse().unwrap(),
                ttl_secs: 2,
            }],
        };
        assert_eq!(spec().check_update(&update(0, "198.51.100.7")), Ok(()));
        assert_eq!(
            spec().check_update(&update(1, "198.51.100.7")),
            Err(InternetError::NotADomainEntry(1))
        );
        assert_eq!(
            spec().check_update(&update(9, "198.51.100.7")),
            Err(InternetError::NotADomainEntry(9))
        );
        assert!(spec().check_update(&update(0, "127.0.0.1")).is_err());
        assert!(spec().check_update(&update(0, "::")).is_err());
        assert_eq!(spec().element_timeout(2), DEFAULT_TTL_FLOOR_SECS);
        assert_eq!(spec().element_timeout(999_999), DEFAULT_TTL_MAX_SECS);
    }

    #[test]
    fn wire_form_rejects_unknown_fields() {
        let json = serde_json::to_string(&spec()).unwrap();
        assert_eq!(serde_json::from_str::<InternetSpec>(&json).unwrap(), spec());
        let bad = json.replacen('{', r#"{"nft":"flush ruleset","#, 1);
        assert!(serde_json::from_str::<InternetSpec>(&bad).is_err());
    }
}
