//! Parsing of `container inspect` and `network inspect` JSON from Docker and Podman.
//!
//! Both print a JSON array; container fields are shared, network fields differ (Docker:
//! `IPAM.Config[].Gateway` and the bridge option, Podman: `subnets[].gateway` and
//! `network_interface`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::{ContainerInfo, ContainerState, NetworkInfo, RuntimeKind};

/// Docker's option naming the host bridge of a network.
pub const DOCKER_BRIDGE_OPTION: &str = "com.docker.network.bridge.name";

/// Parses the array printed by `container inspect NAME…`.
pub fn containers(kind: RuntimeKind, json: &str) -> Result<Vec<ContainerInfo>, String> {
    array(json)?
        .iter()
        .map(|v| container(kind, v))
        .collect::<Result<_, _>>()
}

/// Parses the array printed by `network inspect NAME…`.
pub fn networks(kind: RuntimeKind, json: &str) -> Result<Vec<NetworkInfo>, String> {
    array(json)?
        .iter()
        .map(|v| match kind {
            RuntimeKind::Docker => docker_network(v),
            RuntimeKind::Podman => podman_network(v),
        })
        .collect::<Result<_, _>>()
}

fn array(json: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str::<Value>(json) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(Value::Null) => Ok(Vec::new()),
        Ok(other) => Err(format!("expected a JSON array, got {}", kind_of(&other))),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses one container object (an element of the inspect array, or the engine API's answer).
pub fn container(kind: RuntimeKind, v: &Value) -> Result<ContainerInfo, String> {
    let name = str_at(v, "/Name").ok_or("container without a Name")?;
    Ok(ContainerInfo {
        runtime: kind,
        name: name.trim_start_matches('/').to_string(),
        id: str_at(v, "/Id").unwrap_or_default().to_string(),
        state: ContainerState::parse(str_at(v, "/State/Status").unwrap_or("unknown")),
        image: str_at(v, "/Config/Image")
            .or_else(|| str_at(v, "/ImageName"))
            .unwrap_or_default()
            .to_string(),
        created: str_at(v, "/Created").unwrap_or_default().to_string(),
        labels: string_map(v.pointer("/Config/Labels")),
        pid: v
            .pointer("/State/Pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0),
    })
}

/// Parses one Docker network object.
pub fn docker_network(v: &Value) -> Result<NetworkInfo, String> {
    let options = string_map(v.pointer("/Options"));
    Ok(NetworkInfo {
        name: str_at(v, "/Name")
            .ok_or("network without a Name")?
            .to_string(),
        bridge: options.get(DOCKER_BRIDGE_OPTION).cloned(),
        gateways: docker_gateways(v.pointer("/IPAM/Config")),
        labels: string_map(v.pointer("/Labels")),
    })
}

/// Docker lists a subnet without its gateway when the network was made with `--subnet` and no
/// `--gateway`; its default IPAM then gave the bridge the subnet's first host address.
fn docker_gateways(list: Option<&Value>) -> Vec<IpAddr> {
    let items = list.and_then(Value::as_array).map(Vec::as_slice);
    items
        .unwrap_or_default()
        .iter()
        .filter_map(|s| match s.get("Gateway").and_then(Value::as_str) {
            Some(g) => g.parse().ok(),
            None => s
                .get("Subnet")
                .and_then(Value::as_str)
                .and_then(|n| n.parse::<ipnet::IpNet>().ok())
                .and_then(first_address_after_the_network),
        })
        .collect()
}

/// The network address plus one: what Docker's IPAM takes for a gateway, IPv4 and IPv6 alike
/// (`ipnet`'s `hosts()` differs between the families).
fn first_address_after_the_network(net: ipnet::IpNet) -> Option<IpAddr> {
    let next: IpAddr = match net.network() {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).checked_add(1)?.into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).checked_add(1)?.into()),
    };
    net.contains(&next).then_some(next)
}

