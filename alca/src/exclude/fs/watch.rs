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
//! The view's own changes come back through the same watch; what the kernel already holds
//! from their replies is not invalidated again, matched by host identity and exact
//! attributes, never by name alone ([`invalidations`]). A file renamed on the host inside
//! the view keeps a node that follows it (rename halves paired by cookie), so a descriptor
//! open in the container reads on, as on a bind mount, unless the new name is excluded.
//!
//! Hiding never depends on this module for names: excluded names are refused on every lookup
//! and listing whatever the kernel caches (a negative entry the kernel keeps only ever hides
//! more: it is kept where the directory is watched, and a host create of the name drops it). Files
//! are opened without open requests where the kernel allows it, so a file the host moves to an
//! excluded name is kept from new opens by the entry invalidation sent here (or by the 100 ms
//! timeouts where unwatched); its reads fail closed meanwhile (`held_usable` in `mod.rs`).

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fuser::{INodeNo, Notifier};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{fstat, FileStat};
use nix::sys::statfs::{fstatfs, FsType};

use super::attr;
use super::host::{host_id, proc_path, stat_at, HostRoot};
use super::inodes::{InodeTable, NodeInfo, Watch};

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
    pub cookie: u32,
    pub name: Option<OsString>,
}

/// `lstat` of `name` in the directory node `dir` as the host has it now (`None`: gone, or
/// the directory is no longer the one the table knows).
pub type Look<'a> = dyn Fn(&InodeTable, u64, &OsStr) -> Option<FileStat> + 'a;

/// Files moved on the host whose `IN_MOVED_TO` has not been read yet: cookie → inode. The
/// two halves of a rename are queued one after the other, so a read may end between them.
pub type PendingMoves = HashMap<u32, u64>;

/// Bound of [`PendingMoves`]: far more renames than can be between their two halves.
const MAX_PENDING_MOVES: usize = 4096;

/// What the kernel must forget after `event`. Also records removed watches in `table`, and
/// the new place of a file moved on the host inside the view (`moves` pairs the two halves
/// of a rename), so a descriptor open in the container follows it as on a bind mount.
///
/// What the kernel already holds is not invalidated (issue #18, the view's own changes
/// coming back through the watch): `look` tells what the name is now, and
/// * on `IN_CREATE`, the entry is kept when the name holds the object the kernel was given
///   for it;
/// * the directory's attributes and listing are kept after a create the view made
///   ([`super::own_creates`]): the kernel dropped them itself on the create's reply;
/// * a node's attributes are kept when its `lstat` is exactly what the view replied to its
///   own last change of it (every attribute the kernel reports, times to the nanosecond);
///   its pages too when that is an empty file (nothing cached can be stale).
///
/// Anything else is invalidated as a host change.
pub fn invalidations(
    table: &mut InodeTable,
    moves: &mut PendingMoves,
    event: &Event,
    look: &Look<'_>,
    out: &mut Vec<Inval>,
) {
    if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
        everything(table, out);
        table.own_creates.clear();
        moves.clear();
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
    if event.mask.contains(AddWatchFlags::IN_CREATE) {
        let own = table.own_creates.take(dir, name);
        if let Some((child, st)) = current(table, child, (dir, name), look) {
            if table.negatives.forget(dir, name) {
                // The kernel may hold the name as absent (the table's place outlived a host
                // delete, and a link brought the object back).
                out.push(Inval::Entry(dir, name.clone()));
            }
            if own != Some(host_id(&st)) {
                out.push(Inval::Inode(dir, 0));
            }
            if !table.replied_is(child, &attr::from_stat(child, &st)) {
                out.push(Inval::Inode(child, -1));
            }
            return;
        }
    }
    let renamed = AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO;
    if event.mask.intersects(renamed) {
        table.negatives.forget(dir, name);
        out.push(Inval::Entry(dir, name.clone()));
        out.push(Inval::Inode(dir, 0));
        if let Some(child) = child {
            out.push(Inval::Inode(child, -1));
            if event.mask.contains(AddWatchFlags::IN_MOVED_FROM) {
                if event.mask.contains(AddWatchFlags::IN_ISDIR) {
                    // A directory moved on the host: what the kernel holds below it now has
                    // another path, which may be excluded.
                    for (parent, name, ino) in table.below(child) {
                        out.push(Inval::Entry(parent, name));
                        out.push(Inval::Inode(ino, -1));
                    }
                } else {
                    if moves.len() >= MAX_PENDING_MOVES {
                        // Renames out of the view never get their second half; cookies are
                        // never reused, so forgetting them only stops following those.
                        moves.clear();
                    }
                    moves.insert(event.cookie, child);
                }
            }
        }
        if event.mask.contains(AddWatchFlags::IN_MOVED_TO) {
            follow_move(table, moves, event.cookie, (dir, name), look);
        }
        return;
    }
    let Some(child) = child else {
        return;
    };
    let unchanged = |empty: bool| {
        current(table, Some(child), (dir, name), look).is_some_and(|(child, st)| {
            (!empty || st.st_size == 0) && table.replied_is(child, &attr::from_stat(child, &st))
        })
    };
    if event
        .mask
        .intersects(AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE)
    {
        if !unchanged(true) {
            out.push(Inval::Inode(child, 0));
        }
    } else if event.mask.contains(AddWatchFlags::IN_ATTRIB) && !unchanged(false) {
        out.push(Inval::Inode(child, -1));
    }
}

