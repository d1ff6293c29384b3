//! Container runtimes (Docker, Podman) behind one trait, driven through their CLIs.
//!
//! Commands talk to `dyn Runtime` only; [`cli::CliRuntime`] is the one driver, parameterised by
//! [`RuntimeKind`] so Docker and Podman share every flag they have in common and differ in
//! [`flavor`] alone; with Docker it sends its read-only queries, `network create` and `start`
//! to the local [`engine_api`] socket instead when it can, since that saves a CLI process each.
//! Argument building and output parsing are pure functions so they are unit tested without a
//! daemon.

pub mod args;
pub mod cli;
pub mod engine_api;
pub mod flavor;
pub mod inspect;
pub mod keep_alive;
pub mod quote;
pub mod select;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use crate::config::Port;

pub use cli::CliRuntime;
pub use select::{select, Selection};

/// Label holding the project id on every container and network alca creates.
pub const LABEL_PROJECT_ID: &str = "alca.project.id";
/// Label holding the absolute project directory the container was created for.
pub const LABEL_PROJECT_PATH: &str = "alca.project.path";
/// Label holding the alca version that created the container.
pub const LABEL_VERSION: &str = "alca.version";

/// Which container engine a driver talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuntimeKind {
    Docker,
    Podman,
}

impl RuntimeKind {
    /// Every kind, in the order `list` and `cleanup` visit them.
    pub const ALL: [RuntimeKind; 2] = [RuntimeKind::Docker, RuntimeKind::Podman];

    /// The CLI binary driving this runtime.
    pub fn binary(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Podman => "podman",
        }
    }

    /// Parses a name as stored in state or written in config (`docker`, `Podman`, …).
    pub fn from_name(name: &str) -> Option<RuntimeKind> {
        match name.to_ascii_lowercase().as_str() {
            "docker" => Some(RuntimeKind::Docker),
            "podman" => Some(RuntimeKind::Podman),
            _ => None,
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeKind::Docker => "Docker",
            RuntimeKind::Podman => "Podman",
        })
    }
}

/// Lifecycle state of a container as reported by the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Running,
    /// Exited or stopped; `alca up` starts it again.
    Stopped,
    /// Created but never started.
    Created,
    Paused,
    Restarting,
    Other(String),
}

impl ContainerState {
    /// Maps the runtime's status word (`running`, `exited`, `stopped`, `created`, …).
    pub fn parse(status: &str) -> ContainerState {
        match status.to_ascii_lowercase().as_str() {
            "running" => ContainerState::Running,
            "exited" | "stopped" | "dead" => ContainerState::Stopped,
            "created" | "configured" | "initialized" => ContainerState::Created,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            other => ContainerState::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContainerState::Running => f.write_str("running"),
            ContainerState::Stopped => f.write_str("stopped"),
            ContainerState::Created => f.write_str("created"),
            ContainerState::Paused => f.write_str("paused"),
            ContainerState::Restarting => f.write_str("restarting"),
            ContainerState::Other(s) => f.write_str(s),
        }
    }
}

/// What alca needs to know about one existing container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub runtime: RuntimeKind,
    pub name: String,
    pub id: String,
    pub state: ContainerState,
    pub image: String,
    /// Creation time as the runtime prints it (RFC 3339).
    pub created: String,
    pub labels: BTreeMap<String, String>,
    /// The host PID of its main process while it runs (`State.Pid`; 0 means none).
    pub pid: Option<u32>,
}

impl ContainerInfo {
    /// The `alca.project.id` label, if present.
    pub fn project_id(&self) -> Option<&str> {
        self.labels.get(LABEL_PROJECT_ID).map(String::as_str)
    }

    /// The `alca.project.path` label, if present and non-empty.
    pub fn project_path(&self) -> Option<PathBuf> {
        self.labels
            .get(LABEL_PROJECT_PATH)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }
}

/// A per-project runtime network to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// Host bridge interface name (`alca_contract::net_spec::bridge_name`).
    pub bridge: String,
    pub labels: Vec<(String, String)>,
}

