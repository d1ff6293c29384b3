//! The helper-container protocol (macOS, or Linux by choice): `alca` runs
//! `docker exec -i alcatraz-network-helper alca-netd request`, writes one JSON [`HelperRequest`]
//! on stdin and reads one JSON [`HelperReply`] from stdout. This is the wire format and the
//! names of what `alca network-helper install` creates; the daemon's side (the dispatch to its
//! engine) lives in `alca-netd`.

use serde::{Deserialize, Serialize};

#[cfg(feature = "dbus")]
use crate::errors::NetdError;
use std::net::SocketAddr;

use crate::internet_status::{GrantInfo, InternetStatus};
use crate::net_spec::MAX_REQUEST_BYTES;
use crate::probe::{Denied, LiveCheck, Outcome};
#[cfg(feature = "dbus")]
use crate::request::RequestError;
use crate::resolver_spec::ResolverSpec;
use crate::status::ProjectStatus;

/// Name of the helper container.
pub const CONTAINER_NAME: &str = "alcatraz-network-helper";
/// Repository of the helper image; the tag is the version of `alca-netd` inside.
pub const IMAGE_REPO: &str = "alcatraz-network-helper";
/// Named volume holding the helper's saved specs (mounted at `/var/lib/alcatraz`).
pub const STATE_VOLUME: &str = "alcatraz-network-helper-state";
/// Label on the container, image and volume, so uninstall finds exactly what install made.
pub const LABEL: &str = "io.github.alcatraz.network-helper=1";
/// Environment variable telling the helper which VM it runs in (`orbstack`, `docker-desktop`,
/// `linux`), set by `alca network-helper install`.
pub const PLATFORM_ENV: &str = "ALCA_HELPER_PLATFORM";
/// Where the helper's daemon listens for the requests `alca-netd request` forwards (inside the
/// helper container; root only).
pub const SOCKET_PATH: &str = "/run/alca-netd/helper.sock";
/// Where the helper's resolvers keep their query logs, one directory per project.
pub const RESOLVER_DIR: &str = "/run/alca-netd/dns";
/// The uid and gid the helper's resolvers run as (the image has no user database): nobody.
pub const RESOLVER_UID: u32 = 65534;
/// Where the resolver binary lives in the helper image.
pub const IMAGE_RESOLVER: &str = "/usr/sbin/alca-dns-resolver";
/// Longest query log a `QueryLog` reply carries (the log and its rotated copy are 1 MiB each).
pub const MAX_QUERY_LOG_BYTES: u64 = 2 * 1024 * 1024 + 4096;
/// Room for the envelope around a spec of [`MAX_REQUEST_BYTES`] (the spec is JSON-escaped).
pub const MAX_ENVELOPE_BYTES: usize = 2 * MAX_REQUEST_BYTES + 1024;

/// The image tag this build of `alca`/`alca-netd` uses.
pub fn image_ref() -> String {
    format!("{IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION"))
}

/// One call, as `alca` sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum HelperRequest {
    /// Install or replace a project's rules; `spec` is the JSON of a `NetSpec`.
    Apply { uid: u32, spec: String },
    /// Claim a project's bridge name before its network is created.
    Claim { uid: u32, project: String },
    /// Remove a project's rules and saved spec.
    Remove { uid: u32, project: String },
    /// One project's state.
    Status { uid: u32, project: String },
    /// The caller's projects.
    List { uid: u32 },
    /// Uninstall: delete every `alca-` table and saved spec.
    Purge,
    /// The version of the `alca-netd` inside the helper.
    Version,
    /// Starts the project's DNS resolver next to the daemon (or keeps the one running with
    /// the same spec); the reply is its address.
    StartResolver { uid: u32, spec: ResolverSpec },
    /// Stops the project's resolver, if one runs.
    StopResolver { uid: u32, project: String },
    /// Where the project's resolver answers, if one runs.
    ResolverAddress { uid: u32, project: String },
    /// The names the project's resolver refused: its query log, as the JSON lines it wrote.
    QueryLog { uid: u32, project: String },
    /// `Grant`: `entry` for `secs` seconds (`alca network allow NAME --for`).
    Grant {
        uid: u32,
        project: String,
        entry: String,
        secs: u32,
    },
    /// `Revoke`: ends the project's grants of `entry`.
    Revoke {
        uid: u32,
        project: String,
        entry: String,
    },
    /// `Grants`: the project's live grants.
    Grants { uid: u32, project: String },
    /// `InternetStatus`: the mode, the entries and the allow sets' size.
    InternetStatus { uid: u32, project: String },
    /// `Denied`: the project's log of denied attempts (`alca network log`).
    Denied { uid: u32, project: String },
    /// `ArmProbes`: checks the live rules and arms `probes` (the JSON list the D-Bus method
    /// takes, through the same gate) for `alca network verify`.
    ArmProbes {
        uid: u32,
        project: String,
        probes: String,
    },
    /// `ProbeOutcome`: which armed probes got past the rules, and the denied log; disarms.
    ProbeOutcome { uid: u32, project: String },
}

