//! Host changes reach the kernel's caches: an inotify watch on every directory the kernel
//! knows through the view, whose events become FUSE invalidations (`notify_inval_entry`,
//! `notify_inval_inode`). This is what lets the view hand out long entry and attribute
//! timeouts and keep file pages across opens while every host edit still shows at once.
//!
//! Where the watch cannot see everything, the view falls back to the 100 ms caches it had
//! before (decided per node by [`super::FilterFs`] from [`HostWatch::active`] and the parent's
//! [`Watch`] state):
//! * the source is not on a local filesystem (NFS, SMB, 9p, another FUSE…): no watches at all;
//! * `fs.inotify.max_user_watches` (or the instance limit) is reached: directories that got
//!   no watch keep short timeouts for their entries;
//! * the event queue overflows: every entry and inode the kernel holds is invalidated, then
//!   caching goes on (nothing was lost that the kernel still caches);
//! * reading events fails: every cache is invalidated and the whole view goes back to short
//!   timeouts for good.
//!
//! Hiding never depends on this module for names: excluded names are refused on every lookup
//! and listing whatever the kernel caches, and the kernel never caches a negative entry. Files
//! are opened without open requests where the kernel allows it, so a file the host moves to an
//! excluded name is kept from new opens by the entry invalidation sent here (or by the 100 ms
//! timeouts where unwatched); its reads fail closed meanwhile (`held_usable` in `mod.rs`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use fuser::{INodeNo, Notifier};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::statfs::{fstatfs, FsType};

use super::host::proc_path;
use super::inodes::{InodeTable, Watch};

/// What a directory watch reports: every change to a child's name, data or attributes.
const MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_ONLYDIR);

/// Filesystems whose every change, from any process on this host, reaches inotify. Network
/// and FUSE filesystems can change behind the kernel's back and are left to short timeouts.
const LOCAL_FILESYSTEMS: [i64; 9] = [
    0xEF53,      // ext2/3/4
    0x5846_5342, // xfs
    0x9123_683E, // btrfs
    0x0102_1994, // tmpfs
    0xF2F5_2010, // f2fs
    0x2FC1_2FC1, // zfs
    0xCA45_1A4E, // bcachefs
    0x794C_7630, // overlayfs (its lower layers are read-only by contract)
    0x5346_544E, // ntfs3
];

/// The inotify instance of one view, shared by the request threads (which add and remove
/// watches) and the event thread.
#[derive(Debug)]
pub struct HostWatch {
    inotify: Option<Inotify>,
    degraded: AtomicBool,
    limit_reported: AtomicBool,
}

impl HostWatch {
    /// Watches for the source whose root is `root`; inactive (short timeouts everywhere)
    /// when the source is not local or inotify is unavailable.
    pub fn new(root: &impl AsFd) -> Self {
        let local = fstatfs(root)
            .map(|s| is_local(s.filesystem_type()))
            .unwrap_or(false);
        let inotify = if local {
            Inotify::init(InitFlags::IN_CLOEXEC)
                .map_err(|e| eprintln!("view: no inotify instance ({e}); caching 100 ms only"))
                .ok()
        } else {
            eprintln!("view: the source is not on a local filesystem; caching 100 ms only");
            None
        };
        HostWatch {
            inotify,
            degraded: AtomicBool::new(false),
            limit_reported: AtomicBool::new(false),
        }
    }

    /// Whether host changes are being turned into invalidations.
    pub fn active(&self) -> bool {
        self.inotify.is_some() && !self.degraded.load(Ordering::Relaxed)
    }

    /// Watches directory `dir` (a descriptor of it, never a path the host could swap).
    pub fn add(&self, dir: &impl AsRawFd) -> Watch {
        let Some(inotify) = self.inotify.as_ref().filter(|_| self.active()) else {
            return Watch::Failed;
        };
        match inotify.add_watch(&proc_path(dir), MASK) {
            Ok(wd) => Watch::Active(wd.as_raw()),
            Err(e) => {
                if !self.limit_reported.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "view: cannot watch more directories ({e}; see fs.inotify.max_user_watches); \
                         the rest keep 100 ms caches"
                    );
                }
                Watch::Failed
            }
        }
    }

    /// Removes watch `wd` (its directory left the inode table).
    pub fn remove(&self, wd: i32) {
        if let Some(inotify) = &self.inotify {
            // SAFETY: plain syscall on the instance's descriptor; a stale wd gives EINVAL.
            unsafe { libc::inotify_rm_watch(inotify.as_fd().as_raw_fd(), wd) };
        }
    }
}

