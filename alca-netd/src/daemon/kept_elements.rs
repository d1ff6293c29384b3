//! A re-apply of a project's table (`alca up`/`alca run` applying again, `--reapply` and the
//! start-up restore adopting an earlier daemon's table, new on-link networks, healing) must
//! not forget the addresses its resolver already answered: the container caches those
//! answers and would be refused until it asked again. So when the `internet-access` entries
//! the live table was built from are the ones being applied, the live elements of the allow
//! sets go into the new table *in the same transaction*, each with the time it had left
//! (capped at the new maximum). Changed entries start empty: an address answered for an entry
//! that is gone must not stay allowed. Reading the live elements is best effort: when it
//! fails the sets start empty (refused until re-resolved: closed, never open).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use alca_contract::internet::{InternetEntry, InternetSpec, InternetTarget};
use alca_contract::net_spec::NetSpec;
use alca_kernel::set_elements::{ElementBatch, ElementOp};
use alca_ruleset::Ruleset;
use alca_ruleset::{allow_groups, allow_set_name};

use super::Daemon;
use crate::firewall::FirewallError;

impl Daemon {
    /// Replaces the table of `spec` with `batch` (marking its bridge as ruled), keeping the
    /// live allow-set elements when `before` — the internet part the live table was built
    /// from — has the same entries as `spec`'s. Returns what was kept (empty: nothing).
    pub(super) fn replace_keeping_answers(
        &self,
        batch: &Ruleset,
        spec: &NetSpec,
        before: Option<&InternetSpec>,
    ) -> Result<ElementBatch, FirewallError> {
        let kept = self.live_answers(spec, before);
        if kept.ops.is_empty() {
            self.firewall.apply_project(batch, &spec.bridge, true)?;
            return Ok(kept);
        }
        match self
            .firewall
            .apply_project_keeping(batch, &spec.bridge, true, &kept)
        {
            Ok(()) => Ok(kept),
            // Not ours to write: without the elements it would be refused the same way.
            Err(e) if super::owned_elsewhere(&e) => Err(e),
            Err(e) => {
                tracing::warn!(
                    project = %spec.project,
                    "re-applying with the live allow-set elements failed ({e}); applying without"
                );
                self.firewall.apply_project(batch, &spec.bridge, true)?;
                Ok(ElementBatch::new(&spec.table_name()))
            }
        }
    }

    /// The adds that put the live allow-set elements of `spec`'s table back; empty when the
    /// entries changed, there is no list, no table, or it cannot be read.
    fn live_answers(&self, spec: &NetSpec, before: Option<&InternetSpec>) -> ElementBatch {
        let table = spec.table_name();
        let (Some(net), Some(before)) = (&spec.internet, before) else {
            return ElementBatch::new(&table);
        };
        let groups = allow_groups(&net.entries).len();
        if net.entries != before.entries || groups == 0 {
            return ElementBatch::new(&table);
        }
        match self.firewall.list_table(&table) {
            Ok(Some(live)) => kept_batch(&table, &live, groups, net.ttl_max_secs),
            Ok(None) => ElementBatch::new(&table),
            Err(e) => {
                tracing::warn!(
                    project = %spec.project,
                    "cannot read the live allow sets ({e}): they start empty"
                );
                ElementBatch::new(&table)
            }
        }
    }
}

/// `spec` as the connection cut after an Apply must judge it ([`crate::conntrack::refused`]):
/// the addresses `kept` in the allow sets are allowed on their group's protocol and port as
/// they are in the kernel, so the cut spares their connections (it judges address entries
/// only, the sets being taken to start empty).
pub(super) fn as_cut_by(spec: &NetSpec, kept: &ElementBatch) -> NetSpec {
    let mut cut = spec.clone();
    let Some(net) = cut.internet.as_mut() else {
        return cut;
    };
    let groups = allow_groups(&net.entries);
    for op in &kept.ops {
        let ElementOp::AddAddrs { set, addrs } = op else {
            continue;
        };
        let group = (0..groups.len())
            .find(|g| {
                [false, true]
                    .iter()
                    .any(|v6| allow_set_name(*g, *v6) == *set)
            })
            .map(|g| groups[g]);
        let Some((proto, port)) = group else {
            continue;
        };
        net.entries
            .extend(addrs.iter().map(|(addr, _)| InternetEntry {
                target: InternetTarget::Net(IpNet::from(*addr)),
                proto,
                port,
            }));
    }
    cut
}

