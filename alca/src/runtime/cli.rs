//! The one runtime driver: runs the `docker` or `podman` CLI and parses what it prints.

use std::cell::OnceCell;
use std::io::ErrorKind;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::engine_api::{name_segment, EngineApi, Reply};
use super::{
    args, flavor, inspect, ContainerInfo, ContainerSpec, ExecSpec, NetworkInfo, NetworkSpec,
    Runtime, RuntimeError, RuntimeKind, LABEL_PROJECT_ID,
};

/// Drives one runtime through its CLI.
#[derive(Debug)]
pub struct CliRuntime {
    kind: RuntimeKind,
    /// Asked once: eagerly by [`CliRuntime::probe`], on first use after [`CliRuntime::attach`].
    rootless: OnceCell<bool>,
    /// Whether `podman network create` knows `--interface-name` (asked once, lazily).
    interface_flag: OnceCell<bool>,
    /// Docker's local engine socket, when the CLI would use it too.
    api: Option<EngineApi>,
}

/// Captured result of one CLI call.
struct Outcome {
    ok: bool,
    code: i32,
    stdout: String,
    stderr: String,
}

impl CliRuntime {
    /// Connects to the runtime: fails when the CLI is missing or its daemon unreachable.
    pub fn probe(kind: RuntimeKind) -> Result<CliRuntime, RuntimeError> {
        let rt = CliRuntime::attach(kind);
        let rootless = rt.query_rootless()?;
        let _ = rt.rootless.set(rootless);
        Ok(rt)
    }

    /// The runtime of an existing container, without the start-up query (`run` is on the hot
    /// path); an unreachable daemon shows in the first real call.
    pub fn attach(kind: RuntimeKind) -> CliRuntime {
        CliRuntime {
            kind,
            rootless: OnceCell::new(),
            interface_flag: OnceCell::new(),
            api: match kind {
                RuntimeKind::Docker => EngineApi::from_env(),
                RuntimeKind::Podman => None,
            },
        }
    }

    /// Asks the engine API for `path` (`None` when a name did not fit in one); the outer
    /// `None` means "ask the CLI".
    fn api_get(&self, path: Option<String>) -> Option<Option<Value>> {
        match self.api.as_ref()?.get(&path?) {
            Reply::Ok(v) => Some(Some(v)),
            Reply::NotFound => Some(None),
            Reply::Unusable => None,
        }
    }

    fn query_rootless(&self) -> Result<bool, RuntimeError> {
        if let Some(Some(info)) = self.api_get(Some("/info".into())) {
            let options = info.get("SecurityOptions").map(Value::to_string);
            return Ok(flavor::parse_rootless(
                self.kind,
                &options.unwrap_or_default(),
            ));
        }
        let out = self.run(&flavor::rootless_query(self.kind))?;
        Ok(flavor::parse_rootless(self.kind, &out))
    }

