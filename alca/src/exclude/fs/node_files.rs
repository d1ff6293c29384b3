//! Host descriptors kept per inode while the kernel knows it, so files can be opened without
//! open requests (`FUSE_NO_OPEN_SUPPORT`) and still behave like a bind mount: a file the
//! container holds open keeps being read and written even after the host unlinked it or
//! replaced it by an atomic save (the design of libfuse's `passthrough_hp`).
//!
//! Each regular file the kernel looks up gets an `O_PATH` descriptor of the host object
//! (checked to be the object the lookup saw), taken before the lookup is answered and closed
//! when the kernel forgets the inode. Each read or write request reopens that object through
//! `/proc/self/fd/N` (never through a path) and closes it when done (a few microseconds,
//! against tens for the request itself):
//! * no writer stays open on the host, which would make the host refuse to run a program
//!   the container just built (`ETXTBSY`), as a bind mount never does;
//! * one descriptor per inode, not two, against `RLIMIT_NOFILE`.
//!
//! The one writer kept is the descriptor a create opened when the new file's mode does not
//! let its owner write (git's objects are created `0444`): no later reopen could write it.
//! The kernel sends no release when it opens files itself, and it forgets an inode only
//! under memory pressure, so these writers are not kept until then (a long `git add` would
//! run the server out of descriptors): at most [`MAX_CREATORS`] are kept, and the oldest
//! goes when a newer one comes. A file created read-only is written right after its create
//! and closed (git, `umask 0222` shells, key files); one still being written after that many
//! newer read-only creates gets `EACCES`, as the file's mode says.
//!
//! That limit is raised to the hard one at start; once the descriptors held here reach
//! [`limit`], new inodes get no handle and are read and written by path instead (located
//! and checked at each request), which the server logs once.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::{fstat, Mode};

use super::host::{host_id, proc_path};
use super::inodes::HostId;

/// Descriptors a view server keeps free for everything but inode handles: the FUSE device
/// clones, inotify, directory handles, files opened by create, reopens in flight.
const RESERVED_FDS: u64 = 1024;

/// Writers of creates kept at once (see the module's notes), from the reserve.
const MAX_CREATORS: usize = 512;

/// Descriptors held by every [`NodeFiles`] of this process (the limit is per process).
static HELD: AtomicUsize = AtomicUsize::new(0);
/// The kept writers of this process, oldest first.
static CREATORS: CreatorPool = CreatorPool::new(MAX_CREATORS);
static LIMIT_REPORTED: AtomicBool = AtomicBool::new(false);

/// How many descriptors inode handles may hold: the soft `RLIMIT_NOFILE` minus a reserve,
/// read once (the server raises the limit before it serves).
pub fn limit() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
        usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX)
    })
}

/// Takes `n` descriptors from the budget of `limit`; `false` (and nothing taken) when full.
fn take(n: usize, limit: usize) -> bool {
    take_from(&HELD, n, limit)
}

fn take_from(held: &AtomicUsize, n: usize, limit: usize) -> bool {
    held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
        (held + n <= limit).then_some(held + n)
    })
    .is_ok()
}

fn give_back(n: usize) {
    HELD.fetch_sub(n, Ordering::AcqRel);
}

/// The host object behind one inode, held while the kernel knows the inode.
#[derive(Debug)]
pub struct NodeFiles {
    /// `O_PATH` descriptor of the object; `None` when only a creator could be kept (the
    /// budget was spent, see [`NodeFiles::creator_only`]).
    object: Option<OwnedFd>,
    /// The writable descriptor of the create that made a file its owner cannot write,
    /// until [`CREATORS`] lets it go.
    creator: Mutex<Option<Arc<File>>>,
}

