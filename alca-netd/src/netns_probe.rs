//! `alca up`'s quick verify without an exec into the container: the daemon connects to each
//! TCP target from threads that entered the network namespace of the project's container, once
//! [`open_on_bridge`] showed (by pid, before opening anything) that the namespace is plugged
//! into the project's bridge.
//!
//! The packets leave by the container's own interface and routes and cross the host's rules
//! exactly as the container's would, so the caller learns nothing its container could not find
//! out by itself; only connects are made (no listening, no raw sockets), bounded in number and
//! time.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use crate::bridge_links::{netns_on_bridge, pid_on_bridge, LinkError};
use alca_contract::probe::{Key, Seen};

/// How long one connect may take; a target the rules (or the fence) drop costs this much.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The interface link-local targets are reached through (the container's end of its veth).
const CONTAINER_IF: &str = "eth0";

/// Why the namespace of a process was not opened (or not kept).
#[derive(Debug, thiserror::Error)]
pub enum NetnsRefusal {
    #[error("pid: no process {0} ({1})")]
    NoProcess(u32, io::Error),
    #[error("pid: process {pid} is not in a container on bridge {bridge}")]
    NotOnBridge { pid: u32, bridge: String },
    #[error("pid: cannot open the network namespace of {0}: {1}")]
    Open(u32, io::Error),
    #[error("pid: {0}")]
    Links(#[from] LinkError),
}

/// The network namespace of process `pid`, opened (by `open`) only after the kernel said, by
/// pid, that the process hangs off `bridge`: a caller naming any other process (another
/// user's, the host's) is refused before anything of it is opened. A pidfd taken first pins
/// the process: if it is still alive after the open, the pid was not reused in between. The
/// open namespace is then checked again by file descriptor (the one the probe will enter).
pub async fn open_on_bridge(
    pid: u32,
    bridge: &str,
    open: impl FnOnce(u32) -> io::Result<File>,
) -> Result<File, NetnsRefusal> {
    let not_on_bridge = || NetnsRefusal::NotOnBridge {
        pid,
        bridge: bridge.to_string(),
    };
    let pidfd = pidfd_open(pid).map_err(|e| NetnsRefusal::NoProcess(pid, e))?;
    if !pid_on_bridge(pid, bridge).await? {
        return Err(not_on_bridge());
    }
    let netns = open(pid).map_err(|e| NetnsRefusal::Open(pid, e))?;
    if let Err(e) = pidfd_signal0(&pidfd) {
        return Err(NetnsRefusal::NoProcess(pid, e));
    }
    if !netns_on_bridge(&netns, bridge).await? {
        return Err(not_on_bridge());
    }
    Ok(netns)
}

/// `/proc/<pid>/ns/net`, the production opener of [`open_on_bridge`].
pub fn open_proc_netns(pid: u32) -> io::Result<File> {
    File::open(format!("/proc/{pid}/ns/net"))
}

/// `pidfd_open(2)` (nix has no wrapper for it): a handle on the process itself, not its pid.
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Signal 0 through the pidfd: fails once the process has exited.
fn pidfd_signal0(pidfd: &OwnedFd) -> io::Result<()> {
    // SAFETY: a valid pidfd, signal 0, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Connects to every target from inside `netns`, all at once; one result per target, in order.
pub fn connect_all(netns: &File, targets: &[Key]) -> Vec<Seen> {
    std::thread::scope(|scope| {
        let probes: Vec<_> = targets
            .iter()
            .map(|key| scope.spawn(move || connect_from(netns, key)))
            .collect();
        probes
            .into_iter()
            .map(|p| {
                p.join()
                    .unwrap_or_else(|_| Seen::Unreachable("the probe thread failed".into()))
            })
            .collect()
    })
}

/// Runs on a thread of its own: `setns` moves only the calling thread, and the thread ends
/// with the probe, so nothing else of the daemon ever runs in the container's namespace.
fn connect_from(netns: &File, key: &Key) -> Seen {
    if let Err(e) = setns(netns.as_fd(), CloneFlags::CLONE_NEWNET) {
        return Seen::Unreachable(format!(
            "cannot enter the container's network namespace: {e}"
        ));
    }
    let scope = || nix::net::if_::if_nametoindex(CONTAINER_IF).unwrap_or(0);
    classify(TcpStream::connect_timeout(
        &socket_addr(key, scope),
        CONNECT_TIMEOUT,
    ))
}

/// The address to connect to; a link-local IPv6 target gets the container interface's scope.
fn socket_addr(key: &Key, scope: impl Fn() -> u32) -> SocketAddr {
    match key.addr {
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => {
            SocketAddr::V6(SocketAddrV6::new(a, key.port, 0, scope()))
        }
        addr => SocketAddr::new(addr, key.port),
    }
}

fn classify(result: io::Result<TcpStream>) -> Seen {
    match result {
        Ok(_) => Seen::Connected,
        Err(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => Seen::Refused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Seen::TimedOut,
            _ => Seen::Unreachable(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::key;
    use std::net::TcpListener;

    #[test]
    fn link_local_targets_get_the_container_interface_scope() {
        let SocketAddr::V6(ll) = socket_addr(&key("fe80::1", 22), || 7) else {
            panic!("not v6");
        };
        assert_eq!(ll.scope_id(), 7);
        assert_eq!(
            socket_addr(&key("fd00::1", 22), || 7).to_string(),
            "[fd00::1]:22"
        );
    }

    /// A loopback TCP port, bound without a listener for as long as the socket is kept.
    fn bound_not_listening() -> (std::os::fd::OwnedFd, SocketAddr) {
        use nix::sys::socket::{
            bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn,
        };
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
        let port = getsockname::<SockaddrIn>(fd.as_raw_fd()).unwrap().port();
        (fd, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn connects_are_classified_from_what_the_kernel_answered() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        assert_eq!(classify(TcpStream::connect(open)), Seen::Connected);
        // A port bound but not listening answers with a reset. It stays bound during the
        // connect: a freed ephemeral port could be picked as the connect's own source port,
        // and a TCP socket connecting to itself succeeds.
        let (_bound, closed) = bound_not_listening();
        assert_eq!(classify(TcpStream::connect(closed)), Seen::Refused);
        let unreachable = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert!(matches!(classify(Err(unreachable)), Seen::Unreachable(_)));
        let slow = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(classify(Err(slow)), Seen::TimedOut);
    }

    /// A process that is not on the bridge is refused before its namespace is opened: the
    /// opener is never called (for a live process of ours, and for a pid that does not exist).
    #[tokio::test]
    async fn a_foreign_pid_is_refused_before_its_namespace_is_opened() {
        let opened = std::cell::Cell::new(0);
        let open = |_| {
            opened.set(opened.get() + 1);
            Err(io::Error::other("must not be called"))
        };
        let err = open_on_bridge(std::process::id(), "alca-zz-none", open)
            .await
            .unwrap_err();
        assert!(matches!(err, NetnsRefusal::NotOnBridge { .. }), "{err}");
        let err = open_on_bridge(u32::MAX - 1, "alca-zz-none", |_| {
            opened.set(opened.get() + 1);
            Err(io::Error::other("must not be called"))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, NetnsRefusal::NoProcess(..)), "{err}");
        assert_eq!(opened.get(), 0);
    }
}
