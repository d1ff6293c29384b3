//! Config drift: what changed between the config the container was built from and now.
//!
//! `up` saves a [`Snapshot`] of the effective config in `.alca/state.json`; `up` and `status`
//! compare it with the current one field by field. Env values are stored as fingerprints so
//! secrets written in the config are not copied into the state file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::runtime::args::{format_cpus, port_arg};
use crate::runtime::keep_alive;

/// The parts of a config that shape the container, in comparable form.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub runtime: String,
    pub image: String,
    pub workdir: String,
    pub excludes: Vec<String>,
    /// Container paths served through a filtered view (absent in snapshots of containers
    /// made before the workspace was always a view: those still bind-mount it plainly).
    pub views: Vec<String>,
    pub commands_up: Option<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub mounts: Vec<String>,
    /// Env name → fingerprint of its value as written (before host expansion).
    pub envs: BTreeMap<String, String>,
    pub caps: String,
    pub ports: Vec<String>,
    pub post_up: Option<String>,
    pub pre_down: Option<String>,
    pub network: Vec<String>,
    /// Where the container's main process comes from ([`keep_alive::snapshot_text`]); empty
    /// for containers made when it was the image's `sleep`, which a rebuild replaces.
    pub keep_alive: String,
}

/// One drifted field: its display name and the old and new values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} → {}", self.field, self.old, self.new)
    }
}

impl Snapshot {
    /// Snapshot of `config` as it would be applied with runtime `runtime` (`docker`/`podman`).
    pub fn of(config: &Config, runtime: &str) -> Snapshot {
        Snapshot {
            runtime: runtime.to_string(),
            image: config.image.clone(),
            workdir: config.workdir.clone(),
            excludes: excludes(config),
            views: views(config),
            commands_up: config.commands.up.clone(),
            memory: config.resources.memory.clone(),
            cpus: config.resources.cpus.map(format_cpus),
            mounts: config.mounts.iter().map(mount_text).collect(),
            envs: config
                .envs
                .iter()
                .map(|(k, v)| (k.clone(), fingerprint(&v.template)))
                .collect(),
            caps: format!(
                "drop {} add {}",
                config.caps.drop.join(","),
                config.caps.add.join(",")
            ),
            ports: config.ports.iter().map(port_arg).collect(),
            post_up: config.hooks.post_up.clone(),
            pre_down: config.hooks.pre_down.clone(),
            network: network_text(config),
            keep_alive: keep_alive::snapshot_text().into(),
        }
    }

    /// Reads a snapshot saved in state; `None` when absent or unreadable (treated as unknown).
    pub fn from_value(v: &serde_json::Value) -> Option<Snapshot> {
        serde_json::from_value(v.clone()).ok()
    }

    /// Whether the config this snapshot records needed network rules (anything but
    /// `lan-access = ["*"]` without a proxy).
    pub fn isolated(&self) -> bool {
        let wildcard = self.network.iter().any(|n| n == "lan-access *");
        !wildcard || self.network.iter().any(|n| n.starts_with("proxy "))
    }

    /// The value to store in state.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Every field that differs between `old` (last `up`) and `new` (current config).
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Change> {
    let mut out = Vec::new();
    let mut cmp = |field: &'static str, a: String, b: String| {
        if a != b {
            out.push(Change {
                field,
                old: a,
                new: b,
            });
        }
    };
    cmp("Runtime", old.runtime.clone(), new.runtime.clone());
    cmp("Image", old.image.clone(), new.image.clone());
    cmp("Workdir", old.workdir.clone(), new.workdir.clone());
    cmp("Excludes", list(&old.excludes), list(&new.excludes));
    cmp("Views", list(&old.views), list(&new.views));
    cmp("Commands.up", opt(&old.commands_up), opt(&new.commands_up));
    cmp("Resources.memory", opt(&old.memory), opt(&new.memory));
    cmp("Resources.cpus", opt(&old.cpus), opt(&new.cpus));
    cmp("Mounts", list(&old.mounts), list(&new.mounts));
    let (a, b) = env_diff(&old.envs, &new.envs);
    cmp("Envs", a, b);
    cmp("Caps", old.caps.clone(), new.caps.clone());
    cmp("Ports", list(&old.ports), list(&new.ports));
    cmp("Hooks.post_up", opt(&old.post_up), opt(&new.post_up));
    cmp("Hooks.pre_down", opt(&old.pre_down), opt(&new.pre_down));
    cmp("Network", list(&old.network), list(&new.network));
    let keep_alive = |s: &Snapshot| match s.keep_alive.as_str() {
        "" => "image".to_string(),
        k => k.to_string(),
    };
    cmp("Keep-alive", keep_alive(old), keep_alive(new));
    out
}

