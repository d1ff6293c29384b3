//! The test "internet" DNS server for the `internet-access` suites: a zone of `.test` names
//! (RFC 6761) served on UDP and TCP port 53 of the test host 192.88.99.2 inside the `lanhost`
//! netns, so a query a container sends straight to that address would reach it unless the
//! project's rules send it to the project's resolver. Never a real name, never a real resolver.
//! Also the busybox `nslookup` run in a container that asks it, and the reading of its answer.

use std::net::{IpAddr, SocketAddr};

use alca_dns::static_zone::{Seen, Zone, ZoneServer};
use anyhow::{anyhow, Context, Result};

use crate::docker::exec_sh;
use crate::netns::{assert_route_via, LANHOST_NS, LAN_VETH, PUBLIC4};

/// A zone server running in `lanhost`; stops (its sockets close) on drop.
pub struct LanhostZone {
    /// Where it answers: `192.88.99.2:53`.
    pub addr: SocketAddr,
    /// The names it was asked.
    pub seen: Seen,
    _runtime: tokio::runtime::Runtime,
}

impl LanhostZone {
    /// Serves `zone` on [`PUBLIC4`]:53 inside [`LANHOST_NS`]. The sockets are made on a thread
    /// that entered the namespace; the runtime that serves them runs anywhere.
    pub fn start(zone: Zone) -> Result<LanhostZone> {
        assert_route_via(PUBLIC4, LAN_VETH);
        let public: IpAddr = PUBLIC4.parse()?;
        let netns = std::fs::File::open(format!("/run/netns/{LANHOST_NS}"))
            .with_context(|| format!("opening the {LANHOST_NS} netns"))?;
        std::thread::spawn(move || -> Result<LanhostZone> {
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| anyhow!("entering {LANHOST_NS}: {e}"))?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let server = runtime
                .block_on(ZoneServer::start(SocketAddr::new(public, 53), zone))
                .context("binding the zone server to 192.88.99.2:53 in lanhost")?;
            let (addr, seen) = (server.addr, server.seen.clone());
            runtime.spawn(server.run());
            Ok(LanhostZone {
                addr,
                seen,
                _runtime: runtime,
            })
        })
        .join()
        .map_err(|_| anyhow!("the zone thread panicked"))?
    }
}

/// `nslookup [-type=QTYPE] NAME 192.88.99.2` in the running container `name`: addressed to the
/// zone server itself (the rules of a project with a list send it to the project's resolver).
/// What it printed, stdout and stderr together.
pub fn nslookup(container: &str, qtype: Option<&str>, name: &str) -> String {
    let qtype = qtype.map(|t| format!("-type={t} ")).unwrap_or_default();
    exec_sh(
        container,
        &format!("nslookup {qtype}-timeout=3 {name} {PUBLIC4} 2>&1; true"),
    )
    .unwrap_or_default()
}

/// Whether the answer part of busybox nslookup's `output` gives `addr`.
pub fn answers_with(output: &str, addr: &str) -> bool {
    output
        .split("Name:")
        .skip(1)
        .any(|part| part.contains(addr))
}

/// Asserts the four internet rows of `alca network verify` passed for a list allowing
/// `allowed.test`, with 192.88.99.1 routed to `lanhost` as the outside server.
pub fn assert_verify_internet_rows(report: &str) {
    for row in [
        "ok    internet-access name allowed.test",
        "ok    internet-access refused name",
        "ok    internet address no name resolved to",
        "ok    DNS over TLS to an outside server",
    ] {
        assert!(report.contains(row), "{row:?} missing: {report}");
    }
}
