//! Bench (bench/dns.sh): the latency the project resolver adds to a DNS answer, against asking
//! the same upstream directly, on loopback only: an in-process `.test` zone server as the
//! upstream, the resolver in front of it with a sink that accepts at once (the daemon's own
//! `AllowResolved` time is bench/netd.sh's). Rounds interleave direct and resolved queries so a
//! change in machine load hits both alike. Prints p50 and p99 of each and their ratio.
//!
//! `cargo run --release -p alca-dns --example resolver_latency [QUERIES]`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use alca_contract::internet::{parse_internet_entry, ResolvedAddrs};
use alca_dns::query_log::QueryLog;
use alca_dns::static_zone::{Zone, ZoneServer};
use alca_dns::upstream::ask;
use alca_dns::{bind, AllowSink, Policy, ResolverHandler, SinkError};
use hickory_server::proto::op::{Message, Query};
use hickory_server::proto::rr::{Name, RecordType};

struct AcceptAll;

impl AllowSink for AcceptAll {
    async fn allow(&self, _update: ResolvedAddrs) -> Result<(), SinkError> {
        Ok(())
    }
}

fn question() -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii("allowed.test.").expect("name"),
        RecordType::A,
    ));
    m
}

async fn time_one(server: SocketAddr) -> Duration {
    let start = Instant::now();
    ask(&[server], &question()).await.expect("an answer");
    start.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let zone = Zone::new().addr("allowed.test", IpAddr::from([198, 51, 100, 10]), 60);
    let upstream = ZoneServer::start((Ipv4Addr::LOCALHOST, 0).into(), zone)
        .await
        .expect("zone server");
    let dir = std::env::temp_dir().join(format!("alca-dns-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let handler = ResolverHandler::new(
        "0123456789abcdef".into(),
        Policy::new(vec![parse_internet_entry("allowed.test").expect("entry")]),
        vec![upstream.addr],
        AcceptAll,
        QueryLog::new(dir.join("q.jsonl")),
    );
    let resolver = bind(Ipv4Addr::LOCALHOST.into(), 0, handler)
        .await
        .expect("resolver");
    let addr = resolver.addr;
    let stop = resolver.stopper();
    tokio::spawn(resolver.run());
    // Warm-up.
    for _ in 0..50 {
        time_one(upstream.addr).await;
        time_one(addr).await;
    }
    let (mut direct, mut via) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        direct.push(time_one(upstream.addr).await);
        via.push(time_one(addr).await);
    }
    direct.sort();
    via.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        let (d, v) = (percentile(&direct, p), percentile(&via, p));
        println!(
            "dns {label}: direct {:.0} us, through the resolver {:.0} us, ratio {:.2}",
            us(d),
            us(v),
            us(v) / us(d)
        );
    }
    stop();
    upstream.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
