//! Who a project bridge name belongs to, from before its network exists until it is gone.
//!
//! Rules act on a bridge by name (`alca-` and ten digits of the project id), so whoever holds
//! rules on a name acts on the containers plugged into it: a proxy DNAT there captures their
//! traffic. `alca up` therefore claims the name before it creates the network, for every
//! project (also `lan-access = ["*"]`, which applies no rules), and an Apply claims it too. A
//! claim is held until its owner removes the project; it then stays reserved for that owner
//! (released) while the bridge still exists. An existing bridge nobody claimed was made by
//! someone else (or by an older alca): only root may take it.

use serde::{Deserialize, Serialize};

use alca_contract::errors::NetdError;
use alca_contract::net_spec::{bridge_name, validate_project_id};

/// One claim: `claims/<bridge>.json` in the daemon's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub bridge: String,
    pub project: String,
    pub owner_uid: u32,
    /// The project was removed; the name stays its owner's while the bridge exists.
    #[serde(default)]
    pub released: bool,
}

impl Claim {
    pub fn new(project: &str, owner_uid: u32) -> Claim {
        Claim {
            bridge: bridge_name(project),
            project: project.to_string(),
            owner_uid,
            released: false,
        }
    }

    /// A claim read back is trusted only if its names are well-formed and agree.
    pub fn validate(&self) -> Result<(), String> {
        validate_project_id(&self.project).map_err(|e| e.to_string())?;
        if self.bridge != bridge_name(&self.project) {
            return Err(format!(
                "bridge {} is not the bridge of project {}",
                self.bridge, self.project
            ));
        }
        Ok(())
    }

    /// Whether the claim still keeps others off the name.
    pub fn held(&self, bridge_present: bool) -> bool {
        !self.released || bridge_present
    }
}

/// What a claim request comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Already the caller's; write it back only if it was released.
    Keep,
    /// Free (never claimed, or released and gone): record a new claim.
    Take,
}

/// Whether `owner` (acting through `caller`) may claim the bridge of `project`, given the claim
/// on that name (`existing`), whether the bridge exists, and whether the project has a saved
/// spec (a project saved by a daemon older than claims owns its bridge already).
pub fn judge(
    existing: Option<&Claim>,
    project: &str,
    owner: u32,
    caller: u32,
    bridge_present: bool,
    saved: bool,
) -> Result<Verdict, NetdError> {
    let bridge = bridge_name(project);
    match existing {
        Some(c) if c.project == project && c.owner_uid == owner => Ok(Verdict::Keep),
        Some(c) if c.held(bridge_present) => Err(NetdError::NotOwner(format!(
            "bridge {bridge} is claimed by project {} of uid {}{}; a bridge belongs to one \
             project. If that project is yours, run `alca down` in it first",
            c.project,
            c.owner_uid,
            if c.released {
                " (removed, but its network still exists)"
            } else {
                ""
            },
        ))),
        Some(_) => Ok(Verdict::Take),
        None if bridge_present && !saved && caller != 0 => Err(NetdError::NotOwner(format!(
            "bridge {bridge} already exists but no project claimed it: someone else (or an \
             alca older than this daemon) created that network. Remove it (`docker network rm` \
             or `podman network rm` of the network using bridge {bridge}) and run `alca up` \
             again, or ask root"
        ))),
        None => Ok(Verdict::Take),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "0123456789aaaaaa";
    const Q: &str = "0123456789bbbbbb";

    fn claim(project: &str, owner: u32, released: bool) -> Claim {
        Claim {
            released,
            ..Claim::new(project, owner)
        }
    }

    #[test]
    fn a_free_name_is_taken_and_an_own_claim_kept() {
        assert_eq!(
            judge(None, P, 1001, 1001, false, false).unwrap(),
            Verdict::Take
        );
        let mine = claim(P, 1001, true);
        assert_eq!(
            judge(Some(&mine), P, 1001, 1001, true, false).unwrap(),
            Verdict::Keep
        );
    }

    #[test]
    fn a_held_claim_is_refused_to_everyone_else() {
        for (existing, present) in [
            (claim(P, 1001, false), false),
            (claim(P, 1001, false), true),
            (claim(P, 1001, true), true),
        ] {
            for (project, owner, caller) in [(Q, 1002, 1002), (P, 1002, 1002), (Q, 1001, 0)] {
                let err = judge(Some(&existing), project, owner, caller, present, false)
                    .unwrap_err()
                    .message();
                assert!(err.contains("alca-0123456789") && err.contains(P), "{err}");
            }
        }
    }

    #[test]
    fn a_released_name_whose_bridge_is_gone_is_free() {
        let old = claim(P, 1001, true);
        assert_eq!(
            judge(Some(&old), Q, 1002, 1002, false, false).unwrap(),
            Verdict::Take
        );
    }

    #[test]
    fn an_existing_unclaimed_bridge_is_root_only() {
        let err = judge(None, P, 1002, 1002, true, false)
            .unwrap_err()
            .message();
        assert!(err.contains("no project claimed it"), "{err}");
        assert_eq!(judge(None, P, 0, 0, true, false).unwrap(), Verdict::Take);
        assert_eq!(
            judge(None, P, 1001, 1001, true, true).unwrap(),
            Verdict::Take,
            "a project saved before claims existed keeps its bridge"
        );
    }

    #[test]
    fn claims_read_back_must_agree_with_themselves() {
        assert!(Claim::new(P, 1).validate().is_ok());
        let mut bad = Claim::new(P, 1);
        bad.bridge = "docker0".into();
        assert!(bad.validate().is_err());
    }
}
