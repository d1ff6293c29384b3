//! `up`'s steps as pure data: the Config → NetworkSpec/ContainerSpec mapping and the ordered
//! steps that create or reuse a container, with the network rules always before the container
//! can start. [`super::up_executor`] runs them; the order is unit tested here.

use std::path::Path;

use crate::config::Config;
use crate::exclude::project_views::ProjectViews;
use crate::network::rootless;
use crate::runtime::keep_alive::KeepAlive;
use crate::runtime::{
    BindMount, ContainerInfo, ContainerSpec, ContainerState, NetworkSpec, RuntimeKind,
    LABEL_PROJECT_ID, LABEL_PROJECT_PATH, LABEL_VERSION,
};

/// The project one `up` works on, as the specs need it.
pub struct Target<'a> {
    pub config: &'a Config,
    pub root: &'a Path,
    pub project_id: &'a str,
    /// Container and network name.
    pub name: String,
}

/// One step of `up`, in the order it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Pull the image unless it is present.
    EnsureImage(String),
    /// Claim the project's bridge name with the network guard (every project).
    ClaimBridge,
    CreateNetwork(NetworkSpec),
    /// Apply the project's isolation rules; a failure fails `up`. When the container is
    /// already running, a failure stops it (it must not run unprotected).
    ApplyRules {
        stop_on_failure: Option<String>,
    },
    /// Give the guard a project's allow-all rules (`lan-access = ["*"]`); a failure is a note.
    RegisterOpenBridge,
    CreateContainer(Box<ContainerSpec>),
    /// Give the daemon a rootless project's spec before `podman init`: the container's OCI hook
    /// applies it in each new namespace, and fails the start when none is held.
    HoldRules,
    /// `podman init`: a rootless container's namespaces exist and nothing of it runs, so its
    /// rules can go into its own network namespace before `Start` (docs/rootless.md).
    InitContainer(String),
    Stop {
        container: String,
        progress: String,
    },
    Start {
        container: String,
        progress: String,
    },
    /// A progress line only.
    Note(String),
    /// Run `commands.up` in the container once.
    CommandsUp(String),
}

/// The steps and what a failure undoes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// A failure after the image step removes what this run made (container, network, rules).
    pub undo_on_failure: bool,
}

/// The labels on the project's network (and, with the version, its container).
pub fn labels(target: &Target<'_>, with_version: bool) -> Vec<(String, String)> {
    let mut labels = vec![
        (LABEL_PROJECT_ID.to_string(), target.project_id.to_string()),
        (
            LABEL_PROJECT_PATH.to_string(),
            target.root.display().to_string(),
        ),
    ];
    if with_version {
        labels.push((LABEL_VERSION.into(), env!("CARGO_PKG_VERSION").into()));
    }
    labels
}

/// The project's runtime network, on its own named bridge.
pub fn network_spec(target: &Target<'_>) -> NetworkSpec {
    NetworkSpec {
        name: target.name.clone(),
        bridge: alca_contract::net_spec::bridge_name(target.project_id),
        labels: labels(target, false),
    }
}

/// The project's container: workspace and configured mounts (sources with a filtered view
/// bound to the view), then `read_only` (the protected config and git files), resources,
/// envs, capabilities, ports and the keep-alive (a read-only host binary, [`KeepAlive`]).
pub fn container_spec(
    target: &Target<'_>,
    views: &ProjectViews,
    read_only: Vec<BindMount>,
    keep_alive: &KeepAlive,
) -> ContainerSpec {
    let c = target.config;
    let mut mounts = vec![BindMount {
        source: target.root.to_path_buf(),
        target: c.workdir.clone(),
        readonly: false,
        recursive: true,
    }];
    mounts.extend(c.mounts.iter().map(|m| BindMount {
        source: m.source.clone(),
        target: m.target.clone(),
        readonly: m.readonly,
        recursive: true,
    }));
    views.rebind(&mut mounts);
    mounts.extend(keep_alive.mount());
    mounts.extend(read_only);
    let (entrypoint, command) = keep_alive.entrypoint_and_command();
    ContainerSpec {
        name: target.name.clone(),
        image: c.image.clone(),
        network: target.name.clone(),
        labels: labels(target, true),
        annotations: Vec::new(),
        workdir: c.workdir.clone(),
        mounts,
        memory: c.resources.memory.clone(),
        cpus: c.resources.cpus,
        envs: c
            .envs
            .iter()
            .filter(|(_, v)| !v.value.is_empty())
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect(),
        cap_drop: c.caps.drop.clone(),
        cap_add: c.caps.add.clone(),
        ports: c.ports.clone(),
        entrypoint,
        command,
    }
}

