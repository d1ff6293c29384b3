//! The daemon's side of `network.internet-access` at run time: the project resolver's
//! addresses go into the live allow sets ([`Engine::allow_resolved`]), and the state of the
//! list is reported ([`Engine::internet_status`]).
//!
//! Every update is checked against the *applied* spec (the saved one: it is saved before its
//! table is written and rolled back if the kernel refuses it) under the state lock, so it can
//! neither race an `Apply` that replaces the table nor name an entry that is no longer there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compile::{allow_groups, allow_set_for, allow_set_name};
use crate::errors::NetdError;
use crate::internet::{InternetEntry, InternetSpec, ResolvedAddrs};
use crate::set_elements::{ElementBatch, ElementOp};
use crate::spec::{table_name, validate_project_id};

use super::Engine;

/// What `InternetStatus` reports about one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetStatus {
    /// `open` (no list: `["*"]`), `list` (only the entries), `none` (`[]`: no internet).
    pub mode: String,
    /// The applied entries, as written in `internet-access`.
    pub entries: Vec<String>,
    /// Addresses in the allow sets right now (each expires by itself).
    pub elements: usize,
}

/// The entries the project's resolver must follow: the applied list, in order (an index into
/// it is a [`crate::internet::ResolvedAddr::entry`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetEntries {
    /// `None`: the project has no list (the internet is open; the resolver is not needed).
    pub internet: Option<InternetSpec>,
}

impl Engine {
    /// Adds the addresses of `update` to the project's allow sets as one transaction, each with
    /// the spec's bounded timeout; returns once the kernel has acknowledged it. Only the
    /// project's owner (or root) may.
    pub fn allow_resolved(&self, update: &ResolvedAddrs, caller: u32) -> Result<usize, NetdError> {
        validate_project_id(&update.project).map_err(invalid)?;
        let _lock = self.store.lock()?;
        let saved = self.owned(&update.project, caller)?;
        let net = applied_list(&update.project, saved.spec.internet.as_ref())?;
        net.check_update(update).map_err(invalid)?;
        let batch = resolved_batch(&table_name(&update.project), net, update);
        if batch.ops.is_empty() {
            return Ok(0);
        }
        self.firewall.apply_elements(&batch)?;
        Ok(update.addrs.len())
    }

    /// The applied `internet-access` of one of the caller's projects.
    pub fn internet_entries(
        &self,
        project: &str,
        caller: u32,
    ) -> Result<InternetEntries, NetdError> {
        let saved = self.owned(project, caller)?;
        Ok(InternetEntries {
            internet: saved.spec.internet,
        })
    }

    /// The mode, the entries and the number of addresses in the allow sets of one of the
    /// caller's projects.
    pub fn internet_status(&self, project: &str, caller: u32) -> Result<InternetStatus, NetdError> {
        let saved = self.owned(project, caller)?;
        let Some(net) = saved.spec.internet else {
            return Ok(InternetStatus {
                mode: "open".into(),
                entries: vec!["*".into()],
                elements: 0,
            });
        };
        let live = self.firewall.list_table(&table_name(project))?;
        let elements = live.map(|l| allow_set_elements(&l, &net)).unwrap_or(0);
        Ok(InternetStatus {
            mode: if net.entries.is_empty() {
                "none"
            } else {
                "list"
            }
            .into(),
            entries: net.entries.iter().map(InternetEntry::to_string).collect(),
            elements,
        })
    }
}

fn invalid(e: impl std::fmt::Display) -> NetdError {
    NetdError::InvalidRequest(e.to_string())
}

/// The project's applied list, or why there is nothing to add to.
fn applied_list<'a>(
    project: &str,
    net: Option<&'a InternetSpec>,
) -> Result<&'a InternetSpec, NetdError> {
    net.ok_or_else(|| {
        NetdError::InvalidRequest(format!(
            "project {project} has no internet-access list (the internet is open); \
             nothing to allow"
        ))
    })
}

/// One add per allow set the update touches, each address with its bounded timeout. `update`
/// must have passed [`InternetSpec::check_update`] against `net`.
pub(crate) fn resolved_batch(
    table: &str,
    net: &InternetSpec,
    update: &ResolvedAddrs,
) -> ElementBatch {
    let mut by_set: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for a in &update.addrs {
        if let Some(set) = allow_set_for(net, a.entry, a.addr) {
            let timeout = net.element_timeout(a.ttl_secs).max(1);
            by_set.entry(set).or_default().push((a.addr, timeout));
        }
    }
    let mut batch = ElementBatch::new(table);
    batch.ops = by_set
        .into_iter()
        .map(|(set, addrs)| ElementOp::AddAddrs { set, addrs })
        .collect();
    batch
}

/// Elements in the allow sets of `net` in a listing of the table.
fn allow_set_elements(live: &Value, net: &InternetSpec) -> usize {
    let names: Vec<String> = (0..allow_groups(&net.entries).len())
        .flat_map(|g| [allow_set_name(g, false), allow_set_name(g, true)])
        .collect();
    live["nftables"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|o| o.get("set"))
        .filter(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| names.iter().any(|m| m == n))
        })
        .map(|s| match &s["elem"] {
            Value::Array(items) => items.len(),
            Value::Null => 0,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internet::{parse_internet_entry, ResolvedAddr};
    use serde_json::json;

    fn net() -> InternetSpec {
        InternetSpec {
            entries: ["allowed.test:8080", "*.wild.test", "b.test:8080"]
                .iter()
                .map(|e| parse_internet_entry(e).unwrap())
                .collect(),
            resolver: "10.89.0.1:53".parse().unwrap(),
            ttl_floor_secs: 0,
            ttl_max_secs: 600,
        }
    }

    #[test]
    fn an_update_is_one_add_per_set_with_bounded_timeouts() {
        let addr = |entry, a: &str, ttl| ResolvedAddr {
            entry,
            addr: a.parse().unwrap(),
            ttl_secs: ttl,
        };
        let update = ResolvedAddrs {
            project: "0123456789abcdef".into(),
            addrs: vec![
                addr(0, "192.88.99.2", 0),
                addr(2, "192.88.99.3", 99_999),
                addr(1, "2001:db8::2", 60),
            ],
        };
        let batch = resolved_batch("alca-0123456789abcdef", &net(), &update);
        assert_eq!(
            batch.ops,
            [
                ElementOp::AddAddrs {
                    set: "inet4_0".into(),
                    addrs: vec![
                        ("192.88.99.2".parse().unwrap(), 1),
                        ("192.88.99.3".parse().unwrap(), 600)
                    ],
                },
                ElementOp::AddAddrs {
                    set: "inet6_1".into(),
                    addrs: vec![("2001:db8::2".parse().unwrap(), 60)],
                },
            ]
        );
        assert_eq!(batch.messages().len(), 2);
    }

    #[test]
    fn counts_the_elements_of_the_allow_sets_only() {
        let live = json!({"nftables": [
            {"set": {"name": "inet4_0", "elem": [{"elem": {"val": "192.88.99.2", "expires": 3}}]}},
            {"set": {"name": "inet6_1", "elem": [{"elem": {"val": "2001:db8::2"}}, "2001:db8::3"]}},
            {"set": {"name": "inet4_1"}},
            {"set": {"name": "denied4", "elem": ["x", "y"]}}
        ]});
        assert_eq!(allow_set_elements(&live, &net()), 3);
    }

    #[test]
    fn a_project_without_a_list_has_nothing_to_add_to() {
        let err = applied_list("0123456789abcdef", None)
            .unwrap_err()
            .message();
        assert!(err.contains("no internet-access list"), "{err}");
    }
}
