//! Daemon side of rootless isolation: a project's rules applied INSIDE the network namespace
//! of a rootless container (Podman with slirp4netns), whose traffic never crosses the host's
//! rules (docs/rootless.md).
//!
//! The namespace is entered the way `ProbeFrom` enters one ([`crate::netns_probe`]): a pidfd
//! pins the caller's process first, `/proc/<pid>/ns/net` is opened, the process is checked to be
//! alive still (so the pid was not reused in between), and then the namespace itself (by file
//! descriptor) is checked: its user namespace must be owned by the calling uid (a rootless
//! runtime creates the container's namespaces inside the user's own user namespace), and it must
//! not be the daemon's own. So a user can put rules only into namespaces that are his anyway,
//! never another user's or the host's; which of his containers is the project's is his word
//! (he can only restrict himself with it).
//!
//! The table is written with the owner flag (and persist, as the daemon's host tables) from a
//! netlink socket opened inside that namespace, by a thread that entered it and ended. The
//! socket owns the table, so nothing in the container, not even a process holding NET_ADMIN
//! there, can flush, delete or change it; it is kept open, one per project, for as long as the
//! container's process lives (a pidfd tells), and dropped after (the socket pins its
//! namespace). When the daemon stops, its sockets close: persistent tables stay, orphaned (a
//! NET_ADMIN container could then remove them), and the daemon no longer vouches for them:
//! [`NetnsRules::applied`] answers no until the next Apply re-owns the table, so `alca run`
//! fails closed until `alca up` runs again.
//!
//! The daemon also HOLDS each project's spec (given before `podman init`, and by every
//! apply) until `Remove`: a rootless container's OCI hook (`alca-netd --oci-hook`, at its
//! `createRuntime` stage) asks for it to be applied in each new namespace, so a restart behind
//! alca's back has its rules before its command runs. Held specs live only in memory: after a
//! daemon restart the hook finds none and fails, and so does the container's start, until
//! `alca up` hands the spec over again.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use nix::sched::{setns, CloneFlags};

use crate::netns_probe::{open_proc_netns, pidfd_open};
use alca_contract::errors::NetdError;
use alca_contract::net_spec::{table_name, NetSpec};
use alca_kernel::tables::TableOwner;
use alca_kernel::{self as nfnl, ruleset};
use alca_ruleset::Ruleset;

/// Most container namespaces one user may have rules in at a time.
pub const MAX_PER_USER: usize = 64;
/// Most container namespaces with rules on the host.
pub const MAX_TOTAL: usize = 900;

/// `NS_GET_USERNS` and `NS_GET_OWNER_UID` (`linux/nsfs.h`: `_IO(0xb7, 1)` and `_IO(0xb7, 4)`);
/// neither libc nor nix names them.
const NS_GET_USERNS: libc::c_ulong = 0xb701;
const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;

/// Which namespace: device and inode of its nsfs file, stable for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsId {
    dev: u64,
    ino: u64,
}

impl NsId {
    fn of(file: &File) -> io::Result<NsId> {
        let meta = file.metadata()?;
        Ok(NsId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }
}

/// Why a process's namespace was not taken.
#[derive(Debug, thiserror::Error)]
pub enum NetnsRefusal {
    #[error("pid: no process {0} ({1})")]
    NoProcess(u32, io::Error),
    #[error("pid: cannot open the network namespace of process {0}: {1}")]
    Open(u32, io::Error),
    #[error(
        "pid: the network namespace of process {pid} belongs to uid {owner}, not to the caller \
         (uid {caller}); only the user whose rootless container it is may put rules there"
    )]
    NotOwned { pid: u32, owner: u32, caller: u32 },
    #[error("pid: process {0} is in the host's network namespace, not in a rootless container's")]
    HostNamespace(u32),
}

/// A container's network namespace [`open_owned`] took: the open namespace, its id, and the
/// pidfd of its process.
pub type OwnedNetns = (File, NsId, OwnedFd);

