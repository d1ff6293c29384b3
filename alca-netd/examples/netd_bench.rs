//! Timing helper for `bench/run.sh` (a benchmark, not a test): times D-Bus calls to the running
//! `alca-netd` through the real client and raw `nft -j -f -` runs, one call per output line in
//! milliseconds, so the script can compute percentiles against the floor.
//!
//! Usage (build with `cargo build --release -p alca-netd --example netd_bench`):
//! * `netd_bench compile UID < spec.json` prints the nft JSON batch the daemon applies;
//! * `netd_bench apply N < spec.json` times N `Apply` calls of one spec over one connection;
//! * `netd_bench nft N < batch.json` times N runs of `nft -j -f -` with that batch (root);
//! * `netd_bench scale < ids` applies a default spec for each project id read (one per line),
//!   printing `<id> <ms>` per call;
//! * `netd_bench remove < ids` removes each project, printing `<id> <ms>`;
//! * `netd_bench status ID` and `netd_bench list` time one `Status` or `List` call.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use alca_contract::client::Client;
use alca_contract::net_spec::NetSpec;
use alca_contract::request::decode_spec;
use alca_ruleset::{nft_json, replace_batch};
use anyhow::{bail, Context};

fn stdin_text() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    Ok(text)
}

fn count(arg: Option<&String>) -> anyhow::Result<usize> {
    arg.context("missing count")?
        .parse()
        .context("count must be a number")
}

/// Runs `f` and prints how long it took in milliseconds, after `label` if any.
fn timed(label: Option<&str>, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let start = Instant::now();
    f()?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    match label {
        Some(l) => println!("{l} {ms:.3}"),
        None => println!("{ms:.3}"),
    }
    Ok(())
}

/// One `nft -j -f -` transaction of the batch the daemon sends over netlink (the floor).
fn raw_nft(batch: &[u8]) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run nft")?;
    child.stdin.take().context("nft stdin")?.write_all(batch)?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("nft failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// What `alca up` sends for a project with the default config on Docker.
fn default_spec(project: &str) -> NetSpec {
    NetSpec::isolated(project)
}

fn ids() -> anyhow::Result<Vec<String>> {
    Ok(stdin_text()?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("compile") => {
            let uid: u32 = args.get(1).context("missing uid")?.parse()?;
            let spec = decode_spec(&stdin_text()?)?;
            println!("{}", nft_json(&replace_batch(&spec, uid)));
        }
        Some("apply") => {
            let n = count(args.get(1))?;
            let spec = decode_spec(&stdin_text()?)?;
            let client = Client::connect()?;
            for _ in 0..n {
                timed(None, || Ok(client.apply(&spec)?))?;
            }
        }
        Some("nft") => {
            let n = count(args.get(1))?;
            let batch = stdin_text()?;
            for _ in 0..n {
                timed(None, || raw_nft(batch.as_bytes()))?;
            }
        }
        Some("scale") => {
            let client = Client::connect()?;
            for id in ids()? {
                let spec = default_spec(&id);
                timed(Some(&id), || Ok(client.apply(&spec)?))?;
            }
        }
        Some("remove") => {
            let client = Client::connect()?;
            for id in ids()? {
                timed(Some(&id), || Ok(client.remove(&id)?))?;
            }
        }
        Some("status") => {
            let id = args.get(1).context("missing project id")?;
            let client = Client::connect()?;
            timed(None, || Ok(client.status(id).map(drop)?))?;
        }
        Some("list") => {
            let client = Client::connect()?;
            timed(None, || Ok(client.list().map(drop)?))?;
        }
        _ => bail!(
            "usage: netd_bench compile UID | apply N | nft N | scale | remove | status ID | list"
        ),
    }
    Ok(())
}
