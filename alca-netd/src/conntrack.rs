//! Narrowing cuts live connections: after an Apply that changed a project's rules, or its
//! Remove, the connections its containers opened that the new rules would refuse are deleted
//! from conntrack (ctnetlink, [`alca_kernel::conntrack`]), so an open LAN connection does not
//! outlive its permission: the project's `ct state established` accept would otherwise keep it
//! going.
//!
//! A project's connections are those whose original source is on its bridge's subnets (the
//! bridge's own addresses, read with `getifaddrs`). What the new rules refuse follows the
//! compiled ruleset's order ([`alca_ruleset`]): the allow rules, the resolvers on port 53,
//! then the deny sets and the host's own addresses; the rest (the internet) stays allowed, or
//! with `internet-access` only what an address entry allows (and every DNS connection, which
//! must start again at the project's resolver). A
//! proxied project's TCP is sent to the proxy, so when the proxy changes every TCP connection
//! of the project is cut. After a Remove every connection of the bridge is cut.

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;

use alca_contract::deny_list::deny_nets;
use alca_contract::internet::{InternetSpec, InternetTarget};
use alca_contract::lan::Proto;
use alca_contract::net_spec::NetSpec;
use alca_kernel::conntrack::{self, Tuple, IPPROTO_TCP, IPPROTO_UDP};

/// Whether `spec`'s rules refuse a new connection to `t` (see the module's note); `local`:
/// the host's own addresses.
pub fn refused(spec: &NetSpec, t: &Tuple, local: &[IpAddr]) -> bool {
    let proto = match t.proto {
        IPPROTO_TCP => Some(Proto::Tcp),
        IPPROTO_UDP => Some(Proto::Udp),
        _ => None,
    };
    let lan = || {
        deny_nets(t.dst.is_ipv6())
            .iter()
            .any(|net: &IpNet| net.contains(&t.dst))
            || local.contains(&t.dst)
    };
    if let Some(net) = &spec.internet {
        // New DNS goes to the project's resolver: every DNS connection starts again there.
        if proto.is_some() && t.dport == 53 {
            return true;
        }
        // The internet is refused but for the address entries (the allow sets of the domain
        // entries start empty with the new rules: their connections start again too; what a
        // re-apply kept in them comes here as address entries, `daemon/kept_elements.rs`).
        if !lan() && !internet_address_allows(net, t, proto) {
            return true;
        }
    }
    if spec.allow_all {
        return false;
    }
    let allowed = spec.allow.iter().any(|rule| {
        rule.net.contains(&t.dst)
            && rule.proto.is_none_or(|p| Some(p) == proto)
            && rule
                .port
                .is_none_or(|port| proto.is_some() && port == t.dport)
    });
    let dns = spec.dns.contains(&t.dst) && proto.is_some() && t.dport == 53;
    if allowed || dns {
        return false;
    }
    lan()
}

/// Whether an address entry of `internet-access` lets a TCP or UDP connection to `t` through.
fn internet_address_allows(net: &InternetSpec, t: &Tuple, proto: Option<Proto>) -> bool {
    proto.is_some()
        && net.entries.iter().any(|e| match e.target {
            InternetTarget::Net(n) => {
                n.contains(&t.dst)
                    && e.proto.is_none_or(|p| Some(p) == proto)
                    && e.port.is_none_or(|port| port == t.dport)
            }
            InternetTarget::Domain { .. } => false,
        })
}

/// The subnets of `bridge` (empty when it does not exist) and every local address.
fn addresses(bridge: &str) -> io::Result<(Vec<IpNet>, Vec<IpAddr>)> {
    let mut subnets = Vec::new();
    let mut local = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let addr = ifa.address.as_ref();
        let mask = ifa.netmask.as_ref();
        let (ip, prefix) = if let (Some(a), Some(m)) = (
            addr.and_then(|a| a.as_sockaddr_in()),
            mask.and_then(|m| m.as_sockaddr_in()),
        ) {
            (IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones() as u8)
        } else if let (Some(a), Some(m)) = (
            addr.and_then(|a| a.as_sockaddr_in6()),
            mask.and_then(|m| m.as_sockaddr_in6()),
        ) {
            (IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones() as u8)
        } else {
            continue;
        };
        local.push(ip);
        if ifa.interface_name == bridge {
            if let Ok(net) = IpNet::new(ip, prefix) {
                subnets.push(net.trunc());
            }
        }
    }
    Ok((subnets, local))
}

