//! Time-boxed grants (`alca network allow NAME --for 30m`): an extra `internet-access` entry of
//! one project for a while, granted by its owner from the host (the container has no bus).
//!
//! The kernel enforces the expiry: a grant adds nothing to the rules, only elements to the
//! project's grant sets (see `compile::internet`), and every element it ever adds times out no
//! later than the grant. An address grant's elements go in at once; a name grant's come from
//! the resolver's answers (`AllowResolved` with the grant's index), bounded the same way. A
//! revoke empties the grant sets and puts back the other address grants.
//!
//! Grants live in the daemon's memory: a restart forgets them (fail closed: the access ends
//! early, never late). A grant's index is [`GRANT_INDEX_BASE`] plus a number never reused in
//! the daemon's life, so an index a resolver learned never names another grant.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use alca_contract::errors::NetdError;
use alca_contract::internet::{parse_internet_entry, InternetEntry, InternetTarget};
use alca_contract::internet_status::GRANT_INDEX_BASE;
use alca_contract::lan::Proto;
use alca_contract::probe::Key;
use alca_ruleset::{GRANT4_SET, GRANT6_SET, GRANT_PORT4_SET, GRANT_PORT6_SET};

use alca_kernel::set_elements::{ElementBatch, ElementOp};

/// Longest grant: one day.
pub const MAX_GRANT_SECS: u32 = 86_400;
/// Grants one project may hold at once.
pub const MAX_GRANTS: usize = 64;

/// One grant of one project.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub index: u16,
    pub entry: InternetEntry,
    pub until: Instant,
}

impl Grant {
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
    }

    /// Whole seconds left, rounded down (an element never outlives the grant); 0 when over.
    pub fn remaining_secs(&self, now: Instant) -> u32 {
        self.remaining(now)
            .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
            .unwrap_or(0)
    }
}

/// Every project's grants, and the next grant number.
#[derive(Debug, Default)]
pub(super) struct GrantBook {
    grants: HashMap<String, Vec<Grant>>,
    next: u16,
}

impl GrantBook {
    /// The project's live grants (expired ones are forgotten here).
    pub fn live(&mut self, project: &str, now: Instant) -> Vec<Grant> {
        let Some(list) = self.grants.get_mut(project) else {
            return Vec::new();
        };
        list.retain(|g| g.remaining(now).is_some());
        let live = list.clone();
        if list.is_empty() {
            self.grants.remove(project);
        }
        live
    }

    /// Adds a grant of `entry` for `secs`.
    pub fn add(
        &mut self,
        project: &str,
        entry: InternetEntry,
        secs: u32,
        now: Instant,
    ) -> Result<Grant, NetdError> {
        if self.live(project, now).len() >= MAX_GRANTS {
            return Err(NetdError::LimitReached(format!(
                "project {project} already holds {MAX_GRANTS} grants; revoke one first \
                 (`alca network allow --revoke NAME`)"
            )));
        }
        let index = GRANT_INDEX_BASE.checked_add(self.next).ok_or_else(|| {
            NetdError::LimitReached("the daemon ran out of grant numbers; restart it".into())
        })?;
        self.next += 1;
        let grant = Grant {
            index,
            entry,
            until: now + Duration::from_secs(u64::from(secs)),
        };
        self.grants
            .entry(project.to_string())
            .or_default()
            .push(grant.clone());
        Ok(grant)
    }

    /// Removes the live grants of `entry`; how many there were.
    pub fn revoke(&mut self, project: &str, entry: &InternetEntry) -> usize {
        let Some(list) = self.grants.get_mut(project) else {
            return 0;
        };
        let before = list.len();
        list.retain(|g| g.entry != *entry);
        before - list.len()
    }

    /// Forgets every grant of a removed project.
    pub fn forget(&mut self, project: &str) {
        self.grants.remove(project);
    }
}

/// Parses and checks what a grant may be: a name, `*.name` or one address, each with an
/// optional port and protocol (`udp://name:*` is refused: a protocol without a port cannot
/// be granted); `secs` from 1 to [`MAX_GRANT_SECS`].
pub(super) fn parse_grant(raw: &str, secs: u32) -> Result<InternetEntry, NetdError> {
    let invalid = |why: String| NetdError::InvalidRequest(format!("grant {raw:?}: {why}"));
    if !(1..=MAX_GRANT_SECS).contains(&secs) {
        return Err(invalid(format!(
            "the duration must be 1 s to {MAX_GRANT_SECS} s (one day)"
        )));
    }
    let entry = parse_internet_entry(raw).map_err(|e| invalid(e.to_string()))?;
    if let InternetTarget::Net(net) = entry.target {
        if net.prefix_len() != net.max_prefix_len() {
            return Err(invalid(
                "grant one address or a name; put networks in internet-access".into(),
            ));
        }
    }
    if entry.proto.is_some() && entry.port.is_none() {
        return Err(invalid(
            "a protocol needs a port here, e.g. \"udp://name:443\"".into(),
        ));
    }
    Ok(entry)
}

