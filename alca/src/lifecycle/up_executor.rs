//! Runs `up`'s [`Plan`] against a [`Runtime`] and a [`NetworkGuard`]: each step is one call,
//! a failure stops the plan, and a failed create removes what this run made (rules last, so
//! the container never runs without them). No decisions here: they are in
//! [`super::up_decision`] and [`super::up_steps`].

use std::cell::Cell;
use std::process::Stdio;

use anyhow::{bail, Context};

use crate::config::Config;
use crate::network::{project_rules, NetworkGuard};
use crate::runtime::{ExecSpec, Runtime};

use super::up_steps::{Plan, Step};
use super::{teardown, warn, Progress};

/// One `up`'s runtime, guard and project.
pub struct Executor<'a> {
    pub runtime: &'a dyn Runtime,
    pub guard: &'a dyn NetworkGuard,
    pub config: &'a Config,
    /// The project's directory (its resolver's state lives under `.alca/`).
    pub root: &'a std::path::Path,
    pub project_id: &'a str,
    /// The project's container (and network) name.
    pub name: String,
    pub progress: Progress,
}

/// What this run made, so a failure removes only that.
#[derive(Default)]
struct Made {
    /// Past the image step: a container or network may exist.
    anything: Cell<bool>,
    claimed: Cell<bool>,
    rules: Cell<bool>,
}