/// The network namespace of process `pid`, opened for `caller` only if it is a rootless
/// container's namespace of the caller's (see the module doc); with its id and the pidfd that
/// tells when the process is gone.
pub fn open_owned(pid: u32, caller: u32) -> Result<OwnedNetns, NetnsRefusal> {
    let pidfd = pidfd_open(pid).map_err(|e| NetnsRefusal::NoProcess(pid, e))?;
    let netns = open_proc_netns(pid).map_err(|e| NetnsRefusal::Open(pid, e))?;
    if !alive(&pidfd) {
        return Err(NetnsRefusal::NoProcess(
            pid,
            io::Error::from_raw_os_error(libc::ESRCH),
        ));
    }
    let id = NsId::of(&netns).map_err(|e| NetnsRefusal::Open(pid, e))?;
    let own = File::open("/proc/self/ns/net")
        .and_then(|f| NsId::of(&f))
        .map_err(|e| NetnsRefusal::Open(pid, e))?;
    if id == own {
        return Err(NetnsRefusal::HostNamespace(pid));
    }
    let owner = owner_uid(&netns).map_err(|e| NetnsRefusal::Open(pid, e))?;
    if caller != 0 && owner != caller {
        return Err(NetnsRefusal::NotOwned { pid, owner, caller });
    }
    Ok((netns, id, pidfd))
}

/// Whether the process of `pidfd` still runs: a pidfd turns readable when it exits. (Signal 0
/// would need CAP_KILL, which the daemon's unit does not keep, for another user's process.)
fn alive(pidfd: &OwnedFd) -> bool {
    let mut fds = [libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: one valid pollfd, zero timeout.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    rc == 0
}

/// The uid that created the user namespace owning `netns`.
fn owner_uid(netns: &File) -> io::Result<u32> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd (or -1).
    let userns = unsafe { libc::ioctl(netns.as_raw_fd(), NS_GET_USERNS) };
    if userns < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    let userns = unsafe { OwnedFd::from_raw_fd(userns) };
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer, which lives across the call.
    let rc = unsafe { libc::ioctl(userns.as_raw_fd(), NS_GET_OWNER_UID, &mut uid) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

/// Runs `f` on a thread of its own that entered `netns` (`setns` moves only the calling thread,
/// and the thread ends with `f`, so nothing else of the daemon ever runs in there). Sockets `f`
/// opens belong to `netns` for their whole life.
fn inside<T: Send>(netns: &File, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread failed")))
    })
}

/// One project's rules in one container namespace.
struct Entry {
    owner_uid: u32,
    netns: NsId,
    /// The spec the table was compiled from (what `network verify` judges against).
    spec: NetSpec,
    /// The socket that owns the table (opened inside the namespace).
    conn: nfnl::Connection,
    /// The container's process: once it is gone the entry is dropped.
    pidfd: OwnedFd,
}

/// The projects whose rules live in container namespaces, each with its owning socket, and
/// the specs held for their next namespaces.
#[derive(Default)]
pub struct NetnsRules {
    entries: Mutex<HashMap<String, Entry>>,
    held: Mutex<HashMap<String, Held>>,
}

/// A project's spec kept for its container's next namespace.
struct Held {
    owner_uid: u32,
    spec: NetSpec,
}

impl NetnsRules {
    /// Applies `batch` (the [`alca_ruleset::replace_batch_in_netns`] of `spec`) inside
    /// `netns` for `owner_uid`, owned as `owner` says. The same namespace reuses its socket; a new
    /// one (the container restarted) gets a new socket, and the old one is closed.
    #[allow(clippy::too_many_arguments)]
    pub fn apply(
        &self,
        spec: &NetSpec,
        owner_uid: u32,
        (netns, id, pidfd): (File, NsId, OwnedFd),
        batch: &Ruleset,
        owner: TableOwner,
    ) -> Result<(), NetdError> {
        crate::firewall::ensure_only_alca(batch).map_err(|e| NetdError::Internal(e.to_string()))?;
        let messages = ruleset::owned_messages(batch, owner)
            .map_err(|e| NetdError::Internal(e.to_string()))?;
        let mut entries = self.lock();
        sweep(&mut entries);
        if let Some(e) = entries.get(&spec.project) {
            if e.owner_uid != owner_uid {
                return Err(not_owner(&spec.project, e.owner_uid));
            }
            if e.netns == id {
                e.conn.transact(&messages).map_err(apply_failed)?;
                if let Some(e) = entries.get_mut(&spec.project) {
                    e.spec = spec.clone();
                }
                return Ok(());
            }
        }
        let mine = entries
            .values()
            .filter(|e| e.owner_uid == owner_uid)
            .count();
        let new = !entries.contains_key(&spec.project);
        if new && (entries.len() >= MAX_TOTAL || (owner_uid != 0 && mine >= MAX_PER_USER)) {
            return Err(NetdError::LimitReached(format!(
                "rules in at most {MAX_PER_USER} rootless containers per user and \
                 {MAX_TOTAL} on the host; remove a project first (`alca down`)"
            )));
        }
        let conn = nfnl::Connection::default();
        // The first transaction opens the socket, inside the namespace.
        inside(&netns, || conn.transact(&messages)).map_err(apply_failed)?;
        entries.insert(
            spec.project.clone(),
            Entry {
                owner_uid,
                netns: id,
                spec: spec.clone(),
                conn,
                pidfd,
            },
        );
        Ok(())
    }

