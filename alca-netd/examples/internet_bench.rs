//! Timing helper for `bench/internet.sh` (a benchmark, not a test): the D-Bus side of
//! `network.internet-access` against the running `alca-netd`, through the real client, one
//! figure per output line in milliseconds so the script can compute percentiles.
//!
//! Usage (build with `cargo build --release -p alca-netd --example internet_bench`):
//! * `internet_bench claim ID` claims project ID's bridge (before its network exists);
//! * `internet_bench apply ID PORT RESOLVER` applies a spec whose list is `bench.test:PORT`,
//!   its resolver at RESOLVER (`IP:port`);
//! * `internet_bench fill ID N ADDR` reports N distinct addresses for entry 0 (ADDR, then
//!   addresses of 11.0.0.0/8 that no traffic goes to) in updates of 64, as a resolver does;
//! * `internet_bench update ID N ADDR` interleaves N `AllowResolved` calls of ADDR (one
//!   address: one answer) with N reads of the `Launcher` property (a round trip the daemon
//!   answers from memory: the bus floor), printing `resolved MS` and `ping MS` lines;
//! * `internet_bench kernel N` (root) times N netlink transactions adding one address with a
//!   timeout to a scratch table's set, on one kept socket as the daemon's (the kernel floor);
//! * `internet_bench remove ID` removes the project.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Instant;

use alca_contract::client::Client;
use alca_contract::internet::{
    parse_internet_entry, InternetSpec, ResolvedAddr, ResolvedAddrs, MAX_RESOLVED_PER_UPDATE,
};
use alca_contract::net_spec::NetSpec;
use alca_kernel::set_elements::{ElementBatch, ElementOp};
use anyhow::{bail, Context};

/// The scratch table of `kernel` (not an `alca-` name: the daemon never touches it).
const KERNEL_TABLE: &str = "alcabench-sets";
/// Seconds each reported address stays allowed.
const TTL: u32 = 3000;

fn arg<'a>(args: &'a [String], i: usize, what: &str) -> anyhow::Result<&'a str> {
    args.get(i)
        .map(String::as_str)
        .with_context(|| format!("missing {what}"))
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn spec(id: &str, port: u16, resolver: &str) -> anyhow::Result<NetSpec> {
    let mut spec = NetSpec::isolated(id);
    spec.internet = Some(InternetSpec {
        entries: vec![parse_internet_entry(&format!("bench.test:{port}"))?],
        resolver: resolver.parse().context("resolver IP:port")?,
        ttl_floor_secs: 0,
        ttl_max_secs: 3600,
    });
    spec.validate()?;
    Ok(spec)
}

/// The i-th filler address, in 11.0.0.0/8.
fn filler(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i + 1))
}

fn update(id: &str, addrs: impl IntoIterator<Item = IpAddr>) -> ResolvedAddrs {
    ResolvedAddrs {
        project: id.to_string(),
        addrs: addrs
            .into_iter()
            .map(|addr| ResolvedAddr {
                entry: 0,
                addr,
                ttl_secs: TTL,
            })
            .collect(),
    }
}

fn nft(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("nft").args(args).output()?;
    if !out.status.success() {
        bail!("nft {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn kernel(n: usize) -> anyhow::Result<()> {
    let _ = nft(&["delete", "table", "inet", KERNEL_TABLE]);
    nft(&["add", "table", "inet", KERNEL_TABLE])?;
    nft(&[
        "add",
        "set",
        "inet",
        KERNEL_TABLE,
        "s",
        "{ type ipv4_addr; flags timeout; size 65536; }",
    ])?;
    let connection = alca_kernel::Connection::default();
    let mut batch = ElementBatch::new(KERNEL_TABLE);
    batch.ops.push(ElementOp::AddAddrs {
        set: "s".into(),
        addrs: vec![(filler(0), TTL)],
    });
    let messages = batch.messages();
    let result = (|| {
        for _ in 0..n {
            let start = Instant::now();
            connection.transact(&messages)?;
            println!("{:.3}", ms_since(start));
        }
        anyhow::Ok(())
    })();
    nft(&["delete", "table", "inet", KERNEL_TABLE])?;
    result
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("claim") => Client::connect()?.claim(arg(&args, 1, "project id")?)?,
        Some("apply") => {
            let port = arg(&args, 2, "port")?.parse()?;
            let spec = spec(
                arg(&args, 1, "project id")?,
                port,
                arg(&args, 3, "resolver")?,
            )?;
            Client::connect()?.apply(&spec)?;
        }
        Some("fill") => {
            let id = arg(&args, 1, "project id")?;
            let n: u32 = arg(&args, 2, "count")?.parse()?;
            let first: IpAddr = arg(&args, 3, "address")?.parse()?;
            let all: Vec<IpAddr> = std::iter::once(first)
                .chain((0..n.saturating_sub(1)).map(filler))
                .collect();
            let client = Client::connect()?;
            for chunk in all.chunks(MAX_RESOLVED_PER_UPDATE) {
                client.allow_resolved(&update(id, chunk.iter().copied()))?;
            }
        }
        Some("update") => {
            let id = arg(&args, 1, "project id")?;
            let n: usize = arg(&args, 2, "count")?.parse()?;
            let addr: IpAddr = arg(&args, 3, "address")?.parse()?;
            let client = Client::connect()?;
            let one = update(id, [addr]);
            for _ in 0..n {
                let start = Instant::now();
                client.allow_resolved(&one)?;
                println!("resolved {:.3}", ms_since(start));
                let start = Instant::now();
                client.launcher()?;
                println!("ping {:.3}", ms_since(start));
            }
        }
        Some("kernel") => kernel(arg(&args, 1, "count")?.parse()?)?,
        Some("remove") => Client::connect()?.remove(arg(&args, 1, "project id")?)?,
        _ => bail!(
            "usage: internet_bench claim ID | apply ID PORT RESOLVER | fill ID N ADDR | \
             update ID N ADDR | kernel N | remove ID"
        ),
    }
    Ok(())
}
