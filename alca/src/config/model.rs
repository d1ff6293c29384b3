//! The effective, fully merged and validated configuration of a project.
//!
//! Everything downstream (runtime drivers, drift detection, network spec, trust) works on these
//! types only; the TOML layer in sibling modules is the sole producer.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use alca_contract::internet::{InternetAccess, DEFAULT_TTL_FLOOR_SECS};
use alca_contract::{LanEntry, ProxyEntry};
use serde::{Deserialize, Serialize};

/// Default container working directory.
pub const DEFAULT_WORKDIR: &str = "/workspace";

/// Capabilities kept by default after `drop ALL`.
pub const DEFAULT_CAPS_ADD: [&str; 6] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "KILL",
    "SETUID",
    "SETGID",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Container image (required).
    pub image: String,
    /// Absolute path inside the container where the project is mounted.
    pub workdir: String,
    /// gitignore-style patterns hidden from the container, relative to the project root.
    pub workdir_exclude: Vec<String>,
    pub runtime: RuntimeChoice,
    pub mounts: Vec<Mount>,
    pub commands: Commands,
    pub resources: Resources,
    /// Environment variables, values already expanded from the host environment.
    pub envs: BTreeMap<String, EnvVar>,
    pub caps: Caps,
    pub ports: Vec<Port>,
    pub network: Network,
    pub hooks: Hooks,
    /// Every config file that contributed, in load order (absolute paths).
    pub sources: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeChoice {
    #[default]
    Auto,
    Docker,
    Podman,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute host path (`~` and `$VAR` expanded, relative paths resolved against the
    /// directory of the file that declared the mount).
    pub source: PathBuf,
    /// Absolute container path.
    pub target: String,
    pub readonly: bool,
    /// gitignore-style patterns hidden from the container, relative to `source`.
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Commands {
    /// Run once when the container is created; keeps the Go original's keep-alive semantics.
    pub up: Option<String>,
    /// Prefix that wraps every `alca run` command (e.g. `mise exec --`).
    pub enter: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit as given (`"4g"`, `"512m"`), validated.
    pub memory: Option<String>,
    /// CPU limit (`2`, `0.5`), positive.
    pub cpus: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub value: String,
    /// Re-read from the host and re-sent on every `alca run`.
    pub override_on_enter: bool,
    /// The value as written (before `${VAR}` expansion); `alca run` re-expands it when
    /// `override_on_enter` is set.
    pub template: String,
}

/// Capabilities: the effective drop and add lists given to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    pub drop: Vec<String>,
    pub add: Vec<String>,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            drop: vec!["ALL".to_string()],
            add: DEFAULT_CAPS_ADD.iter().map(|c| c.to_string()).collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProto {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub host_ip: Option<IpAddr>,
    /// The loader always sets it (as the Go original, an omitted host port equals the
    /// container port); `None` (the runtime picks a free port) only in hand-built configs.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: PortProto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Raw `lan-access` entries, in order, as written (validated).
    pub lan_access_raw: Vec<String>,
    #[serde(skip)]
    pub lan_access: Vec<LanEntry>,
    pub proxy_raw: Option<String>,
    #[serde(skip)]
    pub proxy: Option<ProxyEntry>,
    /// Raw `internet-access` entries as written (validated; `["*"]` by default). The fields
    /// below are left out of the serialized form at their defaults, so approvals recorded
    /// before they existed keep their digest.
    #[serde(
        default = "open_internet_raw",
        skip_serializing_if = "is_open_internet_raw"
    )]
    pub internet_access_raw: Vec<String>,
    #[serde(skip, default = "open_internet")]
    pub internet_access: InternetAccess,
    /// `dns-upstream`: where the project's resolver forwards allowed names (empty: the
    /// host's resolvers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_upstream: Vec<SocketAddr>,
    /// `dns-ttl-floor`, in seconds.
    #[serde(
        default = "default_ttl_floor",
        skip_serializing_if = "is_default_ttl_floor"
    )]
    pub dns_ttl_floor: u32,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            lan_access_raw: vec![],
            lan_access: vec![],
            proxy_raw: None,
            proxy: None,
            internet_access_raw: open_internet_raw(),
            internet_access: open_internet(),
            dns_upstream: vec![],
            dns_ttl_floor: DEFAULT_TTL_FLOOR_SECS,
        }
    }
}

fn open_internet_raw() -> Vec<String> {
    vec!["*".to_string()]
}

fn is_open_internet_raw(raw: &Vec<String>) -> bool {
    *raw == open_internet_raw()
}

fn open_internet() -> InternetAccess {
    InternetAccess::Everything
}

fn default_ttl_floor() -> u32 {
    DEFAULT_TTL_FLOOR_SECS
}

fn is_default_ttl_floor(secs: &u32) -> bool {
    *secs == DEFAULT_TTL_FLOOR_SECS
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hooks {
    /// Host command run in the project directory after `up`.
    pub post_up: Option<String>,
    /// Host command run in the project directory before `down` (failure only warns).
    pub pre_down: Option<String>,
}

impl Network {
    /// `lan-access = ["*"]`: no network isolation.
    pub fn allows_everything(&self) -> bool {
        self.lan_access.contains(&LanEntry::Everything)
    }
}
