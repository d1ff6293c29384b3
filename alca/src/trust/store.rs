//! Approval records: one JSON file per project under `$XDG_STATE_HOME/alcatraz/trust`, outside
//! every workspace, keyed by the project's canonical path (the project id lives in the
//! workspace, which the agent can write; the path it cannot change from inside).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{digest, hex, redacted};
use crate::config::Config;

/// What is stored per project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub project_path: PathBuf,
    pub digest: String,
    /// The approved config, redacted (no environment values).
    pub config: Config,
    /// Digests of the workspace files the approved hooks name (see `hook_files`).
    #[serde(default)]
    pub hook_files: BTreeMap<String, String>,
}

/// Where trust records live: `$XDG_STATE_HOME/alcatraz/trust` (default `~/.local/state/…`).
pub fn store_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("alcatraz").join("trust"))
}

/// The file of a project in one of the per-user state directories (trust records, the list
/// of managed preset files): named by a hash of the project's canonical path.
pub(crate) fn record_path(dir: &Path, project_root: &Path) -> PathBuf {
    let canonical = project_root
        .canonicalize()
        .unwrap_or_else(|_| project_root.to_path_buf());
    let hash = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    dir.join(format!("{}.json", hex(&hash[..16])))
}

/// Reads the approved config of a project, if any. A corrupt record counts as none (so the
/// user is asked again), never as approval.
pub fn load_approved(dir: &Path, project_root: &Path) -> Option<Config> {
    load_record(dir, project_root).map(|r| r.config)
}

/// The whole approved record of a project (see [`load_approved`]).
pub fn load_record(dir: &Path, project_root: &Path) -> Option<Record> {
    let text = fs::read_to_string(record_path(dir, project_root)).ok()?;
    let record: Record = serde_json::from_str(&text).ok()?;
    (record.digest == digest(&record.config)).then_some(record)
}

/// Records `config` as approved for the project (atomic write, private to the user).
pub fn approve(dir: &Path, project_root: &Path, config: &Config) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let record = Record {
        project_path: project_root.to_path_buf(),
        digest: digest(config),
        config: redacted(config),
        hook_files: super::hook_files::named_files(project_root, config),
    };
    let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
    write_atomic(dir, &record_path(dir, project_root), &json)
}

/// Writes `path` (inside `dir`) atomically: a temporary file in `dir`, synced, renamed over
/// it (a symlink at `path` is replaced, never followed).
pub(crate) fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Removes the records of projects whose directory no longer exists; returns their paths.
pub fn prune(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut gone = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(gone),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<Record>(&text) else {
            continue;
        };
        if !record.project_path.exists() {
            fs::remove_file(&path)?;
            gone.push(record.project_path);
        }
    }
    Ok(gone)
}

pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::widen::tests::base;
    use crate::trust::{assess, Verdict};

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

    #[test]
    fn records_hold_no_environment_values() {
        let dir = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let mut c = base();
        c.envs.insert(
            "TOKEN".into(),
            crate::config::EnvVar {
                value: "s3cr3t-value".into(),
                override_on_enter: false,
                template: "${TOKEN}".into(),
            },
        );
        approve(dir.path(), project.path(), &c).unwrap();
        let file = fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap();
        let text = fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("${TOKEN}"));
        let approved = load_approved(dir.path(), project.path()).unwrap();
        assert_eq!(assess(Some(&approved), &c), Verdict::Trusted);
    }

    #[test]
    fn tampered_records_count_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        approve(dir.path(), project.path(), &base()).unwrap();
        let file = fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap();
        let text = fs::read_to_string(file.path()).unwrap();
        fs::write(file.path(), text.replace("alpine:latest", "evil:latest")).unwrap();
        assert!(load_approved(dir.path(), project.path()).is_none());
    }

    #[test]
    fn prune_drops_only_vanished_projects() {
        let dir = tempfile::tempdir().unwrap();
        let kept = tempfile::tempdir().unwrap();
        let gone = tempfile::tempdir().unwrap();
        approve(dir.path(), kept.path(), &base()).unwrap();
        approve(dir.path(), gone.path(), &base()).unwrap();
        let gone_path = gone.path().to_path_buf();
        drop(gone);
        assert_eq!(prune(dir.path()).unwrap(), vec![gone_path]);
        assert!(load_approved(dir.path(), kept.path()).is_some());
    }
}
