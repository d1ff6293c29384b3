//! `alca up [-f] [-q]`: create or start the project's container, with its network and rules
//! in place before it can send a packet, then run the `post_up` host hook.

use std::cell::Cell;
use std::path::Path;
use std::process::{ExitCode, Stdio};

use anyhow::{bail, Context};

use crate::cli::UpArgs;
use crate::commands::lifecycle::{
    confirm, find_container, moved_message, recorded_kind, stdin_is_tty, teardown, warn, Progress,
    Project,
};
use crate::commands::trust::{self, Consent};
use crate::drift::{self, Change, Snapshot};
use crate::exclude::project_views::ProjectViews;
use crate::hooks::{self, Hook, HookContext};
use crate::network::netd::connect_guard;
use crate::network::{spec, NetworkGuard};
use crate::project::State;
use crate::runtime::select::select;
use crate::runtime::{
    BindMount, ContainerInfo, ContainerSpec, ContainerState, ExecSpec, NetworkSpec, Runtime,
    RuntimeKind, LABEL_PROJECT_ID, LABEL_PROJECT_PATH, LABEL_VERSION,
};
use crate::trust::protect::read_only_mounts;

/// The keep-alive main process, as in the Go original (`commands.up` runs once via exec).
pub const KEEP_ALIVE: [&str; 2] = ["sleep", "infinity"];

/// Everything one `up` works with.
struct Up {
    progress: Progress,
    force: bool,
    /// Recreate the existing container whatever the drift (`experimental reload`).
    recreate: bool,
    project: Project,
    state: State,
    isolation: bool,
    /// Set once this run's rules are in place, so a failure removes only what it made.
    rules_applied: Cell<bool>,
    /// The bridge name was claimed: a failed `up` gives it back.
    claimed: Cell<bool>,
    /// Filtered views bind-mounted instead of sources with exclude patterns.
    views: ProjectViews,
}

/// The runtime holding an existing container when it is not the selected one.
type Other = Option<Box<dyn Runtime>>;

/// What to do with the project's container.
enum Plan {
    Create,
    /// Remove the existing container and create a new one.
    Rebuild(Other),
    /// Keep the existing container, starting it if needed.
    Reuse(Other, ContainerInfo),
}

pub fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let progress = Progress { quiet: args.quiet };
    let project = Project::open()?;
    let consent = if args.trust {
        Consent::Given
    } else {
        Consent::AskOnTerminal
    };
    trust::gate(&project, consent, "up")?;
    // Before anything is started: a missing helper is offered for install on a terminal.
    crate::commands::helper_offer::offer_if_missing(spec::isolation_required(&project.config));
    // Views first: no container is created or started while they are missing (fail closed).
    let views = ProjectViews::start(&project.root, &project.config)?;
    if let Some(line) = views.summary() {
        progress.step(line);
    }
    for warning in crate::exclude::tracked::warnings(&project.root, &project.config.workdir_exclude)
    {
        warn(warning);
    }
    let isolation = spec::isolation_required(&project.config);
    let state = State::load_or_create(&project.root)?;
    let selection = select(project.config.runtime, isolation)?;
    progress.step(format!("Runtime: {}", selection.reason));
    let mut up = Up {
        progress,
        force: args.force,
        recreate: args.recreate,
        project,
        state,
        isolation,
        rules_applied: Cell::new(false),
        claimed: Cell::new(false),
        views,
    };
    let runtime = selection.runtime;
    let selected = runtime.as_ref();
    match up.plan(selected)? {
        Plan::Create => up.create(selected)?,
        Plan::Rebuild(other) => {
            up.remove_for_rebuild(other.as_deref().unwrap_or(selected))?;
            // A name kept from the Go original's state is not reused for the new container.
            up.state.container_name = None;
            up.create(selected)?;
        }
        Plan::Reuse(other, info) => up.reuse(other.as_deref().unwrap_or(selected), &info)?,
    }
    // Seeing isolation (SPEC §9): a quick `alca network verify`; a hole stops the container.
    if up.isolation {
        crate::commands::network::after_up(&up.project, &up.progress)?;
    }
    up.post_up_hook()?;
    up.progress.done("Environment ready");
    Ok(ExitCode::SUCCESS)
}

