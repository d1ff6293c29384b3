//! The CLI side of a project's DNS resolver (`network.internet-access`): `up` (and `run`, when
//! it re-applies the rules) starts `alca __serve-dns STATE_DIR` detached, before the rules that
//! send the containers' DNS to it are applied; `down` stops it. The resolver's spec is handed
//! over on its standard input, never through a file in the project a container can write.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use alca_contract::resolver_spec::{ResolverSpec, READY_WORD};
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::detached;

/// Hidden subcommand that runs [`super::resolver_main::serve`].
pub const SERVE_SUBCOMMAND: &str = "__serve-dns";
const PID_FILE: &str = "resolver.pid";
const LOG_FILE: &str = "resolver.log";
/// What the running resolver was started with and where it answers.
const RECORD_FILE: &str = "resolver.json";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    spec: ResolverSpec,
    addr: SocketAddr,
}

/// `<root>/.alca/dns`: the resolver's pid, stderr and query log.
pub fn state_dir(root: &Path) -> PathBuf {
    root.join(".alca").join("dns")
}

/// The query log `alca network log` reads.
pub fn query_log(root: &Path) -> PathBuf {
    state_dir(root).join(alca_dns::query_log::LOG_FILE)
}

/// The running resolver's address when it runs with exactly `spec`; otherwise (re)starts it.
pub fn ensure(root: &Path, spec: &ResolverSpec) -> anyhow::Result<SocketAddr> {
    let dir = state_dir(root);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    if let Some(addr) = running(&dir).filter(|r| r.spec == *spec).map(|r| r.addr) {
        return Ok(addr);
    }
    stop_in(&dir)?;
    let exe = std::env::current_exe().context("cannot find the alca binary")?;
    let log_path = dir.join(LOG_FILE);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let input = serde_json::to_vec(spec)?;
    let args = [OsStr::new(SERVE_SUBCOMMAND), dir.as_os_str()];
    let failed = |detail: String| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        anyhow::anyhow!(
            "cannot start the project's DNS resolver (network.internet-access): {detail}{}",
            detached::log_tail(&log)
        )
    };
    let (pid, line) =
        detached::spawn(&exe, &args, Some(&input), log, READY_TIMEOUT).map_err(failed)?;
    let addr = match line.split_once(' ') {
        Some((READY_WORD, addr)) => addr.parse::<SocketAddr>().ok(),
        _ => None,
    };
    let Some(addr) = addr else {
        detached::end_process(pid, false);
        return Err(failed(format!(
            "it printed {line:?}, not \"{READY_WORD} ADDRESS\""
        )));
    };
    detached::write_pid(&dir.join(PID_FILE), pid)
        .with_context(|| format!("cannot write {}", dir.join(PID_FILE).display()))?;
    let record = Record {
        spec: spec.clone(),
        addr,
    };
    std::fs::write(dir.join(RECORD_FILE), serde_json::to_vec(&record)?)
        .with_context(|| format!("cannot write {}", dir.join(RECORD_FILE).display()))?;
    Ok(addr)
}

/// Whether the project's resolver is running (with any spec).
pub fn is_running(root: &Path) -> bool {
    state_dir(root)
        .canonicalize()
        .ok()
        .and_then(|dir| running(&dir))
        .is_some()
}

/// Where the project's running resolver answers, if one runs.
pub fn address(root: &Path) -> Option<SocketAddr> {
    let dir = state_dir(root).canonicalize().ok()?;
    running(&dir).map(|r| r.addr)
}

fn running(dir: &Path) -> Option<Record> {
    detached::recorded_pid(&dir.join(PID_FILE), SERVE_SUBCOMMAND, dir)?;
    let text = std::fs::read(dir.join(RECORD_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Stops the project's resolver, if one runs (`down`).
pub fn stop(root: &Path) -> anyhow::Result<()> {
    match state_dir(root).canonicalize() {
        Ok(dir) => stop_in(&dir),
        Err(_) => Ok(()),
    }
}

fn stop_in(dir: &Path) -> anyhow::Result<()> {
    if let Some(pid) = detached::recorded_pid(&dir.join(PID_FILE), SERVE_SUBCOMMAND, dir) {
        detached::end_process(pid, false);
        if detached::recorded_pid(&dir.join(PID_FILE), SERVE_SUBCOMMAND, dir).is_some() {
            bail!("the project's DNS resolver (pid {pid}) did not stop");
        }
    }
    for f in [PID_FILE, RECORD_FILE] {
        match std::fs::remove_file(dir.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", dir.join(f).display()))
            }
            _ => {}
        }
    }
    Ok(())
}
