//! `up`'s first choice, as a pure function: create the project's container, rebuild it, reuse
//! it, or refuse. It reads only the facts it is given (the existing container, the drift, the
//! flags) and the user's answer when drift needs one, so every branch is unit tested.

use std::path::Path;

use crate::drift::Change;
use crate::runtime::ContainerInfo;

use super::moved_message;

/// What `up` knows before it decides.
pub struct Facts<'a> {
    /// The project's existing container, wherever it lives.
    pub existing: Option<&'a ContainerInfo>,
    pub root: &'a Path,
    pub project_id: &'a str,
    /// `up -f`.
    pub force: bool,
    /// `experimental reload`: recreate whatever the drift.
    pub recreate: bool,
    /// Fields changed since the container was made (empty when nothing was recorded).
    pub drift: &'a [Change],
}

/// Why an existing container is removed and made again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildWhy {
    /// The project moved and `-f` was given.
    MovedForced,
    /// `experimental reload`.
    Reload,
    /// The Go original made it: it has none of our isolation.
    MadeByGo,
    /// The config drifted and `-f` was given.
    DriftForced,
    /// The config drifted and the user said yes.
    DriftAccepted,
}

impl RebuildWhy {
    /// The progress line `up` prints for it, if any.
    pub fn progress(&self, container: &str) -> Option<String> {
        Some(match self {
            RebuildWhy::MovedForced => "Project moved: recreating its container (-f)".into(),
            RebuildWhy::Reload => format!("Recreating container {container} (reload)"),
            RebuildWhy::MadeByGo => {
                format!("Container {container} was made by the Go original: recreating it")
            }
            RebuildWhy::DriftForced => "Configuration changed, rebuilding container (-f)".into(),
            RebuildWhy::DriftAccepted => return None,
        })
    }
}

/// What to do with the project's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Create,
    /// Remove the existing container and create a new one.
    Rebuild(RebuildWhy),
    /// Keep the existing container, starting it if needed. `declined_drift`: the config
    /// changed and the user kept it anyway (`up` says how to rebuild).
    Reuse {
        declined_drift: bool,
    },
    /// Change nothing and fail with this message.
    Refuse(String),
    /// Stop the existing container and fail with this message: it was made without the
    /// exclude patterns or views it would now need.
    StopAndRefuse(String),
}