    /// Keeps `spec` for `owner_uid` (who owns the project, [`crate::daemon::Daemon::netns_batch`]
    /// checked) until [`NetnsRules::forget`]: what [`NetnsRules::held`] gives the container's
    /// hook at each start.
    pub fn hold(&self, spec: &NetSpec, owner_uid: u32) -> Result<(), NetdError> {
        let mut held = self.lock_held();
        if let Some(h) = held.get(&spec.project) {
            if h.owner_uid != owner_uid {
                return Err(not_owner(&spec.project, h.owner_uid));
            }
        } else {
            let mine = held.values().filter(|h| h.owner_uid == owner_uid).count();
            if held.len() >= MAX_TOTAL || (owner_uid != 0 && mine >= MAX_PER_USER) {
                return Err(NetdError::LimitReached(format!(
                    "rules for at most {MAX_PER_USER} rootless containers per user and \
                     {MAX_TOTAL} on the host; remove a project first (`alca down`)"
                )));
            }
        }
        held.insert(
            spec.project.clone(),
            Held {
                owner_uid,
                spec: spec.clone(),
            },
        );
        Ok(())
    }

    /// The spec held for `project`, if `caller` may apply it (its owner, or root). None held
    /// is an error that says how to hand it over again (a daemon restart forgets them).
    pub fn held(&self, project: &str, caller: u32) -> Result<NetSpec, NetdError> {
        let held = self.lock_held();
        let Some(h) = held.get(project) else {
            return Err(NetdError::InvalidRequest(format!(
                "no rules are held for project {project} (the network helper restarted, or \
                 the project was removed): its rootless container cannot start isolated; run \
                 `alca up` in the project"
            )));
        };
        if caller != 0 && h.owner_uid != caller {
            return Err(not_owner(project, h.owner_uid));
        }
        Ok(h.spec.clone())
    }

    /// The spec whose rules are in `netns` right now, if they are: it is the namespace they
    /// were applied to by this daemon (whose socket still owns them) and the table is there.
    /// Nothing but this daemon can change an owned table, so it is exactly that spec's.
    pub fn applied_spec(
        &self,
        project: &str,
        caller: u32,
        (netns, id, _pidfd): (File, NsId, OwnedFd),
    ) -> Result<Option<NetSpec>, NetdError> {
        let mut entries = self.lock();
        sweep(&mut entries);
        let Some(e) = entries.get(project) else {
            return Ok(None);
        };
        if caller != 0 && e.owner_uid != caller {
            return Err(not_owner(project, e.owner_uid));
        }
        if e.netns != id {
            return Ok(None);
        }
        let table = table_name(project);
        let present = inside(&netns, || {
            alca_kernel::table_names::inet_table_exists(&table)
        })
        .map_err(|e| NetdError::Internal(format!("cannot read the container's tables: {e}")))?;
        Ok(present.then(|| e.spec.clone()))
    }

    /// Forgets the project (closing its socket: the container is going away) and its held
    /// spec.
    pub fn forget(&self, project: &str, caller: u32) -> Result<(), NetdError> {
        let mut entries = self.lock();
        let mut held = self.lock_held();
        let owner = entries
            .get(project)
            .map(|e| e.owner_uid)
            .or_else(|| held.get(project).map(|h| h.owner_uid));
        match owner {
            Some(owner) if caller != 0 && owner != caller => Err(not_owner(project, owner)),
            _ => {
                entries.remove(project);
                held.remove(project);
                Ok(())
            }
        }
    }

