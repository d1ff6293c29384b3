//! Bringing a project up, shared by `alca up` and `alca experimental reload`: trust gate,
//! views, runtime selection, then [`UpRun::converge`] (decide with
//! [`super::up_decision`], plan with [`super::up_steps`], run with [`super::up_executor`]),
//! the quick isolation check and the `post_up` hook.

use anyhow::{bail, Context};

use crate::cli::UpArgs;
use crate::drift::{self, Change, Snapshot};
use crate::exclude::project_views::ProjectViews;
use crate::hooks::{self, Hook, HookContext};
use crate::network::guard_select::connect_guard;
use crate::network::{netspec_build, NetworkGuard};
use crate::project::State;
use crate::prompt::{confirm, stdin_is_tty};
use crate::runtime::keep_alive::KeepAlive;
use crate::runtime::select::select;
use crate::runtime::{ContainerInfo, Runtime, RuntimeKind};
use crate::trust::protect::read_only_mounts;

use super::trust_gate::{self, Consent};
use super::up_decision::{decide, Decision, Facts};
use super::up_executor::Executor;
use super::up_steps::{self, Target};
use super::{find_container, recorded_kind, warn, Progress, Project};

/// The runtime holding an existing container when it is not the selected one.
type Other = Option<Box<dyn Runtime>>;

/// Creates or starts the project's container, with its network and rules in place before it
/// can send a packet, then runs the `post_up` host hook.
pub fn bring_up(args: &UpArgs) -> anyhow::Result<()> {
    let progress = Progress { quiet: args.quiet };
    let project = Project::open()?;
    let consent = if args.trust {
        Consent::Given
    } else {
        Consent::AskOnTerminal
    };
    trust_gate::gate(&project, consent, "up")?;
    // Before anything is started: a missing helper is offered for install on a terminal.
    super::helper_offer::offer_if_missing(netspec_build::isolation_required(&project.config));
    // No container without a keep-alive the agent cannot replace (issue #21).
    let keep_alive = KeepAlive::find()?;
    if let Some(line) = keep_alive.warning() {
        warn(line);
    }
    // Views first: no container is created or started while they are missing (fail closed).
    let views = ProjectViews::start(&project.root, &project.config)?;
    if let Some(line) = views.summary() {
        progress.step(line);
    }
    for warning in crate::exclude::tracked::warnings(&project.root, &project.config.workdir_exclude)
    {
        warn(warning);
    }
    let isolation = netspec_build::isolation_required(&project.config);
    let state = State::load_or_create(&project.root)?;
    let selection = select(project.config.runtime, isolation)?;
    progress.step(format!("Runtime: {}", selection.reason));
    let mut up = UpRun {
        progress,
        force: args.force,
        recreate: args.recreate,
        project,
        state,
        isolation,
        views,
        keep_alive,
    };
    up.converge(selection.runtime.as_ref(), &connect_guard, &mut ask_rebuild)?;
    // Seeing isolation (SPEC §9): a quick `alca network verify`; a hole stops the container.
    if up.isolation {
        super::isolation_check::after_up(&up.project, &up.progress)?;
    }
    up.post_up_hook()?;
    up.progress.done("Environment ready");
    Ok(())
}

/// Shows the drift and asks, on a terminal only, whether to rebuild.
fn ask_rebuild(changes: &[Change]) -> bool {
    print_drift(changes);
    stdin_is_tty() && confirm("Rebuild container with new configuration?")
}

/// Prints each drifted field (`Image: a → b`), as the Go original does.
pub fn print_drift(changes: &[Change]) {
    eprintln!("Configuration has changed since the container was created:");
    for c in changes {
        eprintln!("  {c}");
    }
}

/// Everything one `up` works with.
pub struct UpRun {
    pub progress: Progress,
    pub force: bool,
    /// Recreate the existing container whatever the drift (`experimental reload`).
    pub recreate: bool,
    pub project: Project,
    pub state: State,
    pub isolation: bool,
    /// Filtered views bind-mounted instead of sources with exclude patterns.
    pub views: ProjectViews,
    /// The container's main process, from the host ([`KeepAlive`]).
    pub keep_alive: KeepAlive,
}