/// `child` (the node the kernel was given for `name` in `dir`) and the name's `lstat`, if
/// the name still holds that object.
fn current(
    table: &InodeTable,
    child: Option<u64>,
    (dir, name): (u64, &OsStr),
    look: &Look<'_>,
) -> Option<(u64, FileStat)> {
    let child = child?;
    let st = look(table, dir, name)?;
    (table.host(child) == Some(host_id(&st))).then_some((child, st))
}

/// The second half of a host rename: the file moved from a known place (`moves`) is now
/// `name` in directory `dir`, if the name holds that very object. Its node takes the new
/// place, so reads of a descriptor the container holds follow it, and are refused if the
/// new place is excluded (every read checks the node's place). Directories keep their old
/// place: what the kernel holds below them is invalidated and fails closed.
fn follow_move(
    table: &mut InodeTable,
    moves: &mut PendingMoves,
    cookie: u32,
    (dir, name): (u64, &OsStr),
    look: &Look<'_>,
) {
    let Some(moved) = moves.remove(&cookie) else {
        return;
    };
    let Some(host) = table.host(moved) else {
        return;
    };
    if look(table, dir, name).is_some_and(|st| host_id(&st) == host && attr::is_file(&st)) {
        table.moved(host, dir, name);
    }
}

/// Every entry (negative ones too) and inode the kernel may hold.
fn everything(table: &mut InodeTable, out: &mut Vec<Inval>) {
    out.push(Inval::Inode(super::inodes::ROOT, 0));
    for (parent, name, ino) in table.places() {
        out.push(Inval::Entry(parent, name));
        out.push(Inval::Inode(ino, 0));
    }
    for (dir, name) in table.negatives.take_all() {
        out.push(Inval::Entry(dir, name));
    }
}

/// Turns host events into kernel invalidations until the view goes away. `root` is the
/// source (its own descriptor), for the `lstat` of names that events report.
pub fn spawn(
    watch: Arc<HostWatch>,
    table: Arc<Mutex<InodeTable>>,
    root: Arc<HostRoot>,
    notifier: Notifier,
) -> std::io::Result<()> {
    if watch.inotify.is_none() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("view-watch".into())
        .spawn(move || run(&watch, &table, &root, &notifier))
        .map(drop)
}

