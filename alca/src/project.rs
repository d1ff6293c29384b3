//! Project discovery (nearest `.alca.toml` upwards) and the per-project `.alca/state.json`.
//!
//! The state file gives a project its stable identity (a random id that names the container,
//! its network and its rules) and remembers what the last `up` applied, for drift detection.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::CONFIG_FILE;

/// Directory (inside the project root) that holds alca's per-project files.
pub const STATE_DIR: &str = ".alca";
/// File name of the state file inside [`STATE_DIR`].
pub const STATE_FILE: &str = "state.json";
/// The Go original's state file, kept beside ours after the migration.
pub const GO_STATE_BACKUP: &str = "state.go.json";
/// Number of hex characters in a project id.
pub const ID_LEN: usize = 32;
/// Number of id characters used in the container name.
pub const CONTAINER_ID_CHARS: usize = 12;

/// Errors of project discovery and state handling; messages name the path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no {CONFIG_FILE} found in {start} or any parent directory; run `alca init` first")]
    NotFound { start: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: the state file is damaged ({reason}); delete it to start fresh (the project gets a new id)")]
    Corrupt { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ProjectError + '_ {
    move |source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Returns the nearest directory at or above `start` that contains `.alca.toml`.
pub fn find_root(start: &Path) -> Result<PathBuf, ProjectError> {
    let start = absolute(start).map_err(io_err(start))?;
    start
        .ancestors()
        .find(|dir| dir.join(CONFIG_FILE).is_file())
        .map(Path::to_path_buf)
        .ok_or(ProjectError::NotFound { start })
}

/// [`find_root`] from the current working directory.
pub fn find_root_from_cwd() -> Result<PathBuf, ProjectError> {
    let cwd = std::env::current_dir().map_err(io_err(Path::new(".")))?;
    find_root(&cwd)
}

fn absolute(p: &Path) -> io::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// `alca-<first 12 id chars>`: the container name of a project.
pub fn container_name(id: &str) -> String {
    let short: String = id.chars().take(CONTAINER_ID_CHARS).collect();
    format!("alca-{short}")
}

/// The runtime network / bridge interface name of a project (shared with `alca-netd`).
pub fn bridge_name(id: &str) -> String {
    alca_contract::net_spec::bridge_name(id)
}

/// Path of the state file of the project at `root`.
pub fn state_path(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join(STATE_FILE)
}

/// Persistent per-project state in `.alca/state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// 32 lowercase hex characters, random, never changes for a project.
    pub id: String,
    /// Seconds since the Unix epoch when the state was created.
    pub created_at: u64,
    /// Runtime used at the last `up` (`docker` or `podman`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Container name used at the last `up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// Absolute project path at the last `up` (to detect a moved project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_path: Option<PathBuf>,
    /// Snapshot of the effective config applied at the last `up` (for drift detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

impl State {
    /// A fresh state with a new random id.
    pub fn new() -> Result<State, ProjectError> {
        Ok(State {
            id: random_id()?,
            created_at: now_secs(),
            runtime: None,
            container_name: None,
            project_path: None,
            config: None,
        })
    }

    /// The container name for this project: the recorded one when it is a name of this
    /// project (a state migrated from the Go original keeps its `alca-<UUID prefix>` name),
    /// else `alca-<first 12 id chars>`.
    pub fn container_name(&self) -> String {
        match &self.container_name {
            Some(name) if crate::go_state::names_project(name, &self.id) => name.clone(),
            _ => container_name(&self.id),
        }
    }

    /// Reads `<root>/.alca/state.json`; `Ok(None)` when it does not exist.
    pub fn load(root: &Path) -> Result<Option<State>, ProjectError> {
        let path = state_path(root);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let corrupt = |reason: String| ProjectError::Corrupt {
            path: path.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if crate::go_state::is_go_state(&value) {
            let state = crate::go_state::from_go(value).map_err(corrupt)?;
            state.migrate_from_go(root, &text)?;
            return Ok(Some(state));
        }
        let state: State = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
        alca_contract::net_spec::validate_project_id(&state.id).map_err(|e| {
            ProjectError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(Some(state))
    }

    /// Replaces the Go original's state file by this one (atomically), keeping the Go file's
    /// bytes beside it as [`GO_STATE_BACKUP`] for a user who goes back.
    fn migrate_from_go(&self, root: &Path, go_text: &str) -> Result<(), ProjectError> {
        let dir = root.join(STATE_DIR);
        let backup = dir.join(GO_STATE_BACKUP);
        atomic_write(&dir, &backup, go_text.as_bytes())?;
        self.save(root)?;
        eprintln!(
            "alca: migrated {} from the Go original's format (project id kept; its old file \
             is {})",
            state_path(root).display(),
            backup.display()
        );
        Ok(())
    }

    /// Loads the state, creating and saving a new one when none exists.
    pub fn load_or_create(root: &Path) -> Result<State, ProjectError> {
        if let Some(state) = State::load(root)? {
            return Ok(state);
        }
        let state = State::new()?;
        state.save(root)?;
        Ok(state)
    }

    /// Writes the state atomically: temp file in the same directory, fsync, rename.
    pub fn save(&self, root: &Path) -> Result<(), ProjectError> {
        let path = state_path(root);
        let dir = root.join(STATE_DIR);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| ProjectError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        atomic_write(&dir, &path, &json)
    }
}

fn atomic_write(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), ProjectError> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        // Make the rename itself durable; failure here is not fatal.
        let _ = d.sync_all();
    }
    Ok(())
}

/// 32 random lowercase hex characters from `/dev/urandom`.
pub fn random_id() -> Result<String, ProjectError> {
    let dev = Path::new("/dev/urandom");
    let mut bytes = [0u8; ID_LEN / 2];
    fs::File::open(dev)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err(dev))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lowercase_hex_and_differ() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn container_name_uses_twelve_chars() {
        assert_eq!(
            container_name("0123456789abcdef0123456789abcdef"),
            "alca-0123456789ab"
        );
    }

    #[test]
    fn finds_root_from_a_subdirectory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CONFIG_FILE), "image = \"x\"\n").unwrap();
        let sub = dir.path().join("a/b/c");
        fs::create_dir_all(&sub).unwrap();
        assert_eq!(find_root(&sub).unwrap(), dir.path());
        let nested = dir.path().join("a");
        fs::write(nested.join(CONFIG_FILE), "image = \"y\"\n").unwrap();
        assert_eq!(find_root(&sub).unwrap(), nested);
    }

    #[test]
    fn missing_config_says_run_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_root(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no .alca.toml found"), "{err}");
        assert!(err.contains("alca init"), "{err}");
    }

    #[test]
    fn state_round_trips_and_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), None);
        let mut s = State::load_or_create(dir.path()).unwrap();
        assert_eq!(State::load_or_create(dir.path()).unwrap().id, s.id);
        s.runtime = Some("docker".into());
        s.config = Some(serde_json::json!({"image": "alpine"}));
        s.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), Some(s));
    }

    /// A save replaces the file by rename (a reader never sees a half-written file: a hard link
    /// to the old file keeps the old content) and leaves no temporary file behind.
    #[test]
    fn state_is_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::load_or_create(dir.path()).unwrap();
        let old_text = fs::read_to_string(state_path(dir.path())).unwrap();
        let old_link = dir.path().join(STATE_DIR).join("old-link");
        fs::hard_link(state_path(dir.path()), &old_link).unwrap();
        s.runtime = Some("podman".into());
        s.save(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&old_link).unwrap(), old_text);
        assert!(fs::read_to_string(state_path(dir.path()))
            .unwrap()
            .contains("podman"));
        let mut names: Vec<String> = fs::read_dir(dir.path().join(STATE_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["old-link", "state.json"]);
    }

    /// The Go original's state (internal/state/state.go: `project_id`, `container_name`
    /// "alca-" + projectID[:12], RFC 3339 `created_at`, runtime "Docker") is read, keeps the
    /// project's identity and is migrated in place; the next load reads our format.
    #[test]
    fn go_state_is_migrated_atomically() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        let go = r#"{
  "project_id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c",
  "container_name": "alca-3f2b8c1a-9d4",
  "created_at": "2024-01-15T10:30:00Z",
  "runtime": "Docker"
}"#;
        fs::write(state_path(dir.path()), go).unwrap();
        let s = State::load(dir.path()).unwrap().unwrap();
        assert_eq!(s.id, "3f2b8c1a9d4e4f6a8b7c1d2e3f4a5b6c");
        assert_eq!(s.container_name(), "alca-3f2b8c1a-9d4");
        let backup = dir.path().join(STATE_DIR).join(GO_STATE_BACKUP);
        assert_eq!(fs::read_to_string(backup).unwrap(), go);
        let text = fs::read_to_string(state_path(dir.path())).unwrap();
        assert!(
            text.contains("\"id\": \"3f2b8c1a9d4e4f6a8b7c1d2e3f4a5b6c\""),
            "{text}"
        );
        assert_eq!(State::load(dir.path()).unwrap().unwrap(), s);
        assert_eq!(State::load_or_create(dir.path()).unwrap().id, s.id);
    }

    #[test]
    fn corrupt_state_names_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(STATE_DIR)).unwrap();
        fs::write(state_path(dir.path()), "{not json").unwrap();
        let err = State::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
        assert!(err.contains("delete it"), "{err}");
        fs::write(
            state_path(dir.path()),
            r#"{"id":"../../etc","created_at":1}"#,
        )
        .unwrap();
        let err = State::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
