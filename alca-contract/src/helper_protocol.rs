//! The helper-container protocol (macOS, or Linux by choice): `alca` runs
//! `docker exec -i alcatraz-network-helper alca-netd request`, writes one JSON [`HelperRequest`]
//! on stdin and reads one JSON [`HelperReply`] from stdout. This is the wire format and the
//! names of what `alca network-helper install` creates; the daemon's side (the dispatch to its
//! engine) lives in `alca-netd`.

use serde::{Deserialize, Serialize};

#[cfg(feature = "dbus")]
use crate::errors::NetdError;
use crate::net_spec::MAX_REQUEST_BYTES;
#[cfg(feature = "dbus")]
use crate::request::RequestError;
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
}
