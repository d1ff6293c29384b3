//! Inside the helper container: entering the network namespace of PID 1 (the VM's or the
//! host's init, visible thanks to `--pid=host`), where the runtime's bridges and the
//! filtering that matters live, and finding out what that host's firewall needs.
//!
//! Only the network namespace is entered: `nft` and its libraries are the container's own,
//! so the mount namespace stays ours. `setns` changes the calling thread only, so this runs
//! first thing in `main`, before any thread exists; every thread and child after inherits it.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

use crate::firewall::Nft;
use alca_ruleset::HostQuirks;

/// The network namespace the helper applies rules in.
pub const HOST_NET_NS: &str = "/proc/1/ns/net";
/// OrbStack's own table in its VM; its forward chain offloads flows to a flowtable.
pub const ORBSTACK_TABLE: &str = "orbstack";

/// Where the helper ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostNet {
    /// Moved into PID 1's network namespace.
    Entered,
    /// Already there (`--net=host` on a plain Linux host).
    AlreadyThere,
    /// PID 1's namespace may not be opened (a sandboxed init that even CAP_SYS_PTRACE may not
    /// inspect): the helper stays in its own, which `--net=host` makes the runtime's own
    /// namespace — where the runtime creates the project bridges.
    Denied,
}

/// Moves this (still single-threaded) process into PID 1's network namespace.
pub fn enter_host_net() -> std::io::Result<HostNet> {
    let own = std::fs::metadata("/proc/self/ns/net")?;
    let host = match std::fs::metadata(HOST_NET_NS) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(HostNet::Denied),
        Err(e) => return Err(e),
    };
    if (own.dev(), own.ino()) == (host.dev(), host.ino()) {
        return Ok(HostNet::AlreadyThere);
    }
    let ns = File::open(HOST_NET_NS)?;
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
    Ok(HostNet::Entered)
}

/// The platform the helper was installed for (`$ALCA_HELPER_PLATFORM`).
pub fn platform() -> String {
    std::env::var(alca_contract::helper_protocol::PLATFORM_ENV).unwrap_or_default()
}

/// What the host needs, from the platform and from the tables that exist now.
pub fn detect_quirks(nft: &Nft, platform: &str) -> HostQuirks {
    let orbstack = platform == "orbstack" || nft.has_table("inet", ORBSTACK_TABLE);
    HostQuirks {
        flowtable_offload: orbstack,
    }
}

/// Waits (bounded) until nftables answers and, on OrbStack, until OrbStack has set up its own
/// table: rules applied before that would be flushed or ordered before a chain that is not
/// there yet. Returns whether the host became ready.
pub fn wait_until_ready(nft: &Nft, platform: &str) -> bool {
    for _ in 0..60 {
        let ready = nft.has_table_listing()
            && (platform != "orbstack" || nft.has_table("inet", ORBSTACK_TABLE));
        if ready {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}
