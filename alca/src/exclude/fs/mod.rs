//! The FUSE filtered view: a passthrough of the source directory in which excluded paths do
//! not exist. Every operation recomputes the node's current path and checks it against the
//! patterns, so a matching file created on the host after mount is never visible. Absent
//! names are kept by the kernel as negative entries only where the directory is watched
//! (`negatives.rs`): a host create of the name drops the entry as it happens.
//!
//! Caching: where the node's parent directory is watched for host changes (`watch.rs`), the
//! kernel keeps entries and attributes for [`CACHED_TTL`], file pages across opens and
//! directory listings, and every host change invalidates what it touched within
//! milliseconds; elsewhere (watch limit reached, non-local source, files with several hard
//! links) entries and attributes last [`SHORT_TTL`], so host changes still show well within
//! a second.
//!
//! Where the kernel supports it, files are opened without open requests (no `open`, `flush`
//! or `release` round trip, pages kept across opens): each regular file the kernel knows
//! holds its host object open (`node_files.rs`), and reads and writes go to that object, so
//! a descriptor in the container keeps working after a host unlink, atomic replace or
//! rename inside the view, as on a bind mount. New opens still go through a lookup of the
//! current name, which the watch (or the short timeouts) keeps current, so a file the host
//! moves to an excluded name or out of the view cannot be opened or read again. Directories
//! are likewise listed without opendir requests, the kernel keeping every listing until the
//! watch invalidates it or, where the directory is not watched, until it sees the directory's
//! mtime change (`ops_io.rs`).
//!
//! Operations run as the server's user (the user who ran `alca up`): files the container
//! creates through the view are owned by that user on the host; `default_permissions` makes
//! the kernel check the reported host modes and owners, as a plain bind mount would.

mod attr;
mod dir_snapshots;
mod fuse_impl;
mod handles;
mod host;
mod inodes;
mod listing;
mod negatives;
mod node_files;
mod ops_io;
mod ops_tree;
mod own_creates;
mod watch;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fuser::Errno;
use nix::sys::stat::{fstat, FileStat};

use self::dir_snapshots::DirSnapshots;
use self::handles::Handles;
use self::host::{errno, host_id, split, stat_at, HostRoot};
use self::inodes::{HostId, InodeTable, Watch};
use self::node_files::NodeFiles;
use self::watch::HostWatch;
use crate::exclude::ExcludeMatcher;

/// Entry and attribute validity in the kernel where host changes are not watched: short, so
/// host changes show within 0.1 s, while a build that stats a file repeatedly does not pay a
/// round trip every time.
const SHORT_TTL: Duration = Duration::from_millis(100);
/// Entry and attribute validity where host changes are watched and invalidate the kernel's
/// caches as they happen. Finite, so a change the watch could not see (a write through a
/// shared mapping that is never closed) still shows after a while.
const CACHED_TTL: Duration = Duration::from_secs(600);

/// The filesystem served at the view's mountpoint.
#[derive(Debug)]
pub struct FilterFs {
    host: Arc<HostRoot>,
    matcher: ExcludeMatcher,
    table: Arc<Mutex<InodeTable>>,
    watch: Arc<HostWatch>,
    files: Handles<File>,
    /// Listings being served to the kernel chunk by chunk.
    listings: DirSnapshots,
    /// The kernel opens files without asking (it said at init that it can): regular files
    /// then hold their host object (see `node_files.rs`).
    no_open: AtomicBool,
    /// The kernel lists directories without asking and revalidates its cached listings
    /// (see `ops_io.rs`, `open_dir`).
    no_opendir: AtomicBool,
}

/// Attributes of a node and how long the kernel may keep them (and its entry).
pub type Cached = (fuser::FileAttr, Duration);

/// The part of a view that follows host changes once it is mounted (see `watch.rs`).
pub struct HostChanges {
    watch: Arc<HostWatch>,
    table: Arc<Mutex<InodeTable>>,
    host: Arc<HostRoot>,
}

