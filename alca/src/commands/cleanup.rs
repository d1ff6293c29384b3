//! `alca cleanup [--all] [-y]`: remove containers (with their networks and rules) of projects
//! that no longer exist: directory deleted, state file missing, or project id mismatch.
//! A live project's container is never touched; `--all` also removes stopped containers of
//! live projects. Removal asks on a terminal; without one it needs `-y`.

use std::io::ErrorKind;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::CleanupArgs;
use crate::commands::lifecycle::{confirm, stdin_is_tty, warn};
use crate::network::netd::connect_guard;
use crate::network::NetworkGuard;
use crate::project::State;
use crate::runtime::select::available;
use crate::runtime::{ContainerState, Runtime, LABEL_PROJECT_ID, LABEL_PROJECT_PATH};

/// One container or network to remove and why.
struct Candidate<'a> {
    runtime: &'a dyn Runtime,
    name: String,
    project_id: Option<String>,
    reason: String,
    network_only: bool,
}

pub fn run(args: &CleanupArgs) -> anyhow::Result<ExitCode> {
    prune_trust_records();
    let runtimes = available();
    let mut candidates = Vec::new();
    for rt in &runtimes {
        candidates.extend(containers_to_remove(rt.as_ref(), args.all));
        candidates.extend(networks_to_remove(rt.as_ref(), &candidates));
    }
    if candidates.is_empty() {
        println!("No orphaned Alcatraz containers found.");
        return Ok(ExitCode::SUCCESS);
    }
    println!("Found {} item(s) to remove:", candidates.len());
    for c in &candidates {
        let what = if c.network_only {
            "network"
        } else {
            "container"
        };
        println!("  {what} {} ({}): {}", c.name, c.runtime.kind(), c.reason);
    }
    if !args.yes {
        if !stdin_is_tty() {
            println!("Nothing removed: re-run with -y to remove them without a terminal.");
            return Ok(ExitCode::SUCCESS);
        }
        if !confirm("Remove them?") {
            println!("Nothing removed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let guard = connect_guard();
    let removed = candidates
        .iter()
        .filter(|c| remove(c, guard.as_ref()))
        .count();
    println!("Removed {removed} item(s).");
    Ok(ExitCode::SUCCESS)
}

fn containers_to_remove(rt: &dyn Runtime, all: bool) -> Vec<Candidate<'_>> {
    let list = match rt.list() {
        Ok(l) => l,
        Err(e) => {
            warn(format!("cannot list {} containers: {e}", rt.kind()));
            return Vec::new();
        }
    };
    list.into_iter()
        .filter_map(|c| {
            let reason = match orphan_reason(c.project_id(), c.project_path().as_deref()) {
                Some(r) => r,
                None if all && c.state != ContainerState::Running => {
                    format!("stopped ({}; --all)", c.state)
                }
                None => return None,
            };
            Some(Candidate {
                runtime: rt,
                project_id: c.project_id().map(String::from),
                name: c.name,
                reason,
                network_only: false,
            })
        })
        .collect()
}

/// Networks of orphaned projects that no container candidate already covers.
fn networks_to_remove<'a>(rt: &'a dyn Runtime, taken: &[Candidate]) -> Vec<Candidate<'a>> {
    let Ok(networks) = rt.list_networks() else {
        return Vec::new();
    };
    networks
        .into_iter()
        .filter(|n| !taken.iter().any(|c| c.name == n.name))
        .filter(|n| rt.container(&n.name).ok().flatten().is_none())
        .filter_map(|n| {
            let id = n.labels.get(LABEL_PROJECT_ID).cloned();
            let path = n.labels.get(LABEL_PROJECT_PATH).map(Path::new);
            let reason = orphan_reason(id.as_deref(), path)?;
            Some(Candidate {
                runtime: rt,
                name: n.name,
                project_id: id,
                reason,
                network_only: true,
            })
        })
        .collect()
}

fn remove(c: &Candidate, guard: &dyn NetworkGuard) -> bool {
    let container = if c.network_only {
        Ok(())
    } else {
        c.runtime.remove(&c.name)
    };
    let result = container.and_then(|_| c.runtime.remove_network(&c.name));
    if let Err(e) = result {
        warn(format!("cannot remove {}: {e}", c.name));
        return false;
    }
    if let Some(id) = &c.project_id {
        if alca_contract::net_spec::validate_project_id(id).is_ok() {
            // No rules or no helper: nothing to remove there.
            let _ = guard.remove(id);
        }
    }
    println!("Removed {}", c.name);
    true
}

/// Why a container labelled with `id` and `path` is an orphan, or `None` for a live project
/// (including when that cannot be decided, e.g. the directory is not readable by this user).
pub fn orphan_reason(id: Option<&str>, path: Option<&Path>) -> Option<String> {
    let Some(path) = path else {
        return Some("no project path label".into());
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Some(format!(
                "project directory {} no longer exists",
                path.display()
            ))
        }
        Err(_) => return None,
        Ok(_) => {}
    }
    let state_file = crate::project::state_path(path);
    match std::fs::metadata(&state_file) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Some(format!("{} is missing", state_file.display()))
        }
        Err(_) => return None,
        Ok(_) => {}
    }
    match State::load(path) {
        Ok(Some(state))
            if id.and_then(crate::go_state::project_id_of).as_deref()
                != Some(state.id.as_str()) =>
        {
            Some(format!(
                "project id mismatch ({} belongs to project {})",
                state_file.display(),
                state.id
            ))
        }
        _ => None,
    }
}

/// Forgets the approvals of this user's projects whose directory is gone (never another's).
fn prune_trust_records() {
    let Some(dir) = crate::trust::store::store_dir() else {
        return;
    };
    match crate::trust::store::prune(&dir) {
        Ok(gone) => {
            for path in gone {
                println!(
                    "Forgot the approved config of {} (directory gone)",
                    path.display()
                );
            }
        }
        Err(e) => eprintln!("alca: warning: cannot prune trust records: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert!(orphan_reason(Some("a"), None)
            .unwrap()
            .contains("no project path"));
        let gone = root.join("gone");
        assert!(orphan_reason(Some("a"), Some(&gone))
            .unwrap()
            .contains("no longer exists"));
        assert!(orphan_reason(Some("a"), Some(root))
            .unwrap()
            .contains("state.json is missing"));
        let state = State::load_or_create(root).unwrap();
        assert_eq!(orphan_reason(Some(&state.id), Some(root)), None);
        assert!(orphan_reason(Some("0000000000000000"), Some(root))
            .unwrap()
            .contains("mismatch"));
    }

    /// A container the Go original made carries `alca.project.id` = the project's UUID
    /// (internal/state/state.go LabelProjectID): after the state's migration it is still the
    /// live project's, not an orphan.
    #[test]
    fn a_go_container_of_a_migrated_project_is_not_an_orphan() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(".alca")).unwrap();
        std::fs::write(
            crate::project::state_path(root),
            r#"{"project_id":"3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c","container_name":"alca-3f2b8c1a-9d4","created_at":"2024-01-15T10:30:00Z","runtime":"Docker"}"#,
        )
        .unwrap();
        let uuid = "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c";
        assert_eq!(orphan_reason(Some(uuid), Some(root)), None);
        let other = "3f2b8c1a-9d4e-4f6a-8b7c-000000000000";
        assert!(orphan_reason(Some(other), Some(root))
            .unwrap()
            .contains("mismatch"));
    }
}