impl NodeFiles {
    /// Holds the regular file `name` in `dir` if it is still the object `host`. `None` when
    /// it is not (a host change raced the lookup) or the descriptor budget is spent; the
    /// inode is then read and written by path.
    pub fn hold(dir: &impl AsFd, name: &std::ffi::OsStr, host: HostId) -> Option<Arc<Self>> {
        let limit = limit();
        if !take(1, limit) {
            if !LIMIT_REPORTED.swap(true, Ordering::Relaxed) {
                eprintln!(
                    "view: {limit} descriptors held for open files (RLIMIT_NOFILE); newly seen files \
                     are now read and written by path (a file replaced on the host while open \
                     in the container then fails to read instead of showing its old content)"
                );
            }
            return None;
        }
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let object = match openat(dir, name, flags, Mode::empty()) {
            Ok(fd) if fstat(&fd).is_ok_and(|st| host_id(&st) == host) => fd,
            _ => {
                give_back(1);
                return None;
            }
        };
        Some(Arc::new(NodeFiles {
            object: Some(object),
            creator: Mutex::new(None),
        }))
    }

    /// Holds only `file`, the writable descriptor of a create whose mode denies its owner
    /// writing, when no `O_PATH` handle could be held (budget spent): without it the writes
    /// that follow the create (git's objects) would fail. Once the pool lets it go, the node
    /// holds nothing ([`NodeFiles::holds_any`]) and is read and written by path.
    pub fn creator_only(file: File) -> Arc<Self> {
        let files = Arc::new(NodeFiles {
            object: None,
            creator: Mutex::new(None),
        });
        files.keep_creator(file);
        files
    }

    /// Whether a descriptor of the object is still held.
    pub fn holds_any(&self) -> bool {
        self.object.is_some() || self.creator_slot().is_some()
    }

    fn creator_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<File>>> {
        self.creator.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A descriptor to read the object, for one request.
    pub fn reader(&self) -> Result<File, Errno> {
        self.reopen(OFlag::O_RDONLY)
    }

    /// Keeps `file`, opened writable by the create that made the object, for the writes that
    /// follow (see the module's notes), until [`MAX_CREATORS`] newer ones were kept.
    pub fn keep_creator(self: &Arc<Self>, file: File) {
        let file = Arc::new(file);
        *self.creator_slot() = Some(Arc::clone(&file));
        CREATORS.admit(self, &file);
    }

    /// Lets the kept writer go if it is still `file`.
    fn drop_creator(&self, file: &Weak<File>) {
        let mut slot = self.creator_slot();
        if slot
            .as_ref()
            .is_some_and(|kept| Weak::ptr_eq(&Arc::downgrade(kept), file))
        {
            *slot = None;
        }
    }

    /// A descriptor to write the object: the create's, if kept; else one for this request,
    /// read-write when the host mode allows it, else write-only.
    pub fn writer(&self) -> Result<Arc<File>, Errno> {
        let creator = self.creator_slot().clone();
        if let Some(file) = creator {
            return Ok(file);
        }
        match self.reopen(OFlag::O_RDWR) {
            Err(Errno::EACCES) => self.reopen(OFlag::O_WRONLY),
            res => res,
        }
        .map(Arc::new)
    }

    /// The object's current `lstat` (it may have been unlinked: still the same object).
    pub fn stat(&self) -> Result<nix::sys::stat::FileStat, Errno> {
        self.with_fd(|fd| fstat(fd))?
    }

    /// `/proc/self/fd/N` of the object: the object itself, wherever (or whether) it is named
    /// on the host now, for calls that follow it (only regular files are held). Valid while
    /// `self` lives.
    pub fn path(&self) -> Result<std::path::PathBuf, Errno> {
        self.with_fd(|fd| proc_path(&fd))
    }

    fn reopen(&self, mode: OFlag) -> Result<File, Errno> {
        open(&self.path()?, mode | OFlag::O_CLOEXEC, Mode::empty()).map(File::from)
    }

    /// Runs `f` on a descriptor of the object: the `O_PATH` one, else the creator's (kept
    /// until `self` drops, so the descriptor number stays this object's).
    fn with_fd<R>(&self, f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> R) -> Result<R, Errno> {
        if let Some(object) = &self.object {
            return Ok(f(object.as_fd()));
        }
        let creator = self.creator_slot().clone().ok_or(Errno::ENOENT)?;
        Ok(f(creator.as_fd()))
    }
}

impl Drop for NodeFiles {
    fn drop(&mut self) {
        give_back(usize::from(self.object.is_some()));
    }
}

/// The kept writers of creates, oldest first, at most `max` alive: each admission lets
/// the oldest go past that. Entries whose node or writer went already are skipped.
struct CreatorPool {
    max: usize,
    kept: Mutex<VecDeque<(Weak<NodeFiles>, Weak<File>)>>,
}

impl CreatorPool {
    const fn new(max: usize) -> Self {
        CreatorPool {
            max,
            kept: Mutex::new(VecDeque::new()),
        }
    }