fn podman_network(v: &Value) -> Result<NetworkInfo, String> {
    Ok(NetworkInfo {
        name: str_at(v, "/name")
            .ok_or("network without a name")?
            .to_string(),
        bridge: str_at(v, "/network_interface").map(String::from),
        gateways: gateways(v.pointer("/subnets"), "gateway"),
        labels: string_map(v.pointer("/labels")),
    })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn gateways(list: Option<&Value>, key: &str) -> Vec<IpAddr> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|s| s.get(key).and_then(Value::as_str))
                .filter_map(|g| g.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_container() {
        let json = r#"[{"Id":"18d4","Name":"/alca-x","Created":"2026-11-23T19:40:46Z",
            "State":{"Status":"exited","Pid":0},"Config":{"Image":"busybox",
            "Labels":{"alca.project.id":"abc","alca.project.path":"/p"}}}]"#;
        let c = &containers(RuntimeKind::Docker, json).unwrap()[0];
        assert_eq!(c.name, "alca-x");
        assert_eq!(c.state, ContainerState::Stopped);
        assert_eq!(c.pid, None);
        assert_eq!(c.image, "busybox");
        assert_eq!(c.project_id(), Some("abc"));
        assert_eq!(c.project_path().unwrap().to_str(), Some("/p"));
    }

    #[test]
    fn podman_container_without_labels() {
        let json = r#"[{"Id":"1d62","Name":"alca-y","State":{"Status":"running","Pid":4242},
            "ImageName":"localhost/busybox","Config":{"Labels":null}}]"#;
        let c = &containers(RuntimeKind::Podman, json).unwrap()[0];
        assert_eq!(c.name, "alca-y");
        assert_eq!(c.pid, Some(4242));
        assert_eq!(c.state, ContainerState::Running);
        assert_eq!(c.image, "localhost/busybox");
        assert_eq!(c.project_id(), None);
        assert_eq!(c.project_path(), None);
    }

    #[test]
    fn networks_of_both_runtimes() {
        let d = r#"[{"Name":"alca-n","IPAM":{"Config":[{"Subnet":"172.19.0.0/16",
            "Gateway":"172.19.0.1"}]},"Options":{"com.docker.network.bridge.name":"alca-0123456789"},
            "Labels":{"alca.project.id":"t"}}]"#;
        let n = &networks(RuntimeKind::Docker, d).unwrap()[0];
        assert_eq!(n.bridge.as_deref(), Some("alca-0123456789"));
        assert_eq!(n.gateways, vec!["172.19.0.1".parse::<IpAddr>().unwrap()]);
        let p = r#"[{"name":"alca-n","network_interface":"podman1",
            "subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"}],"labels":{"a":"b"}}]"#;
        let n = &networks(RuntimeKind::Podman, p).unwrap()[0];
        assert_eq!(n.bridge.as_deref(), Some("podman1"));
        assert_eq!(n.gateways, vec!["10.89.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(n.labels.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn a_docker_subnet_listed_without_its_gateway_has_the_first_address() {
        let d = r#"[{"Name":"n","IPAM":{"Config":[{"Subnet":"172.29.234.0/24"},
            {"Subnet":"fd42:e18::/64"},{"Subnet":"10.1.0.0/16","Gateway":"10.1.9.9"},
            {"Subnet":"not a subnet"},{"Subnet":"10.2.0.0/32"}]}}]"#;
        let n = &networks(RuntimeKind::Docker, d).unwrap()[0];
        let want: Vec<IpAddr> = ["172.29.234.1", "fd42:e18::1", "10.1.9.9"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(n.gateways, want);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(containers(RuntimeKind::Docker, "not json").is_err());
        assert!(containers(RuntimeKind::Docker, "{}").is_err());
        assert!(containers(RuntimeKind::Docker, "[{}]").is_err());
        assert_eq!(containers(RuntimeKind::Docker, "[]").unwrap(), vec![]);
    }
}
