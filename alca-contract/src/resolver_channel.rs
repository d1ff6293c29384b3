//! The channel between a project's resolver and the helper container's daemon (macOS, where
//! there is no system bus): the daemon starts the resolver with one end of a socket pair as
//! descriptor [`CHANNEL_FD`] and serves the other. One JSON line per call, one JSON line per
//! answer, in order. The calls are exactly the two a resolver makes over D-Bus after
//! `NarrowToResolver` (`AllowResolved`, `InternetEntries`): there is no call that could do more.

use serde::{Deserialize, Serialize};

use crate::internet_status::InternetEntries;
use crate::net_spec::MAX_REQUEST_BYTES;

/// The descriptor the resolver finds its end of the channel on.
pub const CHANNEL_FD: i32 = 3;
/// Longest call line (the update inside is bounded by [`MAX_REQUEST_BYTES`] and JSON-escaped).
pub const MAX_CALL_BYTES: usize = 2 * MAX_REQUEST_BYTES + 256;
/// Longest answer line (a project's entries and grants).
pub const MAX_ANSWER_BYTES: usize = 4 * MAX_REQUEST_BYTES;

/// One call of the resolver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResolverCall {
    /// `AllowResolved`: `update` is a `ResolvedAddrs` as JSON, decoded by the daemon with the
    /// same bounded `decode_resolved` as the D-Bus body.
    AllowResolved { update: String },
    /// `InternetEntries` of `project`.
    InternetEntries { project: String },
}

/// The daemon's answer to one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ResolverAnswer {
    /// The addresses are in the kernel.
    Allowed,
    Entries(InternetEntries),
    /// Refused; the message says why (the resolver answers SERVFAIL).
    Refused(String),
}

/// Decodes one line; its size is bounded before parsing.
pub fn decode_line<'a, T: Deserialize<'a>>(line: &'a [u8], limit: usize) -> Result<T, String> {
    if line.len() > limit {
        return Err(format!(
            "a line of {} bytes is more than the limit of {limit}",
            line.len()
        ));
    }
    serde_json::from_slice(line).map_err(|e| format!("not a valid line of the channel: {e}"))
}

/// One line, ending in `\n` (JSON never holds a raw newline).
pub fn encode_line<T: Serialize>(value: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_unknown_calls_are_refused() {
        let call = ResolverCall::InternetEntries {
            project: "0123456789abcdef".into(),
        };
        let line = encode_line(&call);
        assert_eq!(line.last(), Some(&b'\n'));
        let back: ResolverCall = decode_line(&line[..line.len() - 1], MAX_CALL_BYTES).unwrap();
        assert_eq!(back, call);
        for bad in [
            &br#"{"call":"apply","spec":"{}"}"#[..],
            br#"{"call":"grant","project":"0123456789abcdef","entry":"*"}"#,
            br#"{"call":"internet_entries","project":"p","uid":0}"#,
            b"{",
        ] {
            assert!(decode_line::<ResolverCall>(bad, MAX_CALL_BYTES).is_err());
        }
        let big = vec![b' '; MAX_CALL_BYTES + 1];
        let e = decode_line::<ResolverCall>(&big, MAX_CALL_BYTES).unwrap_err();
        assert!(e.contains("more than the limit"), "{e}");
    }
}
