//! The few places where Docker and Podman CLIs differ: naming a network's bridge, detecting
//! rootless mode, and recognising "not found" errors.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{NetworkSpec, RuntimeKind};

/// Where rootful Podman (netavark backend) keeps one JSON file per network.
pub const PODMAN_NETWORK_DIR: &str = "/etc/containers/networks";

/// Arguments of `<runtime> network create …`. `podman_interface_flag` says whether this Podman
/// knows `--interface-name` (4.4+); older ones get the bridge renamed in the network file.
pub fn network_create_args(
    kind: RuntimeKind,
    spec: &NetworkSpec,
    podman_interface_flag: bool,
) -> Vec<String> {
    let mut a: Vec<String> = vec!["network".into(), "create".into()];
    for (key, value) in &spec.labels {
        a.push("--label".into());
        a.push(format!("{key}={value}"));
    }
    match kind {
        RuntimeKind::Docker => {
            a.push("-o".into());
            a.push(format!(
                "{}={}",
                super::inspect::DOCKER_BRIDGE_OPTION,
                spec.bridge
            ));
        }
        RuntimeKind::Podman if podman_interface_flag => {
            a.push("--interface-name".into());
            a.push(spec.bridge.clone());
        }
        RuntimeKind::Podman => {}
    }
    a.push(spec.name.clone());
    a
}

/// The engine API body of `POST /networks/create` for what [`network_create_args`] asks of the
/// Docker CLI (same labels, same bridge name).
pub fn docker_network_create_body(spec: &NetworkSpec) -> serde_json::Value {
    serde_json::json!({
        "Name": spec.name,
        "CheckDuplicate": true,
        "Driver": "bridge",
        "Labels": spec.labels.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "Options": { super::inspect::DOCKER_BRIDGE_OPTION: spec.bridge },
    })
}

/// Arguments of the `info` query whose output [`parse_rootless`] reads.
pub fn rootless_query(kind: RuntimeKind) -> Vec<String> {
    let format = match kind {
        RuntimeKind::Docker => "{{json .SecurityOptions}}",
        RuntimeKind::Podman => "{{.Host.Security.Rootless}}",
    };
    vec!["info".into(), "--format".into(), format.into()]
}

/// Whether the runtime runs rootless, from the output of [`rootless_query`].
pub fn parse_rootless(kind: RuntimeKind, output: &str) -> bool {
    match kind {
        RuntimeKind::Docker => output.contains("name=rootless"),
        RuntimeKind::Podman => output.trim() == "true",
    }
}

/// Whether a failed command's stderr means "that object does not exist".
pub fn is_not_found(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    [
        "no such",
        "not found",
        "not known",
        "no container with name",
    ]
    .iter()
    .any(|needle| s.contains(needle))
}

/// Path of a Podman network's definition file.
pub fn podman_network_file(name: &str) -> PathBuf {
    Path::new(PODMAN_NETWORK_DIR).join(format!("{name}.json"))
}

/// Rewrites the `network_interface` of a Podman network definition (Podman before 4.4 offers
/// no flag for it). Returns the new file content.
pub fn set_podman_interface(definition: &str, bridge: &str) -> Result<String, String> {
    let mut v: Value =
        serde_json::from_str(definition).map_err(|e| format!("invalid network file: {e}"))?;
    let obj = v
        .as_object_mut()
        .ok_or("network file is not a JSON object")?;
    obj.insert("network_interface".into(), Value::String(bridge.into()));
    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NetworkSpec {
        NetworkSpec {
            name: "alca-0123456789ab".into(),
            bridge: "alca-0123456789".into(),
            labels: vec![("alca.project.id".into(), "0123456789ab".into())],
        }
    }

    #[test]
    fn engine_api_network_body_matches_the_cli_flags() {
        let body = docker_network_create_body(&spec());
        assert_eq!(body["Name"], "alca-0123456789ab");
        assert_eq!(body["Labels"]["alca.project.id"], "0123456789ab");
        assert_eq!(
            body["Options"]["com.docker.network.bridge.name"],
            "alca-0123456789"
        );
        assert_eq!(body["CheckDuplicate"], true);
    }

    #[test]
    fn bridge_naming_per_runtime() {
        let d = network_create_args(RuntimeKind::Docker, &spec(), false);
        assert!(d.contains(&"com.docker.network.bridge.name=alca-0123456789".to_string()));
        let p = network_create_args(RuntimeKind::Podman, &spec(), true);
        assert!(p
            .windows(2)
            .any(|w| w[0] == "--interface-name" && w[1] == "alca-0123456789"));
        let old = network_create_args(RuntimeKind::Podman, &spec(), false);
        assert!(!old.iter().any(|a| a.contains("alca-0123456789 ")));
        assert_eq!(old.last().map(String::as_str), Some("alca-0123456789ab"));
    }

    #[test]
    fn rootless_detection() {
        assert!(parse_rootless(
            RuntimeKind::Docker,
            r#"["name=seccomp,profile=default","name=rootless"]"#
        ));
        assert!(!parse_rootless(
            RuntimeKind::Docker,
            r#"["name=seccomp,profile=default"]"#
        ));
        assert!(parse_rootless(RuntimeKind::Podman, "true\n"));
        assert!(!parse_rootless(RuntimeKind::Podman, "false\n"));
    }

    #[test]
    fn not_found_messages() {
        assert!(is_not_found(
            "Error response from daemon: No such container: x"
        ));
        assert!(is_not_found(
            "Error: inspecting object: network x: network not found"
        ));
        assert!(is_not_found(
            "Error: inspecting object: nope: image not known"
        ));
        assert!(!is_not_found("permission denied while trying to connect"));
    }

    #[test]
    fn podman_interface_rewrite() {
        let def = r#"{"name":"n","network_interface":"podman1","subnets":[]}"#;
        let out = set_podman_interface(def, "alca-0123456789").unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["network_interface"], "alca-0123456789");
        assert_eq!(v["name"], "n");
        assert!(set_podman_interface("[]", "x").is_err());
    }
}
