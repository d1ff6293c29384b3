//! The view's inode table: FUSE inode numbers ↔ host objects and their current place
//! (parent inode + name), from which every operation recomputes the path it filters on.
//!
//! Nodes are keyed by the host identity (device, inode) so hard links and host-side renames
//! map to one FUSE inode; a node lives while the kernel holds lookups on it or a child still
//! names it as parent. The table also indexes nodes by place (parent, name) and directories
//! by their inotify watch, so a host change event finds the kernel inode it must invalidate.
//! A file node may hold its host object open ([`NodeFiles`]) until the node leaves the table.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::sync::Arc;

use super::negatives::Negatives;
use super::node_files::NodeFiles;
use super::own_creates::OwnCreates;

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
    watch: Watch,
    files: Option<Arc<NodeFiles>>,
    /// The attributes of the last reply to one of the view's own changes of this node (a
    /// create, a setattr), which the kernel holds unless something dropped them since.
    replied: Option<fuser::FileAttr>,
    /// Earlier places of the node, newest last: other names of a hard-linked file the
    /// kernel may still hold (git links `tmp_obj_*` to the object's name, and the old name
    /// may be looked up again before it is unlinked), tried when the place is gone.
    aliases: Vec<(u64, OsString)>,
}

/// Earlier places a node remembers.
const MAX_ALIASES: usize = 4;

/// Whether a directory node's children are watched for host changes (see `watch.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Not tried yet (files, and directories before their first lookup reply).
    None,
    /// inotify watch descriptor.
    Active(i32),
    /// The watch could not be added (watch limit) or was removed by the kernel.
    Failed,
}

/// A kernel-visible name of a node: (parent inode, name, inode).
pub type Place = (u64, OsString, u64);

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
    by_place: HashMap<(u64, OsString), u64>,
    by_watch: HashMap<i32, u64>,
    /// Watches of directories removed from the table, for the caller to remove from inotify.
    released: Vec<i32>,
    next: u64,
    /// Creates of the view whose events the watch has not read yet.
    pub own_creates: OwnCreates,
    /// Names the kernel may keep as absent.
    pub negatives: Negatives,
}

