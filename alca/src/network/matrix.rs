//! The destinations `alca network verify` probes and what the config says each must give.
//! Pure: built from the project's [`NetSpec`] and a snapshot of the host's addresses and routes.
//!
//! Choice of targets (safety first; see also `alca_contract::probe`): a "blocked" verdict must
//! never need a packet to leave the machine. Three things make sure of it:
//! 1. the daemon first compares the live table with its saved spec and only arms the probes
//!    when the probe fence (the `verify` chain) is intact;
//! 2. every destination expected to be blocked is *fenced*: if it gets past the isolation
//!    rules it is recorded and dropped at the input/forward hook, before routing can send it
//!    anywhere, so a hole shows up as a recorded probe, not as a packet on the LAN;
//! 3. targets are preferably the host's own addresses, addresses on the host's local bridges
//!    (other projects' containers) and link-scope multicast, which stay on this machine even
//!    without any rule. Ranges the host has no address in are probed at a fixed, rarely used
//!    address (the top of the range, 169.254.169.254 for cloud metadata); `--local-only` skips
//!    those. Allow-listed entries are probed as written: the user asked for them to be reached.
//!
//! TCP connects only (busybox `nc`), except multicast and DNS, which go through `nslookup` (UDP
//! to port 53). The container's own loopback, 0/8, `::` and IPv4-mapped addresses are not
//! probed: they never reach the bridge.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use alca_contract::deny_list::deny_nets;
use alca_contract::internet::{entries_for_name, InternetTarget};
use alca_contract::probe::{Key, Probe};
use alca_contract::{NetSpec, Proto};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Port probed on blocked-expected destinations (discard: nothing is expected to answer).
pub const BLOCKED_PORT: u16 = 9;
/// Address whose redirection to the proxy is checked: it must be "internet" (the deny sets
/// refuse the TEST-NETs before the proxy's DNAT), so it is in 192.88.99.0/24, the 6to4 relay
/// anycast prefix RFC 7526 deprecated (nothing answers there; the probe is fenced anyway).
pub const PROXY_CHECK: SocketTarget = SocketTarget {
    addr: IpAddr::V4(Ipv4Addr::new(192, 88, 99, 1)),
    port: 80,
};
/// A name no `internet-access` list is expected to allow (`.invalid`, RFC 6761): the refused
/// name `verify` asks for.
pub const REFUSED_NAME: &str = "alca-verify.invalid";
/// Most targets of one verification.
pub const MAX_TARGETS: usize = 48;
/// Targets in `alca up`'s quick check.
pub const QUICK_TARGETS: usize = 3;

/// An address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketTarget {
    pub addr: IpAddr,
    pub port: u16,
}

/// What a destination gives, by the config or by observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Blocked,
    Allowed,
    /// Sent to the transparent proxy.
    Redirected,
}

impl std::fmt::Display for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reach::Blocked => "blocked",
            Reach::Allowed => "allowed",
            Reach::Redirected => "redirected",
        })
    }
}

/// How a target is probed from inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `nc -w 1 ADDR PORT`.
    Tcp,
    /// `nslookup NAME ADDR` (UDP to port 53); with no address, through the container's own
    /// resolver, whose answer is the verdict.
    Dns { name: String },
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub label: String,
    /// Destination as the sets key it; `None` for the container's own resolver.
    pub key: Option<Key>,
    pub method: Method,
    pub expect: Reach,
    /// Stays on this machine even without any rule.
    pub local: bool,
}

impl Target {
    fn tcp(label: impl Into<String>, addr: IpAddr, port: u16, expect: Reach, local: bool) -> Self {
        Target {
            label: label.into(),
            key: Some(Key {
                addr,
                proto: Proto::Tcp,
                port,
            }),
            method: Method::Tcp,
            expect,
            local,
        }
    }

    /// What the daemon arms for this target: fenced when it must not get through.
    pub fn probe(&self) -> Option<Probe> {
        Some(Probe {
            key: self.key?,
            fence: self.expect != Reach::Allowed,
        })
    }
}

