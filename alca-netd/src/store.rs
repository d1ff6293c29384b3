//! Saved specs under `/var/lib/alcatraz/projects/<id>.json`, each with its owner uid, so rules
//! survive daemon restarts and nftables reloads, and bridge claims under `claims/<bridge>.json`. Writes are atomic (temp + fsync + rename) and
//! every change runs under one exclusive file lock shared by the daemon and `--reapply`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::claims::Claim;
use alca_contract::net_spec::{validate_project_id, NetSpec};

pub use alca_contract::shipped::STATE_DIR;

/// One project's saved request and who made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    pub owner_uid: u32,
    pub spec: NetSpec,
}

/// Why the saved state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid saved spec ({reason}); delete the file or re-run `alca up`")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot lock {path}: {reason}")]
    Lock { path: PathBuf, reason: String },
}

/// Held while the state and the firewall are changed; released on drop.
pub struct StateLock(#[allow(dead_code)] Flock<File>);

/// The directory of saved specs.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// A store rooted at `root` (`/var/lib/alcatraz` in production).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    /// The system store at [`STATE_DIR`].
    pub fn system() -> Self {
        Store::new(STATE_DIR)
    }

    fn projects(&self) -> PathBuf {
        self.root.join("projects")
    }

    fn file(&self, project: &str) -> PathBuf {
        self.projects().join(format!("{project}.json"))
    }

    fn ensure_dirs(&self) -> Result<(), StoreError> {
        for dir in [self.projects(), self.claims()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io(&dir))?;
        }
        Ok(())
    }

    /// Takes the exclusive state lock (blocks until the other holder is done).
    pub fn lock(&self) -> Result<StateLock, StoreError> {
        self.ensure_dirs()?;
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(StateLock)
            .map_err(|(_, errno)| StoreError::Lock {
                path,
                reason: errno.to_string(),
            })
    }

    /// The saved spec of a project, if any.
    pub fn load(&self, project: &str) -> Result<Option<Saved>, StoreError> {
        let path = self.file(project);
        match fs::read(&path) {
            Ok(bytes) => parse(&path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Atomically replaces the project's saved spec: a reader sees the old file or the new one.
    pub fn save(&self, saved: &Saved) -> Result<(), StoreError> {
        self.write_json(&self.projects(), &saved.spec.project, saved)
    }

    /// Writes `<dir>/<name>.json` atomically (temp + fsync + rename + fsync of the directory).
    fn write_json(&self, dir: &Path, name: &str, value: &impl Serialize) -> Result<(), StoreError> {
        self.ensure_dirs()?;
        let path = dir.join(format!("{name}.json"));
        let tmp = dir.join(format!(".{name}.json.tmp"));
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(dir)
    }

    /// Forgets a project; forgetting an unknown project is not an error.
    pub fn delete(&self, project: &str) -> Result<(), StoreError> {
        remove_json(&self.projects(), project)
    }

    fn claims(&self) -> PathBuf {
        self.root.join("claims")
    }

    /// The claim on a bridge name, if any (see [`crate::claims`]).
    pub fn load_claim(&self, bridge: &str) -> Result<Option<Claim>, StoreError> {
        let path = self.claims().join(format!("{bridge}.json"));
        match fs::read(&path) {
            Ok(bytes) => parse_claim(&path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Atomically records a claim.
    pub fn save_claim(&self, claim: &Claim) -> Result<(), StoreError> {
        self.write_json(&self.claims(), &claim.bridge, claim)
    }

    /// Drops the claim on a bridge name; an absent claim is not an error.
    pub fn delete_claim(&self, bridge: &str) -> Result<(), StoreError> {
        remove_json(&self.claims(), bridge)
    }

    /// Every readable claim, plus the files that could not be read.
    pub fn all_claims(&self) -> Result<(Vec<Claim>, Vec<StoreError>), StoreError> {
        let (mut claims, mut problems) = (vec![], vec![]);
        for bridge in json_names(&self.claims())? {
            match self.load_claim(&bridge) {
                Ok(Some(c)) => claims.push(c),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        Ok((claims, problems))
    }

    /// Every saved spec, plus the files that could not be read (reported, never fatal).
    pub fn all(&self) -> Result<(Vec<Saved>, Vec<StoreError>), StoreError> {
        let (mut saved, mut problems) = (vec![], vec![]);
        for project in self.project_ids()? {
            match self.load(&project) {
                Ok(Some(s)) => saved.push(s),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        saved.sort_by(|a, b| a.spec.project.cmp(&b.spec.project));
        Ok((saved, problems))
    }

    /// The ids of the saved projects, from the file names alone (nothing is read).
    pub fn project_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(json_names(&self.projects())?
            .into_iter()
            .filter(|p| validate_project_id(p).is_ok())
            .collect())
    }
}

/// The names of the `*.json` files of `dir` without the suffix (none when `dir` is absent).
fn json_names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io(dir)(e)),
    };
    Ok(entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            Some(name.strip_suffix(".json")?.to_string())
        })
        .filter(|name| !name.starts_with('.'))
        .collect())
}

fn remove_json(dir: &Path, name: &str) -> Result<(), StoreError> {
    let path = dir.join(format!("{name}.json"));
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// A claim file is checked like a saved spec: valid names, and its file name is its bridge.
fn parse_claim(path: &Path, bytes: &[u8]) -> Result<Claim, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let claim: Claim = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    claim.validate().map_err(corrupt)?;
    let expected = format!("{}.json", claim.bridge);
    if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
        return Err(corrupt(format!(
            "file name does not match bridge {}",
            claim.bridge
        )));
    }
    Ok(claim)
}

/// A saved file is trusted only as far as the request it came from: decode and re-validate it,
/// and its name must match the project inside.
fn parse(path: &Path, bytes: &[u8]) -> Result<Saved, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let saved: Saved = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    saved.spec.validate().map_err(|e| corrupt(e.to_string()))?;
    let expected = format!("{}.json", saved.spec.project);
    if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
        return Err(corrupt(format!(
            "file name does not match project {}",
            saved.spec.project
        )));
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn saved(project: &str, owner_uid: u32) -> Saved {
        Saved {
            owner_uid,
            spec: NetSpec::isolated(project),
        }
    }

    #[test]
    fn saves_loads_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let _lock = store.lock().unwrap();
        assert_eq!(store.load("deadbeef").unwrap(), None);
        store.save(&saved("deadbeef", 1000)).unwrap();
        store.save(&saved("0123456789", 0)).unwrap();
        assert_eq!(
            store.load("deadbeef").unwrap(),
            Some(saved("deadbeef", 1000))
        );
        let (all, problems) = store.all().unwrap();
        assert_eq!(all.len(), 2);
        assert!(problems.is_empty());
        store.delete("deadbeef").unwrap();
        store.delete("deadbeef").unwrap();
        assert_eq!(store.load("deadbeef").unwrap(), None);
    }

    #[test]
    fn reports_corrupt_and_mismatched_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save(&saved("deadbeef", 1000)).unwrap();
        let projects = dir.path().join("projects");
        fs::write(projects.join("aaaaaaaa.json"), b"{not json").unwrap();
        fs::copy(
            projects.join("deadbeef.json"),
            projects.join("bbbbbbbb.json"),
        )
        .unwrap();
        let (all, problems) = store.all().unwrap();
        assert_eq!(all, vec![saved("deadbeef", 1000)]);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].to_string().contains("not a valid saved spec"));
    }
}
