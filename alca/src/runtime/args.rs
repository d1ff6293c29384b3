//! Pure translation of [`ContainerSpec`] and [`ExecSpec`] into runtime CLI arguments.
//!
//! Docker and Podman accept the same flags for everything built here, so one builder serves
//! both; keeping it free of I/O lets unit tests pin every flag.
//!
//! Environment values (often tokens expanded from the host) never appear in the arguments,
//! which any local user can read in `/proc/PID/cmdline`: the arguments say `-e NAME` and the
//! runtime CLI takes the value from its own environment (`/proc/PID/environ` is private to
//! the user); see [`env_only`]. Names that steer the CLI process itself or its dynamic
//! loader (`LD_PRELOAD`, `PATH`, `DOCKER_HOST`, proxies, …; [`steers_the_cli`]) keep
//! `NAME=value` in the arguments instead: put in the CLI's environment they would change what
//! the host CLI runs or talks to.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::{Port, PortProto};

use super::{BindMount, ContainerSpec, ExecSpec};

/// Host address a port is published on when the config names none: loopback only, so the
/// agent's servers are never exposed to the LAN by accident.
pub const DEFAULT_PUBLISH_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Seconds `stop` waits before killing (the keep-alive process ignores SIGTERM as PID 1).
pub const STOP_TIMEOUT_SECS: u32 = 1;

/// Arguments of `<runtime> create …` for the project's container.
pub fn create_args(spec: &ContainerSpec) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "create".into(),
        "--name".into(),
        spec.name.clone(),
        "--network".into(),
        spec.network.clone(),
        "--restart=unless-stopped".into(),
        "-w".into(),
        spec.workdir.clone(),
    ];
    for (key, value) in &spec.labels {
        a.push("--label".into());
        a.push(format!("{key}={value}"));
    }
    for (key, value) in &spec.annotations {
        a.push("--annotation".into());
        a.push(format!("{key}={value}"));
    }
    for mount in &spec.mounts {
        a.push("--mount".into());
        a.push(mount_arg(mount));
    }
    if let Some(memory) = &spec.memory {
        a.push("--memory".into());
        a.push(memory.clone());
    }
    if let Some(cpus) = spec.cpus {
        a.push("--cpus".into());
        a.push(format_cpus(cpus));
    }
    push_env_names(&mut a, &spec.envs);
    for cap in &spec.cap_drop {
        a.push("--cap-drop".into());
        a.push(cap.clone());
    }
    for cap in &spec.cap_add {
        a.push("--cap-add".into());
        a.push(cap.clone());
    }
    for port in &spec.ports {
        a.push("-p".into());
        a.push(port_arg(port));
    }
    if let Some(entrypoint) = &spec.entrypoint {
        a.push("--entrypoint".into());
        a.push(entrypoint.clone());
    }
    a.push(spec.image.clone());
    a.extend(spec.command.iter().cloned());
    a
}

/// `-e NAME` for each variable: the value travels in the CLI's environment ([`env_only`]);
/// `-e NAME=value` for the few names that would steer the CLI itself.
fn push_env_names(a: &mut Vec<String>, envs: &[(String, String)]) {
    for (key, value) in envs {
        a.push("-e".into());
        a.push(if steers_the_cli(key) {
            format!("{key}={value}")
        } else {
            key.clone()
        });
    }
}

