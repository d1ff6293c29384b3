//! Directory listings through the filter, and the subtree check that keeps a directory
//! rename from moving hidden entries to a path where they would become visible.

use std::ffi::OsString;
use std::os::unix::fs::DirEntryExt;
use std::path::Path;

use fuser::FileType;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::attr::kind_of;
use super::host::{proc_path, HostRoot};
use crate::exclude::ExcludeMatcher;

/// Most entries a rename check inspects before refusing the rename with `EXDEV` (tools then
/// copy the visible files one by one, which the filter checks individually).
pub const RENAME_CHECK_BUDGET: usize = 100_000;

/// One visible directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub ino: u64,
    pub kind: FileType,
    pub name: OsString,
}

/// Reads the directory `rel` and returns its entries that are not excluded.
pub fn visible_entries(
    host: &HostRoot,
    matcher: &ExcludeMatcher,
    rel: &Path,
) -> Result<Vec<Item>, Errno> {
    let mut items = Vec::new();
    for_each_entry(host, rel, |name, ft, ino| {
        if !matcher.is_excluded(&rel.join(&name), ft.is_dir()) {
            items.push(Item {
                ino,
                kind: kind_of(ft),
                name,
            });
        }
        true
    })?;
    Ok(items)
}

/// Whether moving directory `old` to `new` would give some entry that is excluded under
/// `old` a path under `new` where it is not. Conservatively true when the subtree is larger
/// than `budget` entries.
pub fn rename_would_expose(
    host: &HostRoot,
    matcher: &ExcludeMatcher,
    old: &Path,
    new: &Path,
    budget: &mut usize,
) -> Result<bool, Errno> {
    let mut exposed = false;
    let mut subdirs = Vec::new();
    for_each_entry(host, old, |name, ft, _| {
        if *budget == 0 {
            exposed = true;
            return false;
        }
        *budget -= 1;
        let (o, n) = (old.join(&name), new.join(&name));
        if matcher.is_excluded(&o, ft.is_dir()) {
            exposed |= !matcher.is_excluded(&n, ft.is_dir());
        } else if ft.is_dir() {
            subdirs.push((o, n));
        }
        !exposed
    })?;
    for (o, n) in subdirs {
        if exposed {
            break;
        }
        exposed = rename_would_expose(host, matcher, &o, &n, budget)?;
    }
    Ok(exposed)
}

/// Calls `f(name, type, host inode)` for each entry of directory `rel` until it returns false.
fn for_each_entry(
    host: &HostRoot,
    rel: &Path,
    mut f: impl FnMut(OsString, std::fs::FileType, u64) -> bool,
) -> Result<(), Errno> {
    let fd = host.open(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
    let entries = std::fs::read_dir(proc_path(&fd)).map_err(|e| io_to_nix(&e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_to_nix(&e))?;
        let ft = entry.file_type().map_err(|e| io_to_nix(&e))?;
        if !f(entry.file_name(), ft, entry.ino()) {
            break;
        }
    }
    Ok(())
}

fn io_to_nix(err: &std::io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::create_dir_all(p.join("config/sub")).expect("mkdir");
        std::fs::write(p.join("config/prod.toml"), b"secret").expect("write");
        std::fs::write(p.join("config/dev.toml"), b"ok").expect("write");
        std::fs::write(p.join("config/sub/.env"), b"secret").expect("write");
        dir
    }

    fn matcher(patterns: &[&str]) -> ExcludeMatcher {
        let owned: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        ExcludeMatcher::compile(&owned).expect("compile")
    }

    #[test]
    fn listing_drops_excluded_names() {
        let dir = tree();
        let host = HostRoot::new(dir.path()).expect("root");
        let m = matcher(&["/config/prod.toml"]);
        let mut names: Vec<_> = visible_entries(&host, &m, Path::new("config"))
            .expect("list")
            .into_iter()
            .map(|i| i.name)
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![OsString::from("dev.toml"), OsString::from("sub")]
        );
    }

    #[test]
    fn renaming_a_dir_that_would_reveal_an_anchored_exclusion_is_detected() {
        let dir = tree();
        let host = HostRoot::new(dir.path()).expect("root");
        let m = matcher(&["/config/prod.toml", "**/.env"]);
        let mut budget = RENAME_CHECK_BUDGET;
        let old = Path::new("config");
        assert!(rename_would_expose(&host, &m, old, Path::new("cfg"), &mut budget).expect("walk"));
        let m = matcher(&["**/.env"]);
        let mut budget = RENAME_CHECK_BUDGET;
        assert!(!rename_would_expose(&host, &m, old, Path::new("cfg"), &mut budget).expect("walk"));
        let mut budget = 1;
        assert!(rename_would_expose(&host, &m, old, Path::new("cfg"), &mut budget).expect("walk"));
    }
}