fn run(watch: &HostWatch, table: &Mutex<InodeTable>, root: &HostRoot, notifier: &Notifier) {
    let Some(inotify) = watch.inotify.as_ref() else {
        return;
    };
    let lock = || table.lock().unwrap_or_else(PoisonError::into_inner);
    let dirs = DirCache::default();
    let mut moves = PendingMoves::new();
    loop {
        let events = match inotify.read_events() {
            Ok(events) => events,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("view: reading host changes failed ({e}); caching 100 ms from now on");
                watch.degraded.store(true, Ordering::Relaxed);
                let mut out = Vec::new();
                everything(&mut lock(), &mut out);
                let _ = send(notifier, out);
                return;
            }
        };
        let events: Vec<Event> = events
            .into_iter()
            .map(|ev| Event {
                wd: ev.wd.as_raw(),
                mask: ev.mask,
                cookie: ev.cookie,
                name: ev.name,
            })
            .collect();
        let seen = lstat_names(&dirs, root, lock(), &events);
        let look = |_: &InodeTable, dir: u64, name: &OsStr| {
            seen.get(&(dir, name.to_os_string())).copied().flatten()
        };
        let mut out = Vec::new();
        // The table is never held while sending: an invalidation waits for the kernel's
        // locks, and a request holding those may be waiting for this table.
        let mut table = lock();
        for event in events {
            for _ in 0..CREATE_WAITS {
                if !awaits_own_create(&table, &event) {
                    break;
                }
                drop(table);
                std::thread::sleep(CREATE_WAIT);
                table = lock();
            }
            invalidations(&mut table, &mut moves, &event, &look, &mut out);
            if event
                .mask
                .intersects(AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_Q_OVERFLOW)
            {
                dirs.clear();
            }
        }
        if table.own_creates.any_made() && queued_bytes(inotify) == Some(0) {
            // Every event queued so far was read: no finished create's is still to come.
            table.own_creates.settle();
        }
        drop(table);
        if send(notifier, out).is_err() {
            return;
        }
        // Lets the events of a busy burst gather (a build, an extraction: several per file
        // the view itself makes) so they are read in one wake-up instead of one each; an
        // event after a quiet spell is still read at once.
        std::thread::sleep(GATHER);
    }
}

/// Pause after each batch of events (see `run`): far below what a host change may take to
/// show (1 s), and below the few milliseconds reads wait for a rename to be followed.
const GATHER: std::time::Duration = std::time::Duration::from_millis(3);

/// How long the watch waits for a create of the view to be registered (its event comes as
/// soon as the host syscall made the file): at most `CREATE_WAITS` pauses of `CREATE_WAIT`,
/// after which the event is invalidated as a host change.
const CREATE_WAITS: u32 = 40;
const CREATE_WAIT: std::time::Duration = std::time::Duration::from_micros(50);

/// Whether `event` is the `IN_CREATE` of a create the view is still registering.
fn awaits_own_create(table: &InodeTable, event: &Event) -> bool {
    let (Some(name), Some(dir)) = (&event.name, table.watched_dir(event.wd)) else {
        return false;
    };
    event.mask.contains(AddWatchFlags::IN_CREATE) && table.own_creates.pending(dir, name)
}

/// The `lstat` of every name `events` report, by (directory node, name), taken after the
/// events were read (all the comparisons in [`invalidations`] need: the name as it is now)
/// and without the table's lock, which the requests wait for.
#[allow(clippy::type_complexity)]
fn lstat_names(
    dirs: &DirCache,
    root: &HostRoot,
    table: MutexGuard<'_, InodeTable>,
    events: &[Event],
) -> HashMap<(u64, OsString), Option<FileStat>> {
    let wanted: Vec<(u64, OsString, Option<NodeInfo>)> = events
        .iter()
        .filter_map(|e| {
            let dir = table.watched_dir(e.wd)?;
            let name = e.name.as_ref()?;
            if !compared(&table, e.mask, dir, name) {
                return None;
            }
            let info = (!dirs.holds(dir)).then(|| table.info(dir)).flatten();
            Some((dir, name.clone(), info))
        })
        .collect();
    drop(table);
    let mut seen = HashMap::new();
    for (dir, name, info) in wanted {
        if let std::collections::hash_map::Entry::Vacant(slot) = seen.entry((dir, name)) {
            let st = dirs.lstat(root, dir, info.as_ref(), &slot.key().1);
            slot.insert(st);
        }
    }
    seen
}

/// Whether [`invalidations`] may compare `name` in `dir` with the host for an event
/// `mask`: a create the kernel may know, the second half of a rename, a change of a node
/// whose last own reply it could equal.
fn compared(table: &InodeTable, mask: AddWatchFlags, dir: u64, name: &OsStr) -> bool {
    let child = table.at_place(dir, name);
    if mask.contains(AddWatchFlags::IN_CREATE) {
        return child.is_some() || table.own_creates.announced(dir, name);
    }
    if mask.contains(AddWatchFlags::IN_MOVED_TO) {
        return true;
    }
    let Some(replied) = child.and_then(|c| table.replied(c)) else {
        return false;
    };
    if mask.intersects(AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE) {
        replied.size == 0
    } else {
        mask.contains(AddWatchFlags::IN_ATTRIB)
    }
}