impl HostChanges {
    /// Starts turning host changes into kernel invalidations through `notifier`.
    pub fn spawn(self, notifier: fuser::Notifier) -> std::io::Result<()> {
        watch::spawn(self.watch, self.table, self.host, notifier)
    }
}

/// A node resolved to its current place on the host.
struct Located {
    /// `O_PATH` descriptor of the node's parent directory (the root itself for the root).
    dir: OwnedFd,
    /// Name inside `dir` (`.` for the root).
    name: OsString,
    host: HostId,
}

impl FilterFs {
    /// Serves `source` (an existing directory) without what `matcher` excludes.
    pub fn new(source: &Path, matcher: ExcludeMatcher) -> std::io::Result<Self> {
        let host = HostRoot::new(source)?;
        let watch = HostWatch::new(host.fd());
        let mut table = InodeTable::new(host.host());
        table.set_watch(inodes::ROOT, watch.add(host.fd()));
        Ok(FilterFs {
            host: Arc::new(host),
            matcher,
            table: Arc::new(Mutex::new(table)),
            watch: Arc::new(watch),
            files: Handles::default(),
            listings: DirSnapshots::default(),
            no_open: AtomicBool::new(false),
            no_opendir: AtomicBool::new(false),
        })
    }

    /// What follows host changes; spawn it once the view is mounted.
    pub fn host_changes(&self) -> HostChanges {
        HostChanges {
            watch: Arc::clone(&self.watch),
            table: Arc::clone(&self.table),
            host: Arc::clone(&self.host),
        }
    }

    fn table(&self) -> MutexGuard<'_, InodeTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the table, then removes the watches of directories it dropped (under the
    /// same lock, so a watch added meanwhile for the same directory is never removed).
    fn with_table<R>(&self, f: impl FnOnce(&mut InodeTable) -> R) -> R {
        let mut table = self.table();
        let res = f(&mut table);
        for wd in table.take_released_watches() {
            self.watch.remove(wd);
        }
        res
    }

    /// Whether the kernel may cache `ino` (whose host `lstat` is `st`) for long: host changes
    /// to it are watched, and it has no other name whose changes might not be. A directory
    /// must be watched itself too: the kernel checks its cached listing against the
    /// directory's mtime, which changes inside an unwatched directory would leave stale.
    fn cacheable(&self, ino: u64, st: &FileStat) -> bool {
        if !self.watch.active() {
            return false;
        }
        let table = self.table();
        if attr::is_dir(st) {
            matches!(table.watch(ino), Watch::Active(_)) && table.parent_watched(ino)
        } else {
            st.st_nlink <= 1 && table.parent_watched(ino)
        }
    }

    fn cached(&self, ino: u64, st: &FileStat) -> Cached {
        let ttl = if self.cacheable(ino, st) {
            CACHED_TTL
        } else {
            SHORT_TTL
        };
        (attr::from_stat(ino, st), ttl)
    }

    /// The node `ino` at its current host place, with its `lstat`. Fails with `ENOENT` when
    /// the node vanished, was replaced by another object, or is now excluded. A file whose
    /// place was unlinked is found under another name it was known by (a hard link), which
    /// becomes its place.
    fn locate(&self, ino: u64) -> Result<(Located, FileStat), Errno> {
        let info = self.table().info(ino).ok_or(Errno::ENOENT)?;
        let (parent, name) = split(&info.rel);
        match self.located_at(&parent, name, &info.rel, info.host) {
            Err(Errno::ENOENT) => self.locate_by_alias(ino, info.host).ok_or(Errno::ENOENT),
            res => res,
        }
    }

    /// The object `host` as `name` in the directory `dir_rel` (whose path joined with the
    /// name is `rel`), if it is there and not excluded.
    fn located_at(
        &self,
        dir_rel: &Path,
        name: OsString,
        rel: &Path,
        host: HostId,
    ) -> Result<(Located, FileStat), Errno> {
        let dir = self.host.dir(dir_rel).map_err(errno)?;
        let st = stat_at(&dir, &name).map_err(errno)?;
        if host_id(&st) != host || self.matcher.is_excluded(rel, attr::is_dir(&st)) {
            return Err(Errno::ENOENT);
        }
        Ok((Located { dir, name, host }, st))
    }

