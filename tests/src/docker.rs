//! Docker fixtures for the network suites: networks on a named bridge and containers that are
//! removed when dropped, plus a TCP probe run from inside a container with busybox `nc`.

use std::process::Output;

use anyhow::Result;

use crate::netns::{run, run_ok};

/// The busybox image the test environment imports.
pub const TEST_IMAGE: &str = "alca-test/busybox:latest";
/// The busybox image plus Debian's `git` and the libraries it links (tests/env/setup.sh).
pub const GIT_IMAGE: &str = "alca-test/busybox-git:latest";
/// Label put on everything created here, so a crashed run can be swept by hand.
pub const TEST_LABEL: &str = "alca.e2e=isolation";

/// Runs `docker ARGS`, returning its output whatever the exit status.
pub fn docker(args: &[&str]) -> Result<Output> {
    run("docker", args)
}

/// Runs `docker ARGS` and returns its trimmed stdout; fails with stderr on a non-zero exit.
pub fn docker_ok(args: &[&str]) -> Result<String> {
    run_ok("docker", args)
}

/// The (first) gateway of Docker network `name`, asserted to be a local address of this host.
pub fn local_gateway(name: &str) -> String {
    let gateway = docker_ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        name,
    ])
    .expect("the network's gateway");
    crate::netns::assert_route_local(&gateway);
    gateway
}