impl Executor<'_> {
    /// Runs every step in order; on a failure, undoes what this run made if the plan says so.
    pub fn run(&self, plan: &Plan) -> anyhow::Result<()> {
        let made = Made::default();
        for step in &plan.steps {
            if let Err(e) = self.step(step, &made) {
                if plan.undo_on_failure && made.anything.get() {
                    self.undo(&made);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn step(&self, step: &Step, made: &Made) -> anyhow::Result<()> {
        let name = &self.name;
        if !matches!(step, Step::EnsureImage(_)) {
            made.anything.set(true);
        }
        match step {
            Step::EnsureImage(image) => self.ensure_image(image),
            Step::ClaimBridge => {
                let claimed = self.guard.claim(self.project_id).with_context(|| {
                    format!(
                        "cannot claim bridge {} for this project, so no network was created",
                        alca_contract::net_spec::bridge_name(self.project_id)
                    )
                })?;
                made.claimed.set(claimed);
                Ok(())
            }
            Step::CreateNetwork(spec) => {
                self.progress.step(format!("Creating network {name}"));
                self.runtime
                    .create_network(spec)
                    .with_context(|| format!("cannot create network {name}"))?;
                Ok(())
            }
            Step::ApplyRules { stop_on_failure } => {
                let result = self.apply_rules();
                match (result, stop_on_failure) {
                    (Ok(()), _) => {
                        made.rules.set(true);
                        Ok(())
                    }
                    (Err(e), Some(running)) => {
                        let _ = self.runtime.stop(running);
                        Err(e.context(format!(
                            "container {running} was stopped so it does not run unprotected"
                        )))
                    }
                    (Err(e), None) => Err(e),
                }
            }
            Step::RegisterOpenBridge => {
                // The daemon's guard drops the traffic of every project bridge without rules,
                // so an open project still gives it allow-all rules where it is reachable.
                // Without a daemon there is no guard either.
                match self.apply_rules() {
                    Ok(()) => made.rules.set(true),
                    Err(e) => self.progress.step(format!(
                        "Note: the network helper did not take this project's allow-all rules \
                         ({e:#}); if its guard is installed, the container has no network until \
                         it does"
                    )),
                }
                Ok(())
            }
            Step::CreateContainer(spec) => {
                self.progress.step(format!("Creating container {name}"));
                self.runtime
                    .create(spec)
                    .with_context(|| format!("cannot create container {name}"))?;
                Ok(())
            }
            Step::HoldRules => {
                self.progress
                    .step("Handing the network rules to the helper");
                project_rules::hold_for_netns(self.config, self.project_id, self.guard).context(
                    "network isolation is required (network.lan-access is not [\"*\"]) and \
                     the helper could not take the rules, so no container was started",
                )?;
                made.rules.set(true);
                Ok(())
            }
            Step::InitContainer(container) => self.init(container),
            Step::Stop {
                container,
                progress,
            } => {
                self.progress.step(progress);
                self.runtime
                    .stop(container)
                    .with_context(|| format!("cannot stop container {container}"))?;
                Ok(())
            }
            Step::Start {
                container,
                progress,
            } => {
                self.progress.step(progress);
                self.runtime
                    .start(container)
                    .with_context(|| format!("cannot start container {container}"))?;
                Ok(())
            }
            Step::Note(line) => {
                self.progress.step(line);
                Ok(())
            }
            Step::CommandsUp(cmd) => self.commands_up(cmd),
        }
    }

    fn ensure_image(&self, image: &str) -> anyhow::Result<()> {
        if self.runtime.has_image(image)? {
            self.progress.step(format!("Image {image} is present"));
            return Ok(());
        }
        self.progress.step(format!("Pulling image {image}"));
        self.runtime
            .pull_image(image)
            .with_context(|| format!("cannot pull image {image:?} (the `image` in .alca.toml)"))
    }

    /// Makes the container's namespaces without running it. Already initialised (a failed `up`
    /// left it so) is fine: its process, and so its namespace, is there.
    fn init(&self, container: &str) -> anyhow::Result<()> {
        if let Err(e) = self.runtime.init(container) {
            let pid = self
                .runtime
                .container(container)
                .ok()
                .flatten()
                .and_then(|i| i.pid);
            if pid.unwrap_or(0) == 0 {
                return Err(e).with_context(|| format!("cannot initialise container {container}"));
            }
        }
        Ok(())
    }

    /// Applies the project's rules; the container must not start without them.
    fn apply_rules(&self) -> anyhow::Result<()> {
        self.progress.step("Applying network rules");
        project_rules::apply(
            self.config,
            self.root,
            self.project_id,
            &self.name,
            self.runtime,
            self.guard,
        )
        .context(
            "network isolation is required (network.lan-access is not [\"*\"]) and could not \
             be applied, so no container was started",
        )
    }

    fn commands_up(&self, cmd: &str) -> anyhow::Result<()> {
        self.progress.step("Running commands.up");
        let exec = ExecSpec {
            container: self.name.clone(),
            workdir: self.config.workdir.clone(),
            envs: Vec::new(),
            interactive: false,
            tty: false,
            argv: vec!["sh".into(), "-c".into(), cmd.to_string()],
        };
        let mut command = self.runtime.exec_command(&exec);
        command.stdin(Stdio::null());
        if self.progress.quiet {
            command.stdout(Stdio::null());
        }
        let status = command
            .status()
            .with_context(|| format!("cannot run {}", self.runtime.kind().binary()))?;
        if !status.success() {
            bail!(
                "commands.up ({cmd:?}) failed with {status}; the container was removed so no \
                 half-made environment is left. Fix commands.up in .alca.toml and run `alca up` \
                 again"
            );
        }
        Ok(())
    }

    fn undo(&self, made: &Made) {
        let guard = Some(self.guard).filter(|_| made.rules.get() || made.claimed.get());
        match teardown(self.runtime, &self.name, self.project_id, guard) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn(format!("could not remove the network rules: {e:#}")),
            Err(e) => warn(format!("could not clean up after the failure: {e:#}")),
        }
    }

    /// Removes the existing container `old_name` (on `old`, the runtime that holds it) for a
    /// rebuild; `rules_expected`: the old container was isolated, so rules left behind are
    /// worth a warning.
    pub fn remove_for_rebuild(
        &self,
        old: &dyn Runtime,
        old_name: &str,
        rules_expected: bool,
    ) -> anyhow::Result<()> {
        self.progress
            .step(format!("Removing container {old_name} for rebuild"));
        if let Err(e) = teardown(old, old_name, self.project_id, Some(self.guard))? {
            if rules_expected {
                warn(format!("the old network rules were not removed: {e:#}"));
            }
        }
        Ok(())
    }
}
