//! The daemon's side of `network.internet-access` at run time: the project resolver's
//! addresses go into the live allow sets ([`Engine::allow_resolved`]), and the state of the
//! list is reported ([`Engine::internet_status`]).
//!
//! Every update is checked against the *applied* spec (the saved one: it is saved before its
//! table is written and rolled back if the kernel refuses it) under the state lock, so it can
//! neither race an `Apply` that replaces the table nor name an entry that is no longer there.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use alca_contract::errors::NetdError;
use alca_contract::internet::{
    parse_internet_entry, InternetEntry, InternetError, InternetSpec, InternetTarget, ResolvedAddr,
    ResolvedAddrs, MAX_RESOLVED_PER_UPDATE,
};
use alca_contract::internet_status::{
    GrantInfo, InternetEntries, InternetStatus, GRANT_INDEX_BASE,
};
use alca_contract::net_spec::{table_name, validate_project_id, NetSpec};
use alca_ruleset::{allow_groups, allow_set_for, allow_set_name};

use alca_kernel::set_elements::{ElementBatch, ElementOp};

use super::grants::{self, grant_ops};
use super::Daemon;

impl Daemon {
    /// Adds the addresses of `update` to the project's allow sets as one transaction, each with
    /// the spec's bounded timeout (a grant's addresses: never past the grant's end); returns
    /// once the kernel has acknowledged it. Only the project's owner (or root) may.
    pub fn allow_resolved(&self, update: &ResolvedAddrs, caller: u32) -> Result<usize, NetdError> {
        validate_project_id(&update.project).map_err(NetdError::invalid)?;
        let _lock = self.store.lock()?;
        let saved = self.owned(&update.project, caller)?;
        let net = applied_list(&update.project, saved.spec.internet.as_ref())?;
        let (granted, listed): (Vec<_>, Vec<_>) = update
            .addrs
            .iter()
            .partition(|a| a.entry >= GRANT_INDEX_BASE);
        let listed = ResolvedAddrs {
            project: update.project.clone(),
            addrs: listed,
        };
        if update.addrs.len() > MAX_RESOLVED_PER_UPDATE {
            return Err(NetdError::invalid(InternetError::TooManyAddrs(
                update.addrs.len(),
            )));
        }
        net.check_update(&listed).map_err(NetdError::invalid)?;
        let mut batch = resolved_batch(&table_name(&update.project), net, &listed);
        if !granted.is_empty() {
            let now = Instant::now();
            let live = self.live_grants(&update.project, now);
            for a in granted {
                let grant = live
                    .iter()
                    .find(|g| g.index == a.entry && g.entry.is_domain())
                    .ok_or_else(|| {
                        NetdError::invalid(format!(
                            "addrs: entry {} is not a live name grant of project {} (expired \
                             or revoked: read InternetEntries again)",
                            a.entry, update.project
                        ))
                    })?;
                check_addr(net, &a)?;
                let secs = net
                    .element_timeout(a.ttl_secs)
                    .max(1)
                    .min(grant.remaining_secs(now));
                batch.ops.extend(grant_ops(&grant.entry, a.addr, secs));
            }
        }
        if batch.ops.is_empty() {
            return Ok(0);
        }
        self.firewall.apply_elements(&batch)?;
        Ok(update.addrs.len())
    }

    /// The applied `internet-access` of one of the caller's projects, and its live grants.
    pub fn internet_entries(
        &self,
        project: &str,
        caller: u32,
    ) -> Result<InternetEntries, NetdError> {
        let saved = self.owned(project, caller)?;
        Ok(InternetEntries {
            internet: saved.spec.internet,
            grants: self.grant_infos(project),
        })
    }