/// The rules step for a project: isolation rules, or the open project's allow-all ones.
fn rules_step(isolation: bool, stop_on_failure: Option<String>) -> Step {
    if isolation {
        Step::ApplyRules { stop_on_failure }
    } else {
        Step::RegisterOpenBridge
    }
}

/// Image → claim → network → rules → container → start → `commands.up`. A rootless
/// container (`rootless`: its runtime) has no project network or bridge on the host: image →
/// container (Podman: on slirp4netns, with the hook's annotation) → hold → init → rules in its
/// namespace → start → `commands.up`; rootless Docker has no `init` (nor hooks): image →
/// container → start (the keep-alive makes no network activity) → rules, the container stopped
/// if they fail → `commands.up`.
pub fn create(
    target: &Target<'_>,
    isolation: bool,
    mut container: ContainerSpec,
    rootless: Option<RuntimeKind>,
) -> Plan {
    let mut steps = vec![Step::EnsureImage(target.config.image.clone())];
    if let Some(kind) = rootless {
        container.network = rootless::network_mode(target.config, kind);
        if isolation && kind == RuntimeKind::Podman {
            container
                .annotations
                .push(rootless::hook_annotation(target.project_id));
        }
        steps.push(Step::CreateContainer(Box::new(container)));
        steps.extend(rootless_rules(isolation, &target.name, kind));
    } else {
        steps.extend([
            Step::ClaimBridge,
            Step::CreateNetwork(network_spec(target)),
            rules_step(isolation, None),
            Step::CreateContainer(Box::new(container)),
        ]);
    }
    steps.push(Step::Start {
        container: target.name.clone(),
        progress: "Starting container".into(),
    });
    steps.extend(rules_after_start(isolation, &target.name, rootless));
    if let Some(cmd) = &target.config.commands.up {
        steps.push(Step::CommandsUp(cmd.clone()));
    }
    Plan {
        steps,
        undo_on_failure: true,
    }
}

/// The steps before a rootless Podman container starts: its spec held by the daemon (the OCI
/// hook applies it when `init` makes the namespace), the namespace, then its rules (checked and
/// applied by alca too, also for a container made before the hook existed). None for rootless
/// Docker: its namespace exists only once it runs ([`rules_after_start`]).
fn rootless_rules(isolation: bool, container: &str, kind: RuntimeKind) -> Vec<Step> {
    if isolation && kind == RuntimeKind::Podman {
        vec![
            Step::HoldRules,
            Step::InitContainer(container.to_string()),
            Step::ApplyRules {
                stop_on_failure: None,
            },
        ]
    } else {
        Vec::new()
    }
}

/// The rules of a rootless Docker container, right after its start (its keep-alive makes no
/// network activity, and nothing else runs in it before them); a failure stops it.
fn rules_after_start(isolation: bool, container: &str, rootless: Option<RuntimeKind>) -> Vec<Step> {
    if isolation && rootless == Some(RuntimeKind::Docker) {
        vec![Step::ApplyRules {
            stop_on_failure: Some(container.to_string()),
        }]
    } else {
        Vec::new()
    }
}

