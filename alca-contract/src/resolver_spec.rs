//! What a project's DNS resolver is started with (`network.internet-access`), shared by the
//! CLI, which starts it on Linux, and the helper container's daemon, which starts it next to
//! itself (macOS): one type, so both start the same resolver with the same spec.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::internet::{InternetEntry, MAX_INTERNET_ENTRIES};
use crate::net_spec::{validate_project_id, SpecError};

/// Upstream servers a resolver asks at most (`dns-upstream` allows 8; the host's list is cut).
pub const MAX_UPSTREAMS: usize = 8;

/// First word of the resolver's ready line; the second is its address.
pub const READY_WORD: &str = "ready";

/// What a resolver is started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolverSpec {
    pub project: String,
    /// The project network's IPv4 gateway: the address the daemon sends container DNS to.
    pub listen: IpAddr,
    pub entries: Vec<InternetEntry>,
    pub upstreams: Vec<SocketAddr>,
    /// The gateway is put up only when the first container starts (Podman): bind before it
    /// exists (`alca_dns::bind_before_up`).
    #[serde(default)]
    pub gateway_up_later: bool,
}

impl ResolverSpec {
    /// The bounds a daemon checks before it starts a resolver with this spec.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_project_id(&self.project)?;
        let bad = |what: String| SpecError::Resolver(what);
        if !self.listen.is_ipv4() || self.listen.is_unspecified() {
            return Err(bad(format!(
                "listen: {} is not the project network's IPv4 gateway",
                self.listen
            )));
        }
        if self.entries.len() > MAX_INTERNET_ENTRIES {
            return Err(bad(format!(
                "entries: {} is more than the limit of {MAX_INTERNET_ENTRIES}",
                self.entries.len()
            )));
        }
        if self.upstreams.is_empty() || self.upstreams.len() > MAX_UPSTREAMS {
            return Err(bad(format!(
                "upstreams: {} servers; give 1 to {MAX_UPSTREAMS} (network.dns-upstream)",
                self.upstreams.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ResolverSpec {
        ResolverSpec {
            project: "0123456789abcdef".into(),
            listen: "10.89.0.1".parse().unwrap(),
            entries: vec![crate::internet::parse_internet_entry("allowed.test:80").unwrap()],
            upstreams: vec!["192.88.99.2:53".parse().unwrap()],
            gateway_up_later: false,
        }
    }

    #[test]
    fn bounds_are_checked() {
        assert!(spec().validate().is_ok());
        let cases: Vec<(ResolverSpec, &str)> = vec![
            (
                ResolverSpec {
                    project: "x; y".into(),
                    ..spec()
                },
                "project",
            ),
            (
                ResolverSpec {
                    listen: "::1".parse().unwrap(),
                    ..spec()
                },
                "listen",
            ),
            (
                ResolverSpec {
                    upstreams: vec![],
                    ..spec()
                },
                "upstreams",
            ),
            (
                ResolverSpec {
                    upstreams: vec!["192.0.2.1:53".parse().unwrap(); MAX_UPSTREAMS + 1],
                    ..spec()
                },
                "upstreams",
            ),
        ];
        for (s, field) in cases {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{e} lacks {field}");
        }
    }
}