// The magic's type differs between architectures (i64 here, u32 or i32 elsewhere).
#[allow(clippy::unnecessary_cast)]
fn is_local(kind: FsType) -> bool {
    LOCAL_FILESYSTEMS.contains(&(kind.0 as i64))
}

/// One cache entry of the kernel to drop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Inval {
    /// The name `name` in directory `parent` (also a negative entry).
    Entry(u64, OsString),
    /// Attributes of an inode, and its pages from `offset` (negative: attributes only).
    Inode(u64, i64),
}

/// One inotify event, as the table needs it.
#[derive(Debug, Clone)]
pub struct Event {
    pub wd: i32,
    pub mask: AddWatchFlags,
    pub name: Option<OsString>,
}

/// What the kernel must forget after `event`. Also records removed watches in `table`.
pub fn invalidations(table: &mut InodeTable, event: &Event, out: &mut Vec<Inval>) {
    if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
        everything(table, out);
        return;
    }
    if event.mask.contains(AddWatchFlags::IN_IGNORED) {
        table.watch_removed(event.wd);
        return;
    }
    let Some(dir) = table.watched_dir(event.wd) else {
        return;
    };
    let Some(name) = &event.name else {
        // The directory itself: its attributes, and its cached listing with them.
        out.push(Inval::Inode(dir, 0));
        return;
    };
    let child = table.at_place(dir, name);
    let renamed = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO;
    if event.mask.intersects(renamed) {
        out.push(Inval::Entry(dir, name.clone()));
        out.push(Inval::Inode(dir, 0));
        if let Some(child) = child {
            out.push(Inval::Inode(child, -1));
            if event.mask.contains(AddWatchFlags::IN_MOVED_FROM) {
                // A directory moved on the host: what the kernel holds below it now has
                // another path, which may be excluded.
                for (parent, name, ino) in table.below(child) {
                    out.push(Inval::Entry(parent, name));
                    out.push(Inval::Inode(ino, -1));
                }
            }
        }
    }
    if let Some(child) = child {
        if event
            .mask
            .intersects(AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE)
        {
            out.push(Inval::Inode(child, 0));
        } else if event.mask.contains(AddWatchFlags::IN_ATTRIB) {
            out.push(Inval::Inode(child, -1));
        }
    }
}

/// Every entry and inode the kernel may hold.
fn everything(table: &InodeTable, out: &mut Vec<Inval>) {
    out.push(Inval::Inode(super::inodes::ROOT, 0));
    for (parent, name, ino) in table.places() {
        out.push(Inval::Entry(parent, name));
        out.push(Inval::Inode(ino, 0));
    }
}

/// Turns host events into kernel invalidations until the view goes away.
pub fn spawn(
    watch: Arc<HostWatch>,
    table: Arc<Mutex<InodeTable>>,
    notifier: Notifier,
) -> std::io::Result<()> {
    if watch.inotify.is_none() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("view-watch".into())
        .spawn(move || run(&watch, &table, &notifier))
        .map(drop)
}

fn run(watch: &HostWatch, table: &Mutex<InodeTable>, notifier: &Notifier) {
    let Some(inotify) = watch.inotify.as_ref() else {
        return;
    };
    let lock = || table.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let events = match inotify.read_events() {
            Ok(events) => events,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("view: reading host changes failed ({e}); caching 100 ms from now on");
                watch.degraded.store(true, Ordering::Relaxed);
                let mut out = Vec::new();
                everything(&lock(), &mut out);
                let _ = send(notifier, out);
                return;
            }
        };
        let mut out = Vec::new();
        {
            // Never held while sending: an invalidation waits for the kernel's locks, and a
            // request holding those may be waiting for this table.
            let mut table = lock();
            for ev in events {
                let event = Event {
                    wd: ev.wd.as_raw(),
                    mask: ev.mask,
                    name: ev.name,
                };
                invalidations(&mut table, &event, &mut out);
            }
        }
        if send(notifier, out).is_err() {
            return;
        }
    }
}