/// What alca needs to know about one existing network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    /// Host bridge interface, when the runtime reports it.
    pub bridge: Option<String>,
    /// Gateway address of each subnet (where Podman's aardvark-dns listens).
    pub gateways: Vec<IpAddr>,
    pub labels: BTreeMap<String, String>,
}

/// A bind mount of a host path into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
    /// Whether mounts below `source` come along (the runtimes' default); off for `.alca/`,
    /// whose view mountpoints must stay empty directories inside the container.
    pub recursive: bool,
}

/// Everything needed to create the project's container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub network: String,
    pub labels: Vec<(String, String)>,
    /// OCI annotations (`--annotation`, Podman): a rootless project's container names its
    /// project for the daemon's OCI hook ([`alca_contract::oci_hook`]).
    pub annotations: Vec<(String, String)>,
    pub workdir: String,
    pub mounts: Vec<BindMount>,
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub envs: Vec<(String, String)>,
    pub cap_drop: Vec<String>,
    pub cap_add: Vec<String>,
    pub ports: Vec<Port>,
    /// `--entrypoint`: the host keep-alive's path inside ([`keep_alive`]), so nothing from
    /// the image runs when the runtime starts the container by itself.
    pub entrypoint: Option<String>,
    /// Main process that keeps the container alive (its arguments with an entrypoint).
    pub command: Vec<String>,
}

/// One command to run inside a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub container: String,
    pub workdir: String,
    pub envs: Vec<(String, String)>,
    /// Keep stdin open (`-i`).
    pub interactive: bool,
    /// Allocate a TTY (`-t`); only when our stdin is a terminal.
    pub tty: bool,
    pub argv: Vec<String>,
}

/// Why a runtime operation failed; each message says which command and what the runtime said.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{binary} is not installed (not found on PATH)")]
    NotInstalled { binary: &'static str },
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: &'static str,
        source: std::io::Error,
    },
    #[error("`{command}` failed (exit {code}): {stderr}")]
    Failed {
        command: String,
        code: i32,
        stderr: String,
    },
    #[error("cannot understand the output of `{command}`: {detail}")]
    Parse { command: String, detail: String },
    #[error("{0}")]
    Other(String),
}

/// One container runtime. Object safe: commands hold a `Box<dyn Runtime>`.
pub trait Runtime {
    fn kind(&self) -> RuntimeKind;
    /// Rootless runtimes route container traffic through user-space networking, so host
    /// nftables never sees it and network isolation cannot be enforced.
    fn rootless(&self) -> bool;

    /// Whether the image exists locally.
    fn has_image(&self, image: &str) -> Result<bool, RuntimeError>;
    fn pull_image(&self, image: &str) -> Result<(), RuntimeError>;

    /// Creates the network, or returns the existing one of that name.
    fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError>;
    fn network(&self, name: &str) -> Result<Option<NetworkInfo>, RuntimeError>;
    /// Networks carrying the `alca.project.id` label.
    fn list_networks(&self) -> Result<Vec<NetworkInfo>, RuntimeError>;
    /// Removes a network; removing an absent one is not an error.
    fn remove_network(&self, name: &str) -> Result<(), RuntimeError>;

    fn create(&self, spec: &ContainerSpec) -> Result<(), RuntimeError>;
    /// Makes a created container's namespaces without running its command (`podman init`),
    /// so rules can go into its network namespace first.
    fn init(&self, name: &str) -> Result<(), RuntimeError> {
        Err(RuntimeError::Other(format!(
            "{} cannot initialise container {name} without starting it",
            self.kind()
        )))
    }
    fn start(&self, name: &str) -> Result<(), RuntimeError>;
    fn stop(&self, name: &str) -> Result<(), RuntimeError>;
    /// Force-removes a container; removing an absent one is not an error.
    fn remove(&self, name: &str) -> Result<(), RuntimeError>;
    fn container(&self, name: &str) -> Result<Option<ContainerInfo>, RuntimeError>;
    /// Containers carrying the `alca.project.id` label.
    fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// The runtime command that runs `spec`; the caller waits for it or execs into it.
    fn exec_command(&self, spec: &ExecSpec) -> Command;
}