/// The host as seen by the unprivileged CLI (`ip -j addr`, `ip -j route`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostView {
    /// The host's own addresses with their interface (loopback excluded).
    pub addrs: Vec<(String, IpAddr)>,
    /// Routes to networks on local bridges (other projects, other containers): (dev, net).
    pub bridge_routes: Vec<(String, IpNet)>,
}

/// What the verification is about.
pub struct Scope<'a> {
    pub spec: &'a NetSpec,
    /// The project's gateways (host addresses on its bridge).
    pub gateways: &'a [IpAddr],
    /// The container's name, resolvable through the runtime's DNS.
    pub container: &'a str,
    pub host: &'a HostView,
    pub local_only: bool,
}

/// What the config promises for a TCP/UDP connection to `addr:port`, following the order of
/// the `isolate` chain (allow rules, DNS, proxy, deny sets and host addresses) and the proxy's
/// DNAT. `host_local`: `addr` is one of the host's own addresses.
pub fn expected(spec: &NetSpec, key: &Key, host_local: bool) -> Reach {
    let via_proxy = |to_proxy_itself: bool| match spec.proxy {
        Some(_) if key.proto == Proto::Tcp && !to_proxy_itself => Reach::Redirected,
        _ => Reach::Allowed,
    };
    let is_proxy = spec
        .proxy
        .is_some_and(|p| p.ip() == key.addr && p.port() == key.port && key.proto == Proto::Tcp);
    if let Some(proxy) = spec.proxy {
        if key.proto == Proto::Tcp && proxy.is_ipv6() != key.addr.is_ipv6() {
            return Reach::Blocked;
        }
    }
    if spec.allow_all {
        return via_proxy(is_proxy);
    }
    let allowed = spec.allow.iter().any(|r| {
        r.net.contains(&key.addr)
            && r.proto.is_none_or(|p| p == key.proto)
            && r.port.is_none_or(|p| p == key.port)
    });
    if allowed {
        return via_proxy(is_proxy);
    }
    if key.port == 53 && spec.dns.contains(&key.addr) {
        return Reach::Allowed;
    }
    if is_proxy {
        return Reach::Allowed;
    }
    let denied = deny_nets(key.addr.is_ipv6())
        .iter()
        .any(|n| n.contains(&key.addr));
    if denied || host_local {
        return Reach::Blocked;
    }
    if let Some(internet) = &spec.internet {
        // Only address entries can be judged here: a name's addresses come from answers.
        let listed = internet.entries.iter().any(|e| {
            matches!(&e.target, InternetTarget::Net(net) if net.contains(&key.addr))
                && e.proto.is_none_or(|p| p == key.proto)
                && e.port.is_none_or(|p| p == key.port)
        });
        if !listed {
            return Reach::Blocked;
        }
    }
    via_proxy(false)
}

/// The `internet-access` rows (with a list): a name the list allows, asked of an outside DNS
/// server, is answered by the project's resolver ([`Reach::Redirected`]); a name it does not
/// allow gets no answer; an internet address no name resolved to and DNS over TLS to an
/// outside server are refused. The outside server is [`PROXY_CHECK`]'s address (nothing
/// answers there, and the probes are fenced: one that got past the rules is recorded and
/// dropped before it can leave), so the rows stay with `--local-only` too.
fn internet_targets(spec: &NetSpec) -> Vec<Target> {
    let Some(internet) = &spec.internet else {
        return Vec::new();
    };
    let outside = PROXY_CHECK.addr;
    let outside_dns = Key {
        addr: outside,
        proto: Proto::Udp,
        port: 53,
    };
    let dns = |label: String, name: &str, expect: Reach| Target {
        label,
        key: Some(outside_dns),
        method: Method::Dns { name: name.into() },
        expect,
        local: false,
    };
    let mut out = Vec::new();
    // An address entry may let DNS reach that server itself; then these rows say nothing.
    let dns_rows = expected(spec, &outside_dns, false) == Reach::Blocked;
    let allowed = internet.entries.iter().find_map(|e| match &e.target {
        InternetTarget::Domain {
            name,
            subdomains: false,
        } => Some(name.as_str()),
        _ => None,
    });
    if let Some(name) = allowed.filter(|_| dns_rows) {
        out.push(dns(
            format!("internet-access name {name}"),
            name,
            Reach::Redirected,
        ));
    }
    if dns_rows && entries_for_name(&internet.entries, REFUSED_NAME).is_empty() {
        out.push(dns(
            "internet-access refused name".into(),
            REFUSED_NAME,
            Reach::Blocked,
        ));
    }
    for (label, port) in [
        ("internet address no name resolved to", 443),
        ("DNS over TLS to an outside server", 853),
    ] {
        let key = Key {
            addr: outside,
            proto: Proto::Tcp,
            port,
        };
        out.push(Target::tcp(
            label,
            outside,
            port,
            expected(spec, &key, false),
            false,
        ));
    }
    out
}

