//! The `.alca/state.json` written by the Go original (`project_id` UUID, RFC 3339
//! `created_at`, `container_name` `alca-<first 12 UUID chars>`, `runtime` "Docker"/"Podman"),
//! read as this project's own state so a user switching keeps the project's identity and its
//! old container is found by `status`, `down` and `cleanup` instead of being orphaned.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::project::{State, CONTAINER_ID_CHARS};
use crate::runtime::RuntimeKind;

/// The fields of the Go original's `State` (internal/state/state.go) that carry over. Its
/// `config` snapshot is not kept: its shape is the Go config's, so drift cannot be read from it.
#[derive(Debug, Deserialize)]
struct GoState {
    project_id: String,
    #[serde(default)]
    container_name: String,
    created_at: String,
    #[serde(default)]
    runtime: String,
}

/// Whether a state file's JSON is the Go original's (it has `project_id`, ours has `id`).
pub fn is_go_state(value: &serde_json::Value) -> bool {
    value.get("project_id").is_some() && value.get("id").is_none()
}

/// Converts the Go original's state: the project id is the same UUID written as 32 lowercase
/// hex characters, the creation time is kept, and the Go container name is recorded so the
/// old container is still this project's.
pub fn from_go(value: serde_json::Value) -> Result<State, String> {
    let go: GoState = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let id = project_id_of(&go.project_id)
        .ok_or_else(|| format!("project_id {:?} is not a UUID", go.project_id))?;
    let created_at = OffsetDateTime::parse(&go.created_at, &Rfc3339).map_err(|e| {
        format!(
            "created_at {:?} is not an RFC 3339 time: {e}",
            go.created_at
        )
    })?;
    let container_name = if go.container_name.is_empty() {
        go_container_name(&go.project_id)
    } else {
        go.container_name
    };
    if !names_project(&container_name, &id) {
        return Err(format!(
            "container_name {container_name:?} is not the Go original's name for project {}",
            go.project_id
        ));
    }
    Ok(State {
        id,
        created_at: u64::try_from(created_at.unix_timestamp()).unwrap_or(0),
        runtime: RuntimeKind::from_name(&go.runtime).map(|k| k.binary().to_string()),
        container_name: Some(container_name),
        project_path: None,
        config: None,
    })
}

/// Our project id for a container label or Go state id: our own 32-hex ids unchanged, a UUID
/// (the Go original's `alca.project.id`) as its 32 lowercase hex digits.
pub fn project_id_of(label: &str) -> Option<String> {
    if alca_contract::net_spec::validate_project_id(label).is_ok() {
        return Some(label.to_string());
    }
    let uuid = uuid::Uuid::try_parse(label).ok()?;
    Some(uuid.simple().to_string())
}

/// The Go original's container name: `alca-` and the first 12 characters of the UUID.
fn go_container_name(uuid: &str) -> String {
    let short: String = uuid.chars().take(CONTAINER_ID_CHARS).collect();
    format!("alca-{}", short.to_ascii_lowercase())
}

/// Whether `name` is a container name of project `id`: `alca-` and 12 characters of the id,
/// where the Go original's UUID form may have a hyphen among them.
pub fn names_project(name: &str, id: &str) -> bool {
    let Some(short) = name.strip_prefix("alca-") else {
        return false;
    };
    short.chars().count() == CONTAINER_ID_CHARS
        && short.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
        && id.starts_with(&short.replace('-', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file as the Go original writes it (json.MarshalIndent of internal/state.State;
    /// field names and the "Docker" runtime from state_test.go's TestStateJSONSerialization,
    /// the container name rule from newState: "alca-" + projectID[:12]).
    const GO_STATE: &str = r#"{
  "project_id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c",
  "container_name": "alca-3f2b8c1a-9d4",
  "created_at": "2024-01-15T10:30:00.123456789+08:00",
  "runtime": "Docker",
  "config": {"Image": "ubuntu:latest", "Workdir": "/app"}
}"#;

    #[test]
    fn go_state_keeps_the_identity() {
        let v: serde_json::Value = serde_json::from_str(GO_STATE).unwrap();
        assert!(is_go_state(&v));
        let s = from_go(v).unwrap();
        assert_eq!(s.id, "3f2b8c1a9d4e4f6a8b7c1d2e3f4a5b6c");
        assert_eq!(s.container_name(), "alca-3f2b8c1a-9d4");
        // 2024-01-15T02:30:00Z
        assert_eq!(s.created_at, 1_705_285_800);
        assert_eq!(s.runtime.as_deref(), Some("docker"));
        assert_eq!(s.config, None);
    }

    #[test]
    fn go_state_without_a_container_name_gets_the_go_rule() {
        let v = serde_json::json!({
            "project_id": "3F2B8C1A-9D4E-4F6A-8B7C-1D2E3F4A5B6C",
            "created_at": "2024-01-15T10:30:00Z",
            "runtime": "Podman"
        });
        let s = from_go(v).unwrap();
        assert_eq!(s.container_name.as_deref(), Some("alca-3f2b8c1a-9d4"));
        assert_eq!(s.runtime.as_deref(), Some("podman"));
    }

    #[test]
    fn foreign_or_hostile_fields_are_refused() {
        let bad_id =
            serde_json::json!({"project_id": "../../etc", "created_at": "2024-01-15T10:30:00Z"});
        assert!(from_go(bad_id).unwrap_err().contains("not a UUID"));
        let bad_time = serde_json::json!({
            "project_id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c", "created_at": "yesterday"
        });
        assert!(from_go(bad_time).unwrap_err().contains("RFC 3339"));
        let other = serde_json::json!({
            "project_id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c",
            "container_name": "my-database",
            "created_at": "2024-01-15T10:30:00Z"
        });
        assert!(from_go(other).unwrap_err().contains("my-database"));
    }

    #[test]
    fn labels_map_to_project_ids() {
        assert_eq!(
            project_id_of("3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c").as_deref(),
            Some("3f2b8c1a9d4e4f6a8b7c1d2e3f4a5b6c")
        );
        let ours = "0123456789abcdef0123456789abcdef";
        assert_eq!(project_id_of(ours).as_deref(), Some(ours));
        assert_eq!(project_id_of("x"), None);
        assert!(names_project("alca-0123456789ab", ours));
        assert!(!names_project("alca-0123456789ac", ours));
        assert!(!names_project("postgres", ours));
    }
}
