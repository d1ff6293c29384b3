//! The `.alca.toml` file format as written by users: one serde/schemars type per file.
//!
//! Nothing here is validated beyond TOML types; `layer` turns a [`RawConfig`] into checked values.
//! The published JSON schema (`alca-config.schema.json`) is generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::either::{Expecting, ListOrTable, StrOrTable};

/// Alcatraz project configuration (`.alca.toml`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(title = "Alcatraz configuration (.alca.toml)")]
pub struct RawConfig {
    /// Config files this file builds on; this file's values win over them. Globs, `${VAR}` and
    /// paths relative to this file are allowed. Earlier entries win over later ones.
    pub extends: Vec<String>,
    /// Config files layered on top of this one; their values win. Globs, `${VAR}` and paths
    /// relative to this file are allowed. Later entries win over earlier ones.
    pub includes: Vec<String>,
    /// Container image (required in the merged config), e.g. "alpine:latest".
    pub image: Option<String>,
    /// Absolute path inside the container where the project is mounted (default "/workspace").
    pub workdir: Option<String>,
    /// gitignore-style patterns, relative to the project root, hidden from the container.
    pub workdir_exclude: Vec<String>,
    /// Container runtime: auto (default), docker or podman.
    pub runtime: Option<RawRuntime>,
    /// Extra mounts: "src:dst[:ro]" or {source, target, readonly, exclude}.
    pub mounts: Vec<StrOrTable<RawMount>>,
    /// Lifecycle commands.
    pub commands: RawCommands,
    /// Resource limits.
    pub resources: RawResources,
    /// Environment variables: "value", "${HOST_VAR}" or {value, override_on_enter}.
    pub envs: BTreeMap<String, StrOrTable<RawEnv>>,
    /// Capabilities: an array adds to the defaults; a table {drop, add} is used verbatim.
    pub caps: Option<ListOrTable<RawCaps>>,
    /// Published ports: "8080", "8080:80", "127.0.0.1:8080:80", "53:53/udp" or
    /// {port, hostPort, hostIp, protocol}. `[network] ports` (the Go original's place) is read
    /// too; both lists are published, and a host port given twice is an error.
    pub ports: Vec<StrOrTable<RawPort>>,
    /// Network isolation settings.
    pub network: RawNetwork,
    /// Host commands run around the container lifecycle (in the project directory).
    pub hooks: RawHooks,
}

/// Container runtime selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "Runtime")]
pub enum RawRuntime {
    Auto,
    Docker,
    Podman,
}

/// Table form of a mount.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "Mount")]
pub struct RawMount {
    /// Host path; `~`, `$VAR` and `${VAR}` are expanded, relative paths are resolved against
    /// the directory of the declaring file.
    pub source: String,
    /// Absolute container path.
    pub target: String,
    /// Mount read-only (default false).
    #[serde(default)]
    pub readonly: bool,
    /// gitignore-style patterns, relative to `source`, hidden from the container.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Expecting for RawMount {
    const EXPECTING: &'static str =
        "a mount: a string \"source:target[:ro]\" or a table {source, target, readonly, exclude}";
}

/// `commands.up` and `commands.enter`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Commands")]
pub struct RawCommands {
    /// Run once when the container is created.
    pub up: Option<StrOrTable<RawCommand>>,
    /// Prefix of every `alca run` command.
    pub enter: Option<StrOrTable<RawCommand>>,
}

/// Table form of a command.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "Command")]
pub struct RawCommand {
    /// The shell command.
    pub command: String,
    /// Append to the inherited command (space-separated) instead of replacing it.
    #[serde(default)]
    pub append: bool,
}

impl Expecting for RawCommand {
    const EXPECTING: &'static str = "a command: a string or a table {command, append}";
}

/// `[resources]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Resources")]
pub struct RawResources {
    /// Memory limit in docker syntax, e.g. "512m", "4g".
    pub memory: Option<String>,
    /// Number of CPUs (positive, fractions allowed), e.g. 2 or 0.5.
    pub cpus: Option<f64>,
}