impl InodeTable {
    pub fn new(root_host: HostId) -> Self {
        let root = Node {
            parent: ROOT,
            name: OsString::new(),
            host: root_host,
            lookups: 1,
            children: 0,
            watch: Watch::None,
            files: None,
            replied: None,
            aliases: Vec::new(),
        };
        InodeTable {
            nodes: HashMap::from([(ROOT, root)]),
            by_host: HashMap::from([(root_host, ROOT)]),
            by_place: HashMap::new(),
            by_watch: HashMap::new(),
            released: Vec::new(),
            next: ROOT + 1,
            own_creates: OwnCreates::default(),
            negatives: Negatives::default(),
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
        self.negatives.forget(parent, name);
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
                watch: Watch::None,
                files: None,
                replied: None,
                aliases: Vec::new(),
            },
        );
        self.by_host.insert(host, ino);
        self.by_place.insert((parent, name.to_os_string()), ino);
        self.adjust_children(parent, 1);
        ino
    }

    /// The object `host` now lives at `name` in `parent` (after a rename through the view).
    pub fn moved(&mut self, host: HostId, parent: u64, name: &OsStr) {
        self.negatives.forget(parent, name);
        if let Some(&ino) = self.by_host.get(&host) {
            if ino != ROOT {
                self.place(ino, parent, name);
            }
        }
    }

    /// The earlier places of `ino` (see `Node::aliases`), newest first, with the path of
    /// their directory where it is still known.
    pub fn aliases(&self, ino: u64) -> Vec<(u64, OsString, PathBuf)> {
        let Some(node) = self.nodes.get(&ino) else {
            return Vec::new();
        };
        node.aliases
            .iter()
            .rev()
            .filter_map(|(parent, name)| {
                let dir = self.rel_path(*parent)?;
                Some((*parent, name.clone(), dir))
            })
            .collect()
    }

    /// Host identity of `ino`.
    pub fn host(&self, ino: u64) -> Option<HostId> {
        self.nodes.get(&ino).map(|n| n.host)
    }

    /// The view answered one of its own changes of `ino` with `attr`.
    pub fn set_replied(&mut self, ino: u64, attr: fuser::FileAttr) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.replied = Some(attr);
        }
    }

    /// What the view last replied to one of its own changes of `ino`.
    pub fn replied(&self, ino: u64) -> Option<fuser::FileAttr> {
        self.nodes.get(&ino)?.replied
    }

    /// Whether `attr` (from a host `lstat` of `ino`) is exactly what the view last replied
    /// to one of its own changes of `ino`.
    pub fn replied_is(&self, ino: u64, attr: &fuser::FileAttr) -> bool {
        self.nodes
            .get(&ino)
            .is_some_and(|n| n.replied.as_ref() == Some(attr))
    }

    /// The kernel dropped `n` lookups of `ino`.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(n);
        }
        self.collect(ino);
    }

    /// Watches of directories that left the table since the last call.
    pub fn take_released_watches(&mut self) -> Vec<i32> {
        std::mem::take(&mut self.released)
    }

    /// The host object `ino` holds open, if any.
    pub fn files(&self, ino: u64) -> Option<Arc<NodeFiles>> {
        self.nodes.get(&ino)?.files.clone()
    }

    /// Whether `ino` is known and holds no host object (yet, or any more).
    pub fn lacks_files(&self, ino: u64) -> bool {
        self.nodes
            .get(&ino)
            .is_some_and(|n| !n.files.as_ref().is_some_and(|f| f.holds_any()))
    }

    /// Lets `ino` hold `files` (released with the node) unless it already holds one.
    pub fn hold_files(&mut self, ino: u64, files: Arc<NodeFiles>) {
        if self.lacks_files(ino) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.files = Some(files);
            }
        }
    }

    /// The watch state of `ino` (`Watch::None` for unknown inodes).
    pub fn watch(&self, ino: u64) -> Watch {
        self.nodes.get(&ino).map_or(Watch::None, |n| n.watch)
    }

    /// Whether the kernel may cache what it knows of `ino` for long: its parent directory is
    /// watched, so every host change to its name or attributes reaches `watch.rs`.
    pub fn parent_watched(&self, ino: u64) -> bool {
        let Some(node) = self.nodes.get(&ino) else {
            return false;
        };
        let parent = if ino == ROOT { ROOT } else { node.parent };
        matches!(self.watch(parent), Watch::Active(_))
    }

    /// Records the outcome of watching directory `ino`.
    pub fn set_watch(&mut self, ino: u64, watch: Watch) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            if let Watch::Active(old) = node.watch {
                self.by_watch.remove(&old);
            }
            node.watch = watch;
            if let Watch::Active(wd) = watch {
                self.by_watch.insert(wd, ino);
            }
        }
    }

    /// The kernel removed watch `wd` (its directory was deleted or its filesystem unmounted).
    pub fn watch_removed(&mut self, wd: i32) {
        if let Some(ino) = self.by_watch.remove(&wd) {
            if let Some(node) = self.nodes.get_mut(&ino) {
                node.watch = Watch::Failed;
            }
        }
    }

    /// The directory inode watched by `wd`.
    pub fn watched_dir(&self, wd: i32) -> Option<u64> {
        self.by_watch.get(&wd).copied()
    }

    /// The inode the kernel knows as `name` in `parent`.
    pub fn at_place(&self, parent: u64, name: &OsStr) -> Option<u64> {
        self.by_place.get(&(parent, name.to_os_string())).copied()
    }

    /// Every node below `ino` (not `ino` itself), with its place.
    pub fn below(&self, ino: u64) -> Vec<Place> {
        self.nodes
            .iter()
            .filter(|(&n, _)| n != ino && n != ROOT && self.descends_from(n, ino))
            .map(|(&n, node)| (node.parent, node.name.clone(), n))
            .collect()
    }

    /// Every node but the root, with its place.
    pub fn places(&self) -> Vec<Place> {
        self.nodes
            .iter()
            .filter(|(&n, _)| n != ROOT)
            .map(|(&n, node)| (node.parent, node.name.clone(), n))
            .collect()
    }

    fn descends_from(&self, mut ino: u64, ancestor: u64) -> bool {
        for _ in 0..MAX_DEPTH {
            if ino == ancestor {
                return true;
            }
            if ino == ROOT {
                return false;
            }
            match self.nodes.get(&ino) {
                Some(node) => ino = node.parent,
                None => return false,
            }
        }
        false
    }

    fn place(&mut self, ino: u64, parent: u64, name: &OsStr) {
        let Some(node) = self.nodes.get_mut(&ino) else {
            return;
        };
        let old_parent = node.parent;
        let old = (
            old_parent,
            std::mem::replace(&mut node.name, name.to_os_string()),
        );
        node.parent = parent;
        node.aliases.retain(|a| a.0 != parent || a.1 != name);
        if old.0 != parent || old.1 != name {
            if node.aliases.len() >= MAX_ALIASES {
                node.aliases.remove(0);
            }
            node.aliases.push(old.clone());
        }
        if self.by_place.get(&old) == Some(&ino) {
            self.by_place.remove(&old);
        }
        self.by_place.insert((parent, name.to_os_string()), ino);
        if old_parent == parent {
            return;
        }
        self.adjust_children(parent, 1);
        self.adjust_children(old_parent, -1);
        self.collect(old_parent);
    }

    fn adjust_children(&mut self, ino: u64, delta: i64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.children = node.children.saturating_add_signed(delta);
        }
    }

    /// Removes `ino` and then its unreferenced ancestors (their watches go to `released`).
    fn collect(&mut self, mut ino: u64) {
        while ino != ROOT {
            let Some(node) = self.nodes.get(&ino) else {
                break;
            };
            if node.lookups > 0 || node.children > 0 {
                break;
            }
            let Some(node) = self.nodes.remove(&ino) else {
                break;
            };
            if self.by_host.get(&node.host) == Some(&ino) {
                self.by_host.remove(&node.host);
            }
            let place = (node.parent, node.name);
            if self.by_place.get(&place) == Some(&ino) {
                self.by_place.remove(&place);
            }
            if let Watch::Active(wd) = node.watch {
                self.by_watch.remove(&wd);
                self.released.push(wd);
            }
            self.negatives.forget_dir(ino);
            self.adjust_children(place.0, -1);
            ino = place.0;
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
    fn earlier_places_are_remembered_newest_first_and_bounded() {
        let mut t = InodeTable::new((1, 2));
        let f = t.looked_up(ROOT, OsStr::new("n0"), (1, 3));
        for i in 1..=6 {
            t.looked_up(ROOT, OsStr::new(&format!("n{i}")), (1, 3));
        }
        let names: Vec<OsString> = t.aliases(f).into_iter().map(|a| a.1).collect();
        assert_eq!(
            names,
            ["n5", "n4", "n3", "n2"],
            "newest first, {MAX_ALIASES} kept"
        );
        t.looked_up(ROOT, OsStr::new("n4"), (1, 3));
        let names: Vec<OsString> = t.aliases(f).into_iter().map(|a| a.1).collect();
        assert_eq!(names, ["n6", "n5", "n3", "n2"], "the place is no alias");
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

    #[test]
    fn places_and_watches_are_indexed_and_released_with_their_node() {
        let mut t = InodeTable::new((1, 2));
        t.set_watch(ROOT, Watch::Active(1));
        let d = t.looked_up(ROOT, OsStr::new("d"), (1, 3));
        let f = t.looked_up(d, OsStr::new("f"), (1, 4));
        assert!(t.parent_watched(d) && !t.parent_watched(f));
        t.set_watch(d, Watch::Active(2));
        assert!(t.parent_watched(f));
        assert_eq!(t.watched_dir(2), Some(d));
        assert_eq!(t.at_place(d, OsStr::new("f")), Some(f));
        assert_eq!(t.below(ROOT).len(), 2);
        assert_eq!(t.below(d), vec![(d, OsString::from("f"), f)]);
        t.moved((1, 4), ROOT, OsStr::new("g"));
        assert_eq!(t.at_place(d, OsStr::new("f")), None);
        assert_eq!(t.at_place(ROOT, OsStr::new("g")), Some(f));
        t.forget(d, 1);
        assert_eq!(t.take_released_watches(), vec![2]);
        assert_eq!(t.watched_dir(2), None);
        t.watch_removed(1);
        assert_eq!(t.watch(ROOT), Watch::Failed);
        assert_eq!(t.places(), vec![(ROOT, OsString::from("g"), f)]);
    }
}