/// A fixed probe address of a denied range the host has no address in.
fn canonical(net: &IpNet) -> Option<(IpAddr, &'static str)> {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |s: &str| s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    Some(match net.to_string().as_str() {
        "10.0.0.0/8" => (v4(10, 255, 255, 254), "private 10/8"),
        "100.64.0.0/10" => (v4(100, 127, 255, 254), "CGNAT 100.64/10"),
        "169.254.0.0/16" => (v4(169, 254, 169, 254), "cloud metadata"),
        "172.16.0.0/12" => (v4(172, 31, 255, 254), "private 172.16/12"),
        "192.168.0.0/16" => (v4(192, 168, 255, 254), "private 192.168/16"),
        "198.18.0.0/15" => (v4(198, 19, 255, 254), "benchmarking 198.18/15"),
        "240.0.0.0/4" => (v4(240, 0, 0, 1), "reserved 240/4"),
        "fc00::/7" => (v6("fdff:ffff:ffff:ffff::1")?, "IPv6 ULA fc00::/7"),
        "64:ff9b::/96" => (v6("64:ff9b::a00:1")?, "NAT64 64:ff9b::/96"),
        _ => return None,
    })
}

/// Every target for `scope`, at most [`MAX_TARGETS`], blocked-expected ones first.
pub fn build(scope: &Scope<'_>) -> Vec<Target> {
    let spec = scope.spec;
    let is_host =
        |ip: &IpAddr| scope.gateways.contains(ip) || scope.host.addrs.iter().any(|(_, a)| a == ip);
    let blocked = |label: String, addr: IpAddr, local: bool| {
        let key = Key {
            addr,
            proto: Proto::Tcp,
            port: BLOCKED_PORT,
        };
        Target::tcp(
            label,
            addr,
            BLOCKED_PORT,
            expected(spec, &key, is_host(&addr)),
            local,
        )
    };
    let mut out: Vec<Target> = Vec::new();
    for gw in scope.gateways {
        out.push(blocked(format!("bridge gateway {gw}"), *gw, true));
    }
    let mut per_family = [0usize; 2];
    for (dev, addr) in &scope.host.addrs {
        let n = &mut per_family[usize::from(addr.is_ipv6())];
        if scope.gateways.contains(addr) || *n >= 6 || is_unreachable_from_bridge(addr, dev, spec) {
            continue;
        }
        *n += 1;
        out.push(blocked(format!("host address on {dev}"), *addr, true));
    }
    for (dev, net) in scope
        .host
        .bridge_routes
        .iter()
        .filter(|(d, _)| *d != spec.bridge)
        .take(4)
    {
        if let Some(addr) = neighbour(net) {
            let what = if dev.starts_with("alca-") {
                "other project"
            } else {
                "containers"
            };
            out.push(blocked(format!("{what} on {dev}"), addr, true));
        }
    }
    for v6 in [false, true] {
        for net in deny_nets(v6) {
            let Some((addr, label)) = canonical(&net) else {
                continue;
            };
            let covered = out
                .iter()
                .any(|t| t.key.is_some_and(|k| net.contains(&k.addr)));
            let metadata = label == "cloud metadata";
            if (covered && !metadata) || scope.local_only {
                continue;
            }
            let port = if metadata { 80 } else { BLOCKED_PORT };
            let key = Key {
                addr,
                proto: Proto::Tcp,
                port,
            };
            out.push(Target::tcp(
                label,
                addr,
                port,
                expected(spec, &key, false),
                false,
            ));
        }
    }
    for (label, group) in [
        (
            "multicast 224.0.0.251",
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)),
        ),
        (
            "multicast ff02::fb",
            IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb)),
        ),
    ] {
        let key = Key {
            addr: group,
            proto: Proto::Udp,
            port: 53,
        };
        out.push(Target {
            label: label.into(),
            key: Some(key),
            method: Method::Dns {
                name: REFUSED_NAME.into(),
            },
            expect: expected(spec, &key, false),
            local: true,
        });
    }
    out.extend(internet_targets(spec));
    out.push(Target {
        label: "DNS through the runtime's resolver".into(),
        key: None,
        method: Method::Dns {
            name: scope.container.to_string(),
        },
        expect: Reach::Allowed,
        local: true,
    });
    out.extend(
        spec.allow
            .iter()
            .filter(|r| r.proto != Some(Proto::Udp))
            .take(16)
            .map(|r| {
                let addr = representative(&r.net);
                let port = r.port.unwrap_or(80);
                let key = Key {
                    addr,
                    proto: Proto::Tcp,
                    port,
                };
                let label = format!(
                    "lan-access {}",
                    alca_contract::lan::suggest_lan_access(addr, Proto::Tcp, port)
                );
                Target::tcp(
                    label,
                    addr,
                    port,
                    expected(spec, &key, is_host(&addr)),
                    false,
                )
            }),
    );
    if spec.proxy.is_some() {
        let SocketTarget { addr, port } = PROXY_CHECK;
        let key = Key {
            addr,
            proto: Proto::Tcp,
            port,
        };
        out.push(Target::tcp(
            "proxy redirect",
            addr,
            port,
            expected(spec, &key, false),
            false,
        ));
    }
    out.truncate(MAX_TARGETS);
    out
}

