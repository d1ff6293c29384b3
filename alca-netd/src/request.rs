//! Decoding of the one request body callers send: the JSON of a [`NetSpec`].
//!
//! Untrusted bytes from any local user pass through here first, so it bounds the size,
//! refuses unknown fields (the spec derives `deny_unknown_fields`) and runs `validate()`.

use crate::internet::ResolvedAddrs;
use crate::spec::{validate_project_id, NetSpec, SpecError, MAX_REQUEST_BYTES};

/// Why a request was refused; every message says which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request is {0} bytes, more than the limit of {MAX_REQUEST_BYTES}")]
    TooLarge(usize),
    #[error("request is not a valid network spec: {0}")]
    Json(String),
    #[error("invalid network spec: {0}")]
    Spec(#[from] SpecError),
}

/// Decodes and validates a spec sent by a client.
pub fn decode_spec(json: &str) -> Result<NetSpec, RequestError> {
    if json.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge(json.len()));
    }
    let spec: NetSpec =
        serde_json::from_str(json).map_err(|e| RequestError::Json(truncate(&e.to_string())))?;
    spec.validate()?;
    Ok(spec)
}

/// Checks a bare project id argument (`Remove`, `Status`).
pub fn decode_project(project: &str) -> Result<&str, RequestError> {
    if project.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge(project.len()));
    }
    validate_project_id(project)?;
    Ok(project)
}

/// Decodes a resolver's update (`AllowResolved`); the engine checks it against the applied spec.
pub fn decode_resolved(json: &str) -> Result<ResolvedAddrs, RequestError> {
    if json.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge(json.len()));
    }
    let update: ResolvedAddrs =
        serde_json::from_str(json).map_err(|e| RequestError::Json(truncate(&e.to_string())))?;
    validate_project_id(&update.project)?;
    Ok(update)
}

/// Encodes a spec the way [`decode_spec`] reads it.
pub fn encode_spec(spec: &NetSpec) -> String {
    // A NetSpec holds only strings, numbers, booleans and addresses: serialising cannot fail.
    serde_json::to_string(spec).unwrap_or_default()
}

/// serde messages quote the offending input; keep them short.
fn truncate(msg: &str) -> String {
    const MAX: usize = 300;
    if msg.len() <= MAX {
        return msg.to_string();
    }
    let mut end = MAX;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &msg[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = r#"{"project":"0123456789abcdef","bridge":"alca-0123456789"}"#;

    #[test]
    fn accepts_a_valid_spec_and_round_trips() {
        let spec = decode_spec(GOOD).unwrap();
        assert_eq!(spec.project, "0123456789abcdef");
        assert_eq!(decode_spec(&encode_spec(&spec)).unwrap(), spec);
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        let unknown = r#"{"project":"0123456789abcdef","bridge":"alca-0123456789","nft":"x"}"#;
        assert!(matches!(decode_spec(unknown), Err(RequestError::Json(_))));
        let foreign = r#"{"project":"0123456789abcdef","bridge":"docker0"}"#;
        assert!(matches!(
            decode_spec(foreign),
            Err(RequestError::Spec(SpecError::Bridge { .. }))
        ));
        assert!(matches!(decode_spec("{"), Err(RequestError::Json(_))));
        assert!(decode_project("../../etc").is_err());
        assert_eq!(decode_project("deadbeef"), Ok("deadbeef"));
    }

    #[test]
    fn refuses_oversized_requests_before_parsing() {
        let big = format!("{}{}", GOOD, " ".repeat(MAX_REQUEST_BYTES));
        assert_eq!(decode_spec(&big), Err(RequestError::TooLarge(big.len())));
        let id = "a".repeat(MAX_REQUEST_BYTES + 1);
        assert_eq!(decode_project(&id), Err(RequestError::TooLarge(id.len())));
    }

    #[test]
    fn long_parse_errors_are_truncated() {
        let junk = format!("{{\"project\": \"{}", "x".repeat(2000));
        let Err(RequestError::Json(msg)) = decode_spec(&junk) else {
            panic!("junk must fail to parse");
        };
        assert!(msg.len() < 400, "{msg}");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,400}") {
            let _ = decode_spec(&s);
            let _ = decode_project(&s);
        }

        #[test]
        fn never_panics_on_json_like_text(
            project in "[0-9a-fA-F;' ]{0,70}",
            bridge in "[a-z0-9-]{0,20}",
            extra in "[a-z_]{0,8}",
        ) {
            let json = format!(r#"{{"project":"{project}","bridge":"{bridge}","{extra}":1}}"#);
            if let Ok(spec) = decode_spec(&json) {
                prop_assert!(spec.validate().is_ok());
            }
        }

        #[test]
        fn anything_over_the_limit_is_refused(pad in (MAX_REQUEST_BYTES - GOOD.len() + 1)..(MAX_REQUEST_BYTES + 64)) {
            let json = format!("{GOOD}{}", " ".repeat(pad));
            prop_assert_eq!(decode_spec(&json), Err(RequestError::TooLarge(json.len())));
        }
    }
}
