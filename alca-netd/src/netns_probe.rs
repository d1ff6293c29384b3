//! `alca up`'s quick verify without an exec into the container: the daemon connects to each
//! TCP target from threads that entered the network namespace of the project's container, once
//! [`crate::links::netns_on_bridge`] showed that namespace is plugged into the project's bridge.
//!
//! The packets leave by the container's own interface and routes and cross the host's rules
//! exactly as the container's would, so the caller learns nothing its container could not find
//! out by itself; only connects are made (no listening, no raw sockets), bounded in number and
//! time.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use serde::{Deserialize, Serialize};

use crate::compile::PROBE_SIZE;
use crate::lan::Proto;
use crate::observe::{Key, LiveCheck, Outcome};

/// How long one connect may take; a target the rules (or the fence) drop costs this much.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The interface link-local targets are reached through (the container's end of its veth).
const CONTAINER_IF: &str = "eth0";

/// What one connect saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seen {
    Connected,
    /// TCP reset.
    Refused,
    /// Nothing came back in time.
    TimedOut,
    /// An ICMP error or no route; the system's message.
    Unreachable(String),
}

/// The reply of `ProbeFrom`: the check of the live rules, what each target saw (in request
/// order; empty when the fence was not in place, so nothing was probed) and the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub check: LiveCheck,
    pub seen: Vec<Seen>,
    pub outcome: Outcome,
}

/// Why a target list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("targets: not a valid target list: {0}")]
    Json(String),
    #[error("targets: {0} is more than the limit of {PROBE_SIZE}")]
    TooMany(usize),
    #[error("targets: {0:?} is not a TCP destination with a port")]
    NotTcp(Key),
}

/// Decodes and bounds the targets a client asks the daemon to connect to.
pub fn decode_targets(json: &str) -> Result<Vec<Key>, TargetError> {
    let targets: Vec<Key> =
        serde_json::from_str(json).map_err(|e| TargetError::Json(e.to_string()))?;
    if targets.len() > PROBE_SIZE as usize {
        return Err(TargetError::TooMany(targets.len()));
    }
    if let Some(bad) = targets
        .iter()
        .find(|k| k.proto != Proto::Tcp || k.port == 0)
    {
        return Err(TargetError::NotTcp(*bad));
    }
    Ok(targets)
}

/// The network namespace of process `pid`, held open so it cannot change under the checks.
pub fn open_netns(pid: u32) -> io::Result<File> {
    File::open(format!("/proc/{pid}/ns/net"))
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
    use crate::observe::tests::key;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    #[test]
    fn only_bounded_tcp_targets_with_ports_are_accepted() {
        let ok = serde_json::to_string(&[key("10.0.0.1", 22)]).unwrap();
        assert_eq!(decode_targets(&ok).unwrap(), vec![key("10.0.0.1", 22)]);
        let udp = Key {
            proto: Proto::Udp,
            ..key("10.0.0.1", 53)
        };
        let udp = serde_json::to_string(&[udp]).unwrap();
        assert!(matches!(decode_targets(&udp), Err(TargetError::NotTcp(_))));
        let zero = serde_json::to_string(&[key("10.0.0.1", 0)]).unwrap();
        assert!(matches!(decode_targets(&zero), Err(TargetError::NotTcp(_))));
        let many = vec![key("10.0.0.1", 22); PROBE_SIZE as usize + 1];
        let many = serde_json::to_string(&many).unwrap();
        assert!(matches!(
            decode_targets(&many),
            Err(TargetError::TooMany(_))
        ));
        assert!(matches!(decode_targets("{}"), Err(TargetError::Json(_))));
    }

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
}
