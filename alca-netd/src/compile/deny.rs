//! The destinations no isolated container may reach (SPEC §3), as two interval sets so that a
//! change to the list is a set-element update, not a rule rewrite.

use std::borrow::Cow;

use ipnet::IpNet;
use nftables::schema::{NfListObject, Set, SetFlag, SetType, SetTypeValue};
use nftables::types::NfFamily;

use super::expr::net_value;

/// Name of the IPv4 deny set.
pub const DENY4_SET: &str = "deny4";
/// Name of the IPv6 deny set.
pub const DENY6_SET: &str = "deny6";

/// IPv4: "this network", RFC 1918, CGNAT, loopback, link-local, benchmarking, multicast, and
/// reserved; 240/4 also covers the limited broadcast 255.255.255.255 (an interval set refuses
/// overlapping elements, so it is not listed twice).
pub const DENY4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6: unspecified, loopback, ULA, link-local, multicast, NAT64 (which would reach IPv4 LAN
/// addresses through a translator) and IPv4-mapped addresses.
pub const DENY6: &[&str] = &[
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "64:ff9b::/96",
    "::ffff:0:0/96",
];

/// The deny list of one family as parsed networks.
pub fn deny_nets(v6: bool) -> Vec<IpNet> {
    let list = if v6 { DENY6 } else { DENY4 };
    list.iter()
        .filter_map(|s| s.parse::<IpNet>().ok())
        .collect()
}

/// `add set` objects for `deny4` and `deny6` with their elements.
pub(super) fn deny_sets(table: &str) -> Vec<NfListObject<'static>> {
    [
        (false, DENY4_SET, SetType::Ipv4Addr),
        (true, DENY6_SET, SetType::Ipv6Addr),
    ]
    .into_iter()
    .map(|(v6, name, kind)| {
        NfListObject::Set(Box::new(Set {
            family: NfFamily::INet,
            table: Cow::Owned(table.to_string()),
            name: Cow::Borrowed(name),
            set_type: SetTypeValue::Single(kind),
            flags: Some([SetFlag::Interval].into_iter().collect()),
            elem: Some(Cow::Owned(
                deny_nets(v6).into_iter().map(net_value).collect(),
            )),
            ..Set::default()
        }))
    })
    .collect()
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
}
