//! `ports` entries in the Go original's forms: `"8080"`, `"8080:80"`, `"127.0.0.1:8080:80"`,
//! `"[::1]:8080:80"`, any of them with `/tcp` or `/udp`, or `{port, hostPort, hostIp, protocol}`.
//! As in the Go original, an omitted host port equals the container port.

use std::net::IpAddr;

use crate::config::either::StrOrTable;
use crate::config::error::Origin;
use crate::config::model::{Port, PortProto};
use crate::config::raw::RawPort;
use crate::config::ConfigError;

const FORMS: &str = "write it as \"8080\", \"8080:80\", \"127.0.0.1:8080:80\" or \"8080:80/udp\"";

/// Checks one port declared at `origin`.
pub fn port(raw: &StrOrTable<RawPort>, origin: &Origin) -> Result<Port, ConfigError> {
    match raw {
        StrOrTable::Str(s) => parse_short(s, origin),
        StrOrTable::Table(t) => from_table(t, origin),
    }
}

fn from_table(t: &RawPort, origin: &Origin) -> Result<Port, ConfigError> {
    let container_port = nonzero(t.port, &origin.child("port"))?;
    let host_port = match t.host_port {
        Some(p) => nonzero(p, &origin.child("hostPort"))?,
        None => container_port,
    };
    let host_ip = t
        .host_ip
        .as_deref()
        .map(|ip| host_ip(ip, &origin.child("hostIp")))
        .transpose()?;
    let proto = t
        .protocol
        .as_deref()
        .map(|p| protocol(p, &origin.child("protocol")))
        .transpose()?
        .unwrap_or(PortProto::Tcp);
    Ok(Port {
        host_ip,
        host_port: Some(host_port),
        container_port,
        proto,
    })
}

fn parse_short(s: &str, origin: &Origin) -> Result<Port, ConfigError> {
    let (rest, proto) = match s.rsplit_once('/') {
        Some((rest, p)) => (rest, protocol(p, origin)?),
        None => (s, PortProto::Tcp),
    };
    let (ip, ports) = split_ip(rest, origin)?;
    let parts: Vec<&str> = ports.split(':').collect();
    let (host, container) = match parts.as_slice() {
        [c] if ip.is_none() => (None, *c),
        [h, c] => (Some(*h), *c),
        _ => return Err(origin.err(format!("{s:?} is not a port mapping"), FORMS)),
    };
    let container_port = number(container, s, origin)?;
    let host_port = host.map(|h| number(h, s, origin)).transpose()?;
    Ok(Port {
        host_ip: ip,
        host_port: Some(host_port.unwrap_or(container_port)),
        container_port,
        proto,
    })
}

/// Splits a leading `IP:` (IPv4) or `[IPv6]:` from `hostPort:containerPort`.
fn split_ip<'a>(s: &'a str, origin: &Origin) -> Result<(Option<IpAddr>, &'a str), ConfigError> {
    if let Some(v6) = s.strip_prefix('[') {
        let (ip, rest) = v6
            .split_once("]:")
            .ok_or_else(|| origin.err(format!("{s:?} is not a port mapping"), FORMS))?;
        return Ok((Some(host_ip(ip, origin)?), rest));
    }
    if s.matches(':').count() == 2 {
        let (ip, rest) = s.split_once(':').unwrap_or((s, ""));
        return Ok((Some(host_ip(ip, origin)?), rest));
    }
    Ok((None, s))
}

fn number(p: &str, whole: &str, origin: &Origin) -> Result<u16, ConfigError> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(origin.err(
            format!("{p:?} in {whole:?} is not a port number from 1 to 65535"),
            FORMS,
        )),
    }
}

fn nonzero(p: u16, origin: &Origin) -> Result<u16, ConfigError> {
    if p == 0 {
        return Err(origin.err("port 0 is not allowed", "use a port from 1 to 65535"));
    }
    Ok(p)
}

fn host_ip(s: &str, origin: &Origin) -> Result<IpAddr, ConfigError> {
    s.parse().map_err(|_| {
        origin.err(
            format!("{s:?} is not an IP address"),
            "write a host address such as \"127.0.0.1\" or \"::1\" (hostnames are not allowed)",
        )
    })
}

fn protocol(p: &str, origin: &Origin) -> Result<PortProto, ConfigError> {
    match p {
        "tcp" => Ok(PortProto::Tcp),
        "udp" => Ok(PortProto::Udp),
        other => Err(origin.err(
            format!("protocol {other:?} is not supported"),
            "use \"tcp\" or \"udp\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(s: &str) -> Result<Port, ConfigError> {
        port(
            &StrOrTable::Str(s.into()),
            &Origin::new(Path::new("/p/.alca.toml"), "ports[0]"),
        )
    }

    fn p(ip: Option<&str>, h: u16, c: u16, proto: PortProto) -> Port {
        Port {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: Some(h),
            container_port: c,
            proto,
        }
    }

    #[test]
    fn string_forms() {
        assert_eq!(check("8080").unwrap(), p(None, 8080, 8080, PortProto::Tcp));
        assert_eq!(
            check("3001:3000").unwrap(),
            p(None, 3001, 3000, PortProto::Tcp)
        );
        assert_eq!(
            check("127.0.0.1:5432:5432").unwrap(),
            p(Some("127.0.0.1"), 5432, 5432, PortProto::Tcp)
        );
        assert_eq!(check("53:53/udp").unwrap(), p(None, 53, 53, PortProto::Udp));
        assert_eq!(
            check("[::1]:8080:80/tcp").unwrap(),
            p(Some("::1"), 8080, 80, PortProto::Tcp)
        );
    }

    #[test]
    fn string_errors() {
        let e = check("0").unwrap_err().0;
        assert!(
            e.contains("ports[0]: \"0\" in \"0\" is not a port number"),
            "{e}"
        );
        let e = check("80/icmp").unwrap_err().0;
        assert!(e.contains("protocol \"icmp\" is not supported"), "{e}");
        let e = check("host:80:80").unwrap_err().0;
        assert!(e.contains("\"host\" is not an IP address"), "{e}");
        let e = check("1:2:3:4").unwrap_err().0;
        assert!(e.contains("is not a port mapping"), "{e}");
    }
}
