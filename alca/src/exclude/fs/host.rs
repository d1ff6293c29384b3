//! Host-side access for the view, confined to the source directory: every path is resolved
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from a descriptor of the source
//! root, and final components are used with no-follow flags, so neither a symlink nor a
//! `..` planted by the container (or a race on the host) can lead outside the filtered tree.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};

use super::inodes::HostId;

/// The source directory, held open for the server's lifetime.
#[derive(Debug)]
pub struct HostRoot {
    fd: OwnedFd,
    host: HostId,
}

impl HostRoot {
    /// Opens the source, `path` being canonical: no component may be a symlink, so a
    /// directory swapped for a symlink after `alca up` resolved it fails the start instead of
    /// serving whatever the symlink points to.
    pub fn new(path: &Path) -> std::io::Result<Self> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd = openat2(nix::fcntl::AT_FDCWD, path, how)?;
        let st = fstat(&fd)?;
        Ok(HostRoot {
            fd,
            host: host_id(&st),
        })
    }

    pub fn host(&self) -> HostId {
        self.host
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// An `O_PATH` descriptor of the directory `rel` (relative to the root).
    pub fn dir(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        self.open(rel, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
    }

    /// Opens `rel` beneath the root without following any symlink on the way.
    pub fn open(&self, rel: &Path, flags: OFlag, mode: Mode) -> Result<OwnedFd, Errno> {
        let path: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        openat2(&self.fd, path, how)
    }
}

/// `(st_dev, st_ino)` of a stat result.
pub fn host_id(st: &FileStat) -> HostId {
    (st.st_dev, st.st_ino)
}

/// `lstat` of `name` inside `dir`.
pub fn stat_at(dir: &impl AsFd, name: &OsStr) -> Result<FileStat, Errno> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Splits a relative path into (parent, name); the root is `("", ".")`.
pub fn split(rel: &Path) -> (PathBuf, OsString) {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) => (parent.to_path_buf(), name.to_os_string()),
        _ => (PathBuf::new(), OsString::from(".")),
    }
}

/// `/proc/self/fd/N`: reopens an `O_PATH` descriptor's object (never a path lookup).
pub fn proc_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Converts a nix error to the errno the kernel receives.
pub fn errno(err: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(err as i32)
}

/// Converts an I/O error to the errno the kernel receives.
pub fn io_errno(err: &std::io::Error) -> fuser::Errno {
    fuser::Errno::from_i32(err.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_stays_beneath_the_root_and_refuses_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/f"), b"x").expect("write");
        std::os::unix::fs::symlink("sub", dir.path().join("link")).expect("symlink");
        let root = HostRoot::new(dir.path()).expect("open root");
        assert!(root.dir(Path::new("sub")).is_ok());
        assert!(root.dir(Path::new("")).is_ok());
        assert!(
            root.dir(Path::new("link")).is_err(),
            "symlinked dir refused"
        );
        assert_eq!(
            root.open(Path::new("link/f"), OFlag::O_RDONLY, Mode::empty())
                .unwrap_err(),
            Errno::ELOOP
        );
        assert_eq!(root.dir(Path::new("../")).unwrap_err(), Errno::EXDEV);
    }

    #[test]
    fn split_handles_root_and_nested() {
        assert_eq!(split(Path::new("")), (PathBuf::new(), OsString::from(".")));
        assert_eq!(
            split(Path::new("a/b")),
            (PathBuf::from("a"), OsString::from("b"))
        );
        assert_eq!(split(Path::new("a")), (PathBuf::new(), OsString::from("a")));
    }
}
