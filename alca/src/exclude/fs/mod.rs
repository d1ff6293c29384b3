//! The FUSE filtered view: a passthrough of the source directory in which excluded paths do
//! not exist. Every operation recomputes the node's current path and checks it against the
//! patterns, so a matching file created on the host after mount is never visible; positive
//! entries and attributes are cached by the kernel for 100 ms only, so every other change on
//! either side shows well within a second. Negative lookups are never cached.
//!
//! Operations run as the server's user (the user who ran `alca up`): files the container
//! creates through the view are owned by that user on the host; `default_permissions` makes
//! the kernel check the reported host modes and owners, as a plain bind mount would.

mod attr;
mod fuse_impl;
mod handles;
mod host;
mod inodes;
mod listing;
mod ops_io;
mod ops_tree;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fuser::Errno;
use nix::sys::stat::{fstat, FileStat};

use self::handles::Handles;
use self::host::{errno, host_id, split, stat_at, HostRoot};
use self::inodes::{HostId, InodeTable};
use self::listing::Item;
use crate::exclude::ExcludeMatcher;

/// Entry and attribute validity in the kernel: short, so host changes show within 0.1 s,
/// while a build that stats a file repeatedly does not pay a round trip every time.
const TTL: Duration = Duration::from_millis(100);

/// The filesystem served at the view's mountpoint.
#[derive(Debug)]
pub struct FilterFs {
    host: HostRoot,
    matcher: ExcludeMatcher,
    table: Mutex<InodeTable>,
    files: Handles<File>,
    dirs: Handles<Vec<Item>>,
}

/// A node resolved to its current place on the host.
struct Located {
    /// `O_PATH` descriptor of the node's parent directory (the root itself for the root).
    dir: OwnedFd,
    /// Name inside `dir` (`.` for the root).
    name: OsString,
    rel: PathBuf,
    host: HostId,
}

impl FilterFs {
    /// Serves `source` (an existing directory) without what `matcher` excludes.
    pub fn new(source: &Path, matcher: ExcludeMatcher) -> std::io::Result<Self> {
        let host = HostRoot::new(source)?;
        let table = Mutex::new(InodeTable::new(host.host()));
        Ok(FilterFs {
            host,
            matcher,
            table,
            files: Handles::default(),
            dirs: Handles::default(),
        })
    }

    fn table(&self) -> MutexGuard<'_, InodeTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node `ino` at its current host place, with its `lstat`. Fails with `ENOENT` when
    /// the node vanished, was replaced by another object, or is now excluded.
    fn locate(&self, ino: u64) -> Result<(Located, FileStat), Errno> {
        let info = self.table().info(ino).ok_or(Errno::ENOENT)?;
        let (parent, name) = split(&info.rel);
        let dir = self.host.dir(&parent).map_err(errno)?;
        let st = stat_at(&dir, &name).map_err(errno)?;
        if host_id(&st) != info.host || self.matcher.is_excluded(&info.rel, attr::is_dir(&st)) {
            return Err(Errno::ENOENT);
        }
        let located = Located {
            dir,
            name,
            rel: info.rel,
            host: info.host,
        };
        Ok((located, st))
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

    /// Looks `name` up in `parent`: `ENOENT` for excluded names, as for absent ones.
    fn lookup_entry(&self, parent: u64, name: &OsStr) -> Result<fuser::FileAttr, Errno> {
        let (dir, rel) = self.parent_dir(parent)?;
        let st = stat_at(&dir, name).map_err(errno)?;
        if self.matcher.is_excluded(&rel.join(name), attr::is_dir(&st)) {
            return Err(Errno::ENOENT);
        }
        Ok(self.entry(parent, name, &st))
    }

    /// Registers a kernel reference to the object `st` at `name` in `parent`.
    fn entry(&self, parent: u64, name: &OsStr, st: &FileStat) -> fuser::FileAttr {
        let ino = self.table().looked_up(parent, name, host_id(st));
        attr::from_stat(ino, st)
    }

    fn getattr_of(&self, ino: u64, fh: Option<u64>) -> Result<fuser::FileAttr, Errno> {
        if let Some(file) = fh.and_then(|fh| self.files.get(fh)) {
            let st = fstat(&*file).map_err(errno)?;
            return Ok(attr::from_stat(ino, &st));
        }
        let (_, st) = self.locate(ino)?;
        Ok(attr::from_stat(ino, &st))
    }

    fn readlink_of(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let (loc, _) = self.locate(ino)?;
        let target = nix::fcntl::readlinkat(&loc.dir, loc.name.as_os_str()).map_err(errno)?;
        Ok(std::os::unix::ffi::OsStringExt::into_vec(target))
    }

    fn forget(&self, ino: u64, n: u64) {
        self.table().forget(ino, n);
    }
}