impl Up {
    fn name(&self) -> String {
        self.state.container_name()
    }

    fn id(&self) -> String {
        self.state.id.clone()
    }

    fn root(&self) -> &Path {
        &self.project.root
    }

    /// Decides between create, rebuild and reuse from the existing container and the drift.
    fn plan(&self, runtime: &dyn Runtime) -> anyhow::Result<Plan> {
        let Some((holder, info)) = self.existing(runtime)? else {
            return Ok(Plan::Create);
        };
        if let Some(msg) = moved_message(&info, self.root()) {
            if self.force {
                self.progress
                    .step("Project moved: recreating its container (-f)");
                return Ok(Plan::Rebuild(holder));
            }
            bail!(msg);
        }
        if self.recreate {
            self.progress
                .step(format!("Recreating container {} (reload)", info.name));
            return Ok(Plan::Rebuild(holder));
        }
        if info.project_id() != Some(self.state.id.as_str()) {
            // The Go original made it (its label is the project's UUID): it has none of our
            // isolation, so it is never reused.
            self.progress.step(format!(
                "Container {} was made by the Go original: recreating it",
                info.name
            ));
            return Ok(Plan::Rebuild(holder));
        }
        let changes = self.drift(runtime.kind());
        if changes.is_empty() {
            return Ok(Plan::Reuse(holder, info));
        }
        if self.force {
            self.progress
                .step("Configuration changed, rebuilding container (-f)");
            return Ok(Plan::Rebuild(holder));
        }
        print_drift(&changes);
        if stdin_is_tty() && confirm("Rebuild container with new configuration?") {
            return Ok(Plan::Rebuild(holder));
        }
        if changes
            .iter()
            .any(|c| c.field == "Excludes" || c.field == "Views")
        {
            // Its bind mounts predate the new patterns or views: it may still show what they
            // hide, or write the host workspace without the view's protections.
            let _ = holder.as_deref().unwrap_or(runtime).stop(&info.name);
            bail!(
                "the exclude patterns or filtered views changed and container {} was made \
                 without them, so it was stopped. Run `alca up -f` to rebuild it",
                info.name
            );
        }
        eprintln!(
            "Keeping the existing container {}. Run `alca up -f` to rebuild it with the new \
             configuration.",
            info.name
        );
        Ok(Plan::Reuse(holder, info))
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
        let info = runtime
            .container(&self.name())
            .with_context(|| format!("cannot inspect container {}", self.name()))?;
        Ok(info.map(|i| (None, i)))
    }

    fn drift(&self, kind: RuntimeKind) -> Vec<Change> {
        let current = Snapshot::of(&self.project.config, kind.binary());
        match self.state.config.as_ref().and_then(Snapshot::from_value) {
            Some(saved) => drift::diff(&saved, &current),
            None => Vec::new(),
        }
    }

    fn remove_for_rebuild(&self, old: &dyn Runtime) -> anyhow::Result<()> {
        self.progress
            .step(format!("Removing container {} for rebuild", self.name()));
        let guard = connect_guard();
        let saved = self.state.config.as_ref().and_then(Snapshot::from_value);
        if let Err(e) = teardown(old, &self.name(), &self.id(), Some(guard.as_ref()))? {
            if saved.as_ref().is_none_or(Snapshot::isolated) {
                warn(format!("the old network rules were not removed: {e:#}"));
            }
        }
        Ok(())
    }

    /// Image → network → rules → container → start → `commands.up`; any failure undoes all.
    fn create(&mut self, runtime: &dyn Runtime) -> anyhow::Result<()> {
        self.record_runtime(runtime.kind())?;
        self.ensure_image(runtime)?;
        // Every project claims its bridge name, so the guard is asked even without isolation.
        let guard = connect_guard();
        let guard = guard.as_ref();
        let result = self.build(runtime, guard);
        if let Err(e) = result {
            self.undo(runtime, guard);
            return Err(e);
        }
        self.state.config =
            Some(Snapshot::of(&self.project.config, runtime.kind().binary()).to_value());
        self.state.save(self.root())?;
        Ok(())
    }

