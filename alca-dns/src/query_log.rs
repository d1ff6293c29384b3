//! The resolver's per-project log of what it did not answer: refused names (not in
//! `internet-access`) and allowed names it failed closed on. One JSON object a line, appended;
//! `alca network log` reads it back. The file is rotated once it passes [`MAX_LOG_BYTES`], so a
//! container that floods queries cannot fill the disk.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Name of the log in the project's resolver state directory.
pub const LOG_FILE: &str = "dns-queries.jsonl";
/// Size past which the log is moved to `<name>.1` and started again.
pub const MAX_LOG_BYTES: u64 = 1 << 20;

/// What happened to a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// No `internet-access` entry allows the name: REFUSED.
    Refused,
    /// Allowed, but the upstream or the daemon failed: SERVFAIL.
    Failed,
}

/// One logged query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub time: u64,
    pub outcome: Outcome,
    /// The queried name, lowercase, without the final dot.
    pub name: String,
    /// The record type asked for (`A`, `AAAA`, …).
    pub qtype: String,
    /// Why it failed (for [`Outcome::Failed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Event {
    pub fn now(outcome: Outcome, name: &str, qtype: &str, reason: Option<String>) -> Event {
        Event {
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            outcome,
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            qtype: qtype.to_string(),
            reason,
        }
    }
}

/// Appends events to the log; a write error is reported through `tracing` and otherwise
/// ignored (the answer to the container does not depend on the log).
#[derive(Debug)]
pub struct QueryLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl QueryLog {
    pub fn new(path: PathBuf) -> QueryLog {
        QueryLog {
            path,
            file: Mutex::new(None),
        }
    }

    pub fn record(&self, event: &Event) {
        let Ok(mut line) = serde_json::to_vec(event) else {
            return;
        };
        line.push(b'\n');
        let Ok(mut slot) = self.file.lock() else {
            return;
        };
        if let Err(e) = self.append(&mut slot, &line) {
            tracing::warn!("cannot write {}: {e}", self.path.display());
            *slot = None;
        }
    }

    fn append(&self, slot: &mut Option<File>, line: &[u8]) -> std::io::Result<()> {
        let too_big = std::fs::metadata(&self.path).is_ok_and(|m| m.len() > MAX_LOG_BYTES);
        if too_big {
            *slot = None;
            std::fs::rename(&self.path, rotated(&self.path))?;
        }
        if slot.is_none() {
            *slot = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        match slot {
            Some(f) => f.write_all(line),
            None => Ok(()),
        }
    }
}

/// Where the log is moved when it is rotated (`<name>.1`).
pub fn rotated(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// The events of a log's text (the JSON lines a [`QueryLog`] wrote); lines that do not parse
/// are skipped.
pub fn parse_events(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Event>(line).ok())
        .collect()
}

/// Every event in the log (the rotated part first); lines that do not parse are skipped. A
/// missing log is empty.
pub fn read_events(path: &Path) -> std::io::Result<Vec<Event>> {
    let mut out = Vec::new();
    for p in [rotated(path), path.to_path_buf()] {
        match std::fs::read_to_string(&p) {
            Ok(text) => out.extend(parse_events(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_the_log_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        assert!(read_events(&path).unwrap().is_empty());
        let log = QueryLog::new(path.clone());
        log.record(&Event::now(Outcome::Refused, "Blocked.Test.", "A", None));
        log.record(&Event::now(
            Outcome::Failed,
            "allowed.test",
            "AAAA",
            Some("upstream timed out".into()),
        ));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        let got = read_events(&path).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "blocked.test");
        assert_eq!(got[0].outcome, Outcome::Refused);
        assert_eq!(got[1].reason.as_deref(), Some("upstream timed out"));

        std::fs::write(&path, vec![b' '; MAX_LOG_BYTES as usize + 1]).unwrap();
        let log = QueryLog::new(path.clone());
        log.record(&Event::now(Outcome::Refused, "a.test", "A", None));
        log.record(&Event::now(Outcome::Refused, "b.test", "A", None));
        assert!(rotated(&path).exists());
        let names: Vec<String> = read_events(&path)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["a.test", "b.test"]);
        assert!(std::fs::metadata(&path).unwrap().len() < 200);
    }
}
