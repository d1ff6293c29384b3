//! The `.test` zone the internet-access suites (Podman, proxy) serve as the projects'
//! `dns-upstream`: a hickory zone server on loopback whose names resolve to the test
//! "internet" host ([`PUBLIC4`] in the `lanhost` netns), and busybox `nslookup` run in a
//! container with a reading of its answer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use alca_dns::static_zone::{Seen, Zone, ZoneServer};

use crate::docker::exec_sh_in;
use crate::netns::PUBLIC4;

/// A zone server on loopback, on its own runtime thread; stops when dropped.
pub struct TestZone {
    pub addr: SocketAddr,
    /// The names it was asked for.
    pub seen: Seen,
    _rt: tokio::runtime::Runtime,
}

impl TestZone {
    /// `allowed.test`, `blocked.test`, `a.wild.test`, `wild.test`, `cdn.unlisted.test` →
    /// [`PUBLIC4`]; `cname.test` → CNAME `cdn.unlisted.test`. TTL 60 s.
    pub fn start() -> TestZone {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let public: IpAddr = PUBLIC4.parse().expect("ip");
        let zone = Zone::new()
            .addr("allowed.test", public, 60)
            .addr("blocked.test", public, 60)
            .addr("a.wild.test", public, 60)
            .addr("wild.test", public, 60)
            .cname("cname.test", "cdn.unlisted.test", 60)
            .addr("cdn.unlisted.test", public, 60);
        let server = rt
            .block_on(ZoneServer::start((Ipv4Addr::LOCALHOST, 0).into(), zone))
            .expect("zone server");
        let (addr, seen) = (server.addr, server.seen.clone());
        rt.spawn(server.run());
        TestZone {
            addr,
            seen,
            _rt: rt,
        }
    }

    /// Whether the zone was ever asked for `name`.
    pub fn asked_for(&self, name: &str) -> bool {
        self.seen.names().iter().any(|n| n.starts_with(name))
    }
}

/// `nslookup NAME [SERVER]` in the container through the runtime CLI `cli`; without a server
/// the container's own resolv.conf decides where the query goes.
pub fn nslookup(cli: &str, container: &str, name: &str, server: Option<&str>) -> String {
    let server = server.unwrap_or_default();
    exec_sh_in(
        cli,
        container,
        &format!("nslookup -timeout=3 {name} {server} 2>&1; true"),
    )
    .unwrap_or_default()
}

/// Whether the answer part of busybox nslookup's output gives `addr`.
pub fn answered_with(output: &str, addr: &str) -> bool {
    output
        .split("Name:")
        .skip(1)
        .any(|part| part.contains(addr))
}