/// The kinds of failure, named as the D-Bus errors are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    NotAuthorized,
    InvalidRequest,
    NotOwner,
    ApplyFailed,
    LimitReached,
    Internal,
}

/// The answer to one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum HelperReply {
    Done,
    Status(ProjectStatus),
    List(Vec<ProjectStatus>),
    Purged(Vec<String>),
    Version(String),
    Resolver(Option<SocketAddr>),
    QueryLog(String),
    Grant(GrantInfo),
    Revoked(u32),
    Grants(Vec<GrantInfo>),
    InternetStatus(InternetStatus),
    Denied(Vec<Denied>),
    Check(LiveCheck),
    Outcome(Outcome),
    Error { kind: ErrorKind, message: String },
}

#[cfg(feature = "dbus")]
impl From<NetdError> for HelperReply {
    fn from(e: NetdError) -> Self {
        let kind = match &e {
            NetdError::NotAuthorized(_) => ErrorKind::NotAuthorized,
            NetdError::InvalidRequest(_) => ErrorKind::InvalidRequest,
            NetdError::NotOwner(_) => ErrorKind::NotOwner,
            NetdError::ApplyFailed(_) => ErrorKind::ApplyFailed,
            NetdError::LimitReached(_) => ErrorKind::LimitReached,
            NetdError::ZBus(_) | NetdError::Internal(_) => ErrorKind::Internal,
        };
        HelperReply::Error {
            kind,
            message: e.message(),
        }
    }
}

#[cfg(feature = "dbus")]
impl HelperReply {
    /// The error this reply carries, as the D-Bus client would have returned it.
    pub fn into_result(self) -> Result<HelperReply, NetdError> {
        let HelperReply::Error { kind, message } = self else {
            return Ok(self);
        };
        Err(match kind {
            ErrorKind::NotAuthorized => NetdError::NotAuthorized(message),
            ErrorKind::InvalidRequest => NetdError::InvalidRequest(message),
            ErrorKind::NotOwner => NetdError::NotOwner(message),
            ErrorKind::ApplyFailed => NetdError::ApplyFailed(message),
            ErrorKind::LimitReached => NetdError::LimitReached(message),
            ErrorKind::Internal => NetdError::Internal(message),
        })
    }
}

/// Decodes the envelope; its size is bounded before parsing.
#[cfg(feature = "dbus")]
pub fn decode_request(bytes: &[u8]) -> Result<HelperRequest, NetdError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(NetdError::invalid(RequestError::TooLarge(bytes.len())));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| NetdError::invalid(format!("request is not a valid helper request: {e}")))
}

#[cfg(all(test, feature = "dbus"))]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip_into_the_same_errors() {
        let reply: HelperReply = NetdError::ApplyFailed("nft: no".into()).into();
        let text = serde_json::to_string(&reply).unwrap();
        let back: HelperReply = serde_json::from_str(&text).unwrap();
        assert!(matches!(back.into_result(), Err(NetdError::ApplyFailed(m)) if m == "nft: no"));
        assert_eq!(HelperReply::Done.into_result().unwrap(), HelperReply::Done);
    }

    #[test]
    fn internet_requests_are_typed_and_closed() {
        let grant = HelperRequest::Grant {
            uid: 1000,
            project: "0123456789abcdef".into(),
            entry: "allowed.test".into(),
            secs: 3,
        };
        let text = serde_json::to_vec(&grant).unwrap();
        assert_eq!(decode_request(&text).unwrap(), grant);
        for bad in [
            &br#"{"op":"grant","uid":1000,"project":"p","entry":"x"}"#[..],
            br#"{"op":"grant","uid":1000,"project":"p","entry":"x","secs":3,"nft":"x"}"#,
            br#"{"op":"start_resolver","uid":1000,"spec":{"project":"p"}}"#,
            br#"{"op":"query_log","uid":-1,"project":"p"}"#,
        ] {
            assert!(
                matches!(decode_request(bad), Err(NetdError::InvalidRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let reply = HelperReply::Resolver(Some("10.89.0.1:5353".parse().unwrap()));
        let back: HelperReply =
            serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap();
        assert_eq!(back, reply);
    }
}