/// The quick subset `alca up` runs: a few destinations that stay on this machine.
pub fn quick(all: Vec<Target>) -> Vec<Target> {
    all.into_iter()
        .filter(|t| t.local && t.method == Method::Tcp)
        .take(QUICK_TARGETS)
        .collect()
}

/// IPv6 link-local addresses of other interfaces cannot be reached from the project bridge.
fn is_unreachable_from_bridge(addr: &IpAddr, dev: &str, spec: &NetSpec) -> bool {
    matches!(addr, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80) && dev != spec.bridge
}

/// The address after the first host of `net` (the first is usually its gateway).
fn neighbour(net: &IpNet) -> Option<IpAddr> {
    net.hosts().nth(1)
}

/// The address probed for an allow-listed network: itself, or its first host.
fn representative(net: &IpNet) -> IpAddr {
    if net.prefix_len() == net.max_prefix_len() {
        return net.addr();
    }
    net.hosts().next().unwrap_or(net.addr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::AllowRule;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn spec() -> NetSpec {
        NetSpec::isolated(ID)
    }

    fn key(addr: &str, proto: Proto, port: u16) -> Key {
        Key {
            addr: addr.parse().unwrap(),
            proto,
            port,
        }
    }

    fn host() -> HostView {
        HostView {
            addrs: vec![
                ("eth0".into(), "203.0.113.9".parse().unwrap()),
                ("alca-lan0".into(), "10.99.0.1".parse().unwrap()),
                ("eth0".into(), "fe80::1".parse().unwrap()),
                ("alca-0123456789".into(), "fe80::2".parse().unwrap()),
            ],
            bridge_routes: vec![
                ("alca-0123456789".into(), "172.29.1.0/24".parse().unwrap()),
                ("alca-fedcba9876".into(), "172.29.2.0/24".parse().unwrap()),
            ],
        }
    }

    fn scope<'a>(
        spec: &'a NetSpec,
        host: &'a HostView,
        gws: &'a [IpAddr],
        local_only: bool,
    ) -> Scope<'a> {
        Scope {
            spec,
            gateways: gws,
            container: "alca-0123456789ab",
            host,
            local_only,
        }
    }

    /// `(address, protocol, port, host-local, expected)` rows checked against `s`.
    fn check(s: &NetSpec, rows: &[(&str, Proto, u16, bool, Reach)]) {
        for (addr, proto, port, local, want) in rows {
            let got = expected(s, &key(addr, *proto, *port), *local);
            assert_eq!(got, *want, "{addr} {proto} {port}");
        }
    }

    #[test]
    fn expectation_follows_the_chain_order() {
        use Proto::{Tcp, Udp};
        use Reach::{Allowed, Blocked, Redirected};
        let mut s = spec();
        check(
            &s,
            &[
                ("10.99.0.2", Tcp, 18080, false, Blocked),
                ("203.0.113.9", Tcp, 9, true, Blocked),
                ("192.88.99.2", Tcp, 80, false, Allowed),
            ],
        );
        s.allow = vec![AllowRule {
            net: "10.99.0.2/32".parse().unwrap(),
            proto: None,
            port: Some(18080),
        }];
        s.dns = vec!["10.89.0.1".parse().unwrap()];
        check(
            &s,
            &[
                ("10.99.0.2", Tcp, 18080, false, Allowed),
                ("10.99.0.2", Tcp, 18081, false, Blocked),
                ("10.89.0.1", Udp, 53, true, Allowed),
            ],
        );
        s.proxy = Some("10.99.0.1:3128".parse().unwrap());
        check(
            &s,
            &[
                ("192.88.99.1", Tcp, 80, false, Redirected),
                ("10.99.0.1", Tcp, 3128, true, Allowed),
                ("10.99.0.2", Tcp, 18080, false, Redirected),
                ("2001:db8::1", Tcp, 80, false, Blocked),
            ],
        );
        s.allow_all = true;
        s.proxy = None;
        check(&s, &[("10.0.0.1", Tcp, 9, true, Allowed)]);
    }

    #[test]
    fn default_matrix_is_all_blocked_but_dns_and_bounded() {
        let s = spec();
        let h = host();
        let gws: Vec<IpAddr> = vec!["172.29.1.1".parse().unwrap()];
        let all = build(&scope(&s, &h, &gws, false));
        assert!(all.len() <= MAX_TARGETS);
        let labels: Vec<&str> = all.iter().map(|t| t.label.as_str()).collect();
        for want in [
            "bridge gateway 172.29.1.1",
            "host address on eth0",
            "host address on alca-lan0",
            "other project on alca-fedcba9876",
            "cloud metadata",
            "CGNAT 100.64/10",
            "IPv6 ULA fc00::/7",
            "multicast 224.0.0.251",
            "DNS through the runtime's resolver",
        ] {
            assert!(labels.contains(&want), "{want} missing from {labels:?}");
        }
        // 10/8 is covered by the host's own 10.99.0.1; link-local of other links is skipped.
        assert!(!labels.contains(&"private 10/8"), "{labels:?}");
        assert!(!all
            .iter()
            .any(|t| t.key.is_some_and(|k| k.addr.to_string() == "fe80::1")));
        for t in &all {
            let want = if t.key.is_none() {
                Reach::Allowed
            } else {
                Reach::Blocked
            };
            assert_eq!(t.expect, want, "{t:?}");
            if let Some(p) = t.probe() {
                assert!(p.fence, "{t:?} must be fenced");
            }
        }
    }

    #[test]
    fn local_only_keeps_only_what_stays_on_the_machine() {
        let mut s = spec();
        s.allow = vec![AllowRule {
            net: "10.99.0.2/32".parse().unwrap(),
            proto: None,
            port: Some(18080),
        }];
        let h = host();
        let gws: Vec<IpAddr> = vec!["172.29.1.1".parse().unwrap()];
        let all = build(&scope(&s, &h, &gws, true));
        let remote: Vec<&Target> = all.iter().filter(|t| !t.local).collect();
        assert_eq!(remote.len(), 1, "{remote:?}");
        assert_eq!(remote[0].label, "lan-access 10.99.0.2:18080");
        assert_eq!(remote[0].expect, Reach::Allowed);
        assert!(!remote[0].probe().unwrap().fence);
        let q = quick(all);
        assert_eq!(q.len(), QUICK_TARGETS);
        assert!(q.iter().all(|t| t.local && t.expect == Reach::Blocked));
    }

    #[test]
    fn proxy_matrix_checks_the_redirect() {
        let mut s = spec();
        s.proxy = Some("10.99.0.1:3128".parse().unwrap());
        let h = HostView::default();
        let all = build(&scope(&s, &h, &[], false));
        let proxy = all.iter().find(|t| t.label == "proxy redirect").unwrap();
        assert_eq!(proxy.expect, Reach::Redirected);
        assert!(
            proxy.probe().unwrap().fence,
            "an unredirected probe must not leave"
        );
    }

    fn with_internet(list: &[&str]) -> NetSpec {
        let mut s = spec();
        s.internet = Some(alca_contract::internet::InternetSpec {
            entries: list
                .iter()
                .map(|e| alca_contract::internet::parse_internet_entry(e).unwrap())
                .collect(),
            resolver: "172.29.1.1:5353".parse().unwrap(),
            ttl_floor_secs: 30,
            ttl_max_secs: 3600,
        });
        s
    }

    #[test]
    fn an_internet_list_refuses_internet_addresses_but_its_own() {
        use Proto::{Tcp, Udp};
        use Reach::{Allowed, Blocked, Redirected};
        let s = with_internet(&["github.com", "203.0.114.0/24:443", "udp://192.88.99.3:*"]);
        check(
            &s,
            &[
                ("192.88.99.2", Tcp, 80, false, Blocked),
                ("203.0.114.7", Tcp, 443, false, Allowed),
                ("203.0.114.7", Tcp, 80, false, Blocked),
                ("192.88.99.3", Udp, 9, false, Allowed),
                ("192.88.99.3", Tcp, 9, false, Blocked),
                ("10.99.0.2", Tcp, 80, false, Blocked),
            ],
        );
        let mut proxied = s.clone();
        proxied.proxy = Some("10.99.0.1:3128".parse().unwrap());
        check(
            &proxied,
            &[
                ("192.88.99.2", Tcp, 80, false, Blocked),
                ("203.0.114.7", Tcp, 443, false, Redirected),
            ],
        );
    }

    #[test]
    fn an_internet_list_adds_its_rows_and_fences_them() {
        let s = with_internet(&["*.wild.test", "allowed.test:8080"]);
        let h = HostView::default();
        let all = build(&scope(&s, &h, &[], false));
        let row = |label: &str| {
            all.iter()
                .find(|t| t.label == label)
                .unwrap_or_else(|| panic!("{label} missing from {all:?}"))
        };
        let name = row("internet-access name allowed.test");
        assert_eq!(
            name.method,
            Method::Dns {
                name: "allowed.test".into()
            }
        );
        assert_eq!(name.expect, Reach::Redirected);
        assert_eq!(name.key.unwrap().addr, PROXY_CHECK.addr);
        assert_eq!(row("internet-access refused name").expect, Reach::Blocked);
        assert_eq!(
            row("internet address no name resolved to").expect,
            Reach::Blocked
        );
        assert_eq!(
            row("DNS over TLS to an outside server").expect,
            Reach::Blocked
        );
        for t in all
            .iter()
            .filter(|t| t.label.contains("internet") || t.label.contains("TLS"))
        {
            assert!(t.probe().unwrap().fence, "{t:?} must be fenced");
        }
        // An address entry letting DNS reach the outside server itself: no DNS rows.
        let direct = with_internet(&["allowed.test", "192.88.99.0/24"]);
        let rows = build(&scope(&direct, &h, &[], false));
        assert!(!rows.iter().any(|t| t.label.starts_with("internet-access")));
        // `[]`: no name to ask, the rest stays; no list: no rows.
        let none = build(&scope(&with_internet(&[]), &h, &[], false));
        assert!(!none
            .iter()
            .any(|t| t.label.starts_with("internet-access name")));
        assert!(none
            .iter()
            .any(|t| t.label == "internet-access refused name"));
        let open = build(&scope(&spec(), &h, &[], false));
        assert!(!open.iter().any(|t| t.label.contains("internet")));
    }
}