impl UpRun {
    /// Brings the container to the config on `selected`: decides, then creates, rebuilds or
    /// reuses it. `connect` gives the network guard (asked only when something is changed);
    /// `ask` answers whether to rebuild a drifted container.
    pub fn converge(
        &mut self,
        selected: &dyn Runtime,
        connect: &dyn Fn() -> Box<dyn NetworkGuard>,
        ask: &mut dyn FnMut(&[Change]) -> bool,
    ) -> anyhow::Result<()> {
        if self.isolation && selected.rootless() {
            crate::network::rootless::check_config(&self.project.config)?;
        }
        let existing = self.existing(selected)?;
        let drift = match &existing {
            Some(_) => self.drift(selected.kind()),
            None => Vec::new(),
        };
        let decision = decide(
            &Facts {
                existing: existing.as_ref().map(|(_, info)| info),
                root: &self.project.root,
                project_id: &self.state.id,
                force: self.force,
                recreate: self.recreate,
                drift: &drift,
            },
            ask,
        );
        let Some((holder, info)) = existing else {
            let guard = connect();
            return self.create(selected, guard.as_ref());
        };
        let holder = holder.as_deref().unwrap_or(selected);
        match decision {
            Decision::Create => {
                let guard = connect();
                self.create(selected, guard.as_ref())
            }
            Decision::Rebuild(why) => {
                if let Some(line) = why.progress(&info.name) {
                    self.progress.step(line);
                }
                let guard = connect();
                let saved = self.state.config.as_ref().and_then(Snapshot::from_value);
                let old_name = self.state.container_name();
                self.executor(selected, guard.as_ref()).remove_for_rebuild(
                    holder,
                    &old_name,
                    saved.as_ref().is_none_or(Snapshot::isolated),
                )?;
                // A name kept from the Go original's state is not reused for the new container.
                self.state.container_name = None;
                self.create(selected, guard.as_ref())
            }
            Decision::Reuse { declined_drift } => {
                if declined_drift {
                    eprintln!(
                        "Keeping the existing container {}. Run `alca up -f` to rebuild it with \
                         the new configuration.",
                        info.name
                    );
                }
                let plan = up_steps::reuse(
                    &info,
                    self.isolation,
                    holder.rootless().then(|| holder.kind()),
                    self.views.any_fresh(),
                );
                let guard = connect();
                self.executor(holder, guard.as_ref()).run(&plan)
            }
            Decision::Refuse(msg) => bail!(msg),
            Decision::StopAndRefuse(msg) => {
                let _ = holder.stop(&info.name);
                bail!(msg)
            }
        }
    }

