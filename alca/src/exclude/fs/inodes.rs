//! The view's inode table: FUSE inode numbers ↔ host objects and their current place
//! (parent inode + name), from which every operation recomputes the path it filters on.
//!
//! Nodes are keyed by the host identity (device, inode) so hard links and host-side renames
//! map to one FUSE inode; a node lives while the kernel holds lookups on it or a child still
//! names it as parent.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The FUSE root inode.
pub const ROOT: u64 = 1;
/// Deeper than any real tree; bounds the parent walk if the table were ever inconsistent.
const MAX_DEPTH: usize = 4096;

/// Host identity of a file: (st_dev, st_ino).
pub type HostId = (u64, u64);

#[derive(Debug, Clone)]
struct Node {
    parent: u64,
    name: OsString,
    host: HostId,
    lookups: u64,
    children: u64,
}

/// What an operation needs to know about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Path relative to the source root (empty for the root).
    pub rel: PathBuf,
    pub host: HostId,
}

#[derive(Debug)]
pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    by_host: HashMap<HostId, u64>,
    next: u64,
}

impl InodeTable {
    pub fn new(root_host: HostId) -> Self {
        let root = Node {
            parent: ROOT,
            name: OsString::new(),
            host: root_host,
            lookups: 1,
            children: 0,
        };
        InodeTable {
            nodes: HashMap::from([(ROOT, root)]),
            by_host: HashMap::from([(root_host, ROOT)]),
            next: ROOT + 1,
        }
    }

    /// Path and host identity of `ino`, if the kernel's inode is still known.
    pub fn info(&self, ino: u64) -> Option<NodeInfo> {
        let node = self.nodes.get(&ino)?;
        Some(NodeInfo {
            rel: self.rel_path(ino)?,
            host: node.host,
        })
    }

    fn rel_path(&self, ino: u64) -> Option<PathBuf> {
        let mut names: Vec<&OsStr> = Vec::new();
        let mut cur = ino;
        while cur != ROOT {
            let node = self.nodes.get(&cur)?;
            names.push(&node.name);
            cur = node.parent;
            if names.len() > MAX_DEPTH {
                return None;
            }
        }
        Some(names.iter().rev().collect())
    }

    /// Records one kernel lookup of the object `host` found as `name` in `parent` and
    /// returns its inode number.
    pub fn looked_up(&mut self, parent: u64, name: &OsStr, host: HostId) -> u64 {
        if let Some(&ino) = self.by_host.get(&host) {
            if ino != ROOT {
                self.place(ino, parent, name);
            }
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.lookups += 1;
            }
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(
            ino,
            Node {
                parent,
                name: name.to_os_string(),
                host,
                lookups: 1,
                children: 0,
            },
        );
        self.by_host.insert(host, ino);
        self.adjust_children(parent, 1);
        ino
    }

    /// The object `host` now lives at `name` in `parent` (after a rename through the view).
    pub fn moved(&mut self, host: HostId, parent: u64, name: &OsStr) {
        if let Some(&ino) = self.by_host.get(&host) {
            if ino != ROOT {
                self.place(ino, parent, name);
            }
        }
    }

    /// The kernel dropped `n` lookups of `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
        }
        self.collect(ino);
    }

    fn place(&mut self, ino: u64, parent: u64, name: &OsStr) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        let old_parent = node.parent;
        node.name = name.to_os_string();
        if old_parent == parent {
            return;
        }
        node.parent = parent;
        self.adjust_children(parent, 1);
        self.adjust_children(old_parent, -1);
        self.collect(old_parent);
    }

    fn adjust_children(&mut self, ino: u64, delta: i64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.children = node.children.saturating_add_signed(delta);
        }
    }

    /// Removes `ino` and then its unreferenced ancestors.
    fn collect(&mut self, mut ino: u64) {
        while ino != ROOT {
            let Some(node) = self.nodes.get(&ino) else {
                return;
            };
            if node.lookups > 0 || node.children > 0 {
                return;
            }
            let (parent, host) = (node.parent, node.host);
            self.nodes.remove(&ino);
            if self.by_host.get(&host) == Some(&ino) {
                self.by_host.remove(&host);
            }
            self.adjust_children(parent, -1);
            ino = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_lookups_and_moves() {
        let mut t = InodeTable::new((1, 2));
        let a = t.looked_up(ROOT, OsStr::new("a"), (1, 10));
        let f = t.looked_up(a, OsStr::new("f.txt"), (1, 11));
        assert_eq!(t.info(f).map(|i| i.rel), Some(PathBuf::from("a/f.txt")));
        t.moved((1, 10), ROOT, OsStr::new("b"));
        assert_eq!(t.info(f).map(|i| i.rel), Some(PathBuf::from("b/f.txt")));
        assert_eq!(t.info(ROOT).map(|i| i.rel), Some(PathBuf::new()));
    }

    #[test]
    fn same_host_object_keeps_its_inode() {
        let mut t = InodeTable::new((1, 2));
        let x = t.looked_up(ROOT, OsStr::new("x"), (1, 5));
        let y = t.looked_up(ROOT, OsStr::new("hardlink"), (1, 5));
        assert_eq!(x, y);
        assert_eq!(t.info(x).map(|i| i.rel), Some(PathBuf::from("hardlink")));
    }

    #[test]
    fn forget_frees_nodes_but_keeps_parents_of_live_children() {
        let mut t = InodeTable::new((1, 2));
        let d = t.looked_up(ROOT, OsStr::new("d"), (1, 3));
        let f = t.looked_up(d, OsStr::new("f"), (1, 4));
        t.forget(d, 1);
        assert!(t.info(d).is_some(), "parent of a live child stays");
        assert_eq!(t.info(f).map(|i| i.rel), Some(PathBuf::from("d/f")));
        t.forget(f, 1);
        assert!(t.info(f).is_none());
        assert!(t.info(d).is_none(), "unreferenced parent collected");
        assert_eq!(t.nodes.len(), 1);
        let again = t.looked_up(ROOT, OsStr::new("d"), (1, 3));
        assert_ne!(again, d, "inode numbers are never reused");
    }
}
