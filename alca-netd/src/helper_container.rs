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
use alca_contract::probe::decode_probes;
use alca_contract::request::{decode_project, decode_spec};

use crate::daemon::Daemon;
use crate::helper_resolvers::HelperResolvers;
use crate::service::bounded_arg;

/// Runs one request on `daemon` (the projects' resolvers: `resolvers`). `check_bridge`
/// refuses a bridge name held by an interface that is not a bridge, and says whether the
/// bridge exists (rtnetlink in production).
pub fn handle(
    daemon: &Daemon,
    resolvers: &HelperResolvers,
    bytes: &[u8],
    check_bridge: &dyn Fn(&str) -> Result<bool, String>,
) -> HelperReply {
    match dispatch(daemon, resolvers, bytes, check_bridge) {
        Ok(reply) => reply,
        Err(e) => e.into(),
    }
}

fn dispatch(
    daemon: &Daemon,
    resolvers: &HelperResolvers,
    bytes: &[u8],
    check_bridge: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<HelperReply, NetdError> {
    let project_of = |project: &str, uid: u32| -> Result<(), NetdError> {
        decode_project(project).map_err(NetdError::invalid)?;
        daemon.check_holder(project, uid)
    };
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
        HelperRequest::StartResolver { uid, spec } => {
            project_of(&spec.project, uid)?;
            tracing::info!(uid, project = %spec.project, "start resolver");
            HelperReply::Resolver(Some(resolvers.start(spec, uid)?))
        }
        HelperRequest::StopResolver { uid, project } => {
            project_of(&project, uid)?;
            resolvers.stop(&project);
            HelperReply::Done
        }
        HelperRequest::ResolverAddress { uid, project } => {
            project_of(&project, uid)?;
            HelperReply::Resolver(resolvers.address(&project))
        }
        HelperRequest::QueryLog { uid, project } => {
            project_of(&project, uid)?;
            HelperReply::QueryLog(resolvers.query_log(&project)?)
        }
        HelperRequest::Grant {
            uid,
            project,
            entry,
            secs,
        } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            bounded_arg(&entry)?;
            tracing::info!(uid, project = %project, entry = %entry, secs, "grant");
            HelperReply::Grant(daemon.grant(&project, &entry, secs, uid)?)
        }
        HelperRequest::Revoke {
            uid,
            project,
            entry,
        } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            bounded_arg(&entry)?;
            tracing::info!(uid, project = %project, entry = %entry, "revoke");
            let n = daemon.revoke(&project, &entry, uid)?;
            HelperReply::Revoked(u32::try_from(n).unwrap_or(u32::MAX))
        }
        HelperRequest::Grants { uid, project } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            HelperReply::Grants(daemon.grants(&project, uid)?)
        }
        HelperRequest::InternetStatus { uid, project } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            HelperReply::InternetStatus(daemon.internet_status(&project, uid)?)
        }
        HelperRequest::Denied { uid, project } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            HelperReply::Denied(daemon.denied(&project, uid)?)
        }
        HelperRequest::ArmProbes {
            uid,
            project,
            probes,
        } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            let probes = decode_probes(&probes).map_err(NetdError::invalid)?;
            HelperReply::Check(daemon.arm_probes(&project, uid, &probes)?)
        }
        HelperRequest::ProbeOutcome { uid, project } => {
            decode_project(&project).map_err(NetdError::invalid)?;
            HelperReply::Outcome(daemon.probe_outcome(&project, uid)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::test_support::Recorder;
    use alca_contract::helper_protocol::{ErrorKind, MAX_ENVELOPE_BYTES};
    use std::sync::Arc;

    const PROJECT: &str = "0123456789abcdef";

    /// The daemon and its resolvers (whose binary does not exist: no test here starts one).
    struct Helper {
        daemon: Arc<Daemon>,
        resolvers: HelperResolvers,
    }

    impl Helper {
        fn handle(
            &self,
            bytes: &[u8],
            check_bridge: &dyn Fn(&str) -> Result<bool, String>,
        ) -> HelperReply {
            handle(&self.daemon, &self.resolvers, bytes, check_bridge)
        }
    }

    fn daemon() -> (Helper, Recorder, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let fw = Recorder::default();
        let daemon = Arc::new(Daemon::new(Box::new(fw.clone()), Store::new(dir.path())));
        let resolvers =
            HelperResolvers::new(Arc::clone(&daemon), "/nonexistent", dir.path().join("dns"));
        (Helper { daemon, resolvers }, fw, dir)
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
            e.handle(&apply(1000, &spec_json()), &ok_bridge),
            HelperReply::Done
        );
        assert_eq!(fw.0.lock().unwrap().len(), 1);
        let status = serde_json::to_vec(&HelperRequest::Status {
            uid: 1000,
            project: PROJECT.into(),
        })
        .unwrap();
        let HelperReply::Status(s) = e.handle(&status, &ok_bridge) else {
            panic!("status reply expected");
        };
        assert!(s.saved);
        assert_eq!(s.owner_uid, 1000);
        // Another uid is not the owner, exactly as over D-Bus.
        let reply = e.handle(&apply(1001, &spec_json()), &ok_bridge);
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
            match e.handle(&bytes, &ok_bridge) {
                HelperReply::Error {
                    kind: ErrorKind::InvalidRequest,
                    message,
                } => assert!(message.contains(mentions), "{message:?} lacks {mentions:?}"),
                other => panic!("expected InvalidRequest, got {other:?}"),
            }
        }
        let reply = e.handle(&apply(1000, &spec_json()), &not_bridge);
        assert!(
            matches!(reply, HelperReply::Error { kind: ErrorKind::InvalidRequest, ref message } if message.contains("veth"))
        );
        assert!(fw.0.lock().unwrap().is_empty());
    }

    fn request(r: &HelperRequest) -> Vec<u8> {
        serde_json::to_vec(r).unwrap()
    }

    #[test]
    fn internet_requests_reach_the_same_daemon_and_only_for_the_owner() {
        let (e, _fw, _dir) = daemon();
        let mut spec = alca_contract::NetSpec::isolated(PROJECT);
        spec.internet = Some(alca_contract::internet::InternetSpec {
            entries: vec![
                alca_contract::internet::parse_internet_entry("allowed.test:80").unwrap(),
            ],
            resolver: "10.89.0.1:5353".parse().unwrap(),
            ttl_floor_secs: 0,
            ttl_max_secs: 600,
        });
        let listed = alca_contract::request::encode_spec(&spec);
        assert_eq!(
            e.handle(&apply(1000, &listed), &ok_bridge),
            HelperReply::Done
        );
        let grant = |uid| HelperRequest::Grant {
            uid,
            project: PROJECT.into(),
            entry: "blocked.test".into(),
            secs: 60,
        };
        let HelperReply::Grant(g) = e.handle(&request(&grant(1000)), &ok_bridge) else {
            panic!("grant reply expected");
        };
        assert_eq!(g.remaining_secs, 60);
        // The grant is the daemon's: the next request (another process's, through the socket)
        // sees it.
        let grants = |uid| HelperRequest::Grants {
            uid,
            project: PROJECT.into(),
        };
        let HelperReply::Grants(live) = e.handle(&request(&grants(1000)), &ok_bridge) else {
            panic!("grants reply expected");
        };
        assert_eq!(live.len(), 1);
        let HelperReply::InternetStatus(status) = e.handle(
            &request(&HelperRequest::InternetStatus {
                uid: 1000,
                project: PROJECT.into(),
            }),
            &ok_bridge,
        ) else {
            panic!("status reply expected");
        };
        assert_eq!(status.mode, "list");
        // Another user: refused for every internet request, resolvers included.
        let stranger = [
            grant(1001),
            grants(1001),
            HelperRequest::Revoke {
                uid: 1001,
                project: PROJECT.into(),
                entry: "blocked.test".into(),
            },
            HelperRequest::StopResolver {
                uid: 1001,
                project: PROJECT.into(),
            },
            HelperRequest::QueryLog {
                uid: 1001,
                project: PROJECT.into(),
            },
            HelperRequest::Denied {
                uid: 1001,
                project: PROJECT.into(),
            },
            HelperRequest::ArmProbes {
                uid: 1001,
                project: PROJECT.into(),
                probes: "[]".into(),
            },
            HelperRequest::ProbeOutcome {
                uid: 1001,
                project: PROJECT.into(),
            },
        ];
        // Probes go through the D-Bus method's gate: no port 0, bounded, typed.
        for probes in [
            r#"[{"key":{"addr":"10.99.0.2","proto":"tcp","port":0},"fence":true}]"#,
            "{}",
        ] {
            let arm = HelperRequest::ArmProbes {
                uid: 1000,
                project: PROJECT.into(),
                probes: probes.into(),
            };
            let reply = e.handle(&request(&arm), &ok_bridge);
            assert!(
                matches!(
                    reply,
                    HelperReply::Error {
                        kind: ErrorKind::InvalidRequest,
                        ..
                    }
                ),
                "{probes}: {reply:?}"
            );
        }
        for r in stranger {
            let reply = e.handle(&request(&r), &ok_bridge);
            assert!(
                matches!(
                    reply,
                    HelperReply::Error {
                        kind: ErrorKind::NotOwner,
                        ..
                    }
                ),
                "{r:?}: {reply:?}"
            );
        }
        let revoke = HelperRequest::Revoke {
            uid: 1000,
            project: PROJECT.into(),
            entry: "blocked.test".into(),
        };
        assert_eq!(
            e.handle(&request(&revoke), &ok_bridge),
            HelperReply::Revoked(1)
        );
        // Bounded and validated like the D-Bus arguments.
        let long = HelperRequest::Grant {
            uid: 1000,
            project: PROJECT.into(),
            entry: "a".repeat(600),
            secs: 60,
        };
        let reply = e.handle(&request(&long), &ok_bridge);
        assert!(
            matches!(reply, HelperReply::Error { kind: ErrorKind::InvalidRequest, ref message } if message.contains("limit")),
            "{reply:?}"
        );
        let address = HelperRequest::ResolverAddress {
            uid: 1000,
            project: PROJECT.into(),
        };
        assert_eq!(
            e.handle(&request(&address), &ok_bridge),
            HelperReply::Resolver(None)
        );
    }
}
