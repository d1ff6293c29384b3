//! Translation of host `stat` results into the attributes the view reports (same owner,
//! mode, times and sizes as on the host; only the inode number is the view's own).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};
use nix::sys::stat::FileStat;

/// Kind of a host object from its `st_mode`.
pub fn kind(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

/// The permission bits a create, mknod, mkdir or chmod from the container may set on the
/// host: never set-uid or set-gid (issue #22 item 3), so nothing written from inside becomes
/// a program that runs as the user (or as root, for a root-run view) when someone on the host
/// starts it. The sticky bit and the rwx bits pass through.
pub fn host_perm(mode: u32) -> nix::sys::stat::Mode {
    nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777 & !(libc::S_ISUID | libc::S_ISGID))
}

pub fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub fn is_file(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// Kind of a directory entry from its `d_type`-based std file type.
pub fn kind_of(ft: std::fs::FileType) -> FileType {
    FileType::from_std(ft).unwrap_or(FileType::RegularFile)
}

pub fn from_stat(ino: u64, st: &FileStat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size.max(0) as u64,
        blocks: st.st_blocks.max(0) as u64,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind: kind(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

/// The attributes of a negative entry: inode 0 tells the kernel the name is absent.
pub fn absent() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    let nanos = Duration::from_nanos(nsecs.clamp(0, 999_999_999) as u64);
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_of_a_real_file_translates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").expect("write");
        let st = nix::sys::stat::lstat(&path).expect("lstat");
        let attr = from_stat(7, &st);
        assert_eq!(attr.ino, INodeNo(7));
        assert_eq!(attr.size, 5);
        assert_eq!(attr.kind, FileType::RegularFile);
        assert_eq!(attr.uid, st.st_uid);
        assert!(!is_dir(&st));
        assert!(attr.mtime > UNIX_EPOCH);
    }

    #[test]
    fn negative_times_do_not_panic() {
        assert!(time(-5, 0) < UNIX_EPOCH);
        assert_eq!(kind(libc::S_IFDIR | 0o755), FileType::Directory);
    }
}