/// Keeps the existing container: rules first (fail closed), then start it if needed; a
/// running container on a view remounted by this `up` is restarted to see it. A rootless
/// container gets its rules in its own namespace: now when it runs, else after `init` made
/// the namespace its start will use.
pub fn reuse(
    info: &ContainerInfo,
    isolation: bool,
    rootless: Option<RuntimeKind>,
    views_fresh: bool,
) -> Plan {
    let running = info.state == ContainerState::Running;
    let mut steps = if rootless.is_none() {
        vec![rules_step(isolation, running.then(|| info.name.clone()))]
    } else if isolation && running {
        vec![Step::ApplyRules {
            stop_on_failure: Some(info.name.clone()),
        }]
    } else {
        Vec::new()
    };
    let start = |steps: &mut Vec<Step>| {
        if let Some(kind) = rootless {
            steps.extend(rootless_rules(isolation, &info.name, kind));
        }
        steps.push(Step::Start {
            container: info.name.clone(),
            progress: format!("Starting container {}", info.name),
        });
        steps.extend(rules_after_start(isolation, &info.name, rootless));
    };
    match (running, views_fresh) {
        (true, true) => {
            // Its bind mount holds the previous (dead) view: a restart picks up the new one.
            steps.push(Step::Stop {
                container: info.name.clone(),
                progress: format!(
                    "Restarting container {} on its new filtered view",
                    info.name
                ),
            });
            start(&mut steps);
        }
        (true, false) => steps.push(Step::Note(format!(
            "Container {} already running",
            info.name
        ))),
        (false, _) => start(&mut steps),
    }
    Plan {
        steps,
        undo_on_failure: false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::{EnvVar, Mount};

    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn target(config: &Config) -> Target<'_> {
        Target {
            config,
            root: Path::new("/home/u/p"),
            project_id: ID,
            name: "alca-0123456789ab".into(),
        }
    }

    fn info(state: ContainerState) -> ContainerInfo {
        ContainerInfo {
            runtime: crate::runtime::RuntimeKind::Docker,
            name: "alca-0123456789ab".into(),
            id: "c1".into(),
            state,
            image: "alpine".into(),
            created: String::new(),
            labels: BTreeMap::new(),
            pid: None,
        }
    }

    /// [`reuse`] of the project's container in `state`.
    fn reuse_of(state: ContainerState, isolation: bool, rootless: bool, views_fresh: bool) -> Plan {
        let rootless = rootless.then_some(RuntimeKind::Podman);
        reuse(&info(state), isolation, rootless, views_fresh)
    }

    fn position(plan: &Plan, pred: impl Fn(&Step) -> bool) -> usize {
        plan.steps.iter().position(pred).expect("step in plan")
    }

    #[test]
    fn create_applies_rules_after_the_network_and_before_the_container_exists() {
        let mut c = crate::drift::sample_config();
        c.commands.up = Some("make setup".into());
        let t = target(&c);
        let plan = create(
            &t,
            true,
            container_spec(&t, &ProjectViews::default(), vec![], &KeepAlive::Image),
            None,
        );
        let network = position(&plan, |s| matches!(s, Step::CreateNetwork(_)));
        let rules = position(&plan, |s| matches!(s, Step::ApplyRules { .. }));
        let made = position(&plan, |s| matches!(s, Step::CreateContainer(_)));
        let start = position(&plan, |s| matches!(s, Step::Start { .. }));
        assert!(plan.steps[0] == Step::EnsureImage(c.image.clone()));
        assert!(plan.steps[1] == Step::ClaimBridge);
        assert!(network < rules && rules < made && made < start, "{plan:?}");
        assert_eq!(
            plan.steps.last(),
            Some(&Step::CommandsUp("make setup".into()))
        );
        assert!(plan.undo_on_failure);
        let open = create(
            &t,
            false,
            container_spec(&t, &ProjectViews::default(), vec![], &KeepAlive::Image),
            None,
        );
        assert!(open.steps.contains(&Step::RegisterOpenBridge));
        assert!(!open
            .steps
            .iter()
            .any(|s| matches!(s, Step::ApplyRules { .. })));
    }

    #[test]
    fn the_container_spec_maps_the_config() {
        let mut c = crate::drift::sample_config();
        c.workdir = "/workspace".into();
        c.mounts = vec![Mount {
            source: "/data".into(),
            target: "/data".into(),
            readonly: true,
            exclude: vec![],
        }];
        c.envs = BTreeMap::from([
            (
                "SET".to_string(),
                EnvVar {
                    value: "1".into(),
                    override_on_enter: false,
                    template: "1".into(),
                },
            ),
            (
                "EMPTY".to_string(),
                EnvVar {
                    value: String::new(),
                    override_on_enter: false,
                    template: "${NOPE}".into(),
                },
            ),
        ]);
        c.caps.drop = vec!["ALL".into()];
        c.caps.add = vec!["CHOWN".into()];
        let t = target(&c);
        let protected = BindMount {
            source: "/home/u/p/.alca.toml".into(),
            target: "/workspace/.alca.toml".into(),
            readonly: true,
            recursive: true,
        };
        let spec = container_spec(
            &t,
            &ProjectViews::default(),
            vec![protected.clone()],
            &KeepAlive::Image,
        );
        assert_eq!(spec.name, "alca-0123456789ab");
        assert_eq!(spec.network, spec.name);
        assert_eq!(spec.image, c.image);
        assert_eq!(spec.workdir, "/workspace");
        assert_eq!(spec.mounts[0].source, Path::new("/home/u/p"));
        assert_eq!(spec.mounts[0].target, "/workspace");
        assert!(!spec.mounts[0].readonly);
        assert!(spec.mounts[1].readonly && spec.mounts[1].target == "/data");
        assert_eq!(spec.mounts.last(), Some(&protected));
        assert_eq!(spec.envs, vec![("SET".to_string(), "1".to_string())]);
        assert_eq!(spec.cap_drop, vec!["ALL".to_string()]);
        assert_eq!(spec.cap_add, vec!["CHOWN".to_string()]);
        assert_eq!(spec.command, vec!["sleep", "infinity"]);
        assert!(spec
            .labels
            .contains(&(LABEL_PROJECT_ID.to_string(), ID.to_string())));
        assert!(spec
            .labels
            .contains(&(LABEL_PROJECT_PATH.to_string(), "/home/u/p".to_string())));
        assert!(spec.labels.iter().any(|(k, _)| k == LABEL_VERSION));
        let net = network_spec(&t);
        assert_eq!(net.bridge, "alca-0123456789");
        assert!(!net.labels.iter().any(|(k, _)| k == LABEL_VERSION));
    }

    #[test]
    fn reuse_applies_rules_first_and_starts_only_what_is_not_running() {
        let stopped = reuse_of(ContainerState::Stopped, true, false, false);
        assert_eq!(
            stopped.steps[0],
            Step::ApplyRules {
                stop_on_failure: None
            }
        );
        assert!(matches!(stopped.steps[1], Step::Start { .. }));
        assert!(!stopped.undo_on_failure);
        let running = reuse_of(ContainerState::Running, true, false, false);
        assert_eq!(
            running.steps[0],
            Step::ApplyRules {
                stop_on_failure: Some("alca-0123456789ab".into())
            }
        );
        assert!(!running
            .steps
            .iter()
            .any(|s| matches!(s, Step::Start { .. })));
        let remounted = reuse_of(ContainerState::Running, false, false, true);
        assert_eq!(remounted.steps[0], Step::RegisterOpenBridge);
        assert!(matches!(remounted.steps[1], Step::Stop { .. }));
        assert!(matches!(remounted.steps[2], Step::Start { .. }));
    }

    #[test]
    fn a_rootless_container_gets_its_rules_in_its_namespace_before_it_starts() {
        let step_names = |plan: &Plan| -> Vec<&'static str> {
            plan.steps
                .iter()
                .map(|s| match s {
                    Step::HoldRules => "hold",
                    Step::InitContainer(_) => "init",
                    Step::ApplyRules { .. } => "rules",
                    Step::Start { .. } => "start",
                    Step::Stop { .. } => "stop",
                    Step::Note(_) => "note",
                    _ => "other",
                })
                .collect()
        };
        assert_eq!(
            step_names(&reuse_of(ContainerState::Stopped, true, true, false)),
            ["hold", "init", "rules", "start"]
        );
        assert_eq!(
            step_names(&reuse_of(ContainerState::Running, true, true, false)),
            ["rules", "note"]
        );
        assert_eq!(
            step_names(&reuse_of(ContainerState::Running, true, true, true)),
            ["rules", "stop", "hold", "init", "rules", "start"]
        );
        assert_eq!(
            step_names(&reuse_of(ContainerState::Stopped, false, true, false)),
            ["start"]
        );
        let config = crate::drift::sample_config();
        let t = target(&config);
        let spec = container_spec(&t, &ProjectViews::default(), vec![], &KeepAlive::Image);
        let plan = create(&t, true, spec, Some(RuntimeKind::Podman));
        let created = plan.steps.iter().find_map(|s| match s {
            Step::CreateContainer(c) => Some(c.network.clone()),
            _ => None,
        });
        assert_eq!(created.as_deref(), Some("slirp4netns"));
        // The project annotation (the OCI hook) only with isolation: without, no spec is held.
        let annotations = |plan: &Plan| {
            plan.steps.iter().find_map(|s| match s {
                Step::CreateContainer(c) => Some(c.annotations.clone()),
                _ => None,
            })
        };
        assert_eq!(
            annotations(&plan),
            Some(vec![rootless::hook_annotation(t.project_id)])
        );
        let spec = container_spec(&t, &ProjectViews::default(), vec![], &KeepAlive::Image);
        let open = create(&t, false, spec, Some(RuntimeKind::Podman));
        assert_eq!(annotations(&open), Some(vec![]));

        // Rootless Docker: no init or hook; the rules right after the start, which they stop
        // if they fail; no annotation, the default bridge.
        let spec = container_spec(&t, &ProjectViews::default(), vec![], &KeepAlive::Image);
        let docker = create(&t, true, spec, Some(RuntimeKind::Docker));
        assert_eq!(step_names(&docker), ["other", "other", "start", "rules"]);
        assert_eq!(annotations(&docker), Some(vec![]));
        let stopped = reuse(
            &info(ContainerState::Stopped),
            true,
            Some(RuntimeKind::Docker),
            false,
        );
        assert_eq!(step_names(&stopped), ["start", "rules"]);
        assert!(stopped.steps.iter().all(|s| !matches!(
            s,
            Step::ApplyRules {
                stop_on_failure: None
            }
        )));
        assert!(!plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::ClaimBridge | Step::CreateNetwork(_))));
        let init = position(&plan, |s| matches!(s, Step::InitContainer(_)));
        let rules = position(&plan, |s| matches!(s, Step::ApplyRules { .. }));
        let start = position(&plan, |s| matches!(s, Step::Start { .. }));
        assert!(init < rules && rules < start);
    }
}
