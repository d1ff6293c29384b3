//! `alca run CMD…`: run a command in the project's running container (directly, or through
//! the `commands.enter` wrapper), passing its exit code through.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::RunArgs;
use crate::config::error::Origin;
use crate::config::fields::envs::expand;
use crate::config::{Config, DEFAULT_ENTER_ENVS};
use crate::lifecycle::trust_gate::{self, Consent};
use crate::lifecycle::{find_container, moved_message, Project};
use crate::project::State;
use crate::prompt::stdin_is_tty;
use crate::runtime::quote::run_argv;
use crate::runtime::{ContainerState, ExecSpec};

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let project = Project::open()?;
    let not_up = "the container is not created: run `alca up` first";
    let Some(state) = State::load(&project.root)? else {
        bail!(not_up);
    };
    let Some((runtime, info)) = find_container(&state)? else {
        bail!(not_up);
    };
    let Some(info) = info else {
        bail!(
            "container {} does not exist (it was removed): run `alca up` first",
            state.container_name()
        );
    };
    if let Some(msg) = moved_message(&info, &project.root) {
        bail!(msg);
    }
    if info.state != ContainerState::Running {
        bail!(
            "container {} is {}: run `alca up` to start it",
            info.name,
            info.state
        );
    }
    trust_gate::gate(&project, Consent::AskOnTerminal, "run")?;
    // A crashed or rebooted-away view is restarted, and the container with it (fail closed).
    let views = crate::exclude::project_views::ProjectViews::start(&project.root, &project.config)?;
    if views.any_fresh() {
        runtime.stop(&info.name)?;
        runtime.start(&info.name)?;
    }
    // Rules first: a container the runtime restarted may be running without them.
    crate::network::project_rules::ensure_before_exec(
        &project.config,
        &project.root,
        &state.id,
        &info.name,
        runtime.as_ref(),
    )?;
    let spec = ExecSpec {
        container: info.name.clone(),
        workdir: container_cwd(&project.config.workdir, &project.root),
        envs: enter_envs(&project.config, &host_env())
            .into_iter()
            .collect(),
        interactive: true,
        tty: stdin_is_tty(),
        argv: run_argv(project.config.commands.enter.as_deref(), &args.command),
    };
    // Replace this process: the runtime's exit code, signals and TTY become the command's.
    let err = runtime.exec_command(&spec).exec();
    Err(err).with_context(|| format!("cannot run {}", runtime.kind().binary()))
}

/// The container directory matching the current host directory: `workdir` plus the path
/// below the project root (so `alca run` from a subdirectory runs there), else `workdir`.
fn container_cwd(workdir: &str, root: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    map_cwd(workdir, root, &cwd)
}

/// Pure part of [`container_cwd`].
pub fn map_cwd(workdir: &str, root: &Path, cwd: &Path) -> String {
    match cwd.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => match rel.to_str() {
            Some(rel) => format!("{}/{rel}", workdir.trim_end_matches('/')),
            None => workdir.to_string(),
        },
        _ => workdir.to_string(),
    }
}

fn host_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Envs re-sent on every run: TERM, COLORTERM, LANG and LC_* from the host, then every
/// `override_on_enter` env re-expanded from the host (config values win over the defaults).
pub fn enter_envs(config: &Config, host: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in host {
        if DEFAULT_ENTER_ENVS.contains(&key.as_str()) || key.starts_with("LC_") {
            out.insert(key.clone(), value.clone());
        }
    }
    for (key, env) in &config.envs {
        if !env.override_on_enter {
            continue;
        }
        let file = config.sources.first().map(|p| p.as_path());
        let origin = Origin::new(
            file.unwrap_or(Path::new(".alca.toml")),
            format!("envs.{key}"),
        );
        let value = expand(&env.template, &origin, &HostMap(host)).unwrap_or(env.value.clone());
        if value.is_empty() {
            out.remove(key);
        } else {
            out.insert(key.clone(), value);
        }
    }
    out
}

/// A host environment snapshot usable as the config's variable source.
struct HostMap<'a>(&'a BTreeMap<String, String>);

impl crate::config::EnvSource for HostMap<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EnvVar;

    use super::*;

    fn host() -> BTreeMap<String, String> {
        [
            ("TERM", "xterm-256color"),
            ("LC_PAPER", "de_DE"),
            ("LANG", "C.UTF-8"),
            ("SECRET", "nope"),
            ("EDITOR", "vim"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn config_with(envs: &[(&str, &str, bool)]) -> Config {
        let mut c = crate::drift::sample_config();
        for (k, template, over) in envs {
            c.envs.insert(
                k.to_string(),
                EnvVar {
                    value: "at-up".into(),
                    override_on_enter: *over,
                    template: template.to_string(),
                },
            );
        }
        c
    }

    #[test]
    fn subdirectories_map_into_the_workdir() {
        let root = Path::new("/home/u/p");
        assert_eq!(map_cwd("/workspace", root, root), "/workspace");
        assert_eq!(
            map_cwd("/workspace/", root, Path::new("/home/u/p/src/a")),
            "/workspace/src/a"
        );
        assert_eq!(map_cwd("/workspace", root, Path::new("/tmp")), "/workspace");
    }

    #[test]
    fn terminal_and_locale_envs_pass_others_do_not() {
        let envs = enter_envs(&config_with(&[]), &host());
        assert_eq!(envs.get("TERM").map(String::as_str), Some("xterm-256color"));
        assert_eq!(envs.get("LC_PAPER").map(String::as_str), Some("de_DE"));
        assert_eq!(envs.get("LANG").map(String::as_str), Some("C.UTF-8"));
        assert!(!envs.contains_key("SECRET"));
    }

    #[test]
    fn override_on_enter_is_re_expanded_and_wins() {
        let c = config_with(&[
            ("MY_EDITOR", "${EDITOR}", true),
            ("STATIC", "${EDITOR}", false),
            ("TERM", "dumb", true),
        ]);
        let envs = enter_envs(&c, &host());
        assert_eq!(envs.get("MY_EDITOR").map(String::as_str), Some("vim"));
        assert!(!envs.contains_key("STATIC"));
        assert_eq!(envs.get("TERM").map(String::as_str), Some("dumb"));
    }
}
