//! Open files and directories through the view: open/create, read/write, fsync, fallocate,
//! directory listings (plain and with attributes) and statfs. Data goes straight to the host
//! file (no write-back cache in the view), so the host sees every write as soon as the
//! container's call returns. Where host changes are watched, the kernel keeps file pages
//! across opens and caches directory listings (the watch invalidates them); where the kernel
//! lists directories without opendir requests it caches every listing, checked against the
//! directory's mtime where it is not watched (see `open_dir`).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use fuser::{Errno, FopenFlags};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode};
use nix::sys::statvfs::fstatvfs;

use super::dir_snapshots::Snapshot;
use super::host::{errno, host_id, io_errno, stat_at};
use super::inodes::Watch;
use super::listing::{visible_entries, Item};
use super::node_files::NodeFiles;
use super::{attr, Cached, FilterFs};

/// One entry of a listing with attributes: the item, and for names other than `.` and `..`
/// its attributes and cache time (the kernel then holds a lookup on it).
pub struct PlusEntry<'a> {
    pub item: &'a Item,
    pub cached: Cached,
    pub counted: bool,
}

/// Flags the kernel may pass that must not reach the host `open`.
const DROPPED_FLAGS: i32 = libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY;

/// Host filesystem statistics reported by statfs.
#[derive(Debug, Clone, Copy)]
pub struct FsStats {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

impl FilterFs {
    /// Opens `ino` on the host, or, when the kernel can open files without asking, checks
    /// that `ino` may be opened and answers `ENOSYS`: from then on the kernel opens files
    /// itself (no `open`, `flush` or `release` round trip, pages kept across opens, `O_TRUNC`
    /// sent as a setattr) and reads and writes name the inode, whose held host object
    /// [`Self::data_file`] reopens. Where host changes are watched, the kernel keeps the
    /// file's pages across opens; it never sends `flush` (nothing to flush: no write-back
    /// cache, no locks kept here).
    pub(super) fn open_file(&self, ino: u64, flags: i32) -> Result<(u64, FopenFlags), Errno> {
        let (loc, st) = self.locate(ino)?;
        if self.no_open() {
            return Err(Errno::ENOSYS);
        }
        let oflags = OFlag::from_bits_truncate(flags & !DROPPED_FLAGS)
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = openat(&loc.dir, loc.name.as_os_str(), oflags, Mode::empty()).map_err(errno)?;
        if host_id(&fstat(&fd).map_err(errno)?) != loc.host {
            return Err(Errno::ENOENT);
        }
        Ok((self.files.insert(File::from(fd)), self.open_flags(ino, &st)))
    }