/// Sends each distinct invalidation once; an error means the view is unmounted.
fn send(notifier: &Notifier, out: Vec<Inval>) -> std::io::Result<()> {
    let mut seen = HashSet::new();
    for inval in out {
        if !seen.insert(inval.clone()) {
            continue;
        }
        let res = match &inval {
            Inval::Entry(parent, name) => notifier.inval_entry(INodeNo(*parent), name),
            Inval::Inode(ino, offset) => notifier.inval_inode(INodeNo(*ino), *offset, 0),
        };
        match res {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exclude::fs::inodes::ROOT;
    use std::ffi::OsStr;

    fn event(wd: i32, mask: AddWatchFlags, name: &str) -> Event {
        Event {
            wd,
            mask,
            name: Some(name.into()),
        }
    }

    fn table() -> (InodeTable, u64, u64) {
        let mut t = InodeTable::new((1, 1));
        t.set_watch(ROOT, Watch::Active(1));
        let d = t.looked_up(ROOT, OsStr::new("d"), (1, 2));
        t.set_watch(d, Watch::Active(2));
        let f = t.looked_up(d, OsStr::new("f"), (1, 3));
        (t, d, f)
    }

    #[test]
    fn a_host_create_drops_the_name_and_the_listing() {
        let (mut t, d, _) = table();
        let mut out = Vec::new();
        invalidations(&mut t, &event(2, AddWatchFlags::IN_CREATE, "new"), &mut out);
        assert_eq!(out, vec![Inval::Entry(d, "new".into()), Inval::Inode(d, 0)]);
    }

    #[test]
    fn a_host_write_drops_the_known_file_pages_and_attributes() {
        let (mut t, _, f) = table();
        let mut out = Vec::new();
        invalidations(&mut t, &event(2, AddWatchFlags::IN_MODIFY, "f"), &mut out);
        assert_eq!(out, vec![Inval::Inode(f, 0)]);
        out.clear();
        invalidations(&mut t, &event(2, AddWatchFlags::IN_ATTRIB, "f"), &mut out);
        assert_eq!(out, vec![Inval::Inode(f, -1)]);
        out.clear();
        invalidations(
            &mut t,
            &event(2, AddWatchFlags::IN_MODIFY, "other"),
            &mut out,
        );
        assert!(out.is_empty(), "nothing cached for unknown names: {out:?}");
    }

    #[test]
    fn a_directory_moved_on_the_host_drops_everything_below_it() {
        let (mut t, d, f) = table();
        let mut out = Vec::new();
        let mask = AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_ISDIR;
        invalidations(&mut t, &event(1, mask, "d"), &mut out);
        assert!(out.contains(&Inval::Entry(ROOT, "d".into())));
        assert!(out.contains(&Inval::Entry(d, "f".into())));
        assert!(out.contains(&Inval::Inode(f, -1)));
    }

    #[test]
    fn overflow_drops_every_entry_and_a_removed_watch_is_forgotten() {
        let (mut t, d, f) = table();
        let mut out = Vec::new();
        let overflow = Event {
            wd: -1,
            mask: AddWatchFlags::IN_Q_OVERFLOW,
            name: None,
        };
        invalidations(&mut t, &overflow, &mut out);
        assert!(out.contains(&Inval::Entry(ROOT, "d".into())));
        assert!(out.contains(&Inval::Entry(d, "f".into())));
        assert!(out.contains(&Inval::Inode(f, 0)));
        let ignored = Event {
            wd: 2,
            mask: AddWatchFlags::IN_IGNORED,
            name: None,
        };
        invalidations(&mut t, &ignored, &mut Vec::new());
        assert_eq!(t.watch(d), Watch::Failed);
        assert!(!t.parent_watched(f));
    }

    #[test]
    fn a_local_source_gets_an_instance_and_watches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fd = std::fs::File::open(dir.path()).expect("open");
        let watch = HostWatch::new(&fd);
        assert!(watch.active(), "/tmp here is local");
        assert!(matches!(watch.add(&fd), Watch::Active(_)));
    }
}