    fn executor<'a>(
        &'a self,
        runtime: &'a dyn Runtime,
        guard: &'a dyn NetworkGuard,
    ) -> Executor<'a> {
        Executor {
            runtime,
            guard,
            config: &self.project.config,
            root: &self.project.root,
            project_id: &self.state.id,
            name: self.state.container_name(),
            progress: self.progress,
        }
    }

    /// The existing container: in the selected runtime, or in the one recorded at the last `up`.
    fn existing(&self, runtime: &dyn Runtime) -> anyhow::Result<Option<(Other, ContainerInfo)>> {
        let recorded = recorded_kind(&self.state);
        if recorded.is_some() && recorded != Some(runtime.kind()) {
            // Another runtime built it; an unreachable old runtime has nothing to keep.
            if let Ok(Some((old, Some(info)))) = find_container(&self.state) {
                return Ok(Some((Some(old), info)));
            }
        }
        let name = self.state.container_name();
        let info = runtime
            .container(&name)
            .with_context(|| format!("cannot inspect container {name}"))?;
        Ok(info.map(|i| (None, i)))
    }

    fn drift(&self, kind: RuntimeKind) -> Vec<Change> {
        let current = Snapshot::of(&self.project.config, kind.binary());
        match self.state.config.as_ref().and_then(Snapshot::from_value) {
            Some(saved) => drift::diff(&saved, &current),
            None => Vec::new(),
        }
    }

    /// Records the runtime, runs the create plan (any failure undoes it all), then records the
    /// config the container was made from.
    fn create(&mut self, runtime: &dyn Runtime, guard: &dyn NetworkGuard) -> anyhow::Result<()> {
        self.record_runtime(runtime.kind())?;
        let c = &self.project.config;
        let target = Target {
            config: c,
            root: &self.project.root,
            project_id: &self.state.id,
            name: self.state.container_name(),
        };
        let read_only = read_only_mounts(
            &self.project.root,
            &c.workdir,
            &c.sources,
            &c.workdir_exclude,
        );
        let container = up_steps::container_spec(&target, &self.views, read_only, &self.keep_alive);
        let rootless = runtime.rootless().then(|| runtime.kind());
        let plan = up_steps::create(&target, self.isolation, container, rootless);
        self.executor(runtime, guard).run(&plan)?;
        self.state.config =
            Some(Snapshot::of(&self.project.config, runtime.kind().binary()).to_value());
        self.state.save(&self.project.root)?;
        Ok(())
    }

    fn record_runtime(&mut self, kind: RuntimeKind) -> anyhow::Result<()> {
        self.state.runtime = Some(kind.binary().to_string());
        self.state.container_name = Some(self.state.container_name());
        self.state.project_path = Some(self.project.root.clone());
        self.state.save(&self.project.root)?;
        Ok(())
    }

    fn post_up_hook(&self) -> anyhow::Result<()> {
        let Some(cmd) = &self.project.config.hooks.post_up else {
            return Ok(());
        };
        self.progress.step("Running hooks.post_up");
        let name = self.state.container_name();
        let ctx = HookContext {
            project_dir: &self.project.root,
            container: &name,
            project_id: &self.state.id,
        };
        hooks::run(Hook::PostUp, cmd, &ctx, self.progress.quiet)
            .context("the container is up, but the post_up hook failed")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use alca_contract::lan::parse_lan_entry;

    use crate::config::Config;
    use crate::lifecycle::isolation_check::running;
    use crate::lifecycle::test_fakes::{FakeRuntime, Log, RecordingGuard, GATEWAY};
    use crate::network::Unavailable;
    use crate::runtime::ContainerState;

    use super::*;

    /// A scratch project directory (its state is written there), a fake runtime and a
    /// recording guard, the last two writing one log.
    struct Scene {
        dir: tempfile::TempDir,
        log: Log,
        rt: FakeRuntime,
        guard: RecordingGuard,
    }

    impl Scene {
        fn new(kind: RuntimeKind) -> Scene {
            let log = Log::default();
            Scene {
                dir: tempfile::tempdir().unwrap(),
                rt: FakeRuntime::new(kind, &log),
                guard: RecordingGuard::new(&log),
                log,
            }
        }

        /// A quiet `up` of `config` without flags or views.
        fn up_run(&self, config: Config) -> UpRun {
            let root = self.dir.path().to_path_buf();
            UpRun {
                progress: Progress { quiet: true },
                force: false,
                recreate: false,
                isolation: netspec_build::isolation_required(&config),
                state: State::load_or_create(&root).unwrap(),
                project: Project { root, config },
                views: ProjectViews::default(),
                keep_alive: KeepAlive::Image,
            }
        }

        /// Runs `up` of `config` through `guard`, answering a drift question with `ask`.
        fn up_with(
            &self,
            config: Config,
            guard: &RecordingGuard,
            ask: &mut dyn FnMut(&[Change]) -> bool,
        ) -> (UpRun, anyhow::Result<()>) {
            let mut up = self.up_run(config);
            let guard = guard.clone();
            let result = up.converge(&self.rt, &move || Box::new(guard.clone()), ask);
            (up, result)
        }

        /// Runs `up` of the default (isolated) config through the scene's guard.
        fn up(&self) -> (UpRun, anyhow::Result<()>) {
            self.up_with(crate::drift::sample_config(), &self.guard, &mut never)
        }

        /// The log entries from `from` on.
        fn since(&self, from: usize) -> Vec<String> {
            self.log.entries()[from..].to_vec()
        }
    }

    fn never(_: &[Change]) -> bool {
        panic!("nothing to ask")
    }

    fn open_config() -> Config {
        let mut c = crate::drift::sample_config();
        c.network.lan_access_raw = vec!["*".into()];
        c.network.lan_access = vec![parse_lan_entry("*").unwrap()];
        c
    }

    fn refusing(guard: &RecordingGuard, why: &str) -> RecordingGuard {
        let mut g = guard.clone();
        g.refuse = Some(why.into());
        g
    }

    #[test]
    fn a_fresh_project_gets_network_rules_container_in_that_order() {
        let scene = Scene::new(RuntimeKind::Docker);
        let (up, result) = scene.up();
        result.unwrap();
        assert!(up.isolation, "the default config isolates");
        let at = |p: &str| {
            scene
                .log
                .find(p)
                .unwrap_or_else(|| panic!("{p}: {:?}", scene.log.entries()))
        };
        assert!(at("guard.claim") < at("runtime.create_network"));
        assert!(at("runtime.create_network") < at("guard.apply"));
        assert!(at("guard.apply") < at("runtime.create "));
        assert!(at("runtime.create ") < at("runtime.start"));
        let name = up.state.container_name();
        assert_eq!(scene.rt.state_of(&name), Some(ContainerState::Running));
        assert_eq!(scene.guard.applied.borrow().len(), 1);
        assert_eq!(scene.guard.applied.borrow()[0].project, up.state.id);
        // The state records what the container was made from (the next `up` compares).
        let saved = State::load(scene.dir.path()).unwrap().unwrap();
        assert_eq!(saved.runtime.as_deref(), Some("docker"));
        assert!(saved.config.is_some());
    }

    #[test]
    fn an_unchanged_container_is_reused_with_its_rules_reapplied() {
        let scene = Scene::new(RuntimeKind::Docker);
        scene.up().1.unwrap();
        let first = scene.log.entries().len();
        let (again, result) = scene.up();
        result.unwrap();
        assert_eq!(
            scene.since(first),
            ["guard.apply ".to_string() + &again.state.id]
        );
        assert_eq!(scene.rt.created.borrow().len(), 1);
        // Stopped (a reboot): rules first, then it starts again.
        scene.rt.stop(&again.state.container_name()).unwrap();
        let third = scene.log.entries().len();
        scene.up().1.unwrap();
        let after = scene.since(third);
        assert!(after[0].starts_with("guard.apply") && after[1].starts_with("runtime.start"));
    }

    #[test]
    fn drift_rebuilds_the_container_after_removing_the_old_one_and_its_rules() {
        let scene = Scene::new(RuntimeKind::Docker);
        scene.up().1.unwrap();
        let first = scene.log.entries().len();
        let mut changed = crate::drift::sample_config();
        changed.image = "debian".into();
        let mut asked = 0;
        let (up, result) = scene.up_with(changed, &scene.guard, &mut |d: &[Change]| {
            asked += 1;
            assert_eq!(d[0].field, "Image");
            true
        });
        result.unwrap();
        assert_eq!(asked, 1);
        let id = up.state.id.clone();
        let name = up.state.container_name();
        let expected = [
            format!("runtime.stop {name}"),
            format!("runtime.remove {name}"),
            format!("runtime.remove_network {name}"),
            format!("guard.remove {id}"),
            "runtime.has_image debian".to_string(),
            format!("guard.claim {id}"),
            format!("runtime.create_network {name}"),
            format!("guard.apply {id}"),
            format!("runtime.create {name}"),
            format!("runtime.start {name}"),
        ];
        assert_eq!(scene.since(first), expected);
        assert_eq!(scene.rt.created.borrow()[1].image, "debian");
    }

    #[test]
    fn refused_rules_leave_no_container_and_remove_what_was_made() {
        let scene = Scene::new(RuntimeKind::Docker);
        let no = refusing(&scene.guard, "the daemon said no");
        let (_, result) = scene.up_with(crate::drift::sample_config(), &no, &mut never);
        let msg = format!("{:#}", result.unwrap_err());
        assert!(msg.contains("no container was started"), "{msg}");
        assert!(msg.contains("the daemon said no"), "{msg}");
        let log = &scene.log;
        assert!(!log.has("runtime.create "), "{:?}", log.entries());
        assert!(!log.has("runtime.start"), "{:?}", log.entries());
        // Undone: the network it made and the claim go again.
        assert!(log.find("guard.apply") < log.find("runtime.remove_network"));
        assert!(log.has("guard.remove"));
        assert!(scene.rt.networks.borrow().is_empty());
        let saved = State::load(scene.dir.path()).unwrap().unwrap();
        assert!(
            saved.config.is_none(),
            "no snapshot of a container never made"
        );
    }

    #[test]
    fn a_running_container_whose_rules_are_refused_is_stopped() {
        let scene = Scene::new(RuntimeKind::Docker);
        scene.up().1.unwrap();
        let gone = refusing(&scene.guard, "table gone");
        let (up, result) = scene.up_with(crate::drift::sample_config(), &gone, &mut never);
        let msg = format!("{:#}", result.unwrap_err());
        assert!(msg.contains("does not run unprotected"), "{msg}");
        let name = up.state.container_name();
        assert_eq!(scene.rt.state_of(&name), Some(ContainerState::Stopped));
    }

    /// `commands.up` runs once in the started container; when it fails, the container, its
    /// network and its rules are removed (no half-made environment).
    #[test]
    fn a_failed_commands_up_removes_the_container_again() {
        let mut config = crate::drift::sample_config();
        config.commands.up = Some("make setup".into());
        let mut scene = Scene::new(RuntimeKind::Docker);
        scene.rt.exec_fails = true;
        let (up, result) = scene.up_with(config, &scene.guard, &mut never);
        let msg = format!("{:#}", result.unwrap_err());
        assert!(msg.contains("commands.up (\"make setup\") failed"), "{msg}");
        let log = &scene.log;
        assert!(log.find("runtime.start") < log.find("runtime.exec sh -c make setup"));
        assert!(log.find("runtime.exec") < log.find("runtime.remove "));
        assert!(log.find("runtime.remove ") < log.find("guard.remove"));
        assert_eq!(scene.rt.state_of(&up.state.container_name()), None);
    }

    /// No helper installed: an isolated project gets no container (fail closed), the message
    /// names the install step; an open project (`lan-access = ["*"]`) still comes up.
    #[test]
    fn isolation_without_the_helper_fails_closed() {
        let unavailable = || -> Box<dyn NetworkGuard> {
            Box::new(Unavailable {
                reason: "alca-netd is not installed".into(),
            })
        };
        let scene = Scene::new(RuntimeKind::Docker);
        let err = scene
            .up_run(crate::drift::sample_config())
            .converge(&scene.rt, &unavailable, &mut never)
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("sudo alca network-helper install"), "{msg}");
        let log = &scene.log;
        assert!(!log.has("runtime.create "), "{:?}", log.entries());
        assert!(!log.has("runtime.start"), "{:?}", log.entries());
        assert!(scene.rt.containers.borrow().is_empty());

        let open_scene = Scene::new(RuntimeKind::Docker);
        let mut open = open_scene.up_run(open_config());
        assert!(!open.isolation);
        open.converge(&open_scene.rt, &unavailable, &mut never)
            .unwrap();
        let name = open.state.container_name();
        assert_eq!(open_scene.rt.state_of(&name), Some(ContainerState::Running));
    }

    /// What rootless isolation cannot enforce is refused before the runtime is asked anything
    /// (no image pulled, nothing created).
    #[test]
    fn a_rootless_runtime_refuses_an_internet_list_before_anything_is_made() {
        let mut scene = Scene::new(RuntimeKind::Podman);
        scene.rt.rootless = true;
        let mut config = crate::drift::sample_config();
        config.network.internet_access_raw = vec!["allowed.test".into()];
        config.network.internet_access = alca_contract::internet::InternetAccess::Only(vec![
            alca_contract::internet::parse_internet_entry("allowed.test").unwrap(),
        ]);
        let (_, result) = scene.up_with(config, &scene.guard, &mut never);
        let err = format!("{:#}", result.unwrap_err());
        assert!(
            err.contains("internet-access") && err.contains("rootless"),
            "{err}"
        );
        assert_eq!(scene.log.entries(), Vec::<String>::new());
    }

    /// Rootless: no bridge or network on the host; the container is made, its spec handed to
    /// the daemon (for the OCI hook of every start), `init` gives it its namespace, the rules
    /// go in there, and only then does it start.
    #[test]
    fn a_rootless_container_starts_only_after_its_rules_are_in_its_namespace() {
        let mut scene = Scene::new(RuntimeKind::Podman);
        scene.rt.rootless = true;
        scene.up().1.unwrap();
        let calls: Vec<String> = scene
            .log
            .entries()
            .into_iter()
            .filter(|c| !c.starts_with("runtime.has_image"))
            .map(|c| c.split(' ').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            calls,
            [
                "runtime.create",
                "guard.hold_netns_spec",
                "runtime.init",
                "guard.apply_in_netns",
                "runtime.start"
            ]
        );
        // Again, stopped: a new namespace at start, so init and rules again before it.
        let name = scene.rt.containers.borrow().keys().next().cloned().unwrap();
        scene
            .rt
            .containers
            .borrow_mut()
            .get_mut(&name)
            .unwrap()
            .state = ContainerState::Stopped;
        let before = scene.log.entries().len();
        scene.up().1.unwrap();
        let again: Vec<String> = scene
            .since(before)
            .into_iter()
            .map(|c| c.split(' ').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            again,
            [
                "guard.hold_netns_spec",
                "runtime.init",
                "guard.apply_in_netns",
                "runtime.start"
            ]
        );
    }

    /// `alca network verify` judges the spec `up` applied, DNS allowance included: for Docker
    /// the host's resolvers (which its embedded DNS forwards to), for Podman the gateway.
    #[test]
    fn verify_judges_the_spec_up_applied() {
        for kind in RuntimeKind::ALL {
            let scene = Scene::new(kind);
            let (up, result) = scene.up();
            result.unwrap();
            let applied = scene.guard.applied.borrow().last().cloned();
            let applied = applied.expect("up applied");
            let name = up.state.container_name();
            let info = scene.rt.container(&name).unwrap().unwrap();
            let judged = running(&up.project, &up.state, Box::new(scene.rt), info).unwrap();
            assert_eq!(judged.spec, applied, "{kind}");
            assert_eq!(judged.gateways, vec![IpAddr::from(GATEWAY)]);
            if kind == RuntimeKind::Podman {
                assert_eq!(applied.dns, vec![IpAddr::from(GATEWAY)]);
            }
        }
    }

    #[test]
    fn only_a_running_container_is_verified() {
        let scene = Scene::new(RuntimeKind::Docker);
        let (up, result) = scene.up();
        result.unwrap();
        let name = up.state.container_name();
        scene.rt.stop(&name).unwrap();
        let info = scene.rt.container(&name).unwrap().unwrap();
        let err = running(&up.project, &up.state, Box::new(scene.rt), info)
            .err()
            .expect("a stopped container is not verified");
        assert!(
            err.to_string().contains("is stopped: run `alca up`"),
            "{err}"
        );
    }
}