/// `O_PATH` descriptors of the watched directories whose names the watch looked at, by
/// directory node: the directory object itself, wherever the host moves it, as the
/// kernel's entries in it are. Bounded; emptied when a watch goes away.
#[derive(Default)]
struct DirCache(std::cell::RefCell<HashMap<u64, std::os::fd::OwnedFd>>);

/// Directories kept open by [`DirCache`] (the descriptors come from the server's reserve).
const MAX_CACHED_DIRS: usize = 128;

impl DirCache {
    /// Whether directory node `dir` is open here.
    fn holds(&self, dir: u64) -> bool {
        self.0.borrow().contains_key(&dir)
    }

    /// `lstat` of `name` in directory node `dir`, opened from `info` (its place and
    /// identity in the table) unless it is open here already.
    fn lstat(
        &self,
        root: &HostRoot,
        dir: u64,
        info: Option<&NodeInfo>,
        name: &OsStr,
    ) -> Option<FileStat> {
        let mut dirs = self.0.borrow_mut();
        if !dirs.contains_key(&dir) {
            let info = info?;
            let fd = root.dir(&info.rel).ok()?;
            if host_id(&fstat(&fd).ok()?) != info.host {
                return None;
            }
            if dirs.len() >= MAX_CACHED_DIRS {
                dirs.clear();
            }
            dirs.insert(dir, fd);
        }
        stat_at(dirs.get(&dir)?, name).ok()
    }

    fn clear(&self) {
        self.0.borrow_mut().clear();
    }
}