/// The element commands allowing `addr` under `entry` for `secs`, the whole seconds the grant
/// has left. None when that is 0: element timeouts here are whole seconds (and 0 would mean
/// none at all), so rounding up would let the element outlive its grant.
pub(super) fn grant_ops(entry: &InternetEntry, addr: IpAddr, secs: u32) -> Vec<ElementOp> {
    let v6 = addr.to_canonical().is_ipv6();
    if secs == 0 {
        return Vec::new();
    }
    match entry.port {
        None => vec![ElementOp::AddAddrs {
            set: if v6 { GRANT6_SET } else { GRANT4_SET }.to_string(),
            addrs: vec![(addr, secs)],
        }],
        Some(port) => {
            let protos = match entry.proto {
                Some(p) => vec![p],
                None => vec![Proto::Tcp, Proto::Udp],
            };
            vec![ElementOp::Add {
                set: if v6 { GRANT_PORT6_SET } else { GRANT_PORT4_SET },
                keys: protos
                    .into_iter()
                    .map(|proto| crate::probe_sets::element_key(&Key { addr, proto, port }))
                    .collect(),
                timeout_secs: Some(secs),
            }]
        }
    }
}

/// The element commands of an address grant (none for a name: those come from answers).
pub(super) fn address_grant_ops(grant: &Grant, now: Instant) -> Vec<ElementOp> {
    match grant.entry.target {
        InternetTarget::Net(net) => grant_ops(&grant.entry, net.addr(), grant.remaining_secs(now)),
        InternetTarget::Domain { .. } => Vec::new(),
    }
}

/// A batch emptying the grant sets, then putting back `keep`'s address grants.
pub(super) fn regrant_batch(table: &str, keep: &[Grant], now: Instant) -> ElementBatch {
    let mut batch = ElementBatch::new(table);
    batch.ops = [GRANT4_SET, GRANT6_SET, GRANT_PORT4_SET, GRANT_PORT6_SET]
        .into_iter()
        .map(|set| ElementOp::Flush { set })
        .chain(keep.iter().flat_map(|g| address_grant_ops(g, now)))
        .collect();
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_names_or_single_addresses_for_at_most_a_day() {
        assert!(parse_grant("blocked.test", 3).is_ok());
        assert!(parse_grant("tcp://blocked.test:22", 60).is_ok());
        assert!(parse_grant("192.88.99.2:8080", 60).is_ok());
        for (raw, secs, why) in [
            ("blocked.test", 0, "duration"),
            ("blocked.test", MAX_GRANT_SECS + 1, "duration"),
            ("192.88.99.0/24", 60, "networks"),
            ("udp://blocked.test:*", 60, "needs a port"),
            ("*", 60, "\"*\""),
        ] {
            let err = parse_grant(raw, secs).unwrap_err().message();
            assert!(err.contains(why), "{raw}: {err}");
        }
    }

    #[test]
    fn indices_are_never_reused_and_expired_grants_go() {
        let mut book = GrantBook::default();
        let t0 = Instant::now();
        let e = parse_grant("a.test", 5).unwrap();
        let first = book.add("p", e.clone(), 5, t0).unwrap();
        assert_eq!(first.index, GRANT_INDEX_BASE);
        assert_eq!(book.revoke("p", &e), 1);
        let second = book.add("p", e.clone(), 5, t0).unwrap();
        assert_eq!(second.index, GRANT_INDEX_BASE + 1);
        assert_eq!(book.live("p", t0 + Duration::from_secs(4)).len(), 1);
        assert_eq!(second.remaining_secs(t0 + Duration::from_millis(2500)), 2);
        assert!(book.live("p", t0 + Duration::from_secs(5)).is_empty());
        for _ in 0..MAX_GRANTS {
            book.add("q", e.clone(), 60, t0).unwrap();
        }
        let err = book.add("q", e, 60, t0).unwrap_err().message();
        assert!(err.contains("revoke"), "{err}");
    }

    #[test]
    fn a_port_grant_without_protocol_allows_tcp_and_udp_keys() {
        let e = parse_grant("*://192.88.99.2:443", 60).unwrap();
        let ops = grant_ops(&e, "192.88.99.2".parse().unwrap(), 7);
        let ElementOp::Add {
            set,
            keys,
            timeout_secs,
        } = &ops[0]
        else {
            panic!("{ops:?}");
        };
        assert_eq!((*set, keys.len(), *timeout_secs), ("grantp4", 2, Some(7)));
        let e = parse_grant("blocked.test", 60).unwrap();
        let ops = grant_ops(&e, "2001:db8::2".parse().unwrap(), 30);
        assert!(matches!(&ops[0], ElementOp::AddAddrs { set, .. } if set == "grant6"));
    }

    #[test]
    fn a_grant_in_its_last_second_opens_nothing_that_would_outlive_it() {
        let t0 = Instant::now();
        let e = parse_grant("192.88.99.2:443", 2).unwrap();
        let grant = GrantBook::default().add("p", e.clone(), 2, t0).unwrap();
        let late = t0 + Duration::from_millis(1500);
        assert_eq!(grant.remaining_secs(late), 0);
        assert!(address_grant_ops(&grant, late).is_empty());
        assert!(grant_ops(&e, "192.88.99.2".parse().unwrap(), 0).is_empty());
        assert!(!address_grant_ops(&grant, t0).is_empty());
    }
}