fn excludes(config: &Config) -> Vec<String> {
    let mut all: Vec<String> = config.workdir_exclude.clone();
    for m in &config.mounts {
        all.extend(m.exclude.iter().map(|p| format!("{}:{p}", m.target)));
    }
    all
}

/// The workdir when it goes through a view, and each mount with exclude patterns.
fn views(config: &Config) -> Vec<String> {
    let workdir = crate::exclude::project_views::ALWAYS_VIEW || !config.workdir_exclude.is_empty();
    let mounts = config.mounts.iter().filter(|m| !m.exclude.is_empty());
    workdir
        .then(|| config.workdir.clone())
        .into_iter()
        .chain(mounts.map(|m| m.target.clone()))
        .collect()
}

fn mount_text(m: &crate::config::Mount) -> String {
    let ro = if m.readonly { ":ro" } else { "" };
    format!("{}:{}{ro}", m.source.display(), m.target)
}

fn network_text(config: &Config) -> Vec<String> {
    let mut v: Vec<String> = config
        .network
        .lan_access_raw
        .iter()
        .map(|e| format!("lan-access {e}"))
        .collect();
    if let Some(p) = &config.network.proxy_raw {
        v.push(format!("proxy {p}"));
    }
    v
}

/// First 12 hex digits of SHA-256: enough to notice a change, useless to recover a secret.
fn fingerprint(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Envs are shown by name only: which were added, removed, or changed value.
fn env_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> (String, String) {
    if old == new {
        return (String::new(), String::new());
    }
    let changed: Vec<&str> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.as_str())
        .collect();
    let mark = |map: &BTreeMap<String, String>| {
        let names: Vec<String> = map
            .keys()
            .map(|k| {
                if changed.contains(&k.as_str()) {
                    format!("{k}*")
                } else {
                    k.clone()
                }
            })
            .collect();
        list(&names)
    };
    (mark(old), mark(new))
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".into())
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

/// A minimal config with every default, for unit tests across modules.
#[cfg(test)]
pub(crate) fn sample_config() -> Config {
    use crate::config::{Caps, Commands, Hooks, Network, Resources, RuntimeChoice};
    Config {
        image: "alpine".into(),
        workdir: "/workspace".into(),
        workdir_exclude: vec![],
        runtime: RuntimeChoice::Auto,
        mounts: vec![],
        commands: Commands::default(),
        resources: Resources::default(),
        envs: BTreeMap::new(),
        caps: Caps::default(),
        ports: vec![],
        network: Network::default(),
        hooks: Hooks::default(),
        sources: vec![],
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::{EnvVar, Mount};

    use super::*;

    fn config() -> Config {
        sample_config()
    }

    fn env(template: &str) -> EnvVar {
        EnvVar {
            value: "expanded-secret".into(),
            override_on_enter: false,
            template: template.into(),
        }
    }

    #[test]
    fn identical_configs_have_no_drift() {
        let s = Snapshot::of(&config(), "docker");
        assert!(diff(&s, &s).is_empty());
    }

    #[test]
    fn image_change_reads_like_the_original() {
        let old = Snapshot::of(&config(), "docker");
        let mut c = config();
        c.image = "debian".into();
        let changes = diff(&old, &Snapshot::of(&c, "docker"));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].to_string(), "Image: alpine → debian");
    }

    /// A container whose keep-alive was the image's `sleep` (made before issue #21) must be
    /// rebuilt: the agent could have replaced that `sleep`.
    #[test]
    fn a_snapshot_with_the_image_keep_alive_drifts() {
        let mut old = Snapshot::of(&config(), "docker");
        old.keep_alive.clear();
        let changes = diff(&old, &Snapshot::of(&config(), "docker"));
        if cfg!(target_os = "linux") {
            assert_eq!(changes.len(), 1);
            assert_eq!(
                changes[0].to_string(),
                "Keep-alive: image → host, read-only"
            );
        } else {
            assert!(changes.is_empty());
        }
    }

    /// A container from before the workspace was always a view must be rebuilt.
    #[test]
    fn a_snapshot_without_views_drifts_when_the_workspace_is_a_view() {
        let mut old = Snapshot::of(&config(), "docker");
        old.views.clear();
        let fields: Vec<&str> = diff(&old, &Snapshot::of(&config(), "docker"))
            .iter()
            .map(|c| c.field)
            .collect();
        let expected: &[&str] = if crate::exclude::project_views::ALWAYS_VIEW {
            &["Views"]
        } else {
            &[]
        };
        assert_eq!(fields, expected);
    }

    #[test]
    fn every_field_is_compared() {
        let old = Snapshot::of(&config(), "docker");
        let mut c = config();
        c.workdir = "/w".into();
        c.workdir_exclude = vec![".env".into()];
        c.commands.up = Some("true".into());
        c.resources.memory = Some("1g".into());
        c.resources.cpus = Some(2.0);
        c.mounts = vec![Mount {
            source: PathBuf::from("/data"),
            target: "/data".into(),
            readonly: true,
            exclude: vec![],
        }];
        c.envs.insert("A".into(), env("1"));
        c.caps.add.push("NET_RAW".into());
        c.ports = vec![crate::config::Port {
            host_ip: None,
            host_port: Some(1),
            container_port: 2,
            proto: crate::config::PortProto::Tcp,
        }];
        c.hooks.post_up = Some("echo".into());
        c.hooks.pre_down = Some("echo".into());
        c.network.lan_access_raw = vec!["*".into()];
        let fields: Vec<&str> = diff(&old, &Snapshot::of(&c, "podman"))
            .iter()
            .map(|ch| ch.field)
            .collect();
        assert_eq!(
            fields,
            [
                "Runtime",
                "Workdir",
                "Excludes",
                "Views",
                "Commands.up",
                "Resources.memory",
                "Resources.cpus",
                "Mounts",
                "Envs",
                "Caps",
                "Ports",
                "Hooks.post_up",
                "Hooks.pre_down",
                "Network"
            ]
        );
    }

    #[test]
    fn env_values_are_not_stored_and_changes_are_named() {
        let mut c = config();
        c.envs.insert("TOKEN".into(), env("hunter2"));
        let old = Snapshot::of(&c, "docker");
        let stored = old.to_value().to_string();
        assert!(!stored.contains("hunter2"), "{stored}");
        assert!(!stored.contains("expanded-secret"), "{stored}");
        c.envs.insert("TOKEN".into(), env("other"));
        c.envs.insert("NEW".into(), env("x"));
        let changes = diff(&old, &Snapshot::of(&c, "docker"));
        assert_eq!(changes[0].to_string(), "Envs: TOKEN* → NEW, TOKEN*");
    }

    #[test]
    fn isolation_is_read_back_from_the_network_field() {
        let mut c = config();
        assert!(Snapshot::of(&c, "docker").isolated());
        c.network.lan_access_raw = vec!["*".into()];
        assert!(!Snapshot::of(&c, "docker").isolated());
        c.network.proxy_raw = Some("10.99.0.2:3128".into());
        assert!(Snapshot::of(&c, "docker").isolated());
    }

    #[test]
    fn snapshot_round_trips_and_tolerates_old_state() {
        let s = Snapshot::of(&config(), "docker");
        assert_eq!(Snapshot::from_value(&s.to_value()), Some(s));
        let partial = serde_json::json!({"image": "alpine"});
        assert_eq!(Snapshot::from_value(&partial).unwrap().image, "alpine");
        assert_eq!(Snapshot::from_value(&serde_json::json!([1])), None);
    }
}
