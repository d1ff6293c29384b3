//! The destinations no isolated container may reach (SPEC §3), as two interval sets so that a
//! change to the list is a set-element update, not a rule rewrite.
//!
//! "LAN" is the networks the host is directly connected to plus the special ranges: the fixed
//! lists of [`alca_contract::deny_list`], and the on-link prefixes of the host's own interfaces
//! (found by the daemon), which may be public space (a campus, an IPv6 home LAN).

use std::borrow::Cow;

use ipnet::IpNet;
use nftables::schema::{NfListObject, Set, SetFlag, SetType, SetTypeValue};
use nftables::types::NfFamily;

use alca_contract::deny_list::deny_nets_with;

use super::expr::net_value;

/// Name of the IPv4 deny set.
pub const DENY4_SET: &str = "deny4";
/// Name of the IPv6 deny set.
pub const DENY6_SET: &str = "deny6";

/// `add set` objects for `deny4` and `deny6` with their elements.
pub(super) fn deny_sets(table: &str, onlink: &[IpNet]) -> Vec<NfListObject<'static>> {
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
                deny_nets_with(v6, onlink)
                    .into_iter()
                    .map(net_value)
                    .collect(),
            )),
            ..Set::default()
        }))
    })
    .collect()
}