    /// `ino` (a file, object `host`) under one of its earlier places that still names it.
    fn locate_by_alias(&self, ino: u64, host: HostId) -> Option<(Located, FileStat)> {
        let aliases = self.table().aliases(ino);
        for (parent, name, dir_rel) in aliases {
            let rel = dir_rel.join(&name);
            let Ok((located, st)) = self.located_at(&dir_rel, name.clone(), &rel, host) else {
                continue;
            };
            if attr::is_dir(&st) {
                return None;
            }
            self.with_table(|table| table.moved(host, parent, &name));
            return Some((located, st));
        }
        None
    }

    /// `O_PATH` descriptor and path of directory `ino`, checked to still be that directory.
    fn parent_dir(&self, ino: u64) -> Result<(OwnedFd, PathBuf), Errno> {
        let info = self.table().info(ino).ok_or(Errno::ENOENT)?;
        let dir = self.host.dir(&info.rel).map_err(errno)?;
        let st = fstat(&dir).map_err(errno)?;
        if host_id(&st) != info.host || self.matcher.is_excluded(&info.rel, true) {
            return Err(Errno::ENOENT);
        }
        Ok((dir, info.rel))
    }

    /// Parent directory for creating `name` there; `EACCES` when the new path is excluded.
    fn creatable(&self, parent: u64, name: &OsStr, is_dir: bool) -> Result<OwnedFd, Errno> {
        let (dir, rel) = self.parent_dir(parent)?;
        if self.matcher.is_excluded(&rel.join(name), is_dir) {
            return Err(Errno::EACCES);
        }
        Ok(dir)
    }

    /// Runs `make`, the view's own host create of `name` in `parent` (whose host directory
    /// is `dir`), which gives the new object's `lstat`, and registers the entry it made.
    /// Announced to the watch where `parent` is watched, so the create's `IN_CREATE` does
    /// not invalidate what the reply gives the kernel (`own_creates.rs`): the mark is set
    /// before the syscall and filled once the node is in the table, which the watch waits
    /// for.
    fn own_create<T>(
        &self,
        parent: u64,
        dir: &impl AsFd,
        name: &OsStr,
        make: impl FnOnce() -> Result<(T, FileStat), Errno>,
    ) -> Result<(T, FileStat, Cached), Errno> {
        let announced = self.watch.active()
            && self.with_table(|table| {
                matches!(table.watch(parent), Watch::Active(_))
                    && table.own_creates.expect(parent, name)
            });
        let (made, st) = match make() {
            Ok(made) => made,
            Err(e) => {
                if announced {
                    self.table().own_creates.failed(parent, name);
                }
                return Err(e);
            }
        };
        let cached = self.own_reply(self.entry(parent, dir, name, &st));
        if announced {
            self.table().own_creates.made(parent, name, host_id(&st));
        }
        Ok((made, st, cached))
    }

    /// `cached`, the reply to one of the view's own changes of its node, recorded so the
    /// watch can tell what the kernel holds (`watch.rs`).
    fn own_reply(&self, cached: Cached) -> Cached {
        self.with_table(|table| table.set_replied(cached.0.ino.0, cached.0));
        cached
    }