    fn admit(&self, node: &Arc<NodeFiles>, file: &Arc<File>) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.push_back((Arc::downgrade(node), Arc::downgrade(file)));
        if kept.len() > self.max {
            kept.retain(|(node, file)| node.strong_count() > 0 && file.strong_count() > 0);
        }
        while kept.len() > self.max {
            let Some((node, file)) = kept.pop_front() else {
                break;
            };
            if let Some(node) = node.upgrade() {
                node.drop_creator(&file);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::io::Read;
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_held_file_stays_readable_and_writable_after_the_host_unlinks_or_replaces_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), b"old").expect("write");
        let st = nix::sys::stat::stat(&dir.path().join("f")).expect("stat");
        let root = File::open(dir.path()).expect("open dir");
        let files = NodeFiles::hold(&root, OsStr::new("f"), host_id(&st)).expect("held");
        // An atomic save on the host: a new object takes the name.
        std::fs::write(dir.path().join("tmp"), b"new").expect("write");
        std::fs::rename(dir.path().join("tmp"), dir.path().join("f")).expect("rename");
        let mut got = String::new();
        let mut reader = files.reader().expect("reader");
        reader.read_to_string(&mut got).expect("read");
        assert_eq!(got, "old", "the held object, not whatever has its name now");
        files
            .writer()
            .expect("writer")
            .write_all_at(b"OLD", 0)
            .expect("write");
        got.clear();
        files
            .reader()
            .expect("reader")
            .read_to_string(&mut got)
            .expect("read");
        assert_eq!(got, "OLD");
        assert_eq!(std::fs::read(dir.path().join("f")).expect("read"), b"new");
        assert_eq!(files.stat().expect("stat").st_nlink, 0);
    }

    #[test]
    fn another_object_under_the_name_is_not_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), b"x").expect("write");
        let root = File::open(dir.path()).expect("open dir");
        assert!(NodeFiles::hold(&root, OsStr::new("f"), (0, 0)).is_none());
        assert!(NodeFiles::hold(&root, OsStr::new("absent"), (0, 0)).is_none());
    }

    #[test]
    fn the_budget_refuses_past_its_limit() {
        let held = AtomicUsize::new(0);
        assert!(take_from(&held, 2, 2));
        assert!(!take_from(&held, 1, 2), "full");
        assert_eq!(held.load(Ordering::Acquire), 2, "a refusal takes nothing");
    }

    #[test]
    fn the_pool_keeps_the_newest_writers_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = CreatorPool::new(3);
        let nodes: Vec<Arc<NodeFiles>> = (0..5)
            .map(|i| {
                let path = dir.path().join(format!("f{i}"));
                let file = File::create(&path).expect("create");
                let node = Arc::new(NodeFiles {
                    object: None,
                    creator: Mutex::new(Some(Arc::new(file))),
                });
                let kept = node.creator_slot().clone().expect("kept");
                pool.admit(&node, &kept);
                node
            })
            .collect();
        let kept: Vec<bool> = nodes.iter().map(|n| n.holds_any()).collect();
        assert_eq!(kept, [false, false, true, true, true], "the oldest went");
        // A node that went already frees its place without costing a newer writer its own.
        drop(nodes);
        let node = NodeFiles::creator_only(File::create(dir.path().join("g")).expect("create"));
        let file = node.creator_slot().clone().expect("kept");
        pool.admit(&node, &file);
        assert!(node.holds_any());
        assert_eq!(
            pool.kept.lock().expect("lock").len(),
            1,
            "entries of dropped nodes are skipped"
        );
    }
}
