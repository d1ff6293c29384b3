//! The destinations no isolated container may reach (SPEC §3), as two interval sets so that a
//! change to the list is a set-element update, not a rule rewrite.
//!
//! "LAN" is the networks the host is directly connected to plus the special ranges: the fixed
//! lists of [`alca_contract::deny_list`], and the on-link prefixes of the host's own interfaces
//! (found by the daemon), which may be public space (a campus, an IPv6 home LAN).

use ipnet::IpNet;

use alca_contract::deny_list::deny_nets_with;
use alca_ruleset_types::{Command, Element, IpFamily, Set, SetKey};

/// Name of the IPv4 deny set.
pub const DENY4_SET: &str = "deny4";
/// Name of the IPv6 deny set.
pub const DENY6_SET: &str = "deny6";

/// `add set` commands for `deny4` and `deny6` with their elements.
pub(super) fn deny_sets(table: &str, onlink: &[IpNet]) -> Vec<Command> {
    [(false, DENY4_SET), (true, DENY6_SET)]
        .into_iter()
        .map(|(v6, name)| {
            let mut set = Set::new(table, name, SetKey::Addr(IpFamily::of(v6)));
            set.interval = true;
            let nets = deny_nets_with(v6, onlink);
            set.elements = Some(nets.into_iter().map(Element::Net).collect());
            Command::AddSet(set)
        })
        .collect()
}