/// One add per non-empty allow set of the `groups` groups in the listing `live` (`nft -j list
/// table`), each element with the whole seconds it has left, at most `max_secs`; elements with
/// less than a second left are let go.
fn kept_batch(table: &str, live: &Value, groups: usize, max_secs: u32) -> ElementBatch {
    let mut batch = ElementBatch::new(table);
    let sets: Vec<&Value> = live["nftables"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|o| o.get("set"))
        .collect();
    for name in (0..groups).flat_map(|g| [allow_set_name(g, false), allow_set_name(g, true)]) {
        let Some(set) = sets.iter().find(|s| s["name"] == name.as_str()) else {
            continue;
        };
        let addrs: Vec<(IpAddr, u32)> = set["elem"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                let e = e.get("elem")?;
                let addr: IpAddr = e["val"].as_str()?.parse().ok()?;
                let left = u32::try_from(e["expires"].as_u64()?).ok()?;
                (left > 0).then_some((addr, left.min(max_secs)))
            })
            .collect();
        if !addrs.is_empty() {
            batch.ops.push(ElementOp::AddAddrs { set: name, addrs });
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_what_the_allow_sets_hold_with_the_time_left() {
        let live = json!({"nftables": [
            {"set": {"name": "inet4_0", "elem": [
                {"elem": {"val": "192.88.99.2", "timeout": 300, "expires": 297}},
                {"elem": {"val": "192.88.99.3", "timeout": 1, "expires": 0}},
                {"elem": {"val": "192.88.99.4", "timeout": 9000, "expires": 8000}}
            ]}},
            {"set": {"name": "inet6_0", "elem": [
                {"elem": {"val": "2001:db8::2", "timeout": 60, "expires": 59}}
            ]}},
            {"set": {"name": "inet4_1"}},
            {"set": {"name": "inet4_7", "elem": [
                {"elem": {"val": "192.88.99.9", "timeout": 60, "expires": 59}}
            ]}},
            {"set": {"name": "grant4", "elem": [
                {"elem": {"val": "192.88.99.5", "timeout": 60, "expires": 59}}
            ]}}
        ]});
        let batch = kept_batch("alca-x", &live, 2, 3600);
        assert_eq!(
            batch.ops,
            [
                ElementOp::AddAddrs {
                    set: "inet4_0".into(),
                    addrs: vec![
                        ("192.88.99.2".parse().unwrap(), 297),
                        ("192.88.99.4".parse().unwrap(), 3600)
                    ],
                },
                ElementOp::AddAddrs {
                    set: "inet6_0".into(),
                    addrs: vec![("2001:db8::2".parse().unwrap(), 59)],
                },
            ],
            "the grant sets are the grants' own (reinstate_grants); sets beyond the groups are gone"
        );
        assert!(kept_batch("alca-x", &json!({}), 2, 3600).ops.is_empty());
    }

    #[test]
    fn the_cut_spares_the_connections_to_kept_addresses_on_their_port() {
        use alca_contract::internet::parse_internet_entry;
        use alca_kernel::conntrack::{Tuple, IPPROTO_TCP};
        let mut spec = NetSpec::isolated("0123456789abcdef");
        spec.internet = Some(InternetSpec {
            entries: vec![parse_internet_entry("allowed.test:8080").unwrap()],
            resolver: "10.89.0.1:5353".parse().unwrap(),
            ttl_floor_secs: 0,
            ttl_max_secs: 600,
        });
        let mut kept = ElementBatch::new("alca-0123456789abcdef");
        kept.ops.push(ElementOp::AddAddrs {
            set: "inet4_0".into(),
            addrs: vec![("192.88.99.2".parse().unwrap(), 60)],
        });
        let tuple = |dst: &str, dport| Tuple {
            proto: IPPROTO_TCP,
            src: "10.89.0.2".parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport: 40000,
            dport,
        };
        let cut = as_cut_by(&spec, &kept);
        let refused = |s: &NetSpec, dst, port| crate::conntrack::refused(s, &tuple(dst, port), &[]);
        assert!(
            !refused(&cut, "192.88.99.2", 8080),
            "a kept address on its port"
        );
        assert!(
            refused(&spec, "192.88.99.2", 8080),
            "without what was kept: cut"
        );
        assert!(refused(&cut, "192.88.99.2", 8081), "another port");
        assert!(refused(&cut, "192.88.99.3", 8080), "an address not kept");
        assert!(
            refused(&cut, "192.88.99.2", 53),
            "DNS starts again at the resolver"
        );
        assert_eq!(as_cut_by(&spec, &ElementBatch::new("alca-x")), spec);
    }
}
