//! Directory listings kept per directory inode between the chunks of one listing: the kernel
//! lists directories without opendir requests (`FUSE_NO_OPENDIR_SUPPORT`, no `opendir` or
//! `releasedir` round trip per listing), so no handle carries the listing from one `readdir`
//! to the next, and its offsets are indexes into one snapshot that must not change under a
//! reader halfway through.
//!
//! A listing from offset 0 is always read afresh from the host and replaces the one kept; it
//! is dropped once its last chunk is served. A reader whose snapshot was replaced by another
//! reader's fresh listing of the same directory continues in that one, which differs only if
//! the directory changed in between (as a host directory read during changes may).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fuser::Errno;

use super::listing::Item;

/// Most listings kept at once (readers that stopped halfway leave theirs behind); past it the
/// store starts over, and a reader still halfway gets a fresh listing.
const MAX_KEPT: usize = 1024;

/// One directory's listing as served to the kernel.
pub type Snapshot = Arc<Vec<Item>>;

/// Listings being served, by directory inode.
#[derive(Debug, Default)]
pub struct DirSnapshots {
    kept: Mutex<HashMap<u64, Snapshot>>,
}

impl DirSnapshots {
    /// The listing of `ino` to serve from `offset`: the kept one when the kernel continues a
    /// listing, else a fresh one from `list` (read without holding the store's lock).
    pub fn get(
        &self,
        ino: u64,
        offset: u64,
        list: impl FnOnce() -> Result<Vec<Item>, Errno>,
    ) -> Result<Snapshot, Errno> {
        if offset != 0 {
            if let Some(kept) = self.lock().get(&ino) {
                return Ok(Arc::clone(kept));
            }
        }
        let fresh = Arc::new(list()?);
        let mut kept = self.lock();
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(ino, Arc::clone(&fresh));
        Ok(fresh)
    }

    /// `served` was handed out to its end: drops it, unless a fresher listing replaced it.
    pub fn done(&self, ino: u64, served: &Snapshot) {
        let mut kept = self.lock();
        if kept.get(&ino).is_some_and(|k| Arc::ptr_eq(k, served)) {
            kept.remove(&ino);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Snapshot>> {
        // A panic while holding the lock leaves the map itself consistent.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str) -> Item {
        Item {
            ino: 9,
            kind: fuser::FileType::RegularFile,
            name: name.into(),
        }
    }

    fn names(s: &Snapshot) -> Vec<String> {
        s.iter()
            .map(|i| i.name.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_listing_continues_in_its_snapshot_and_restarts_afresh() {
        let store = DirSnapshots::default();
        let first = store.get(2, 0, || Ok(vec![item("a")])).expect("list");
        let next = store
            .get(2, 1, || panic!("continuing must not list again"))
            .expect("kept");
        assert!(Arc::ptr_eq(&first, &next));
        let again = store.get(2, 0, || Ok(vec![item("b")])).expect("list");
        assert_eq!(names(&again), ["b"], "offset 0 lists the host again");
        assert_eq!(
            store.get(3, 0, || Err(Errno::ENOENT)).unwrap_err(),
            Errno::ENOENT
        );
    }

    #[test]
    fn a_finished_listing_is_dropped_but_not_a_fresher_one() {
        let store = DirSnapshots::default();
        let old = store.get(2, 0, || Ok(vec![item("a")])).expect("list");
        let fresh = store.get(2, 0, || Ok(vec![item("b")])).expect("list");
        store.done(2, &old);
        let kept = store.get(2, 5, || Ok(vec![item("c")])).expect("kept");
        assert!(Arc::ptr_eq(&kept, &fresh), "the fresher listing stays");
        store.done(2, &fresh);
        let after = store.get(2, 5, || Ok(vec![item("c")])).expect("list");
        assert_eq!(names(&after), ["c"], "nothing kept: listed afresh");
    }

    #[test]
    fn the_store_is_bounded() {
        let store = DirSnapshots::default();
        for ino in 0..(MAX_KEPT as u64 + 10) {
            store.get(ino, 0, || Ok(vec![item("a")])).expect("list");
        }
        assert!(store.lock().len() <= MAX_KEPT);
    }
}