/// Deletes the connections from `bridge`'s subnets that `spec` refuses (all of them when
/// `spec` is `None`: the project was removed; all TCP ones too when `proxy_changed`). The
/// number deleted.
pub fn cut(bridge: &str, spec: Option<&NetSpec>, proxy_changed: bool) -> io::Result<usize> {
    let (subnets, local) = addresses(bridge)?;
    if subnets.is_empty() {
        return Ok(0); // no bridge, no containers on it
    }
    let doomed: Vec<Tuple> = conntrack::dump()?
        .into_iter()
        .filter(|t| subnets.iter().any(|n| n.contains(&t.src)))
        .filter(|t| match spec {
            None => true,
            Some(_) if proxy_changed && t.proto == IPPROTO_TCP => true,
            Some(spec) => refused(spec, t, &local),
        })
        .collect();
    conntrack::delete(&doomed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::lan::AllowRule;

    fn tuple(dst: &str, proto: u8, dport: u16) -> Tuple {
        Tuple {
            src: "172.29.0.2".parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            sport: 40000,
            dport,
        }
    }

    #[test]
    fn refusal_follows_allow_dns_deny_and_host() {
        let mut spec = alca_contract::net_spec::sample_spec();
        spec.allow = vec![AllowRule {
            net: "10.99.0.0/24".parse().unwrap(),
            proto: Some(Proto::Tcp),
            port: Some(8080),
        }];
        spec.dns = vec!["172.29.0.1".parse().unwrap()];
        let local: Vec<IpAddr> = vec!["192.0.2.7".parse().unwrap()];
        assert!(!refused(
            &spec,
            &tuple("10.99.0.2", IPPROTO_TCP, 8080),
            &local
        ));
        assert!(refused(&spec, &tuple("10.99.0.2", IPPROTO_TCP, 22), &local));
        assert!(refused(
            &spec,
            &tuple("10.99.0.2", IPPROTO_UDP, 8080),
            &local
        ));
        assert!(!refused(
            &spec,
            &tuple("172.29.0.1", IPPROTO_UDP, 53),
            &local
        ));
        assert!(refused(&spec, &tuple("192.0.2.7", IPPROTO_TCP, 80), &local));
        assert!(!refused(
            &spec,
            &tuple("192.88.99.2", IPPROTO_TCP, 80),
            &local
        ));
        spec.allow_all = true;
        assert!(!refused(
            &spec,
            &tuple("10.99.0.2", IPPROTO_TCP, 22),
            &local
        ));
    }

    #[test]
    fn with_internet_access_only_address_entries_keep_internet_connections() {
        let mut spec = alca_contract::net_spec::sample_spec();
        spec.allow_all = true;
        spec.internet = Some(InternetSpec {
            entries: ["allowed.test", "192.88.99.0/24:443"]
                .iter()
                .map(|e| alca_contract::internet::parse_internet_entry(e).unwrap())
                .collect(),
            resolver: "172.29.0.1:5353".parse().unwrap(),
            ttl_floor_secs: 30,
            ttl_max_secs: 3600,
        });
        let local: Vec<IpAddr> = vec!["192.0.2.7".parse().unwrap()];
        let cut = |dst, proto, port| refused(&spec, &tuple(dst, proto, port), &local);
        assert!(!cut("192.88.99.2", IPPROTO_TCP, 443));
        assert!(
            cut("192.88.99.2", IPPROTO_UDP, 443),
            "the entry is TCP only"
        );
        assert!(cut("192.88.99.2", IPPROTO_TCP, 80));
        assert!(cut("93.184.216.34", IPPROTO_TCP, 443), "a name's address");
        assert!(
            cut("10.99.0.2", IPPROTO_UDP, 53),
            "DNS starts again at the resolver"
        );
        assert!(
            !cut("10.99.0.2", IPPROTO_TCP, 22),
            "the LAN is open with allow_all"
        );
    }
}