    /// The owner of the project's rules in a container namespace, if it has any.
    pub fn owner(&self, project: &str) -> Option<u32> {
        self.lock().get(project).map(|e| e.owner_uid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Always taken after [`NetnsRules::lock`] when both are held.
    fn lock_held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Drops the entries whose container process is gone (their sockets pin dead namespaces).
fn sweep(entries: &mut HashMap<String, Entry>) {
    entries.retain(|_, e| alive(&e.pidfd));
}

fn not_owner(project: &str, owner: u32) -> NetdError {
    NetdError::NotOwner(format!(
        "project {project} belongs to uid {owner}; only that user or root may change it"
    ))
}

fn apply_failed(e: io::Error) -> NetdError {
    NetdError::ApplyFailed(format!("in the container's network namespace: {e}"))
}

/// Why `spec` cannot be applied inside a rootless container's namespace, if it cannot.
pub fn spec_problem(spec: &NetSpec) -> Option<String> {
    if spec.proxy.is_some() {
        return Some(
            "proxy: a rootless container reaches the host through slirp4netns, whose host-side \
             connections do not carry the original destination a transparent proxy reads; \
             unset network.proxy or use a rootful runtime"
                .to_string(),
        );
    }
    // The in-namespace ruleset has no resolver path or allow sets yet: refuse rather than
    // leave the internet open that the project asked to limit.
    spec.internet.as_ref().map(|_| {
        format!(
            "internet: network.internet-access is not supported for rootless containers yet \
             (project {}); use a rootful runtime or internet-access = [\"*\"]",
            spec.project
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_own_namespace_and_missing_processes_are_refused() {
        let me = std::process::id();
        assert!(matches!(
            open_owned(me, 0),
            Err(NetnsRefusal::HostNamespace(_))
        ));
        assert!(matches!(
            open_owned(u32::MAX - 1, 0),
            Err(NetnsRefusal::NoProcess(..))
        ));
    }

    #[test]
    fn the_owner_of_our_own_namespace_is_read() {
        let netns = File::open("/proc/self/ns/net").unwrap();
        // The initial user namespace's owner is uid 0.
        assert_eq!(owner_uid(&netns).unwrap(), 0);
    }

    #[test]
    fn a_held_spec_is_given_to_its_owner_only_until_forgotten() {
        let rules = NetnsRules::default();
        let spec = alca_contract::net_spec::sample_spec();
        assert!(matches!(
            rules.held(&spec.project, 1001),
            Err(NetdError::InvalidRequest(m)) if m.contains("alca up")
        ));
        rules.hold(&spec, 1001).unwrap();
        assert_eq!(rules.held(&spec.project, 1001).unwrap(), spec);
        assert_eq!(rules.held(&spec.project, 0).unwrap(), spec);
        assert!(matches!(
            rules.held(&spec.project, 1002),
            Err(NetdError::NotOwner(_))
        ));
        assert!(matches!(
            rules.hold(&spec, 1002),
            Err(NetdError::NotOwner(_))
        ));
        assert!(matches!(
            rules.forget(&spec.project, 1002),
            Err(NetdError::NotOwner(_))
        ));
        rules.forget(&spec.project, 1001).unwrap();
        assert!(rules.held(&spec.project, 1001).is_err());
    }

    #[test]
    fn held_specs_are_bounded_per_user() {
        let rules = NetnsRules::default();
        let mut spec = alca_contract::net_spec::sample_spec();
        for n in 0..MAX_PER_USER {
            spec.project = format!("{n:032x}");
            rules.hold(&spec, 1001).unwrap();
        }
        spec.project = format!("{:032x}", MAX_PER_USER);
        assert!(matches!(
            rules.hold(&spec, 1001),
            Err(NetdError::LimitReached(_))
        ));
        rules.hold(&spec, 1002).unwrap();
    }

    #[test]
    fn a_proxy_is_refused_with_the_field_named() {
        let mut spec = alca_contract::net_spec::sample_spec();
        assert_eq!(spec_problem(&spec), None);
        spec.proxy = Some("10.0.0.1:3128".parse().unwrap());
        assert!(spec_problem(&spec).unwrap().starts_with("proxy:"));
    }
}
