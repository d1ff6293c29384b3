//! Which names the resolver forwards: the project's `internet-access` entries and the live
//! grants of `alca network allow`, each under the index the daemon files its addresses by
//! (an entry's position in the spec; a grant's own index), replaceable at run time.

use std::sync::{Arc, RwLock};

use alca_contract::internet::InternetEntry;

/// The entries the resolver checks each query against, shared between its tasks.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    entries: Arc<RwLock<Vec<(u16, InternetEntry)>>>,
}

/// The spec's entries under their positions.
pub fn indexed(entries: Vec<InternetEntry>) -> Vec<(u16, InternetEntry)> {
    entries
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| Some((u16::try_from(i).ok()?, e)))
        .collect()
}

impl Policy {
    /// A policy of the spec's entries (no grants yet).
    pub fn new(entries: Vec<InternetEntry>) -> Policy {
        Policy {
            entries: Arc::new(RwLock::new(indexed(entries))),
        }
    }

    /// The indices of the entries that allow `name`; empty means REFUSED.
    pub fn entries_for(&self, name: &str) -> Vec<u16> {
        // A poisoned lock means a writer panicked mid-update: allow nothing (fail closed).
        match self.entries.read() {
            Ok(entries) => entries
                .iter()
                .filter(|(_, e)| e.matches_name(name))
                .map(|(i, _)| *i)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Replaces the entries with the daemon's (the applied spec's and the grants').
    pub fn replace(&self, entries: Vec<(u16, InternetEntry)>) {
        if let Ok(mut e) = self.entries.write() {
            *e = entries;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::internet::parse_internet_entry;

    #[test]
    fn names_are_checked_against_the_current_entries() {
        let p = Policy::new(vec![parse_internet_entry("*.wild.test").unwrap()]);
        assert_eq!(p.entries_for("a.wild.test."), vec![0]);
        assert!(p.entries_for("wild.test").is_empty());
        p.replace(vec![
            (0, parse_internet_entry("allowed.test:8080").unwrap()),
            (1, parse_internet_entry("*.wild.test").unwrap()),
            (32_768, parse_internet_entry("blocked.test").unwrap()),
        ]);
        assert_eq!(p.entries_for("A.WILD.test"), vec![1]);
        assert_eq!(p.entries_for("allowed.test"), vec![0]);
        assert_eq!(p.entries_for("blocked.test"), vec![32_768]);
    }
}
