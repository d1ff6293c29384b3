//! The destinations no isolated container may reach (SPEC §3), shared by the compiler (the
//! deny sets) and the CLI (which picks verify targets that the deny list covers).
//!
//! "LAN" is the networks the host is directly connected to plus the special ranges: the fixed
//! lists below, and the on-link prefixes of the host's own interfaces (found by the daemon),
//! which may be public space (a campus, an IPv6 home LAN).

use ipnet::IpNet;

/// IPv4: "this network", RFC 1918, CGNAT, loopback, link-local, IETF protocol assignments
/// (192.0.0.0/24), the three TEST-NETs, benchmarking, Azure's wire server (168.63.129.16, the
/// metadata/DHCP/DNS endpoint of every Azure VM), multicast, and reserved; 240/4 also covers
/// the limited broadcast 255.255.255.255 (an interval set refuses overlapping elements, so it
/// is not listed twice).
pub const DENY4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "168.63.129.16/32",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6: unspecified, loopback, ULA, link-local, site-local (deprecated, still routed on some
/// LANs), multicast, the discard prefix 100::/64, and every prefix that carries an IPv4 address
/// to a translator or tunnel that would reach IPv4 LAN addresses: NAT64 (well-known and local
/// use), IPv4-mapped, 6to4 (2002::/16) and Teredo (2001::/32).
pub const DENY6: &[&str] = &[
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "::ffff:0:0/96",
    "100::/64",
    "2001::/32",
    "2002::/16",
];

/// The deny list of one family as parsed networks.
pub fn deny_nets(v6: bool) -> Vec<IpNet> {
    let list = if v6 { DENY6 } else { DENY4 };
    list.iter()
        .filter_map(|s| s.parse::<IpNet>().ok())
        .collect()
}

/// The fixed list of one family plus the host's on-link prefixes `onlink` (either family; the
/// other family's are skipped), as elements an interval set accepts: extras inside a fixed
/// network are dropped, the rest merged; only if an extra covers part of the fixed list is the
/// whole union merged (the fixed list alone is never rewritten).
pub fn deny_nets_with(v6: bool, onlink: &[IpNet]) -> Vec<IpNet> {
    let fixed = deny_nets(v6);
    let extra: Vec<IpNet> = onlink
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)) == v6)
        .map(IpNet::trunc)
        .filter(|n| !fixed.iter().any(|f| f.contains(n)))
        .collect();
    if extra.is_empty() {
        return fixed;
    }
    let extra = IpNet::aggregate(&extra);
    if extra.iter().any(|e| fixed.iter().any(|f| e.contains(f))) {
        return IpNet::aggregate(&fixed.into_iter().chain(extra).collect());
    }
    fixed.into_iter().chain(extra).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_network_parses() {
        assert_eq!(deny_nets(false).len(), DENY4.len());
        assert_eq!(deny_nets(true).len(), DENY6.len());
    }

    #[test]
    fn limited_broadcast_is_denied() {
        let all: IpNet = "255.255.255.255/32".parse().unwrap();
        assert!(deny_nets(false).iter().any(|n| n.contains(&all)));
    }

    #[test]
    fn lists_do_not_overlap_inside_a_family() {
        for v6 in [false, true] {
            let nets = deny_nets(v6);
            for (i, a) in nets.iter().enumerate() {
                for b in &nets[i + 1..] {
                    assert!(!a.contains(b) && !b.contains(a), "{a} overlaps {b}");
                }
            }
        }
    }

    #[test]
    fn onlink_prefixes_join_the_fixed_list_without_overlaps() {
        let nets =
            |list: &[&str]| -> Vec<IpNet> { list.iter().map(|s| s.parse().unwrap()).collect() };
        assert_eq!(deny_nets_with(false, &[]), deny_nets(false));
        let onlink = nets(&[
            "192.88.99.129/25",
            "10.1.2.0/24",
            "2001:db8:77::5/64",
            "192.88.99.0/25",
        ]);
        let v4 = deny_nets_with(false, &onlink);
        assert_eq!(v4.len(), DENY4.len() + 1, "{v4:?}");
        assert!(v4.contains(&"192.88.99.0/24".parse().unwrap()));
        let v6 = deny_nets_with(true, &onlink);
        assert_eq!(v6.last(), Some(&"2001:db8:77::/64".parse().unwrap()));
        // A connected network wider than a fixed one: the union is merged, no overlap is left.
        let v4 = deny_nets_with(false, &nets(&["10.0.0.0/7"]));
        for (i, a) in v4.iter().enumerate() {
            for b in &v4[i + 1..] {
                assert!(!a.contains(b) && !b.contains(a), "{a} overlaps {b}");
            }
        }
        assert!(v4
            .iter()
            .any(|n| n.contains(&"11.1.1.1".parse::<std::net::IpAddr>().unwrap())));
    }
}