/// Bytes of events waiting in the queue (`FIONREAD`).
fn queued_bytes(inotify: &Inotify) -> Option<libc::c_int> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer, which lives for the call.
    let rc = unsafe { libc::ioctl(inotify.as_fd().as_raw_fd(), libc::FIONREAD, &mut n) };
    (rc == 0).then_some(n)
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
    use std::path::PathBuf;

    fn event(wd: i32, mask: AddWatchFlags, name: &str) -> Event {
        Event {
            wd,
            mask,
            cookie: 0,
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

    /// A host `lstat` result: a regular file of identity (1, `ino`) and `size` bytes.
    fn file_stat(ino: u64, size: i64) -> FileStat {
        let mut st = nix::sys::stat::stat("/proc/self/exe").expect("stat");
        st.st_dev = 1;
        st.st_ino = ino;
        st.st_size = size;
        st.st_mode = libc::S_IFREG | 0o644;
        st
    }

    /// Runs `events` against `t` with the host showing `host` for every name.
    fn run_events(t: &mut InodeTable, host: Option<FileStat>, events: &[Event]) -> Vec<Inval> {
        let look = move |_: &InodeTable, _: u64, _: &OsStr| host;
        let (mut moves, mut out) = (PendingMoves::new(), Vec::new());
        for e in events {
            invalidations(t, &mut moves, e, &look, &mut out);
        }
        out
    }

    #[test]
    fn a_host_create_drops_the_name_and_the_listing() {
        let (mut t, d, _) = table();
        let out = run_events(&mut t, None, &[event(2, AddWatchFlags::IN_CREATE, "new")]);
        assert_eq!(out, vec![Inval::Entry(d, "new".into()), Inval::Inode(d, 0)]);
    }

    #[test]
    fn a_name_the_kernel_keeps_as_absent_is_dropped_by_any_host_create() {
        let (mut t, d, _) = table();
        assert!(t.negatives.remember(d, OsStr::new("new")));
        let out = run_events(&mut t, None, &[event(2, AddWatchFlags::IN_CREATE, "new")]);
        assert_eq!(out, vec![Inval::Entry(d, "new".into()), Inval::Inode(d, 0)]);
        assert!(
            !t.negatives.forget(d, OsStr::new("new")),
            "no longer recorded"
        );
        // The object the table still places there, linked back by the host after a delete
        // the kernel's lookup saw: the entry is dropped too, not only the listing.
        let st = file_stat(7, 0);
        let n = t.looked_up(d, OsStr::new("n"), (1, 7));
        t.set_replied(n, attr::from_stat(n, &st));
        assert!(t.negatives.remember(d, OsStr::new("n")));
        let out = run_events(&mut t, Some(st), &[event(2, AddWatchFlags::IN_CREATE, "n")]);
        assert_eq!(out, vec![Inval::Entry(d, "n".into()), Inval::Inode(d, 0)]);
        // A lookup or a move that names something there ends the record.
        assert!(t.negatives.remember(d, OsStr::new("m")));
        t.looked_up(d, OsStr::new("m"), (1, 8));
        assert!(!t.negatives.forget(d, OsStr::new("m")));
        assert!(t.negatives.remember(d, OsStr::new("k")));
        t.moved((1, 8), d, OsStr::new("k"));
        assert!(!t.negatives.forget(d, OsStr::new("k")));
    }

    #[test]
    fn a_host_write_drops_the_known_file_pages_and_attributes() {
        let (mut t, _, f) = table();
        let out = run_events(&mut t, None, &[event(2, AddWatchFlags::IN_MODIFY, "f")]);
        assert_eq!(out, vec![Inval::Inode(f, 0)]);
        let out = run_events(&mut t, None, &[event(2, AddWatchFlags::IN_ATTRIB, "f")]);
        assert_eq!(out, vec![Inval::Inode(f, -1)]);
        let out = run_events(&mut t, None, &[event(2, AddWatchFlags::IN_MODIFY, "other")]);
        assert!(out.is_empty(), "nothing cached for unknown names: {out:?}");
    }

    #[test]
    fn the_views_own_create_and_setattrs_invalidate_nothing_the_kernel_holds() {
        let (mut t, d, _) = table();
        let st = file_stat(7, 0);
        assert!(t.own_creates.expect(d, OsStr::new("n")));
        t.own_creates.made(d, OsStr::new("n"), (1, 7));
        let n = t.looked_up(d, OsStr::new("n"), (1, 7));
        t.set_replied(n, attr::from_stat(n, &st));
        let own = [
            event(2, AddWatchFlags::IN_CREATE, "n"),
            event(2, AddWatchFlags::IN_CLOSE_WRITE, "n"),
            event(2, AddWatchFlags::IN_ATTRIB, "n"),
        ];
        assert_eq!(run_events(&mut t, Some(st), &own), vec![]);
    }

    #[test]
    fn anything_but_exactly_what_the_kernel_holds_is_invalidated() {
        let (mut t, d, _) = table();
        let st = file_stat(7, 0);
        let n = t.looked_up(d, OsStr::new("n"), (1, 7));
        t.set_replied(n, attr::from_stat(n, &st));
        // The same object, not created by the view (a link back): the entry is right, the
        // listing is not.
        let create = [event(2, AddWatchFlags::IN_CREATE, "n")];
        assert_eq!(
            run_events(&mut t, Some(st), &create),
            vec![Inval::Inode(d, 0)]
        );
        // Another object under the name, announced create or not.
        t.own_creates.expect(d, OsStr::new("n"));
        t.own_creates.made(d, OsStr::new("n"), (1, 7));
        let other = run_events(&mut t, Some(file_stat(8, 0)), &create);
        assert!(other.contains(&Inval::Entry(d, "n".into())), "{other:?}");
        assert!(other.contains(&Inval::Inode(n, -1)), "{other:?}");
        // Attributes the kernel was not given, and pages of a file with content.
        let mut changed = st;
        changed.st_mtime_nsec += 1;
        let attrib = [event(2, AddWatchFlags::IN_ATTRIB, "n")];
        assert_eq!(
            run_events(&mut t, Some(changed), &attrib),
            vec![Inval::Inode(n, -1)]
        );
        let written = file_stat(7, 5);
        t.set_replied(n, attr::from_stat(n, &written));
        let modify = [event(2, AddWatchFlags::IN_MODIFY, "n")];
        assert_eq!(
            run_events(&mut t, Some(written), &modify),
            vec![Inval::Inode(n, 0)]
        );
    }

    #[test]
    fn a_file_renamed_on_the_host_takes_its_new_place_and_a_directory_does_not() {
        let (mut t, d, f) = table();
        let rename = |cookie, from: &str, to: &str, dir: bool| {
            let mask = if dir {
                AddWatchFlags::IN_ISDIR
            } else {
                AddWatchFlags::empty()
            };
            [
                Event {
                    cookie,
                    ..event(2, AddWatchFlags::IN_MOVED_FROM | mask, from)
                },
                Event {
                    cookie,
                    ..event(2, AddWatchFlags::IN_MOVED_TO | mask, to)
                },
            ]
        };
        let out = run_events(&mut t, Some(file_stat(3, 1)), &rename(5, "f", "f.1", false));
        assert!(out.contains(&Inval::Entry(d, "f".into())), "{out:?}");
        assert!(out.contains(&Inval::Entry(d, "f.1".into())), "{out:?}");
        assert_eq!(t.info(f).map(|i| i.rel), Some(PathBuf::from("d/f.1")));
        // The name holds another object by the time the watch looks: not followed.
        run_events(
            &mut t,
            Some(file_stat(9, 1)),
            &rename(6, "f.1", "f.2", false),
        );
        assert_eq!(t.info(f).map(|i| i.rel), Some(PathBuf::from("d/f.1")));
        let sub = t.looked_up(d, OsStr::new("sub"), (1, 4));
        let mut dir_st = file_stat(4, 0);
        dir_st.st_mode = libc::S_IFDIR | 0o755;
        run_events(&mut t, Some(dir_st), &rename(7, "sub", "sub2", true));
        assert_eq!(t.info(sub).map(|i| i.rel), Some(PathBuf::from("d/sub")));
    }

    #[test]
    fn only_names_a_comparison_can_use_are_looked_at_on_the_host() {
        let (mut t, d, f) = table();
        let (create, modify, attrib) = (
            AddWatchFlags::IN_CREATE,
            AddWatchFlags::IN_MODIFY,
            AddWatchFlags::IN_ATTRIB,
        );
        assert!(
            !compared(&t, create, d, OsStr::new("new")),
            "unknown, not ours"
        );
        t.own_creates.expect(d, OsStr::new("new"));
        assert!(compared(&t, create, d, OsStr::new("new")));
        assert!(compared(&t, AddWatchFlags::IN_MOVED_TO, d, OsStr::new("x")));
        assert!(!compared(&t, attrib, d, OsStr::new("f")), "no own reply");
        t.set_replied(f, attr::from_stat(f, &file_stat(3, 0)));
        assert!(compared(&t, attrib, d, OsStr::new("f")));
        assert!(compared(&t, modify, d, OsStr::new("f")), "empty");
        t.set_replied(f, attr::from_stat(f, &file_stat(3, 4)));
        assert!(
            !compared(&t, modify, d, OsStr::new("f")),
            "pages are always dropped"
        );
    }

    #[test]
    fn a_directory_moved_on_the_host_drops_everything_below_it() {
        let (mut t, d, f) = table();
        let mask = AddWatchFlags::IN_MOVED_FROM | AddWatchFlags::IN_ISDIR;
        let out = run_events(&mut t, None, &[event(1, mask, "d")]);
        assert!(out.contains(&Inval::Entry(ROOT, "d".into())));
        assert!(out.contains(&Inval::Entry(d, "f".into())));
        assert!(out.contains(&Inval::Inode(f, -1)));
    }

    #[test]
    fn overflow_drops_every_entry_and_a_removed_watch_is_forgotten() {
        let (mut t, d, f) = table();
        t.own_creates.expect(d, OsStr::new("n"));
        t.own_creates.made(d, OsStr::new("n"), (1, 7));
        assert!(t.negatives.remember(d, OsStr::new(".gitignore")));
        let overflow = Event {
            wd: -1,
            mask: AddWatchFlags::IN_Q_OVERFLOW,
            cookie: 0,
            name: None,
        };
        let out = run_events(&mut t, None, &[overflow]);
        assert!(out.contains(&Inval::Entry(ROOT, "d".into())));
        assert!(out.contains(&Inval::Entry(d, "f".into())));
        assert!(out.contains(&Inval::Inode(f, 0)));
        assert!(
            out.contains(&Inval::Entry(d, ".gitignore".into())),
            "negative entries too: {out:?}"
        );
        assert!(!t.negatives.forget(d, OsStr::new(".gitignore")), "taken");
        assert_eq!(
            t.own_creates.take(d, OsStr::new("n")),
            None,
            "marks dropped"
        );
        let ignored = Event {
            wd: 2,
            mask: AddWatchFlags::IN_IGNORED,
            cookie: 0,
            name: None,
        };
        run_events(&mut t, None, &[ignored]);
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