/// Table form of an environment variable.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "EnvValue")]
pub struct RawEnv {
    /// Static value or a `${HOST_VAR}` reference (absent: empty, as in the Go original).
    #[serde(default)]
    pub value: String,
    /// Re-read from the host and re-sent on every `alca run`.
    #[serde(default)]
    pub override_on_enter: bool,
}

impl Expecting for RawEnv {
    const EXPECTING: &'static str =
        "an environment value: a string or a table {value, override_on_enter}";
}

/// Table form of `caps`: used verbatim, no defaults added.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Caps")]
pub struct RawCaps {
    /// Capabilities to drop (e.g. "ALL", "NET_RAW").
    pub drop: Vec<String>,
    /// Capabilities to add.
    pub add: Vec<String>,
}

impl Expecting for RawCaps {
    const EXPECTING: &'static str =
        "capabilities: an array of names to add to the defaults or a table {drop, add}";
}

/// Table form of a published port (field names as in the Go original).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[schemars(rename = "Port")]
pub struct RawPort {
    /// Container port (1-65535).
    pub port: u16,
    /// Host port (default: same as `port`).
    #[serde(default, rename = "hostPort")]
    pub host_port: Option<u16>,
    /// Host address to bind (default: all addresses).
    #[serde(default, rename = "hostIp")]
    pub host_ip: Option<String>,
    /// "tcp" (default) or "udp".
    #[serde(default)]
    pub protocol: Option<String>,
}

impl Expecting for RawPort {
    const EXPECTING: &'static str = "a port: a string \"[hostIp:]hostPort:containerPort[/proto]\" \
         or \"containerPort\", or a table {port, hostPort, hostIp, protocol}";
}

/// `[network]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Network")]
pub struct RawNetwork {
    /// Allowed LAN / host destinations: "*", IP, CIDR, IP:port, proto://IP:port, [v6]:port;
    /// `${alca:HOST_IP}` stands for the host: the gateway of the project's network. `IP:port`
    /// allows TCP only; `IP:*` every port and protocol.
    #[serde(rename = "lan-access")]
    pub lan_access: Vec<String>,
    /// Published ports, as in the Go original (same forms as the top-level `ports`).
    pub ports: Vec<StrOrTable<RawPort>>,
    /// Redirect-mode proxy on the host all container TCP is sent to: "IP:port", "[IPv6]:port" or
    /// "${alca:HOST_IP}:port" (an IP address, not a hostname). UDP is not proxied.
    pub proxy: Option<String>,
    /// Internet destinations the container may reach (default ["*"]: the internet is open; []:
    /// none). Entries: a domain ("github.com"), "*.domain" (subdomains only), an IP or CIDR,
    /// each optionally with ":port" and "tcp://" / "udp://" as in lan-access. Domains are
    /// allowed by the addresses the project's own resolver saw in their answers.
    #[serde(rename = "internet-access")]
    pub internet_access: Option<Vec<String>>,
    /// DNS servers the project's resolver forwards allowed names to, as "IP", "IP:port" or
    /// "[IPv6]:port" (default: the host's resolvers, as Docker's embedded DNS uses).
    #[serde(rename = "dns-upstream")]
    pub dns_upstream: Option<Vec<String>>,
    /// Seconds an answered address stays allowed at least, whatever the record's TTL
    /// (default 30: clients such as the JVM cache answers for 30 s). At most 3600.
    #[serde(rename = "dns-ttl-floor")]
    #[schemars(range(min = 0, max = 3600))]
    pub dns_ttl_floor: Option<i64>,
}

/// `[hooks]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Hooks")]
pub struct RawHooks {
    /// Host command run in the project directory after `alca up`.
    pub post_up: Option<String>,
    /// Host command run in the project directory before `alca down` (failure only warns).
    pub pre_down: Option<String>,
}