    /// Grants `entry` (see [`grants::parse_grant`]) to one of the caller's projects for `secs`;
    /// an address grant is in the kernel when this returns.
    pub fn grant(
        &self,
        project: &str,
        entry: &str,
        secs: u32,
        caller: u32,
    ) -> Result<GrantInfo, NetdError> {
        let _lock = self.store.lock()?;
        let saved = self.owned(project, caller)?;
        applied_list(project, saved.spec.internet.as_ref())?;
        let entry = grants::parse_grant(entry, secs)?;
        let now = Instant::now();
        let grant = self.book().add(project, entry, secs, now)?;
        let mut batch = ElementBatch::new(&table_name(project));
        batch.ops = grants::address_grant_ops(&grant, now);
        if !batch.ops.is_empty() {
            if let Err(e) = self.firewall.apply_elements(&batch) {
                self.book().revoke(project, &grant.entry);
                return Err(e.into());
            }
        }
        Ok(GrantInfo {
            index: grant.index,
            entry: grant.entry,
            remaining_secs: secs,
        })
    }

    /// Ends the grants of `entry` of one of the caller's projects at once; how many there were.
    pub fn revoke(&self, project: &str, entry: &str, caller: u32) -> Result<usize, NetdError> {
        let _lock = self.store.lock()?;
        self.owned(project, caller)?;
        let entry = parse_internet_entry(entry)
            .map_err(|e| NetdError::invalid(format!("revoke {entry:?}: {e}")))?;
        let revoked = self.book().revoke(project, &entry);
        if revoked > 0 {
            let now = Instant::now();
            let keep = self.live_grants(project, now);
            let batch = grants::regrant_batch(&table_name(project), &keep, now);
            self.firewall.apply_elements(&batch)?;
        }
        Ok(revoked)
    }

    /// The live grants of one of the caller's projects.
    pub fn grants(&self, project: &str, caller: u32) -> Result<Vec<GrantInfo>, NetdError> {
        self.owned(project, caller)?;
        Ok(self.grant_infos(project))
    }

    fn book(&self) -> std::sync::MutexGuard<'_, grants::GrantBook> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live_grants(&self, project: &str, now: Instant) -> Vec<grants::Grant> {
        self.book().live(project, now)
    }

    fn grant_infos(&self, project: &str) -> Vec<GrantInfo> {
        let now = Instant::now();
        self.live_grants(project, now)
            .into_iter()
            .map(|g| GrantInfo {
                index: g.index,
                remaining_secs: g.remaining_secs(now),
                entry: g.entry,
            })
            .collect()
    }

    /// After the project's table was replaced (its grant sets are empty): the address grants
    /// go back in. Logged, never failing the Apply that already ran.
    pub(super) fn reinstate_grants(&self, spec: &NetSpec) {
        let now = Instant::now();
        let live = self.live_grants(&spec.project, now);
        if live.is_empty() || spec.internet.is_none() {
            return;
        }
        let batch = grants::regrant_batch(&spec.table_name(), &live, now);
        if let Err(e) = self.firewall.apply_elements(&batch) {
            tracing::error!(project = %spec.project, "cannot put the grants back: {e}");
        }
    }

    /// Forgets the grants of a removed project.
    pub(super) fn forget_grants(&self, project: &str) {
        self.book().forget(project);
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

/// The address check of [`InternetSpec::check_update`] for an address of a name grant (the
/// spec's entries do not hold grants: it runs on a stand-in name entry).
fn check_addr(net: &InternetSpec, a: &ResolvedAddr) -> Result<(), NetdError> {
    let stand_in = InternetSpec {
        entries: vec![InternetEntry {
            target: InternetTarget::Domain {
                name: "grant.invalid".into(),
                subdomains: false,
            },
            proto: None,
            port: None,
        }],
        ..net.clone()
    };
    let single = ResolvedAddrs {
        project: String::new(),
        addrs: vec![ResolvedAddr { entry: 0, ..*a }],
    };
    stand_in.check_update(&single).map_err(NetdError::invalid)
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
    use alca_contract::internet::parse_internet_entry;
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