/// Whether the docker daemon answers.
pub fn docker_available() -> bool {
    docker(&["info", "--format", "{{.ServerVersion}}"])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Fails the calling test unless it runs as root with a docker daemon that answers (the
/// first lines of every Docker suite); `who` names the suite.
pub fn require_root_and_docker(who: &str) {
    crate::privilege::require_root(who);
    assert!(
        docker_available(),
        "docker is not running: run `bash tests/env/setup.sh` first"
    );
}

/// A user-defined bridge network whose Linux bridge has a chosen name; removed on drop.
pub struct Network {
    pub name: String,
    pub bridge: String,
}

impl Network {
    /// Creates network `name` on bridge `bridge` with the given IPv4 and optional IPv6 subnets.
    pub fn create(name: &str, bridge: &str, subnet4: &str, subnet6: Option<&str>) -> Result<Self> {
        let bridge_opt = format!("com.docker.network.bridge.name={bridge}");
        let mut args = vec![
            "network",
            "create",
            "--label",
            TEST_LABEL,
            "-o",
            &bridge_opt,
            "--subnet",
            subnet4,
        ];
        if let Some(v6) = subnet6 {
            args.extend(["--ipv6", "--subnet", v6]);
        }
        args.push(name);
        docker_ok(&args)?;
        Ok(Network {
            name: name.to_string(),
            bridge: bridge.to_string(),
        })
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = docker(&["network", "rm", &self.name]);
    }
}

/// A container removed (forcefully) on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --name NAME --network NET EXTRA… IMAGE sleep 300`.
    pub fn start(name: &str, network: &str, extra: &[&str]) -> Result<Self> {
        Self::start_cmd(name, network, extra, &["sleep", "300"])
    }

    /// `docker run -d --name NAME --network NET EXTRA… TEST_IMAGE CMD…`.
    pub fn start_cmd(name: &str, network: &str, extra: &[&str], cmd: &[&str]) -> Result<Self> {
        Self::start_image(TEST_IMAGE, name, network, extra, cmd)
    }

    /// `docker run -d --name NAME --network NET EXTRA… IMAGE CMD…`.
    pub fn start_image(
        image: &str,
        name: &str,
        network: &str,
        extra: &[&str],
        cmd: &[&str],
    ) -> Result<Self> {
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--label",
            TEST_LABEL,
            "--network",
            network,
        ];
        args.extend_from_slice(extra);
        args.push(image);
        args.extend_from_slice(cmd);
        docker_ok(&args)?;
        Ok(Container {
            name: name.to_string(),
        })
    }

    /// `docker exec NAME sh -c SCRIPT`: stdout and stderr together, whatever the status.
    pub fn sh(&self, script: &str) -> Result<String> {
        exec_sh(&self.name, script)
    }

    /// The container's IPv4 address on `network`.
    pub fn ipv4(&self, network: &str) -> Result<String> {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        docker_ok(&["inspect", "-f", &format, &self.name])
    }

    /// Connects to `addr`:`port` over TCP from inside the container.
    pub fn probe(&self, addr: &str, port: u16) -> Result<Probe> {
        probe_from(&self.name, addr, port)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

/// Connects to `addr`:`port` over TCP from inside the running container `name` (any container,
/// including one `alca` created).
pub fn probe_from(name: &str, addr: &str, port: u16) -> Result<Probe> {
    probe_in("docker", name, addr, port)
}

/// [`probe_from`] through the runtime CLI `cli` (`docker` or `podman`).
pub fn probe_in(cli: &str, name: &str, addr: &str, port: u16) -> Result<Probe> {
    Ok(Probe::classify(&exec_sh_in(
        cli,
        name,
        &nc_script(addr, port),
    )?))
}

/// `docker exec NAME sh -c SCRIPT`: stdout and stderr together, whatever the status.
pub fn exec_sh(name: &str, script: &str) -> Result<String> {
    exec_sh_in("docker", name, script)
}

/// [`exec_sh`] through the runtime CLI `cli` (`docker` or `podman`).
pub fn exec_sh_in(cli: &str, name: &str, script: &str) -> Result<String> {
    let out = run(cli, &["exec", name, "sh", "-c", script])?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(text)
}

/// The shell line that connects with busybox `nc` and prints what came back.
pub fn nc_script(addr: &str, port: u16) -> String {
    format!("echo | nc -w 3 {addr} {port} 2>&1")
}

/// The shell loop that samples connections from inside a container to each `(tag, addr,
/// port)`: one attempt per target started every 200 ms over 5 s, each bounded to 1 s; prints
/// `OPEN-<tag>-<i>` for each that got through and `sampled` at the end.
pub fn refusal_sampler(targets: &[(&str, &str, u16)]) -> String {
    let attempts: String = targets
        .iter()
        .map(|(tag, addr, port)| {
            format!("(nc -w 1 {addr} {port} </dev/null >/dev/null 2>&1 && echo OPEN-{tag}-$i) & ")
        })
        .collect();
    format!(
        "i=0; while [ $i -lt 25 ]; do {attempts}sleep 0.2; i=$((i+1)); done; wait; echo sampled"
    )
}

/// What a TCP connection attempt from a container ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The listener replied with this line.
    Answered(String),
    /// The connection was actively refused (TCP reset).
    Refused,
    /// Anything else: timeout, unreachable, … (the full output).
    Failed(String),
}

impl Probe {
    /// Classifies the combined output of [`nc_script`].
    pub fn classify(output: &str) -> Probe {
        let text = output.trim();
        if text.contains("Connection refused") {
            Probe::Refused
        } else if text.is_empty() || text.starts_with("nc:") {
            Probe::Failed(text.to_string())
        } else {
            Probe::Answered(text.lines().next().unwrap_or_default().to_string())
        }
    }

    /// The value of `KEY=value` in the listener's reply (`orig`, `peer`), if it answered.
    pub fn field(&self, key: &str) -> Option<&str> {
        let Probe::Answered(line) = self else {
            return None;
        };
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// Whether the listener tagged `tag` answered.
    pub fn answered_by(&self, tag: &str) -> bool {
        matches!(self, Probe::Answered(line) if line.starts_with(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_busybox_nc_output() {
        assert_eq!(
            Probe::classify("nc: can't connect to remote host (10.99.0.2): Connection refused\n"),
            Probe::Refused
        );
        assert_eq!(
            Probe::classify("lanhost orig=none\n"),
            Probe::Answered("lanhost orig=none".into())
        );
        assert!(Probe::classify("lanhost orig=none").answered_by("lanhost"));
        let p = Probe::classify("lanhost orig=1.2.3.4:5 peer=10.99.0.5\n");
        assert_eq!(p.field("orig"), Some("1.2.3.4:5"));
        assert_eq!(p.field("peer"), Some("10.99.0.5"));
        assert_eq!(Probe::Refused.field("peer"), None);
        assert!(matches!(Probe::classify("nc: timed out"), Probe::Failed(_)));
        assert!(matches!(Probe::classify(""), Probe::Failed(_)));
    }
}
