//! The view's own creates, announced to the watch so it can tell their `IN_CREATE` from a
//! host's (issue #18): the kernel already holds the entry from the create's reply and has
//! dropped the directory's attributes and cached listing itself, so invalidating them again
//! only makes it look the name up and fetch the directory again, and takes the directory
//! lock the next create waits for.
//!
//! A mark is set before the host syscall (pending) and filled with the created object's
//! host identity once its node is in the table, and the first `IN_CREATE` of that name
//! takes it (the watch waits a little for a pending mark to be filled: its event comes
//! as soon as the syscall made the file, before the view has registered it). Only a filled
//! mark whose object is still the one at the name (the watch checks with an `lstat`) lets
//! the watch skip; a pending one (the event was read before the create returned), a host
//! create racing the view's, anything else is invalidated as a host change. A create that
//! failed removes its mark; marks whose event never comes (an `O_CREAT` that opened an
//! existing file) are dropped when the watch has read every queued event (`settle`), so a
//! later host event of the same name can never be taken for the view's.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

use super::inodes::HostId;

/// More marks than creates in flight ever need; past it creates are not announced (their
/// events are then invalidated as today).
const MAX_MARKS: usize = 65_536;

/// Creates the view made (or is making) whose `IN_CREATE` the watch has not read yet.
#[derive(Debug, Default)]
pub struct OwnCreates {
    /// (parent inode, name) → the created object, once the create returned.
    marks: HashMap<(u64, OsString), Option<HostId>>,
}

impl OwnCreates {
    /// The view is about to create `name` in `parent`; `false` when not announced.
    pub fn expect(&mut self, parent: u64, name: &OsStr) -> bool {
        if self.marks.len() >= MAX_MARKS {
            return false;
        }
        self.marks.insert((parent, name.to_os_string()), None);
        true
    }

    /// The create of `name` in `parent` made `host` (kept only if its mark is still pending).
    pub fn made(&mut self, parent: u64, name: &OsStr, host: HostId) {
        if let Some(slot) = self.marks.get_mut(&(parent, name.to_os_string())) {
            slot.get_or_insert(host);
        }
    }

    /// The create of `name` in `parent` failed: no event will come from it.
    pub fn failed(&mut self, parent: u64, name: &OsStr) {
        self.marks.remove(&(parent, name.to_os_string()));
    }

    /// Whether the view is creating `name` in `parent` and has not registered it yet.
    pub fn pending(&self, parent: u64, name: &OsStr) -> bool {
        self.marks
            .get(&(parent, name.to_os_string()))
            .is_some_and(Option::is_none)
    }

    /// Whether the view announced a create of `name` in `parent` not taken yet.
    pub fn announced(&self, parent: u64, name: &OsStr) -> bool {
        self.marks.contains_key(&(parent, name.to_os_string()))
    }

    /// Whether a finished create still waits for its event.
    pub fn any_made(&self) -> bool {
        self.marks.values().any(Option::is_some)
    }

    /// An `IN_CREATE` of `name` in `parent`: the object the view created there, if it
    /// announced and finished one. Takes the mark either way.
    pub fn take(&mut self, parent: u64, name: &OsStr) -> Option<HostId> {
        self.marks.remove(&(parent, name.to_os_string())).flatten()
    }

    /// Every queued event was read: finished creates whose event did not come never will.
    pub fn settle(&mut self) {
        self.marks.retain(|_, made| made.is_none());
    }

    /// The queue overflowed: no event can be matched any more.
    pub fn clear(&mut self) {
        self.marks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_finished_create_is_taken_as_the_views_and_only_once() {
        let mut own = OwnCreates::default();
        let name = OsStr::new("f");
        assert!(own.expect(2, name));
        assert!(own.pending(2, name));
        assert_eq!(own.take(2, name), None, "read before the create returned");
        own.made(2, name, (1, 9));
        assert_eq!(own.take(2, name), None, "a taken mark is not filled again");
        own.expect(2, name);
        own.made(2, name, (1, 9));
        assert!(!own.pending(2, name));
        assert_eq!(own.take(2, name), Some((1, 9)));
        assert_eq!(own.take(2, name), None, "once");
    }

    #[test]
    fn failed_and_settled_marks_are_gone_but_pending_ones_stay() {
        let mut own = OwnCreates::default();
        own.expect(2, OsStr::new("failed"));
        own.failed(2, OsStr::new("failed"));
        assert_eq!(own.take(2, OsStr::new("failed")), None);
        own.expect(2, OsStr::new("done"));
        own.made(2, OsStr::new("done"), (1, 5));
        own.expect(2, OsStr::new("running"));
        own.settle();
        assert_eq!(own.take(2, OsStr::new("done")), None, "settled");
        own.made(2, OsStr::new("running"), (1, 6));
        assert_eq!(own.take(2, OsStr::new("running")), Some((1, 6)));
    }
}