    fn binary(&self) -> &'static str {
        self.kind.binary()
    }

    fn call<S: AsRef<str>>(&self, argv: &[S]) -> Result<Outcome, RuntimeError> {
        self.call_with_env(argv, &[])
    }

    /// [`Self::call`] with `envs` added to the CLI's environment (for `-e NAME` arguments).
    fn call_with_env<S: AsRef<str>>(
        &self,
        argv: &[S],
        envs: &[(String, String)],
    ) -> Result<Outcome, RuntimeError> {
        let out = Command::new(self.binary())
            .args(argv.iter().map(AsRef::as_ref))
            .envs(args::env_only(envs))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => RuntimeError::NotInstalled {
                    binary: self.binary(),
                },
                _ => RuntimeError::Spawn {
                    binary: self.binary(),
                    source: e,
                },
            })?;
        Ok(Outcome {
            ok: out.status.success(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    fn failed<S: AsRef<str>>(&self, argv: &[S], out: Outcome) -> RuntimeError {
        RuntimeError::Failed {
            command: self.describe(argv),
            code: out.code,
            stderr: out.stderr,
        }
    }

    /// Short form of a command line for messages (first words only: env values stay out).
    fn describe<S: AsRef<str>>(&self, argv: &[S]) -> String {
        let words: Vec<&str> = argv.iter().take(2).map(AsRef::as_ref).collect();
        format!("{} {}", self.binary(), words.join(" "))
    }

    /// Runs a command that must succeed; returns its stdout.
    fn run<S: AsRef<str>>(&self, argv: &[S]) -> Result<String, RuntimeError> {
        let out = self.call(argv)?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(self.failed(argv, out))
        }
    }

    /// Runs a command whose "does not exist" failure means `None`.
    fn run_optional<S: AsRef<str>>(&self, argv: &[S]) -> Result<Option<String>, RuntimeError> {
        let out = self.call(argv)?;
        if out.ok {
            Ok(Some(out.stdout))
        } else if flavor::is_not_found(&out.stderr) {
            Ok(None)
        } else {
            Err(self.failed(argv, out))
        }
    }

    fn parse_error(&self, what: &str, detail: String) -> RuntimeError {
        RuntimeError::Parse {
            command: format!("{} {what}", self.binary()),
            detail,
        }
    }

    fn podman_interface_flag(&self) -> bool {
        *self.interface_flag.get_or_init(|| {
            self.call(&["network", "create", "--help"])
                .map(|o| o.stdout.contains("--interface-name"))
                .unwrap_or(false)
        })
    }

    /// Podman before 4.4: give the new network its bridge name by editing its definition,
    /// then check Podman reads it back.
    fn rename_podman_bridge(&self, spec: &NetworkSpec) -> Result<(), RuntimeError> {
        let path = flavor::podman_network_file(&spec.name);
        let io = |e: std::io::Error| {
            RuntimeError::Other(format!(
                "cannot set the bridge name of network {} in {}: {e}",
                spec.name,
                path.display()
            ))
        };
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let updated = flavor::set_podman_interface(&text, &spec.bridge)
            .map_err(|e| RuntimeError::Other(format!("{}: {e}", path.display())))?;
        std::fs::write(&path, updated).map_err(io)?;
        Ok(())
    }

    fn names_with_project_label(&self, object: &str) -> Result<Vec<String>, RuntimeError> {
        let filter = format!("label={LABEL_PROJECT_ID}");
        let argv: Vec<&str> = match object {
            "network" => vec![
                "network",
                "ls",
                "--filter",
                &filter,
                "--format",
                "{{.Name}}",
            ],
            _ => vec!["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
        };
        let out = self.run(&argv)?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }
}

impl Runtime for CliRuntime {
    fn kind(&self) -> RuntimeKind {
        self.kind
    }

    fn rootless(&self) -> bool {
        // Unknown counts as rootless: isolation is then refused, never assumed.
        *self
            .rootless
            .get_or_init(|| self.query_rootless().unwrap_or(true))
    }

    fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        if let Some(found) = self.api_get(api_path("/images/", image, "/json")) {
            return Ok(found.is_some());
        }
        Ok(self
            .run_optional(&["image", "inspect", "--format", "{{.Id}}", image])?
            .is_some())
    }

    fn pull_image(&self, image: &str) -> Result<(), RuntimeError> {
        self.run(&["pull", image]).map(drop)
    }

    fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError> {
        if let Some(existing) = self.network(&spec.name)? {
            return check_bridge(existing, spec, false);
        }
        let flag = self.kind == RuntimeKind::Podman && self.podman_interface_flag();
        let via_api = self.api.as_ref().map(|api| {
            api.create(
                "/networks/create",
                &flavor::docker_network_create_body(spec),
            )
        });
        if !matches!(via_api, Some(Reply::Ok(_))) {
            self.run(&flavor::network_create_args(self.kind, spec, flag))?;
        }
        if self.kind == RuntimeKind::Podman && !flag {
            if let Err(e) = self.rename_podman_bridge(spec) {
                let _ = self.remove_network(&spec.name);
                return Err(e);
            }
        }
        let created = self.network(&spec.name)?.ok_or_else(|| {
            RuntimeError::Other(format!(
                "network {} vanished right after creation",
                spec.name
            ))
        })?;
        check_bridge(created, spec, true).inspect_err(|_| {
            let _ = self.remove_network(&spec.name);
        })
    }

    fn network(&self, name: &str) -> Result<Option<NetworkInfo>, RuntimeError> {
        if let Some(found) = self.api_get(api_path("/networks/", name, "")) {
            return found
                .map(|v| inspect::docker_network(&v))
                .transpose()
                .map_err(|e| self.parse_error("network inspect", e));
        }
        let Some(json) = self.run_optional(&["network", "inspect", name])? else {
            return Ok(None);
        };
        let mut all = inspect::networks(self.kind, &json)
            .map_err(|e| self.parse_error("network inspect", e))?;
        Ok(all.pop())
    }

    fn list_networks(&self) -> Result<Vec<NetworkInfo>, RuntimeError> {
        self.inspect_labelled("network", inspect::networks, &|n| self.network(n))
    }

    fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.run_optional(&["network", "rm", name]).map(drop)
    }

    fn create(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let argv = args::create_args(spec);
        let out = self.call_with_env(&argv, &spec.envs)?;
        if out.ok {
            Ok(())
        } else {
            Err(self.failed(&argv, out))
        }
    }

    fn start(&self, name: &str) -> Result<(), RuntimeError> {
        let path = api_path("/containers/", name, "/start");
        let started = self.api.as_ref().zip(path).map(|(api, p)| api.post(&p));
        if started == Some(Reply::Ok(Value::Null)) {
            return Ok(());
        }
        self.run(&["start", name]).map(drop)
    }

    fn init(&self, name: &str) -> Result<(), RuntimeError> {
        if self.kind != RuntimeKind::Podman {
            return Err(RuntimeError::Other(format!(
                "{} has no `init`: container {name} cannot be prepared without starting it",
                self.kind
            )));
        }
        self.run(&["init", name]).map(drop)
    }

    fn stop(&self, name: &str) -> Result<(), RuntimeError> {
        let timeout = args::STOP_TIMEOUT_SECS.to_string();
        self.run_optional(&["stop", "-t", &timeout, name]).map(drop)
    }

    fn remove(&self, name: &str) -> Result<(), RuntimeError> {
        self.run_optional(&["rm", "-f", name]).map(drop)
    }

    fn container(&self, name: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        if let Some(found) = self.api_get(api_path("/containers/", name, "/json")) {
            return found
                .map(|v| inspect::container(self.kind, &v))
                .transpose()
                .map_err(|e| self.parse_error("inspect", e));
        }
        let Some(json) = self.run_optional(&["container", "inspect", name])? else {
            return Ok(None);
        };
        let mut all =
            inspect::containers(self.kind, &json).map_err(|e| self.parse_error("inspect", e))?;
        Ok(all.pop())
    }

    fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.inspect_labelled("container", inspect::containers, &|n| self.container(n))
    }

    fn exec_command(&self, spec: &ExecSpec) -> Command {
        let mut cmd = Command::new(self.binary());
        cmd.args(args::exec_args(spec))
            .envs(args::env_only(&spec.envs));
        cmd
    }
}

