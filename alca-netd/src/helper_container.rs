//! The daemon's side of the helper-container protocol ([`alca_contract::helper_protocol`]):
//! `alca-netd request` inside the helper container decodes one [`HelperRequest`] and answers
//! one [`HelperReply`].
//!
//! The spec inside an `apply` travels as the same JSON string the D-Bus `Apply` method takes
//! and goes through the same [`decode_spec`] gate, bridge check and [`Daemon`]; callers never
//! send nft text. Who may call: whoever may `docker exec` into the privileged helper — the
//! container runtime's socket is the authority here (it already grants root in the VM), so the
//! `uid` a request carries is the caller's own uid, recorded as the owner so that users do not
//! change each other's projects by mistake, not a security boundary.

use alca_contract::errors::NetdError;
use alca_contract::helper_protocol::{decode_request, HelperReply, HelperRequest};
use alca_contract::net_spec::bridge_name;
use alca_contract::request::{decode_project, decode_spec};

use crate::daemon::Daemon;

/// Runs one request on `daemon`. `check_bridge` refuses a bridge name held by an interface
/// that is not a bridge, and says whether the bridge exists (rtnetlink in production).
pub fn handle(
    daemon: &Daemon,
    bytes: &[u8],
    check_bridge: &dyn Fn(&str) -> Result<bool, String>,
) -> HelperReply {
    match dispatch(daemon, bytes, check_bridge) {
        Ok(reply) => reply,
        Err(e) => e.into(),
    }
}

fn dispatch(
    daemon: &Daemon,
    bytes: &[u8],
    check_bridge: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<HelperReply, NetdError> {
    Ok(match decode_request(bytes)? {
        HelperRequest::Apply { uid, spec } => {
            let spec = decode_spec(&spec).map_err(NetdError::invalid)?;
            let present = check_bridge(&spec.bridge).map_err(NetdError::InvalidRequest)?;
            tracing::info!(uid, project = %spec.project, "apply");
            daemon.apply(spec, uid, present)?;
            HelperReply::Done
        }
        HelperRequest::Claim { uid, project } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            let present =
                check_bridge(&bridge_name(&project)).map_err(NetdError::InvalidRequest)?;
            tracing::info!(uid, project = %project, "claim");
            daemon.claim(&project, uid, present)?;
            HelperReply::Done
        }
        HelperRequest::Remove { uid, project } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            tracing::info!(uid, project = %project, "remove");
            // A name held by some other kind of interface is no bridge of ours: not present.
            let present = check_bridge(&bridge_name(&project)).unwrap_or(false);
            daemon.remove(&project, uid, present)?;
            HelperReply::Done
        }
        HelperRequest::Status { uid, project } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            HelperReply::Status(daemon.status(&project, uid)?)
        }
        HelperRequest::List { uid } => HelperReply::List(daemon.list(uid)?),
        HelperRequest::Purge => HelperReply::Purged(daemon.purge()?),
        HelperRequest::Version => HelperReply::Version(env!("CARGO_PKG_VERSION").into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{Firewall, FirewallError};
    use crate::store::Store;
    use alca_contract::helper_protocol::{ErrorKind, MAX_ENVELOPE_BYTES};
    use alca_kernel::set_elements::ElementBatch;
    use alca_ruleset::Ruleset;
    use serde_json::Value;
    use std::sync::{Arc, Mutex};

    /// Records every batch; tables are not tracked (the daemon's own tests do that).
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Ruleset>>>);

    impl Firewall for Recorder {
        fn apply(&self, batch: &Ruleset) -> Result<(), FirewallError> {
            crate::firewall::ensure_only_alca(batch)?;
            self.0.lock().unwrap().push(batch.clone());
            Ok(())
        }
        fn apply_elements(&self, batch: &ElementBatch) -> Result<(), FirewallError> {
            crate::firewall::ensure_only_alca(batch)
        }
        fn alca_tables(&self) -> Result<Vec<String>, FirewallError> {
            Ok(vec![])
        }
        fn list_table(&self, _name: &str) -> Result<Option<Value>, FirewallError> {
            Ok(None)
        }
    }

    const PROJECT: &str = "0123456789abcdef";

    fn daemon() -> (Daemon, Recorder, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let fw = Recorder::default();
        (
            Daemon::new(Box::new(fw.clone()), Store::new(dir.path())),
            fw,
            dir,
        )
    }

    fn apply(uid: u32, spec: &str) -> Vec<u8> {
        serde_json::to_vec(&HelperRequest::Apply {
            uid,
            spec: spec.into(),
        })
        .unwrap()
    }

    fn ok_bridge(_: &str) -> Result<bool, String> {
        Ok(false)
    }

    fn spec_json() -> String {
        format!(
            r#"{{"project":"{PROJECT}","bridge":"{}"}}"#,
            bridge_name(PROJECT)
        )
    }

    #[test]
    fn apply_goes_through_validation_and_the_engine() {
        let (e, fw, _dir) = daemon();
        assert_eq!(
            handle(&e, &apply(1000, &spec_json()), &ok_bridge),
            HelperReply::Done
        );
        assert_eq!(fw.0.lock().unwrap().len(), 1);
        let status = serde_json::to_vec(&HelperRequest::Status {
            uid: 1000,
            project: PROJECT.into(),
        })
        .unwrap();
        let HelperReply::Status(s) = handle(&e, &status, &ok_bridge) else {
            panic!("status reply expected");
        };
        assert!(s.saved);
        assert_eq!(s.owner_uid, 1000);
        // Another uid is not the owner, exactly as over D-Bus.
        let reply = handle(&e, &apply(1001, &spec_json()), &ok_bridge);
        assert!(matches!(
            reply,
            HelperReply::Error {
                kind: ErrorKind::NotOwner,
                ..
            }
        ));
    }

    #[test]
    fn bad_requests_change_nothing_and_say_why() {
        let (e, fw, _dir) = daemon();
        let nft_text = format!(
            r#"{{"project":"{PROJECT}","bridge":"{}","nft":"flush ruleset"}}"#,
            bridge_name(PROJECT)
        );
        let not_bridge = |_: &str| Err("bridge: alca-0123456789 is a veth device".to_string());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{".to_vec(), "not a valid helper request"),
            (
                br#"{"op":"shell","cmd":"nft flush ruleset"}"#.to_vec(),
                "unknown variant",
            ),
            (apply(1000, &nft_text), "unknown field"),
            (
                apply(1000, r#"{"project":"x; flush","bridge":"docker0"}"#),
                "project",
            ),
            (vec![b' '; MAX_ENVELOPE_BYTES + 1], "more than the limit"),
        ];
        for (bytes, mentions) in cases {
            match handle(&e, &bytes, &ok_bridge) {
                HelperReply::Error {
                    kind: ErrorKind::InvalidRequest,
                    message,
                } => assert!(message.contains(mentions), "{message:?} lacks {mentions:?}"),
                other => panic!("expected InvalidRequest, got {other:?}"),
            }
        }
        let reply = handle(&e, &apply(1000, &spec_json()), &not_bridge);
        assert!(
            matches!(reply, HelperReply::Error { kind: ErrorKind::InvalidRequest, ref message } if message.contains("veth"))
        );
        assert!(fw.0.lock().unwrap().is_empty());
    }
}