/// The environment the runtime CLI must run with for the `-e NAME` arguments above.
pub fn env_only(envs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    envs.iter()
        .filter(|(k, _)| !steers_the_cli(k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Whether a variable in the runtime CLI's own environment would change what that host
/// process loads, runs or connects to.
pub fn steers_the_cli(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const EXACT: [&str; 12] = [
        "PATH",
        "HOME",
        "TMPDIR",
        "SHELL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "REGISTRY_AUTH_FILE",
        "GODEBUG",
    ];
    const PREFIXES: [&str; 9] = [
        "LD_",
        "DOCKER_",
        "PODMAN",
        "CONTAINERS_",
        "XDG_",
        "SSL_",
        "GO",
        "BUILDKIT",
        "DBUS_",
    ];
    EXACT.contains(&upper.as_str()) || PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// `--mount` value: unlike `-v src:dst`, a colon in a path cannot change its meaning, and
/// fields holding `,` or `"` are CSV-quoted as both runtimes parse this value as CSV.
pub fn mount_arg(m: &BindMount) -> String {
    let mut s = format!(
        "type=bind,{},{}",
        csv_field("source", &m.source.to_string_lossy()),
        csv_field("target", &m.target)
    );
    if m.readonly {
        s.push_str(",readonly");
    }
    if !m.recursive {
        // Both runtimes accept this spelling (Docker ≥ 25 also knows bind-recursive=disabled).
        s.push_str(",bind-nonrecursive=true");
    }
    s
}

/// One `key=value` field of a `--mount` value, CSV-quoted when it contains `,` or `"`.
fn csv_field(key: &str, value: &str) -> String {
    let field = format!("{key}={value}");
    if field.contains([',', '"']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

/// `-p` value: `[ip:][hostport]:containerport/proto`; IPv6 addresses are bracketed.
pub fn port_arg(p: &Port) -> String {
    let ip = p.host_ip.unwrap_or(DEFAULT_PUBLISH_IP);
    let ip = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let host_port = p.host_port.map(|h| h.to_string()).unwrap_or_default();
    let proto = match p.proto {
        PortProto::Tcp => "tcp",
        PortProto::Udp => "udp",
    };
    format!("{ip}:{host_port}:{}/{proto}", p.container_port)
}

/// CPU count without a trailing `.0` for whole numbers (`2`, `0.5`).
pub fn format_cpus(cpus: f64) -> String {
    if cpus.fract() == 0.0 && cpus.abs() < 1e15 {
        format!("{}", cpus as i64)
    } else {
        format!("{cpus}")
    }
}

/// Arguments of `<runtime> exec …`.
pub fn exec_args(spec: &ExecSpec) -> Vec<String> {
    let mut a: Vec<String> = vec!["exec".into()];
    if spec.interactive {
        a.push("-i".into());
    }
    if spec.tty {
        a.push("-t".into());
    }
    a.push("-w".into());
    a.push(spec.workdir.clone());
    push_env_names(&mut a, &spec.envs);
    a.push(spec.container.clone());
    a.extend(spec.argv.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "alca-0123456789ab".into(),
            image: "alpine".into(),
            network: "alca-0123456789ab".into(),
            annotations: vec![("io.github.alcatraz.project".into(), "0123".into())],
            labels: vec![("alca.project.id".into(), "0123".into())],
            workdir: "/workspace".into(),
            mounts: vec![BindMount {
                source: PathBuf::from("/home/u/p"),
                target: "/workspace".into(),
                readonly: false,
                recursive: true,
            }],
            memory: Some("512m".into()),
            cpus: Some(2.0),
            envs: vec![("A".into(), "x y".into())],
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["CHOWN".into()],
            ports: vec![Port {
                host_ip: None,
                host_port: Some(8080),
                container_port: 80,
                proto: PortProto::Tcp,
            }],
            entrypoint: Some("/.alca/busybox".into()),
            command: vec!["sleep".into(), "infinity".into()],
        }
    }

    fn has_pair(args: &[String], flag: &str, value: &str) -> bool {
        args.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    #[test]
    fn create_args_carry_every_field() {
        let a = create_args(&spec());
        assert_eq!(a[0], "create");
        assert!(has_pair(&a, "--name", "alca-0123456789ab"));
        assert!(has_pair(&a, "--network", "alca-0123456789ab"));
        assert!(a.contains(&"--restart=unless-stopped".to_string()));
        assert!(has_pair(&a, "-w", "/workspace"));
        assert!(has_pair(&a, "--label", "alca.project.id=0123"));
        assert!(has_pair(
            &a,
            "--annotation",
            "io.github.alcatraz.project=0123"
        ));
        assert!(has_pair(
            &a,
            "--mount",
            "type=bind,source=/home/u/p,target=/workspace"
        ));
        assert!(has_pair(&a, "--memory", "512m"));
        assert!(has_pair(&a, "--cpus", "2"));
        assert!(has_pair(&a, "-e", "A"), "the name only");
        assert!(
            a.iter().all(|x| !x.contains("x y")),
            "issue #22 item 10a: no value in argv: {a:?}"
        );
        assert_eq!(env_only(&spec().envs).collect::<Vec<_>>(), [("A", "x y")]);
        let mut risky = spec();
        risky.envs = vec![
            ("LD_PRELOAD".into(), "/w/evil.so".into()),
            ("DOCKER_HOST".into(), "tcp://x".into()),
            ("TOKEN".into(), "t".into()),
        ];
        let a = create_args(&risky);
        assert!(
            has_pair(&a, "-e", "LD_PRELOAD=/w/evil.so"),
            "never in the CLI's env"
        );
        assert!(has_pair(&a, "-e", "DOCKER_HOST=tcp://x"));
        assert!(has_pair(&a, "-e", "TOKEN"));
        assert_eq!(env_only(&risky.envs).collect::<Vec<_>>(), [("TOKEN", "t")]);
        assert!(has_pair(&a, "--cap-drop", "ALL"));
        assert!(has_pair(&a, "--cap-add", "CHOWN"));
        assert!(has_pair(&a, "-p", "127.0.0.1:8080:80/tcp"));
        assert_eq!(a[a.len() - 3..], ["alpine", "sleep", "infinity"]);
        assert!(has_pair(&a, "--entrypoint", "/.alca/busybox"));
    }

    #[test]
    fn image_comes_after_every_flag() {
        let a = create_args(&spec());
        let image_at = a.iter().position(|x| x == "alpine").unwrap();
        assert!(a[..image_at].iter().all(|x| x != "sleep"));
        assert!(a[image_at + 1..].iter().all(|x| !x.starts_with('-')));
    }

    #[test]
    fn readonly_and_awkward_paths_in_mounts() {
        let m = BindMount {
            source: PathBuf::from("/a,b/c\"d:e"),
            target: "/t".into(),
            readonly: true,
            recursive: true,
        };
        assert_eq!(
            mount_arg(&m),
            "type=bind,\"source=/a,b/c\"\"d:e\",target=/t,readonly"
        );
    }

    #[test]
    fn port_forms() {
        let mut p = Port {
            host_ip: Some("::1".parse().unwrap()),
            host_port: None,
            container_port: 53,
            proto: PortProto::Udp,
        };
        assert_eq!(port_arg(&p), "[::1]::53/udp");
        p.host_ip = Some("0.0.0.0".parse().unwrap());
        p.host_port = Some(5353);
        assert_eq!(port_arg(&p), "0.0.0.0:5353:53/udp");
    }

    #[test]
    fn cpus_formatting() {
        assert_eq!(format_cpus(2.0), "2");
        assert_eq!(format_cpus(0.5), "0.5");
        assert_eq!(format_cpus(1.25), "1.25");
    }

    #[test]
    fn exec_args_order() {
        let e = ExecSpec {
            container: "c".into(),
            workdir: "/w".into(),
            envs: vec![("TERM".into(), "xterm".into())],
            interactive: true,
            tty: false,
            argv: vec!["sh".into(), "-c".into(), "exec 'ls'".into()],
        };
        assert_eq!(
            exec_args(&e),
            [
                "exec",
                "-i",
                "-w",
                "/w",
                "-e",
                "TERM",
                "c",
                "sh",
                "-c",
                "exec 'ls'"
            ]
        );
    }
}