    /// Looks `name` up in `parent`: excluded names are absent, as absent ones are.
    fn lookup_entry(&self, parent: u64, name: &OsStr) -> Result<Cached, Errno> {
        let (dir, rel) = self.parent_dir(parent)?;
        let st = match stat_at(&dir, name) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) => return self.absent(parent, name),
            Err(e) => return Err(errno(e)),
        };
        if self.matcher.is_excluded(&rel.join(name), attr::is_dir(&st)) {
            return self.absent(parent, name);
        }
        Ok(self.entry(parent, &dir, name, &st))
    }

    /// The answer for `name` absent from `parent`: a negative entry the kernel keeps where
    /// `parent` is watched (recorded, so the watch can drop it when it cannot follow any
    /// more), else `ENOENT`, which the kernel does not keep. Decided under the table's lock,
    /// which the watch holds while it gives up, so no entry is kept once it has.
    fn absent(&self, parent: u64, name: &OsStr) -> Result<Cached, Errno> {
        let kept = self.with_table(|table| {
            self.watch.active()
                && matches!(table.watch(parent), Watch::Active(_))
                && table.negatives.remember(parent, name)
        });
        if kept {
            Ok((attr::absent(), CACHED_TTL))
        } else {
            Err(Errno::ENOENT)
        }
    }

    fn no_open(&self) -> bool {
        self.no_open.load(Ordering::Relaxed)
    }

    fn no_opendir(&self) -> bool {
        self.no_opendir.load(Ordering::Relaxed)
    }

    /// Registers a kernel reference to the object `st` at `name` in `parent` (whose host
    /// directory is `dir`). A directory seen for the first time gets its watch, and its
    /// attributes are read again after that, so no host change between the two is missed.
    /// A regular file seen for the first time holds its host object when files are opened
    /// without open requests.
    fn entry(&self, parent: u64, dir: &impl AsFd, name: &OsStr, st: &FileStat) -> Cached {
        let (ino, st) = self.with_table(|table| {
            let ino = table.looked_up(parent, name, host_id(st));
            if !attr::is_dir(st) || table.watch(ino) != Watch::None {
                return (ino, *st);
            }
            if !self.watch.active() {
                table.set_watch(ino, Watch::Failed);
                return (ino, *st);
            }
            match self.watch_dir(dir, name, st) {
                Some((watch, now)) => {
                    table.set_watch(ino, watch);
                    (ino, now)
                }
                None => {
                    table.set_watch(ino, Watch::Failed);
                    (ino, *st)
                }
            }
        });
        if self.no_open() && attr::is_file(&st) && self.table().lacks_files(ino) {
            // Opened outside the table's lock; a node forgotten meanwhile just drops it.
            if let Some(files) = NodeFiles::hold(dir, name, host_id(&st)) {
                self.with_table(|table| table.hold_files(ino, files));
            }
        }
        self.cached(ino, &st)
    }

    /// Watches directory `name` in `dir` if it is still the object `st`; its new `lstat`.
    fn watch_dir(&self, dir: &impl AsFd, name: &OsStr, st: &FileStat) -> Option<(Watch, FileStat)> {
        use nix::fcntl::{openat, OFlag};
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(dir, name, flags, nix::sys::stat::Mode::empty()).ok()?;
        if host_id(&fstat(&fd).ok()?) != host_id(st) {
            return None;
        }
        let watch = self.watch.add(&fd);
        Some((watch, fstat(&fd).ok().unwrap_or(*st)))
    }

    /// Attributes of `ino`: through the open file when the request comes from one opened by
    /// an open or create request (`fh`), else at its current host place, else (a file the
    /// host unlinked while the container holds it) from its held object.
    fn getattr_of(&self, ino: u64, fh: Option<u64>) -> Result<Cached, Errno> {
        if let Some(file) = fh.and_then(|fh| self.files.get(fh)) {
            let st = fstat(&*file).map_err(errno)?;
            return Ok(self.cached(ino, &st));
        }
        match self.held_usable(ino)? {
            Some((_, st, true)) => Ok(self.cached(ino, &st)),
            Some((_, st, false)) => Ok((attr::from_stat(ino, &st), SHORT_TTL)),
            None => {
                let (_, st) = self.locate(ino)?;
                Ok(self.cached(ino, &st))
            }
        }
    }

    /// The host object `ino` holds (files opened without open requests), if it still holds
    /// a descriptor of it.
    fn held(&self, ino: u64) -> Option<Arc<NodeFiles>> {
        self.table().files(ino).filter(|files| files.holds_any())
    }

    /// The held object of `ino`, its `lstat`, and whether it is still at the node's place,
    /// when the container may still use it: its place still names it (and is not
    /// excluded), or the host unlinked it (an atomic replace, a delete: no name can reveal
    /// it any more, and a descriptor keeps it, as on a bind mount). A file the host moved
    /// inside the view takes its new place from the watch's rename events (`watch.rs`),
    /// which this waits a few milliseconds for, and is usable there unless that place is
    /// excluded, as on a bind mount (`tail -f` across a log rotation); moved to an excluded
    /// name, out of the view or where the watch cannot follow, it fails closed with `ENOENT`.
    /// `None`: no held object.
    #[allow(clippy::type_complexity)]
    fn held_usable(&self, ino: u64) -> Result<Option<(Arc<NodeFiles>, FileStat, bool)>, Errno> {
        let Some(files) = self.held(ino) else {
            return Ok(None);
        };
        match self.locate(ino) {
            Ok((_, st)) => Ok(Some((files, st, true))),
            Err(e) => {
                let st = files.stat().map_err(errno)?;
                if st.st_nlink == 0 {
                    return Ok(Some((files, st, false)));
                }
                match self.moved_on_host(ino) {
                    Some(st) => Ok(Some((files, st, true))),
                    None => Err(e),
                }
            }
        }
    }

    /// The `lstat` of `ino` at the place the watch gives it after a host rename, waiting
    /// for the watch to read the rename (bounded); `None` where no watch follows `ino`'s
    /// directory or the new place is gone or excluded.
    fn moved_on_host(&self, ino: u64) -> Option<FileStat> {
        const TRIES: u32 = 10;
        const PAUSE: Duration = Duration::from_millis(2);
        for _ in 0..TRIES {
            if !self.watch.active() || !self.table().parent_watched(ino) {
                return None;
            }
            std::thread::sleep(PAUSE);
            if let Ok((_, st)) = self.locate(ino) {
                return Some(st);
            }
        }
        None
    }

    fn readlink_of(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let (loc, _) = self.locate(ino)?;
        let target = nix::fcntl::readlinkat(&loc.dir, loc.name.as_os_str()).map_err(errno)?;
        Ok(std::os::unix::ffi::OsStringExt::into_vec(target))
    }

    fn forget(&self, ino: u64, n: u64) {
        self.with_table(|table| table.forget(ino, n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_unlinked_under_the_name_it_was_last_looked_up_by_is_found_under_its_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let matcher = ExcludeMatcher::compile(&[]).expect("matcher");
        let fs = FilterFs::new(dir.path(), matcher).expect("view");
        let flags = libc::O_RDWR | libc::O_EXCL;
        let ((attr, _), _, _) = fs
            .create_file(inodes::ROOT, OsStr::new("tmp"), 0o444, flags)
            .expect("create");
        let ino = attr.ino.0;
        // git's loose objects: written as tmp_obj_*, linked to their name, then unlinked;
        // here the old name is looked up again in between (a watch invalidation raced it).
        fs.link_to(ino, inodes::ROOT, OsStr::new("final"))
            .expect("link");
        fs.lookup_entry(inodes::ROOT, OsStr::new("tmp"))
            .expect("lookup");
        fs.remove(inodes::ROOT, OsStr::new("tmp"), false)
            .expect("unlink");
        let (attr, _) = fs.getattr_of(ino, None).expect("found under its link");
        assert_eq!(attr.nlink, 1);
        let info = fs.table().info(ino).expect("known");
        assert_eq!(
            info.rel,
            PathBuf::from("final"),
            "the link is its place now"
        );
        // Gone under every name: not found.
        std::fs::remove_file(dir.path().join("final")).expect("host unlink");
        assert_eq!(fs.getattr_of(ino, None).unwrap_err(), Errno::ENOENT);
    }
}
