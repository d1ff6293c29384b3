//! The other root step a view needs where the machine leaves `/dev/fuse` root-only (udev-less
//! VMs and containers ship it `crw------- root`; udev's default is 0666): `alca network-helper
//! install` opens it to group `alcatraz` (group owner + `g+rw`) and records the original owner
//! group and mode, `uninstall` puts them back. The record lives in `/run`, a tmpfs like `/dev`,
//! so it lasts exactly as long as the change (a reboot recreates the node and drops both).
//! Also the check `alca up` makes before it creates anything: can this user open the device?

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The FUSE device node.
pub const FUSE_DEVICE: &str = "/dev/fuse";
/// What `install` changed on the node: `<original mode> <original gid> <mode set> <gid set>`.
pub const RECORD: &str = "/run/alcatraz/fuse-device";

/// Owner group and permission bits of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub mode: u32,
    pub gid: u32,
}

impl Access {
    fn of(path: &Path) -> io::Result<Access> {
        let meta = std::fs::metadata(path)?;
        Ok(Access {
            mode: meta.mode() & 0o7777,
            gid: meta.gid(),
        })
    }

    /// Whether members of `gid` may read and write: through "other" or through the group.
    fn open_to(self, gid: u32) -> bool {
        self.mode & 0o006 == 0o006 || (self.gid == gid && self.mode & 0o060 == 0o060)
    }
}

/// Whether every user may already read and write `device` (then no group is needed).
pub fn open_to_all(device: &Path) -> bool {
    Access::of(device).is_ok_and(|a| a.mode & 0o006 == 0o006)
}

/// Opens `device` to group `gid` unless its members can already read and write it. Returns
/// the access before and after when it changed something; the first original is kept in
/// `record` (a second install does not overwrite it).
pub fn open_to_group(
    device: &Path,
    gid: u32,
    record: &Path,
) -> io::Result<Option<(Access, Access)>> {
    let before = Access::of(device)?;
    if before.open_to(gid) {
        return Ok(None);
    }
    let after = Access {
        mode: before.mode | 0o060,
        gid,
    };
    if !record.exists() {
        if let Some(dir) = record.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let line = format!(
            "{:o} {} {:o} {}\n",
            before.mode, before.gid, after.mode, after.gid
        );
        std::fs::write(record, line)?;
    }
    nix::unistd::chown(device, None, Some(gid.into()))?;
    std::fs::set_permissions(device, std::fs::Permissions::from_mode(after.mode))?;
    Ok(Some((before, after)))
}

/// What [`revert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reverted {
    /// No record: install changed nothing (or the machine rebooted since).
    Nothing,
    /// Put back to the recorded original.
    Restored(Access),
    /// Someone changed the node after install: left as it is.
    ChangedSince(Access),
}

/// Puts `device` back as the record says it was, if it is still as install left it; the
/// record is removed in every case.
pub fn revert(device: &Path, record: &Path) -> io::Result<Reverted> {
    let text = match std::fs::read_to_string(record) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Reverted::Nothing),
        Err(e) => return Err(e),
    };
    let (original, set) = parse_record(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not `<mode> <gid> <mode> <gid>`", record.display()),
        )
    })?;
    let now = Access::of(device)?;
    let outcome = if now == set {
        nix::unistd::chown(device, None, Some(original.gid.into()))?;
        std::fs::set_permissions(device, std::fs::Permissions::from_mode(original.mode))?;
        Reverted::Restored(original)
    } else {
        Reverted::ChangedSince(now)
    };
    std::fs::remove_file(record)?;
    Ok(outcome)
}

fn parse_record(text: &str) -> Option<(Access, Access)> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [m0, g0, m1, g1] = fields.as_slice() else {
        return None;
    };
    let access = |m: &str, g: &str| {
        Some(Access {
            mode: u32::from_str_radix(m, 8).ok()?,
            gid: g.parse().ok()?,
        })
    };
    Some((access(m0, g0)?, access(m1, g1)?))
}

/// Whether this process may open `device` for reading and writing (real ids and the groups of
/// this session, as `fusermount3` checks them).
pub fn usable(device: &Path) -> bool {
    use nix::unistd::{access, AccessFlags};
    access(device, AccessFlags::R_OK | AccessFlags::W_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(dir: &Path, mode: u32) -> std::path::PathBuf {
        let path = dir.join("fuse");
        std::fs::write(&path, "").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn a_root_only_node_is_opened_to_the_group_and_put_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = node(dir.path(), 0o600);
        let record = dir.path().join("run/fuse-device");
        let gid = nix::unistd::getegid().as_raw();
        let (before, after) = open_to_group(&dev, gid, &record)
            .expect("open")
            .expect("changed");
        assert_eq!(before.mode, 0o600);
        assert_eq!(after, Access { mode: 0o660, gid });
        assert_eq!(Access::of(&dev).expect("stat"), after);
        assert_eq!(open_to_group(&dev, gid, &record).expect("again"), None);
        assert_eq!(
            revert(&dev, &record).expect("revert"),
            Reverted::Restored(before)
        );
        assert_eq!(Access::of(&dev).expect("stat").mode, 0o600);
        assert!(!record.exists());
        assert_eq!(revert(&dev, &record).expect("again"), Reverted::Nothing);
    }

    #[test]
    fn an_open_node_is_left_alone_and_a_later_change_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = dir.path().join("fuse-device");
        let gid = nix::unistd::getegid().as_raw();
        let open = node(dir.path(), 0o666);
        assert_eq!(open_to_group(&open, gid, &record).expect("open"), None);
        assert!(!record.exists(), "nothing changed, nothing recorded");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        open_to_group(&open, gid, &record)
            .expect("open")
            .expect("changed");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(
            revert(&open, &record).expect("revert"),
            Reverted::ChangedSince(Access { mode: 0o640, .. })
        ));
        assert_eq!(Access::of(&open).expect("stat").mode, 0o640);
    }

    #[test]
    fn a_bad_record_is_an_error() {
        assert_eq!(parse_record("600 0 660"), None);
        assert_eq!(parse_record("x 0 660 5"), None);
        assert_eq!(
            parse_record("600 0 660 5\n"),
            Some((
                Access {
                    mode: 0o600,
                    gid: 0
                },
                Access {
                    mode: 0o660,
                    gid: 5
                }
            ))
        );
    }
}
