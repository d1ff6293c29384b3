//! Which names the resolver forwards: the project's `internet-access` entries, replaceable at
//! run time (when `alca network allow` grants a name) without restarting the resolver.

use std::sync::{Arc, RwLock};

use alca_netd::internet::{entries_for_name, InternetEntry};

/// The entries the resolver checks each query against, shared between its tasks.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    entries: Arc<RwLock<Vec<InternetEntry>>>,
}

impl Policy {
    pub fn new(entries: Vec<InternetEntry>) -> Policy {
        Policy {
            entries: Arc::new(RwLock::new(entries)),
        }
    }

    /// The indices of the entries that allow `name`; empty means REFUSED.
    pub fn entries_for(&self, name: &str) -> Vec<u16> {
        // A poisoned lock means a writer panicked mid-update: allow nothing (fail closed).
        match self.entries.read() {
            Ok(entries) => entries_for_name(&entries, name),
            Err(_) => Vec::new(),
        }
    }

    /// Replaces the entries (the indices must match the spec the daemon has applied).
    pub fn replace(&self, entries: Vec<InternetEntry>) {
        if let Ok(mut e) = self.entries.write() {
            *e = entries;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_netd::internet::parse_internet_entry;

    #[test]
    fn names_are_checked_against_the_current_entries() {
        let p = Policy::new(vec![parse_internet_entry("*.wild.test").unwrap()]);
        assert_eq!(p.entries_for("a.wild.test."), vec![0]);
        assert!(p.entries_for("wild.test").is_empty());
        p.replace(vec![
            parse_internet_entry("allowed.test:8080").unwrap(),
            parse_internet_entry("*.wild.test").unwrap(),
        ]);
        assert_eq!(p.entries_for("A.WILD.test"), vec![1]);
        assert_eq!(p.entries_for("allowed.test"), vec![0]);
    }
}