    fn build(&self, runtime: &dyn Runtime, guard: &dyn NetworkGuard) -> anyhow::Result<()> {
        let claimed = guard.claim(&self.id()).with_context(|| {
            format!(
                "cannot claim bridge {} for this project, so no network was created",
                alca_netd::spec::bridge_name(&self.state.id)
            )
        })?;
        self.claimed.set(claimed);
        self.progress
            .step(format!("Creating network {}", self.name()));
        runtime
            .create_network(&self.network_spec())
            .with_context(|| format!("cannot create network {}", self.name()))?;
        if self.isolation {
            self.apply_rules(runtime, guard)?;
        } else {
            self.register_open_bridge(runtime);
        }
        self.progress
            .step(format!("Creating container {}", self.name()));
        runtime
            .create(&self.container_spec())
            .with_context(|| format!("cannot create container {}", self.name()))?;
        self.progress.step("Starting container");
        runtime
            .start(&self.name())
            .with_context(|| format!("cannot start container {}", self.name()))?;
        self.run_commands_up(runtime)
    }

    fn undo(&self, runtime: &dyn Runtime, guard: &dyn NetworkGuard) {
        let guard = Some(guard).filter(|_| self.rules_applied.get() || self.claimed.get());
        match teardown(runtime, &self.name(), &self.id(), guard) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn(format!("could not remove the network rules: {e:#}")),
            Err(e) => warn(format!("could not clean up after the failure: {e:#}")),
        }
    }

    fn record_runtime(&mut self, kind: RuntimeKind) -> anyhow::Result<()> {
        self.state.runtime = Some(kind.binary().to_string());
        self.state.container_name = Some(self.name());
        self.state.project_path = Some(self.project.root.clone());
        self.state.save(self.root())?;
        Ok(())
    }

    fn ensure_image(&self, runtime: &dyn Runtime) -> anyhow::Result<()> {
        let image = &self.project.config.image;
        if runtime.has_image(image)? {
            self.progress.step(format!("Image {image} is present"));
            return Ok(());
        }
        self.progress.step(format!("Pulling image {image}"));
        runtime
            .pull_image(image)
            .with_context(|| format!("cannot pull image {image:?} (the `image` in .alca.toml)"))
    }

    fn network_spec(&self) -> NetworkSpec {
        NetworkSpec {
            name: self.name(),
            bridge: alca_netd::spec::bridge_name(&self.state.id),
            labels: self.labels(false),
        }
    }

    fn labels(&self, with_version: bool) -> Vec<(String, String)> {
        let mut labels = vec![
            (LABEL_PROJECT_ID.to_string(), self.id()),
            (
                LABEL_PROJECT_PATH.to_string(),
                self.root().display().to_string(),
            ),
        ];
        if with_version {
            labels.push((LABEL_VERSION.into(), env!("CARGO_PKG_VERSION").into()));
        }
        labels
    }

    fn container_spec(&self) -> ContainerSpec {
        let c = &self.project.config;
        let mut mounts = vec![BindMount {
            source: self.project.root.clone(),
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
        self.views.rebind(&mut mounts);
        mounts.extend(read_only_mounts(
            self.root(),
            &c.workdir,
            &c.sources,
            &c.workdir_exclude,
        ));
        ContainerSpec {
            name: self.name(),
            image: c.image.clone(),
            network: self.name(),
            labels: self.labels(true),
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
            command: KEEP_ALIVE.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Applies the project's rules; the container must not start without them.
    fn apply_rules(&self, runtime: &dyn Runtime, guard: &dyn NetworkGuard) -> anyhow::Result<()> {
        self.progress.step("Applying network rules");
        crate::network::project_rules::apply(
            &self.project.config,
            &self.project.root,
            &self.state.id,
            &self.name(),
            runtime,
            guard,
        )
        .context(
            "network isolation is required (network.lan-access is not [\"*\"]) and could not \
             be applied, so no container was started",
        )?;
        self.rules_applied.set(true);
        Ok(())
    }

    /// A project without isolation (`lan-access = ["*"]`) still gives the daemon its
    /// allow-all rules where the daemon is reachable: the daemon's guard drops the traffic of
    /// every project bridge without rules. Without a daemon there is no guard either.
    fn register_open_bridge(&self, runtime: &dyn Runtime) {
        let guard = connect_guard();
        if let Err(e) = self.apply_rules(runtime, guard.as_ref()) {
            self.progress.step(format!(
                "Note: the network helper did not take this project's allow-all rules ({e:#}); \
                 if its guard is installed, the container has no network until it does"
            ));
        }
    }

    fn run_commands_up(&self, runtime: &dyn Runtime) -> anyhow::Result<()> {
        let Some(cmd) = &self.project.config.commands.up else {
            return Ok(());
        };
        self.progress.step("Running commands.up");
        let exec = ExecSpec {
            container: self.name(),
            workdir: self.project.config.workdir.clone(),
            envs: Vec::new(),
            interactive: false,
            tty: false,
            argv: vec!["sh".into(), "-c".into(), cmd.clone()],
        };
        let mut command = runtime.exec_command(&exec);
        command.stdin(Stdio::null());
        if self.progress.quiet {
            command.stdout(Stdio::null());
        }
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", runtime.kind().binary()))?;
        if !status.success() {
            bail!(
                "commands.up ({cmd:?}) failed with {status}; the container was removed so no \
                 half-made environment is left. Fix commands.up in .alca.toml and run `alca up` \
                 again"
            );
        }
        Ok(())
    }

    /// Keeps the existing container: rules first (fail closed), then start it if needed.
    fn reuse(&self, runtime: &dyn Runtime, info: &ContainerInfo) -> anyhow::Result<()> {
        if self.isolation {
            if runtime.rootless() {
                bail!(
                    "container {} runs on rootless {}, which cannot enforce network isolation; \
                     run `alca up -f` with a rootful runtime",
                    info.name,
                    runtime.kind()
                );
            }
            let guard = connect_guard();
            if let Err(e) = self.apply_rules(runtime, guard.as_ref()) {
                if info.state == ContainerState::Running {
                    let _ = runtime.stop(&info.name);
                    return Err(e.context(format!(
                        "container {} was stopped so it does not run unprotected",
                        info.name
                    )));
                }
                return Err(e);
            }
        } else {
            self.register_open_bridge(runtime);
        }
        if info.state == ContainerState::Running && self.views.any_fresh() {
            // Its bind mount holds the previous (dead) view: a restart picks up the new one.
            self.progress.step(format!(
                "Restarting container {} on its new filtered view",
                info.name
            ));
            runtime
                .stop(&info.name)
                .with_context(|| format!("cannot stop container {}", info.name))?;
        } else if info.state == ContainerState::Running {
            self.progress
                .step(format!("Container {} already running", info.name));
            return Ok(());
        }
        self.progress
            .step(format!("Starting container {}", info.name));
        runtime
            .start(&info.name)
            .with_context(|| format!("cannot start container {}", info.name))
    }

    fn post_up_hook(&self) -> anyhow::Result<()> {
        let Some(cmd) = &self.project.config.hooks.post_up else {
            return Ok(());
        };
        self.progress.step("Running hooks.post_up");
        let name = self.name();
        let ctx = HookContext {
            project_dir: self.root(),
            container: &name,
            project_id: &self.state.id,
        };
        hooks::run(Hook::PostUp, cmd, &ctx, self.progress.quiet)
            .context("the container is up, but the post_up hook failed")?;
        Ok(())
    }
}

/// Prints each drifted field (`Image: a → b`), as the Go original does.
pub fn print_drift(changes: &[Change]) {
    eprintln!("Configuration has changed since the container was created:");
    for c in changes {
        eprintln!("  {c}");
    }
}
