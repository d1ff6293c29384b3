//! Stopping and starting dockerd as a reboot does, for the reboot-sequence suites: dockerd
//! runs here without systemd, started by `tests/env/host.sh` (`host_start_docker`), which is
//! also how it is started again, so the test environment's own way is the only one. Docker
//! puts back its own iptables-nft rules when it starts; the uplink guard is a table of the
//! test environment that a dockerd restart never touches, checked by [`start`].

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::run_ok;

/// The test environment's uplink guard (tests/env/setup.sh step 10).
pub const UPLINK_GUARD: &str = "testenv-uplink-guard";

fn dockerd_pid() -> Option<u32> {
    run_ok("pgrep", &["-x", "dockerd"])
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

fn answers() -> bool {
    Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Stops dockerd (SIGTERM; it stops its containers, which keep their restart policy) and
/// waits until it is gone (bounded).
pub fn stop() -> Result<()> {
    let Some(pid) = dockerd_pid() else {
        return Ok(());
    };
    run_ok("kill", &[&pid.to_string()])?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            bail!("dockerd {pid} did not stop within 90 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Starts dockerd the way the test environment does, waits until it answers, and checks that
/// the uplink guard is still there.
pub fn start() -> Result<()> {
    let host_sh = concat!(env!("CARGO_MANIFEST_DIR"), "/env/host.sh");
    let status = Command::new("bash")
        .args(["-c", &format!(". {host_sh} && host_start_docker")])
        .env("LOG", "/var/log/alca-testenv")
        .env("WORK", "/var/lib/alca-testenv")
        .status()
        .context("cannot run host_start_docker")?;
    if !status.success() || !answers() {
        bail!("dockerd did not come back ({status})");
    }
    let tables = run_ok("nft", &["list", "tables", "inet"])?;
    if !tables.contains(UPLINK_GUARD) {
        bail!("the uplink guard table inet {UPLINK_GUARD} is gone: {tables}");
    }
    Ok(())
}

/// Starts dockerd on drop unless it answers, so no test leaves the machine without it.
pub struct RunningAfter;

impl Drop for RunningAfter {
    fn drop(&mut self) {
        if !answers() {
            if let Err(e) = start() {
                eprintln!("could not start dockerd again: {e:#}");
            }
        }
    }
}
