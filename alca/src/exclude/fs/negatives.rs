//! Names the kernel was told are absent and keeps as negative entries (issue #18): git
//! looks up `.gitignore` and its other optional files in every directory at every run, and
//! each of those lookups would otherwise be a round trip. They are kept only in watched
//! directories, where a host create or move of the name invalidates the entry
//! (`watch.rs`). This set is what the watch must invalidate when it cannot follow any more
//! (queue overflow, read failure): a negative entry has no node in the inode table.
//!
//! A record may outlive the kernel's entry (the kernel drops negative entries under memory
//! pressure without telling): that costs one needless invalidation at most. Past
//! [`MAX_NAMES`] records, further absent names are answered uncached, as before.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};

/// Records kept at most (a few MiB).
const MAX_NAMES: usize = 65_536;

/// Absent names the kernel may keep, by directory inode.
#[derive(Debug, Default)]
pub struct Negatives {
    names: HashMap<u64, HashSet<OsString>>,
    count: usize,
}

impl Negatives {
    /// Records that the kernel may keep `name` in `dir` as absent; `false` when full (the
    /// name must then be answered uncached).
    pub fn remember(&mut self, dir: u64, name: &OsStr) -> bool {
        if self
            .names
            .get(&dir)
            .is_some_and(|names| names.contains(name))
        {
            return true;
        }
        if self.count >= MAX_NAMES {
            return false;
        }
        self.names
            .entry(dir)
            .or_default()
            .insert(name.to_os_string());
        self.count += 1;
        true
    }

    /// `name` in `dir` names something now, or its entry is being invalidated; whether it
    /// was recorded.
    pub fn forget(&mut self, dir: u64, name: &OsStr) -> bool {
        let Some(names) = self.names.get_mut(&dir) else {
            return false;
        };
        let was = names.remove(name);
        if names.is_empty() {
            self.names.remove(&dir);
        }
        self.count -= usize::from(was);
        was
    }

    /// Directory `dir` left the kernel, and every entry in it with it.
    pub fn forget_dir(&mut self, dir: u64) {
        if let Some(names) = self.names.remove(&dir) {
            self.count -= names.len();
        }
    }

    /// Every record, for the caller to invalidate; none is left.
    pub fn take_all(&mut self) -> Vec<(u64, OsString)> {
        self.count = 0;
        std::mem::take(&mut self.names)
            .into_iter()
            .flat_map(|(dir, names)| names.into_iter().map(move |name| (dir, name)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_counted_forgotten_and_taken() {
        let mut n = Negatives::default();
        assert!(n.remember(2, OsStr::new(".gitignore")));
        assert!(n.remember(2, OsStr::new(".gitignore")), "again: still kept");
        assert!(n.remember(3, OsStr::new("a")));
        assert!(n.remember(3, OsStr::new("b")));
        assert_eq!(n.count, 3);
        assert!(n.forget(2, OsStr::new(".gitignore")));
        assert!(!n.forget(2, OsStr::new(".gitignore")), "once");
        n.forget_dir(3);
        assert_eq!(n.count, 0);
        assert!(n.remember(4, OsStr::new("x")));
        assert_eq!(n.take_all(), vec![(4, OsString::from("x"))]);
        assert!(n.take_all().is_empty());
    }

    #[test]
    fn past_the_bound_names_are_not_kept() {
        let mut n = Negatives::default();
        for i in 0..MAX_NAMES {
            assert!(n.remember(2, OsStr::new(&format!("f{i}"))));
        }
        assert!(!n.remember(2, OsStr::new("one more")));
        assert!(n.remember(2, OsStr::new("f0")), "a kept name stays kept");
        n.forget(2, OsStr::new("f0"));
        assert!(n.remember(5, OsStr::new("room again")));
    }
}
