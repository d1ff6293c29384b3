//! Open files and directories through the view: open/create, read/write, fsync, fallocate,
//! directory listings and statfs. Data goes straight to the host file (no write-back cache
//! in the view), so the host sees every write as soon as the container's call returns.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use fuser::{Errno, FileAttr};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode};
use nix::sys::statvfs::fstatvfs;

use super::host::{errno, host_id, io_errno};
use super::listing::{visible_entries, Item};
use super::FilterFs;

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
    pub(super) fn open_file(&self, ino: u64, flags: i32) -> Result<u64, Errno> {
        let (loc, _) = self.locate(ino)?;
        let oflags = OFlag::from_bits_truncate(flags & !DROPPED_FLAGS)
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = openat(&loc.dir, loc.name.as_os_str(), oflags, Mode::empty()).map_err(errno)?;
        if host_id(&fstat(&fd).map_err(errno)?) != loc.host {
            return Err(Errno::ENOENT);
        }
        Ok(self.files.insert(File::from(fd)))
    }

    pub(super) fn create_file(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64), Errno> {
        let dir = self.creatable(parent, name, false)?;
        let oflags = OFlag::from_bits_truncate(flags & !libc::O_NOCTTY)
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = openat(&dir, name, oflags, super::attr::host_perm(mode)).map_err(errno)?;
        let st = fstat(&fd).map_err(errno)?;
        let attr = self.entry(parent, name, &st);
        Ok((attr, self.files.insert(File::from(fd))))
    }

    pub(super) fn read_file(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let file = self.files.get(fh).ok_or(Errno::EBADF)?;
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

    pub(super) fn write_file(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let file = self.files.get(fh).ok_or(Errno::EBADF)?;
        file.write_all_at(data, offset).map_err(|e| io_errno(&e))?;
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    pub(super) fn fsync_file(&self, fh: u64, datasync: bool) -> Result<(), Errno> {
        let file = self.files.get(fh).ok_or(Errno::EBADF)?;
        let res = if datasync {
            file.sync_data()
        } else {
            file.sync_all()
        };
        res.map_err(|e| io_errno(&e))
    }

    pub(super) fn fallocate_file(
        &self,
        fh: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<(), Errno> {
        let file = self.files.get(fh).ok_or(Errno::EBADF)?;
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

    /// Lists directory `ino` once per open, without excluded names.
    pub(super) fn open_dir(&self, ino: u64) -> Result<u64, Errno> {
        let (loc, st) = self.locate(ino)?;
        if !super::attr::is_dir(&st) {
            return Err(Errno::ENOTDIR);
        }
        let parent_ino = if ino == super::inodes::ROOT {
            ino
        } else {
            super::inodes::ROOT
        };
        let mut items = vec![dot(".", ino), dot("..", parent_ino)];
        items.extend(visible_entries(&self.host, &self.matcher, &loc.rel).map_err(errno)?);
        Ok(self.dirs.insert(items))
    }

    pub(super) fn dir_items(&self, fh: u64) -> Result<std::sync::Arc<Vec<Item>>, Errno> {
        self.dirs.get(fh).ok_or(Errno::EBADF)
    }

    pub(super) fn release_dir(&self, fh: u64) {
        self.dirs.remove(fh);
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

fn dot(name: &str, ino: u64) -> Item {
    Item {
        ino,
        kind: fuser::FileType::Directory,
        name: name.into(),
    }
}
