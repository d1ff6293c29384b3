//! One config file after per-file checks: every value validated, host paths resolved against
//! the file's own directory, and list items tagged with where they were declared.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alca_contract::{LanEntry, ProxyEntry};

use super::either::StrOrTable;
use super::env::EnvSource;
use super::error::Origin;
use super::fields::caps::CapsLayer;
use super::fields::{caps, envs, internet, mounts, network, ports, resources};
use super::model::{EnvVar, Mount, Port, RuntimeChoice};
use super::raw::{RawCommand, RawConfig, RawRuntime};
use super::ConfigError;

/// A command with its merge mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLayer {
    pub command: String,
    pub append: bool,
}

/// A checked config file (or, after merging, the merged stack of files).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layer {
    pub image: Option<String>,
    pub workdir: Option<(String, Origin)>,
    pub workdir_exclude: Vec<String>,
    pub runtime: Option<RuntimeChoice>,
    pub mounts: Vec<(Mount, Origin)>,
    pub up: Option<CommandLayer>,
    pub enter: Option<CommandLayer>,
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub envs: BTreeMap<String, EnvVar>,
    pub caps: Option<CapsLayer>,
    pub ports: Vec<(Port, Origin)>,
    pub lan_access: Vec<(String, LanEntry)>,
    pub proxy: Option<(String, ProxyEntry)>,
    /// `internet-access` as written (trimmed, checked); `None` when no file sets it.
    pub internet_access: Option<Vec<String>>,
    pub dns_upstream: Option<Vec<SocketAddr>>,
    pub dns_ttl_floor: Option<u32>,
    pub post_up: Option<String>,
    pub pre_down: Option<String>,
    pub sources: Vec<PathBuf>,
}

/// Checks the raw contents of `file`.
pub fn from_raw(raw: &RawConfig, file: &Path, env: &dyn EnvSource) -> Result<Layer, ConfigError> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    let at = |field: &str| Origin::new(file, field);
    let workdir = raw
        .workdir
        .as_deref()
        .map(|w| Ok::<_, ConfigError>((mounts::container_path(w, &at("workdir"))?, at("workdir"))))
        .transpose()?;
    let mut layer = Layer {
        image: non_empty(
            raw.image.as_deref(),
            &at("image"),
            "set a container image such as \"alpine:latest\"",
        )?,
        workdir,
        workdir_exclude: mounts::patterns(&raw.workdir_exclude, &at("workdir_exclude"))?,
        runtime: raw.runtime.map(runtime),
        up: command(raw.commands.up.as_ref(), &at("commands.up"))?,
        enter: command(raw.commands.enter.as_ref(), &at("commands.enter"))?,
        envs: envs::envs(&raw.envs, file, env)?,
        lan_access: network::lan_access(&raw.network.lan_access, file)?,
        // `proxy = ""` is unset, as in the Go original (`if cfg.Network.Proxy != ""`).
        proxy: raw
            .network
            .proxy
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| network::proxy(p, file))
            .transpose()?,
        internet_access: (raw.network.internet_access.as_deref())
            .map(|l| internet::internet_access(l, file))
            .transpose()?,
        dns_upstream: (raw.network.dns_upstream.as_deref())
            .map(|l| internet::dns_upstream(l, file))
            .transpose()?,
        dns_ttl_floor: (raw.network.dns_ttl_floor)
            .map(|s| internet::dns_ttl_floor(s, file))
            .transpose()?,
        post_up: non_empty(
            raw.hooks.post_up.as_deref().filter(|h| !h.is_empty()),
            &at("hooks.post_up"),
            "remove the key or give a host command",
        )?,
        pre_down: non_empty(
            raw.hooks.pre_down.as_deref().filter(|h| !h.is_empty()),
            &at("hooks.pre_down"),
            "remove the key or give a host command",
        )?,
        sources: vec![file.to_path_buf()],
        ..Layer::default()
    };
    for (i, m) in raw.mounts.iter().enumerate() {
        let origin = at(&format!("mounts[{i}]"));
        layer
            .mounts
            .push((mounts::mount(m, &origin, dir, env)?, origin));
    }
    let top = raw
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("ports[{i}]"), p));
    let net =
        (raw.network.ports.iter().enumerate()).map(|(i, p)| (format!("network.ports[{i}]"), p));
    for (field, p) in top.chain(net) {
        let origin = at(&field);
        layer.ports.push((ports::port(p, &origin)?, origin));
    }
    if let Some(m) = &raw.resources.memory {
        layer.memory = Some(resources::memory(m, &at("resources.memory"))?);
    }
    if let Some(c) = raw.resources.cpus {
        layer.cpus = Some(resources::cpus(c, &at("resources.cpus"))?);
    }
    if let Some(c) = &raw.caps {
        layer.caps = Some(caps::caps(c, &at("caps"))?);
    }
    Ok(layer)
}

fn runtime(r: RawRuntime) -> RuntimeChoice {
    match r {
        RawRuntime::Auto => RuntimeChoice::Auto,
        RawRuntime::Docker => RuntimeChoice::Docker,
        RawRuntime::Podman => RuntimeChoice::Podman,
    }
}

fn non_empty(v: Option<&str>, origin: &Origin, fix: &str) -> Result<Option<String>, ConfigError> {
    match v {
        Some(s) if s.trim().is_empty() => Err(origin.err("the value is empty", fix)),
        other => Ok(other.map(str::to_string)),
    }
}

fn command(
    raw: Option<&StrOrTable<RawCommand>>,
    origin: &Origin,
) -> Result<Option<CommandLayer>, ConfigError> {
    let (command, append, origin) = match raw {
        None => return Ok(None),
        Some(StrOrTable::Str(s)) => (s.clone(), false, origin.clone()),
        Some(StrOrTable::Table(t)) => (t.command.clone(), t.append, origin.child("command")),
    };
    // An empty command is unset, as in the Go original (an empty string never overrides in
    // its merge), so an overlay's `up = ""` keeps the inherited command.
    if command.is_empty() {
        return Ok(None);
    }
    if command.trim().is_empty() {
        return Err(origin.err(
            "the command is only whitespace",
            "remove the key, leave it empty, or give a shell command",
        ));
    }
    Ok(Some(CommandLayer { command, append }))
}
