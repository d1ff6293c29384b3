//! The verification vocabulary shared by the CLI and the daemon (SPEC §9): the destinations
//! `alca network verify` asks about, what the daemon found and what each probe saw, and the
//! bounded decoding of the lists a client sends.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::lan::Proto;
use crate::net_spec::MAX_REQUEST_BYTES;

/// Most probes (and passed probes) per family in one verification.
pub const PROBE_SIZE: u32 = 64;

/// One destination as the observation sets key it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub addr: IpAddr,
    pub proto: Proto,
    pub port: u16,
}

/// A destination to watch during one verification; `fence` ones are dropped once past the
/// isolation chain (the config says they are blocked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub key: Key,
    pub fence: bool,
}

/// What the daemon found before arming the probes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCheck {
    /// The project's table exists.
    pub applied: bool,
    /// Differences between the live table and the ruleset of the saved spec (holes).
    pub problems: Vec<String>,
    /// The probe fence is in place: probing cannot send a blocked destination off the machine.
    pub armed: bool,
}

/// One denied destination of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    pub key: Key,
    /// Packets refused (all attempts since it was first recorded).
    pub packets: u64,
    /// Seconds since the last attempt.
    pub last_seen_secs: u64,
}

/// The outcome of the probes: which got past isolation, and the denied log right after.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub passed: Vec<Key>,
    pub denied: Vec<Denied>,
}

/// Why a probe list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("probes: not a valid probe list: {0}")]
    Json(String),
    #[error("probes: {0} for one family is more than the limit of {PROBE_SIZE}")]
    TooMany(usize),
    #[error("probes: {0:?} has port 0")]
    Port(Key),
}

/// Decodes and bounds a probe list sent by a client.
pub fn decode_probes(json: &str) -> Result<Vec<Probe>, ProbeError> {
    if json.len() > MAX_REQUEST_BYTES {
        return Err(ProbeError::Json("request too large".into()));
    }
    let probes: Vec<Probe> =
        serde_json::from_str(json).map_err(|e| ProbeError::Json(e.to_string()))?;
    for v6 in [false, true] {
        let n = probes.iter().filter(|p| p.key.addr.is_ipv6() == v6).count();
        if n > PROBE_SIZE as usize {
            return Err(ProbeError::TooMany(n));
        }
    }
    if let Some(p) = probes.iter().find(|p| p.key.port == 0) {
        return Err(ProbeError::Port(p.key));
    }
    Ok(probes)
}

/// What one probe saw (a connect from the daemon, or the CLI's probe inside the container).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seen {
    Connected,
    /// TCP reset.
    Refused,
    /// Nothing came back in time.
    TimedOut,
    /// An ICMP error or no route; the system's message.
    Unreachable(String),
    /// The tool is missing in the image (only the CLI's in-container probe sees this; the
    /// daemon's connects never do).
    NoTool(String),
}

/// The reply of `ProbeFrom`: the check of the live rules, what each target saw (in request
/// order; empty when the fence was not in place, so nothing was probed) and the outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub check: LiveCheck,
    pub seen: Vec<Seen>,
    pub outcome: Outcome,
}

/// Why a target list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("targets: not a valid target list: {0}")]
    Json(String),
    #[error("targets: {0} is more than the limit of {PROBE_SIZE}")]
    TooMany(usize),
    #[error("targets: {0:?} is not a TCP destination with a port")]
    NotTcp(Key),
}

/// Decodes and bounds the targets a client asks the daemon to connect to.
pub fn decode_targets(json: &str) -> Result<Vec<Key>, TargetError> {
    let targets: Vec<Key> =
        serde_json::from_str(json).map_err(|e| TargetError::Json(e.to_string()))?;
    if targets.len() > PROBE_SIZE as usize {
        return Err(TargetError::TooMany(targets.len()));
    }
    if let Some(bad) = targets
        .iter()
        .find(|k| k.proto != Proto::Tcp || k.port == 0)
    {
        return Err(TargetError::NotTcp(*bad));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP key.
    fn key(addr: &str, port: u16) -> Key {
        Key {
            addr: addr.parse().unwrap(),
            proto: Proto::Tcp,
            port,
        }
    }

    #[test]
    fn probe_lists_are_bounded() {
        let one = r#"{"key":{"addr":"10.0.0.1","proto":"tcp","port":9},"fence":true}"#;
        let many = format!("[{}]", vec![one; PROBE_SIZE as usize + 1].join(","));
        assert_eq!(
            decode_probes(&many),
            Err(ProbeError::TooMany(PROBE_SIZE as usize + 1))
        );
        assert!(decode_probes(&format!("[{one}]")).is_ok());
        let port0 = format!("[{}]", one.replace("\"port\":9", "\"port\":0"));
        assert!(matches!(decode_probes(&port0), Err(ProbeError::Port(_))));
        assert!(decode_probes("[{\"nft\": 1}]").is_err());
    }

    #[test]
    fn only_bounded_tcp_targets_with_ports_are_accepted() {
        let ok = serde_json::to_string(&[key("10.0.0.1", 22)]).unwrap();
        assert_eq!(decode_targets(&ok).unwrap(), vec![key("10.0.0.1", 22)]);
        let udp = Key {
            proto: Proto::Udp,
            ..key("10.0.0.1", 53)
        };
        let udp = serde_json::to_string(&[udp]).unwrap();
        assert!(matches!(decode_targets(&udp), Err(TargetError::NotTcp(_))));
        let zero = serde_json::to_string(&[key("10.0.0.1", 0)]).unwrap();
        assert!(matches!(decode_targets(&zero), Err(TargetError::NotTcp(_))));
        let many = vec![key("10.0.0.1", 22); PROBE_SIZE as usize + 1];
        let many = serde_json::to_string(&many).unwrap();
        assert!(matches!(
            decode_targets(&many),
            Err(TargetError::TooMany(_))
        ));
        assert!(matches!(decode_targets("{}"), Err(TargetError::Json(_))));
    }
}
