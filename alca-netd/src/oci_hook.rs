//! `alca-netd --oci-hook`: the CLIENT side that Podman runs (as the container's owner, not as
//! root) at the `createRuntime` stage of every start of a rootless project's container, after
//! its namespaces exist and before its command runs (shipped hook file: `oci/`, names:
//! [`alca_contract::oci_hook`]). It reads the OCI state on stdin (the container's pid and its
//! project annotation) and asks the daemon to apply the project's held spec inside that
//! process's network namespace (`ApplyHeldInNetns`); the daemon checks the namespace is the
//! caller's, the project his, and that it holds a spec. Any failure exits non-zero, and the
//! OCI runtime then aborts the start: a restart behind alca's back never runs unprotected.
//!
//! It trusts nothing of the container but the pid the runtime reports and the project name,
//! both checked by the daemon; the spec comes from the daemon, never from the workspace.

use std::io::Read;

use alca_contract::client::Client;
use alca_contract::oci_hook::ANNOTATION;
use alca_contract::request::decode_project;
use serde::Deserialize;

/// An OCI state is a few hundred bytes; annotations a user adds could grow it, not past this.
const MAX_STATE_BYTES: u64 = 1 << 20;

/// The parts of the OCI runtime state (runtime-spec `state.json`) the hook reads.
#[derive(Debug, Deserialize)]
struct State {
    pid: Option<u32>,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

/// The container's project and the pid of its first process, from the OCI state.
pub fn parse_state(json: &[u8]) -> Result<(String, u32), String> {
    let state: State =
        serde_json::from_slice(json).map_err(|e| format!("unreadable OCI state: {e}"))?;
    let pid = state
        .pid
        .filter(|p| *p > 0)
        .ok_or("the OCI state names no process (is the hook's stage createRuntime?)")?;
    let project = state
        .annotations
        .get(ANNOTATION)
        .ok_or_else(|| format!("the container has no {ANNOTATION} annotation"))?;
    decode_project(project).map_err(|e| format!("annotation {ANNOTATION}: {e}"))?;
    Ok((project.clone(), pid))
}

/// The uid the system bus sees this process as: its effective uid mapped through its user
/// namespace (a rootless runtime runs hooks as uid 0 of the user's namespace, which is the
/// user on the host). The bus refuses a handshake naming another uid than the socket's peer.
pub fn host_uid() -> Result<u32, String> {
    let map = std::fs::read_to_string("/proc/self/uid_map")
        .map_err(|e| format!("cannot read /proc/self/uid_map: {e}"))?;
    let euid = nix::unistd::geteuid().as_raw();
    map_uid(&map, euid).ok_or_else(|| format!("uid {euid} is not mapped in this user namespace"))
}

/// `uid` of this namespace in the parent's, by the lines `inside outside count` of a uid_map.
fn map_uid(uid_map: &str, uid: u32) -> Option<u32> {
    uid_map.lines().find_map(|line| {
        let mut fields = line.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (inside, outside, count) = (fields.next()??, fields.next()??, fields.next()??);
        let uid = u64::from(uid);
        (inside <= uid && uid < inside + count)
            .then(|| u32::try_from(outside + (uid - inside)).ok())
            .flatten()
    })
}

/// Runs the hook: the state from stdin, the apply by the daemon. The error says what failed;
/// the runtime shows it when it aborts the start.
pub fn run() -> Result<(), String> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read the OCI state on stdin: {e}"))?;
    if input.len() as u64 > MAX_STATE_BYTES {
        return Err(format!("the OCI state is over {MAX_STATE_BYTES} bytes"));
    }
    let (project, pid) = parse_state(&input)?;
    let client = Client::connect_as(Some(host_uid()?))
        .map_err(|e| format!("cannot reach the system bus: {}", e.message()))?;
    client.apply_held_in_netns(&project, pid).map_err(|e| {
        format!(
            "the network rules of project {project} were not applied in the container's \
             namespace, so it does not start: {}",
            e.message()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "0e2e70000000000000000000000000e1";

    #[test]
    fn the_state_gives_the_project_and_the_pid() {
        let state = format!(
            r#"{{"ociVersion":"1.0.2-dev","id":"4f6a","status":"creating","pid":25538,
            "bundle":"/b","annotations":{{"{ANNOTATION}":"{PROJECT}","io.container.manager":"libpod"}}}}"#
        );
        assert_eq!(
            parse_state(state.as_bytes()).unwrap(),
            (PROJECT.to_string(), 25538)
        );
    }

    #[test]
    fn a_state_without_pid_or_project_or_with_a_bad_project_is_refused() {
        let no_pid = format!(r#"{{"annotations":{{"{ANNOTATION}":"{PROJECT}"}}}}"#);
        assert!(parse_state(no_pid.as_bytes())
            .unwrap_err()
            .contains("no process"));
        let zero = format!(r#"{{"pid":0,"annotations":{{"{ANNOTATION}":"{PROJECT}"}}}}"#);
        assert!(parse_state(zero.as_bytes()).is_err());
        let none = r#"{"pid":12,"annotations":{}}"#;
        assert!(parse_state(none.as_bytes())
            .unwrap_err()
            .contains(ANNOTATION));
        let bad = format!(r#"{{"pid":12,"annotations":{{"{ANNOTATION}":"../x"}}}}"#);
        assert!(parse_state(bad.as_bytes())
            .unwrap_err()
            .contains(ANNOTATION));
        assert!(parse_state(b"not json").is_err());
    }

    #[test]
    fn uids_are_mapped_through_the_namespace() {
        let rootless = "         0       1001          1\n         1     100000      65536\n";
        assert_eq!(map_uid(rootless, 0), Some(1001));
        assert_eq!(map_uid(rootless, 1), Some(100000));
        assert_eq!(map_uid(rootless, 65536), Some(165535));
        assert_eq!(map_uid(rootless, 65537), None);
        let initial = "         0          0 4294967295\n";
        assert_eq!(map_uid(initial, 1001), Some(1001));
        assert_eq!(map_uid("", 0), None);
    }
}