    /// Records whether the kernel opens files without open requests (`init`).
    pub(super) fn set_no_open(&self, no_open: bool) {
        self.no_open
            .store(no_open, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records whether the kernel lists directories without opendir requests (`init`).
    pub(super) fn set_no_opendir(&self, no_opendir: bool) {
        self.no_opendir
            .store(no_opendir, std::sync::atomic::Ordering::Relaxed);
    }

    /// The host file behind a read or write of `ino`: the handle `fh` of an open or create,
    /// or for handle 0 (the kernel opened the file itself) the inode's held host object,
    /// checked to be still usable ([`FilterFs::held_usable`], as an open request checked the
    /// file before) and reopened for this request; an inode holding none (descriptor budget
    /// spent) is located by path and checked.
    pub(super) fn data_file(&self, ino: u64, fh: u64, write: bool) -> Result<Arc<File>, Errno> {
        if fh != 0 {
            return self.files.get(fh).ok_or(Errno::EBADF);
        }
        if let Some((files, _, _)) = self.held_usable(ino)? {
            let file = if write {
                files.writer()
            } else {
                files.reader().map(Arc::new)
            };
            return file.map_err(errno);
        }
        let (loc, _) = self.locate(ino)?;
        let mode = if write {
            OFlag::O_WRONLY
        } else {
            OFlag::O_RDONLY
        };
        let flags = mode | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&loc.dir, loc.name.as_os_str(), flags, Mode::empty()).map_err(errno)?;
        if host_id(&fstat(&fd).map_err(errno)?) != loc.host {
            return Err(Errno::ENOENT);
        }
        Ok(Arc::new(File::from(fd)))
    }

    fn open_flags(&self, ino: u64, st: &nix::sys::stat::FileStat) -> FopenFlags {
        if self.cacheable(ino, st) {
            FopenFlags::FOPEN_NOFLUSH | FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::FOPEN_NOFLUSH
        }
    }

    pub(super) fn create_file(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(Cached, u64, FopenFlags), Errno> {
        let dir = self.creatable(parent, name, false)?;
        let oflags = OFlag::from_bits_truncate(flags & !libc::O_NOCTTY)
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let (fd, st, cached) = self.own_create(parent, &dir, name, || {
            let fd = openat(&dir, name, oflags, super::attr::host_perm(mode)).map_err(errno)?;
            let st = fstat(&fd).map_err(errno)?;
            Ok((fd, st))
        })?;
        let ino = cached.0.ino.0;
        let flags = self.open_flags(ino, &st);
        if !self.no_open() {
            return Ok((cached, self.files.insert(File::from(fd)), flags));
        }
        // The kernel sends no release for a create once it opens files itself: handle 0,
        // writes go to the held object, and only a writer no reopen could get is kept (for
        // a while: `node_files.rs`).
        let writable = flags_write(oflags);
        if writable && mode & libc::S_IWUSR == 0 {
            match self.held(ino) {
                Some(files) => files.keep_creator(File::from(fd)),
                None => {
                    let files = NodeFiles::creator_only(File::from(fd));
                    self.with_table(|table| table.hold_files(ino, files));
                }
            }
        }
        Ok((cached, 0, flags))
    }

    pub(super) fn read_file(
        &self,
        (ino, fh): (u64, u64),
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        let file = self.data_file(ino, fh, false)?;
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_errno(&e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub(super) fn write_file(
        &self,
        (ino, fh): (u64, u64),
        offset: u64,
        data: &[u8],
    ) -> Result<u32, Errno> {
        let file = self.data_file(ino, fh, true)?;
        file.write_all_at(data, offset).map_err(|e| io_errno(&e))?;
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    pub(super) fn fsync_file(&self, (ino, fh): (u64, u64), datasync: bool) -> Result<(), Errno> {
        // Any descriptor of the object syncs it; a file only readable or only writable by
        // its mode still has one of the two.
        let file = self
            .data_file(ino, fh, false)
            .or_else(|_| self.data_file(ino, fh, true))?;
        let res = if datasync {
            file.sync_data()
        } else {
            file.sync_all()
        };
        res.map_err(|e| io_errno(&e))
    }

    pub(super) fn fallocate_file(
        &self,
        (ino, fh): (u64, u64),
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<(), Errno> {
        let file = self.data_file(ino, fh, true)?;
        let off = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let len = i64::try_from(length).map_err(|_| Errno::EINVAL)?;
        // SAFETY: plain syscall on an open descriptor we own.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, off, len) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Errno::from(std::io::Error::last_os_error()))
        }
    }

    pub(super) fn release_file(&self, fh: u64) {
        self.files.remove(fh);
    }

    /// Checks that directory `ino` may be listed. When the kernel can list directories
    /// without asking (and revalidates its cached listings by the directory's mtime, which
    /// `FUSE_AUTO_INVAL_DATA` makes it do), answers `ENOSYS`: from then on it sends no
    /// `opendir` or `releasedir` (two round trips per listing) and keeps every listing,
    /// dropped when the watch invalidates the directory or, where it is not watched, when
    /// its mtime changed (its attributes then last [`super::SHORT_TTL`]). Otherwise the
    /// listing is cached only where the directory is watched. Listings are served by inode
    /// ([`Self::dir_items`]), so no handle is kept.
    pub(super) fn open_dir(&self, ino: u64) -> Result<(u64, FopenFlags), Errno> {
        let (_, st) = self.locate(ino)?;
        if !attr::is_dir(&st) {
            return Err(Errno::ENOTDIR);
        }
        if self.no_opendir() {
            return Err(Errno::ENOSYS);
        }
        let watched = self.watch.active() && matches!(self.table().watch(ino), Watch::Active(_));
        let flags = if watched {
            FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::empty()
        };
        Ok((0, flags))
    }

    /// The visible entries of directory `ino` to serve from `offset`, `.` and `..` first,
    /// without excluded names: read afresh from the host at offset 0, else the snapshot of
    /// the listing the kernel is continuing (`dir_snapshots.rs`). Fails with `ENOENT` when
    /// the directory is no longer at a visible place.
    fn dir_items(&self, ino: u64, offset: u64) -> Result<Snapshot, Errno> {
        self.listings.get(ino, offset, || {
            let (_, rel) = self.parent_dir(ino)?;
            let parent_ino = if ino == super::inodes::ROOT {
                ino
            } else {
                super::inodes::ROOT
            };
            let mut list = vec![dot(".", ino), dot("..", parent_ino)];
            list.extend(visible_entries(&self.host, &self.matcher, &rel).map_err(errno)?);
            Ok(list)
        })
    }

    /// Entries of directory `ino` from `offset` (an index into its listing), handed to `add`
    /// until it reports the reply full (`true`). A listing served to its end is dropped.
    pub(super) fn dir_chunk(
        &self,
        ino: u64,
        offset: u64,
        mut add: impl FnMut(usize, &Item) -> bool,
    ) -> Result<(), Errno> {
        let items = self.dir_items(ino, offset)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, item) in items.iter().enumerate().skip(start) {
            if add(i, item) {
                return Ok(());
            }
        }
        self.listings.done(ino, &items);
        Ok(())
    }

    /// Entries of directory `ino` from `offset` with their attributes, handed to `add` until
    /// it reports the reply full (`true`); an entry that did not fit gives its lookup back.
    /// Entries that vanished or turned excluded since the listing are skipped.
    pub(super) fn dir_chunk_plus(
        &self,
        ino: u64,
        offset: u64,
        mut add: impl FnMut(usize, PlusEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let items = self.dir_items(ino, offset)?;
        let (dir, rel) = self.parent_dir(ino)?;
        let dir_st = fstat(&dir).map_err(errno)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, item) in items.iter().enumerate().skip(start) {
            let entry = if i < 2 {
                PlusEntry {
                    item,
                    cached: (attr::from_stat(item.ino, &dir_st), super::SHORT_TTL),
                    counted: false,
                }
            } else {
                let Ok(st) = stat_at(&dir, &item.name) else {
                    continue;
                };
                if self
                    .matcher
                    .is_excluded(&rel.join(&item.name), attr::is_dir(&st))
                {
                    continue;
                }
                PlusEntry {
                    item,
                    cached: self.entry(ino, &dir, &item.name, &st),
                    counted: true,
                }
            };
            let (entry_ino, counted) = (entry.cached.0.ino.0, entry.counted);
            if add(i, entry) {
                if counted {
                    self.forget(entry_ino, 1);
                }
                return Ok(());
            }
        }
        self.listings.done(ino, &items);
        Ok(())
    }

    pub(super) fn fs_stats(&self) -> Result<FsStats, Errno> {
        let s = fstatvfs(self.host.fd()).map_err(errno)?;
        Ok(FsStats {
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.block_size() as u32,
            namelen: s.name_max() as u32,
            frsize: s.fragment_size() as u32,
        })
    }
}

/// Whether open flags ask for writing.
fn flags_write(flags: OFlag) -> bool {
    flags.bits() & libc::O_ACCMODE != libc::O_RDONLY
}

fn dot(name: &str, ino: u64) -> Item {
    Item {
        ino,
        kind: fuser::FileType::Directory,
        name: name.into(),
    }
}
