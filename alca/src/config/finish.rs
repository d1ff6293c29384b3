//! From the merged layer to the effective [`Config`]: defaults, required fields and the checks
//! that need the whole picture (mount targets vs. workdir, duplicate targets and host ports).

use std::collections::HashMap;
use std::path::Path;

use super::error::Origin;
use alca_contract::internet::DEFAULT_TTL_FLOOR_SECS;
use alca_contract::net_spec::MAX_DNS;

use super::fields::{caps, internet};
use super::layer::Layer;
use super::model::{
    Commands, Config, Hooks, Mount, Network, Port, Resources, RuntimeChoice, DEFAULT_WORKDIR,
};
use super::ConfigError;

/// Builds the effective config; `root_file` is named when a required field is missing.
pub fn finish(layer: Layer, root_file: &Path) -> Result<Config, ConfigError> {
    let image = layer.image.ok_or_else(|| {
        ConfigError::at(
            root_file,
            "image",
            "no container image is set in this file or the files it extends or includes",
            "add a line such as image = \"alpine:latest\"",
        )
    })?;
    let workdir = layer
        .workdir
        .map_or_else(|| DEFAULT_WORKDIR.to_string(), |(w, _)| w);
    check_mounts(&layer.mounts, &workdir)?;
    check_ports(&layer.ports)?;
    let (lan_access_raw, lan_access) = layer.lan_access.into_iter().unzip();
    let (proxy_raw, proxy) = layer.proxy.unzip();
    let internet_access_raw = layer
        .internet_access
        .unwrap_or_else(|| vec!["*".to_string()]);
    let internet_access = internet::finish_internet_access(&internet_access_raw, root_file)?;
    let dns_upstream = layer.dns_upstream.unwrap_or_default();
    if dns_upstream.len() > MAX_DNS {
        return Err(ConfigError::at(
            root_file,
            "network.dns-upstream",
            format!(
                "{} servers (after merging the files it extends or includes) is more than the \
                 limit of {MAX_DNS}",
                dns_upstream.len()
            ),
            format!("list at most {MAX_DNS} servers across the files"),
        ));
    }
    Ok(Config {
        image,
        workdir,
        workdir_exclude: layer.workdir_exclude,
        runtime: layer.runtime.unwrap_or(RuntimeChoice::Auto),
        mounts: layer.mounts.into_iter().map(|(m, _)| m).collect(),
        commands: Commands {
            up: layer.up.map(|c| c.command),
            enter: layer.enter.map(|c| c.command),
        },
        resources: Resources {
            memory: layer.memory,
            cpus: layer.cpus,
        },
        envs: layer.envs,
        caps: caps::effective(layer.caps),
        ports: layer.ports.into_iter().map(|(p, _)| p).collect(),
        network: Network {
            lan_access_raw,
            lan_access,
            proxy_raw,
            proxy,
            internet_access_raw,
            internet_access,
            dns_upstream,
            dns_ttl_floor: layer.dns_ttl_floor.unwrap_or(DEFAULT_TTL_FLOOR_SECS),
        },
        hooks: Hooks {
            post_up: layer.post_up,
            pre_down: layer.pre_down,
        },
        sources: layer.sources,
    })
}

fn check_mounts(mounts: &[(Mount, Origin)], workdir: &str) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, &Origin> = HashMap::new();
    for (m, origin) in mounts {
        let target = origin.child("target");
        if m.target == workdir {
            return Err(target.err(
                format!(
                    "{:?} is the workdir, which is already the project mount",
                    m.target
                ),
                "remove this mount; to hide paths from the project mount use workdir_exclude",
            ));
        }
        if let Some(first) = seen.insert(&m.target, origin) {
            return Err(target.err(
                format!(
                    "{:?} is already the target of {} in {}",
                    m.target,
                    first.field,
                    first.file.display()
                ),
                "give each mount its own container path or remove one of them",
            ));
        }
    }
    Ok(())
}

fn check_ports(ports: &[(Port, Origin)]) -> Result<(), ConfigError> {
    let mut seen: HashMap<(Option<std::net::IpAddr>, Option<u16>, _), &Origin> = HashMap::new();
    for (p, origin) in ports {
        if let Some(first) = seen.insert((p.host_ip, p.host_port, p.proto), origin) {
            return Err(origin.err(
                format!(
                    "host port {} is already published by {} in {}",
                    p.host_port.unwrap_or(0),
                    first.field,
                    first.file.display()
                ),
                "use a different host port or remove one of the entries",
            ));
        }
    }
    Ok(())
}