/// Decides between create, rebuild, reuse and refusal. `ask` is called only when the config
/// drifted without `-f`; it shows the drift and returns the user's answer.
pub fn decide(facts: &Facts<'_>, ask: &mut dyn FnMut(&[Change]) -> bool) -> Decision {
    let Some(info) = facts.existing else {
        return Decision::Create;
    };
    if let Some(msg) = moved_message(info, facts.root) {
        if facts.force {
            return Decision::Rebuild(RebuildWhy::MovedForced);
        }
        return Decision::Refuse(msg);
    }
    if facts.recreate {
        return Decision::Rebuild(RebuildWhy::Reload);
    }
    if info.project_id() != Some(facts.project_id) {
        return Decision::Rebuild(RebuildWhy::MadeByGo);
    }
    if facts.drift.is_empty() {
        return Decision::Reuse {
            declined_drift: false,
        };
    }
    if facts.force {
        return Decision::Rebuild(RebuildWhy::DriftForced);
    }
    if ask(facts.drift) {
        return Decision::Rebuild(RebuildWhy::DriftAccepted);
    }
    if facts
        .drift
        .iter()
        .any(|c| c.field == "Excludes" || c.field == "Views")
    {
        // Its bind mounts predate the new patterns or views: it may still show what they
        // hide, or write the host workspace without the view's protections.
        return Decision::StopAndRefuse(format!(
            "the exclude patterns or filtered views changed and container {} was made \
             without them, so it was stopped. Run `alca up -f` to rebuild it",
            info.name
        ));
    }
    Decision::Reuse {
        declined_drift: true,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::runtime::{ContainerState, RuntimeKind, LABEL_PROJECT_ID, LABEL_PROJECT_PATH};

    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn container(id: &str, path: &str) -> ContainerInfo {
        ContainerInfo {
            runtime: RuntimeKind::Docker,
            name: "alca-0123456789ab".into(),
            id: "c1".into(),
            state: ContainerState::Running,
            image: "alpine".into(),
            created: String::new(),
            labels: BTreeMap::from([
                (LABEL_PROJECT_ID.to_string(), id.to_string()),
                (LABEL_PROJECT_PATH.to_string(), path.to_string()),
            ]),
            pid: None,
        }
    }

    fn change(field: &'static str) -> Change {
        Change {
            field,
            old: "a".into(),
            new: "b".into(),
        }
    }

    fn facts<'a>(existing: Option<&'a ContainerInfo>, drift: &'a [Change]) -> Facts<'a> {
        Facts {
            existing,
            root: Path::new("/p"),
            project_id: ID,
            force: false,
            recreate: false,
            drift,
        }
    }

    fn never(_: &[Change]) -> bool {
        panic!("nothing to ask")
    }

    #[test]
    fn no_container_is_created() {
        assert_eq!(decide(&facts(None, &[]), &mut never), Decision::Create);
    }

    #[test]
    fn an_unchanged_container_is_reused_without_a_question() {
        let c = container(ID, "/p");
        assert_eq!(
            decide(&facts(Some(&c), &[]), &mut never),
            Decision::Reuse {
                declined_drift: false
            }
        );
    }

    #[test]
    fn drift_asks_and_rebuilds_on_yes_keeps_on_no_and_rebuilds_with_force() {
        let c = container(ID, "/p");
        let drift = [change("Image")];
        let mut asked = Vec::new();
        let mut yes = |d: &[Change]| {
            asked.push(d.to_vec());
            true
        };
        assert_eq!(
            decide(&facts(Some(&c), &drift), &mut yes),
            Decision::Rebuild(RebuildWhy::DriftAccepted)
        );
        assert_eq!(asked, vec![drift.to_vec()]);
        assert_eq!(
            decide(&facts(Some(&c), &drift), &mut |_| false),
            Decision::Reuse {
                declined_drift: true
            }
        );
        let forced = Facts {
            force: true,
            ..facts(Some(&c), &drift)
        };
        assert_eq!(
            decide(&forced, &mut never),
            Decision::Rebuild(RebuildWhy::DriftForced)
        );
    }

    /// Declining a rebuild after the exclude patterns changed stops the container: it may
    /// still show what the new patterns hide.
    #[test]
    fn declined_exclude_drift_stops_the_container() {
        let c = container(ID, "/p");
        for field in ["Excludes", "Views"] {
            let drift = [change(field)];
            match decide(&facts(Some(&c), &drift), &mut |_| false) {
                Decision::StopAndRefuse(msg) => assert!(msg.contains("alca up -f"), "{msg}"),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_moved_project_is_refused_unless_forced() {
        let c = container(ID, "/elsewhere");
        match decide(&facts(Some(&c), &[]), &mut never) {
            Decision::Refuse(msg) => assert!(msg.contains("/elsewhere"), "{msg}"),
            other => panic!("{other:?}"),
        }
        let forced = Facts {
            force: true,
            ..facts(Some(&c), &[])
        };
        assert_eq!(
            decide(&forced, &mut never),
            Decision::Rebuild(RebuildWhy::MovedForced)
        );
    }

    #[test]
    fn reload_and_go_original_containers_are_rebuilt_whatever_the_drift() {
        let c = container(ID, "/p");
        let reload = Facts {
            recreate: true,
            ..facts(Some(&c), &[])
        };
        assert_eq!(
            decide(&reload, &mut never),
            Decision::Rebuild(RebuildWhy::Reload)
        );
        let go = container("5b1e8a7c-uuid-of-the-go-original", "/p");
        assert_eq!(
            decide(&facts(Some(&go), &[]), &mut never),
            Decision::Rebuild(RebuildWhy::MadeByGo)
        );
    }
}
