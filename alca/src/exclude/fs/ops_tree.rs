//! Operations that change names or metadata: setattr, mkdir, mknod, symlink, link, unlink,
//! rmdir and rename. Creating or renaming *to* an excluded path is refused with `EACCES`;
//! a directory rename that would reveal hidden entries below it fails with `EXDEV`.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

use fuser::{Errno, TimeOrNow};
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, ftruncate, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::host::{errno, host_id, proc_path, stat_at};
use super::listing::{rename_would_expose, RENAME_CHECK_BUDGET};
use super::node_files::NodeFiles;
use super::{attr, Cached, FilterFs, Located};

/// The attribute changes of one setattr request.
#[derive(Debug, Default, Clone, Copy)]
pub struct AttrChange {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
}

impl FilterFs {
    pub(super) fn setattr_of(
        &self,
        ino: u64,
        change: AttrChange,
        fh: Option<u64>,
    ) -> Result<Cached, Errno> {
        if fh == Some(0) {
            if let Some((files, _, _)) = self.held_usable(ino)? {
                return Ok(self.own_reply(self.setattr_held(ino, &files, change)?));
            }
        }
        let (loc, st) = self.locate(ino)?;
        if let Some(mode) = change.mode {
            chmod(&loc, &st, mode)?;
        }
        if change.uid.is_some() || change.gid.is_some() {
            fchownat(
                &loc.dir,
                loc.name.as_os_str(),
                change.uid.map(Uid::from_raw),
                change.gid.map(Gid::from_raw),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(errno)?;
        }
        if let Some(size) = change.size {
            self.truncate(&loc, fh, size)?;
        }
        if change.atime.is_some() || change.mtime.is_some() {
            utimensat(
                &loc.dir,
                loc.name.as_os_str(),
                &timespec(change.atime),
                &timespec(change.mtime),
                UtimensatFlags::NoFollowSymlink,
            )
            .map_err(errno)?;
        }
        Ok(self.own_reply(self.getattr_of(ino, fh)?))
    }

    /// setattr from a file the kernel opened without an open request (`ftruncate`, `O_TRUNC`):
    /// applied to the held host object (checked usable by the caller), which stays that
    /// file after a host unlink or replace, as the container's descriptor does.
    fn setattr_held(
        &self,
        ino: u64,
        files: &NodeFiles,
        change: AttrChange,
    ) -> Result<Cached, Errno> {
        let object = files.path().map_err(errno)?;
        if let Some(mode) = change.mode {
            fchmodat(
                nix::fcntl::AT_FDCWD,
                &object,
                attr::host_perm(mode),
                FchmodatFlags::FollowSymlink,
            )
            .map_err(errno)?;
        }
        if change.uid.is_some() || change.gid.is_some() {
            fchownat(
                nix::fcntl::AT_FDCWD,
                &object,
                change.uid.map(Uid::from_raw),
                change.gid.map(Gid::from_raw),
                AtFlags::empty(),
            )
            .map_err(errno)?;
        }
        if let Some(size) = change.size {
            let len = i64::try_from(size).map_err(|_| Errno::EFBIG)?;
            ftruncate(&*files.writer().map_err(errno)?, len).map_err(errno)?;
        }
        if change.atime.is_some() || change.mtime.is_some() {
            utimensat(
                nix::fcntl::AT_FDCWD,
                &object,
                &timespec(change.atime),
                &timespec(change.mtime),
                UtimensatFlags::FollowSymlink,
            )
            .map_err(errno)?;
        }
        let st = files.stat().map_err(errno)?;
        Ok(self.cached(ino, &st))
    }

    fn truncate(&self, loc: &Located, fh: Option<u64>, size: u64) -> Result<(), Errno> {
        let len = i64::try_from(size).map_err(|_| Errno::EFBIG)?;
        if let Some(file) = fh.and_then(|fh| self.files.get(fh)) {
            return ftruncate(&*file, len).map_err(errno);
        }
        let fd = openat(
            &loc.dir,
            loc.name.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        ftruncate(&fd, len).map_err(errno)
    }

    pub(super) fn mkdir_in(&self, parent: u64, name: &OsStr, mode: u32) -> Result<Cached, Errno> {
        let dir = self.creatable(parent, name, true)?;
        self.created(parent, &dir, name, || {
            mkdirat(&dir, name, attr::host_perm(mode))
        })
    }

    pub(super) fn mknod_in(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> Result<Cached, Errno> {
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        let dir = self.creatable(parent, name, is_dir)?;
        let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
        self.created(parent, &dir, name, || {
            mknodat(&dir, name, kind, attr::host_perm(mode), u64::from(rdev))
        })
    }

    pub(super) fn symlink_in(
        &self,
        parent: u64,
        name: &OsStr,
        target: &Path,
    ) -> Result<Cached, Errno> {
        let dir = self.creatable(parent, name, false)?;
        self.created(parent, &dir, name, || symlinkat(target, &dir, name))
    }

    pub(super) fn link_to(&self, ino: u64, parent: u64, name: &OsStr) -> Result<Cached, Errno> {
        let (loc, _) = self.locate(ino)?;
        let dir = self.creatable(parent, name, false)?;
        self.created(parent, &dir, name, || {
            linkat(&loc.dir, loc.name.as_os_str(), &dir, name, AtFlags::empty())
        })
    }

    pub(super) fn remove(&self, parent: u64, name: &OsStr, is_dir: bool) -> Result<(), Errno> {
        let (dir, rel) = self.parent_dir(parent)?;
        if self.matcher.is_excluded(&rel.join(name), is_dir) {
            return Err(Errno::ENOENT);
        }
        if self.matcher.holds_pinned(&rel.join(name)) {
            return Err(Errno::EBUSY);
        }
        let flag = if is_dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        unlinkat(&dir, name, flag).map_err(errno)
    }

    pub(super) fn rename_entry(
        &self,
        from: (u64, &OsStr),
        to: (u64, &OsStr),
        flags: u32,
    ) -> Result<(), Errno> {
        let (old_dir, old_parent) = self.parent_dir(from.0)?;
        let (new_dir, new_parent) = self.parent_dir(to.0)?;
        let (old_rel, new_rel) = (old_parent.join(from.1), new_parent.join(to.1));
        let st = stat_at(&old_dir, from.1).map_err(errno)?;
        let is_dir = attr::is_dir(&st);
        if self.matcher.is_excluded(&old_rel, is_dir) {
            return Err(Errno::ENOENT);
        }
        if self.matcher.is_excluded(&new_rel, is_dir) {
            return Err(Errno::EACCES);
        }
        if self.matcher.holds_pinned(&old_rel) || self.matcher.holds_pinned(&new_rel) {
            return Err(Errno::EBUSY);
        }
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        let other = if exchange {
            let other = stat_at(&new_dir, to.1).map_err(errno)?;
            self.check_move(&new_rel, &old_rel, attr::is_dir(&other))?;
            Some(other)
        } else {
            None
        };
        self.check_move(&old_rel, &new_rel, is_dir)?;
        renameat2(&old_dir, from.1, &new_dir, to.1, flags)?;
        self.with_table(|table| {
            table.moved(host_id(&st), to.0, to.1);
            if let Some(other) = other {
                table.moved(host_id(&other), from.0, from.1);
            }
        });
        Ok(())
    }

    /// Refuses (`EXDEV`) moving a directory whose hidden content would become visible.
    fn check_move(&self, old: &Path, new: &Path, is_dir: bool) -> Result<(), Errno> {
        if self.matcher.is_excluded(new, is_dir) {
            return Err(Errno::EACCES);
        }
        if !is_dir || self.matcher.rename_keeps_descendants(old) {
            return Ok(());
        }
        let mut budget = RENAME_CHECK_BUDGET;
        match rename_would_expose(&self.host, &self.matcher, old, new, &mut budget) {
            Ok(false) => Ok(()),
            Ok(true) => Err(Errno::EXDEV),
            Err(e) => Err(errno(e)),
        }
    }

    /// Creates `name` in `dir` (the directory of inode `parent`) with `make`, and answers
    /// the entry it made (see [`FilterFs::own_create`]).
    fn created(
        &self,
        parent: u64,
        dir: &impl std::os::fd::AsFd,
        name: &OsStr,
        make: impl FnOnce() -> nix::Result<()>,
    ) -> Result<Cached, Errno> {
        let ((), _, cached) = self.own_create(parent, dir, name, || {
            make().map_err(errno)?;
            Ok(((), stat_at(dir, name).map_err(errno)?))
        })?;
        Ok(cached)
    }
}

/// chmod without following a symlink planted in place of the node.
fn chmod(loc: &Located, st: &nix::sys::stat::FileStat, mode: u32) -> Result<(), Errno> {
    if attr::kind(st.st_mode) == fuser::FileType::Symlink {
        return Err(Errno::from_i32(libc::EOPNOTSUPP));
    }
    let fd = openat(
        &loc.dir,
        loc.name.as_os_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let now = nix::sys::stat::fstat(&fd).map_err(errno)?;
    if host_id(&now) != loc.host {
        return Err(Errno::ENOENT);
    }
    fchmodat(
        nix::fcntl::AT_FDCWD,
        &proc_path(&fd),
        attr::host_perm(mode),
        FchmodatFlags::FollowSymlink,
    )
    .map_err(errno)
}

fn timespec(t: Option<TimeOrNow>) -> TimeSpec {
    match t {
        None => TimeSpec::UTIME_OMIT,
        Some(TimeOrNow::Now) => TimeSpec::UTIME_NOW,
        Some(TimeOrNow::SpecificTime(at)) => {
            let d = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            TimeSpec::from_duration(d)
        }
    }
}

/// `renameat2(2)` through the raw syscall (works with any libc).
fn renameat2(
    old_dir: &impl AsRawFd,
    old: &OsStr,
    new_dir: &impl AsRawFd,
    new: &OsStr,
    flags: u32,
) -> Result<(), Errno> {
    let old = std::ffi::CString::new(old.as_bytes()).map_err(|_| Errno::EINVAL)?;
    let new = std::ffi::CString::new(new.as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: both strings are NUL-terminated and outlive the call; the fds are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from(std::io::Error::last_os_error()))
    }
}