/// `PREFIX NAME SUFFIX` as an engine API path, when the name fits in one.
fn api_path(prefix: &str, name: &str, suffix: &str) -> Option<String> {
    name_segment(name).map(|n| format!("{prefix}{n}{suffix}"))
}

/// Isolation rules key on the bridge name, so a network on another bridge is refused.
fn check_bridge(
    net: NetworkInfo,
    spec: &NetworkSpec,
    fresh: bool,
) -> Result<NetworkInfo, RuntimeError> {
    if net.bridge.as_deref() == Some(spec.bridge.as_str()) {
        return Ok(net);
    }
    let found = net.bridge.as_deref().unwrap_or("(unknown)");
    let fix = if fresh {
        "the runtime did not honour the requested bridge name"
    } else {
        "it was not made by this alca; remove it with `<runtime> network rm` and run `alca up` again"
    };
    Err(RuntimeError::Other(format!(
        "network {} uses bridge {found}, not {}, so isolation rules would not cover it: {fix}",
        spec.name, spec.bridge
    )))
}

/// Parser of a batch `inspect` output.
type ParseAll<T> = fn(RuntimeKind, &str) -> Result<Vec<T>, String>;

impl CliRuntime {
    /// Inspects every object carrying the project label in one call. An object removed between
    /// listing and inspecting fails the batch, so then each is inspected on its own.
    fn inspect_labelled<T>(
        &self,
        object: &str,
        parse: ParseAll<T>,
        one: &dyn Fn(&str) -> Result<Option<T>, RuntimeError>,
    ) -> Result<Vec<T>, RuntimeError> {
        let names = self.names_with_project_label(object)?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut argv = vec![object.to_string(), "inspect".to_string()];
        argv.extend(names.iter().cloned());
        if let Ok(json) = self.run(&argv) {
            return parse(self.kind, &json).map_err(|e| self.parse_error("inspect", e));
        }
        let mut found = Vec::new();
        for name in &names {
            found.extend(one(name)?);
        }
        Ok(found)
    }
}
