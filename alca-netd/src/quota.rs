//! What one local user may take of the shared daemon: a project quota per user and a cap for
//! the host (each isolated project holds kernel hook slots every other user needs), a call rate
//! per user, and a bound on calls in flight (per user and in all). Root is never limited.
//!
//! Defaults are constants; an admin may change them in [`LIMITS_FILE`] (JSON, root-owned, read
//! at start). A file that cannot be read or is not root's is ignored with an error in the log,
//! and the defaults hold.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::errors::NetdError;

/// Where an admin overrides the defaults.
pub const LIMITS_FILE: &str = "/etc/alcatraz/netd-limits.json";

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Projects (claimed bridges, with or without rules) one user may hold. Docker's default
    /// address pools give a host about 30 bridge networks, so 64 is above any real use.
    pub projects_per_user: usize,
    /// Projects on the host. The kernel allows 1024 base chains per hook point and each
    /// isolated project takes one (two with a proxy); 900 leaves room for everything else.
    pub projects: usize,
    /// Calls a user may make per second, on average.
    pub calls_per_second: u32,
    /// Calls a user may make at once after a quiet time (the rate limiter's bucket).
    pub burst: u32,
    /// Calls of one user being served at the same time.
    pub in_flight_per_user: usize,
    /// Calls being served at the same time, all users together.
    pub in_flight: usize,
    /// `AllowResolved` calls (one per DNS answer of a project's resolver) a user may make per
    /// second on average, and at once after a quiet time: a bucket of their own, so that
    /// browsing-like bursts of lookups neither starve nor are starved by the other calls.
    pub resolved_per_second: u32,
    pub resolved_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            projects_per_user: 64,
            projects: 900,
            calls_per_second: 20,
            burst: 40,
            in_flight_per_user: 4,
            in_flight: 32,
            resolved_per_second: 500,
            resolved_burst: 1000,
        }
    }
}

impl Limits {
    /// The limits of the `AllowResolved` gate: its own rate and bucket, and room for one
    /// update in flight per CPU-bound worker of a few resolvers.
    pub fn for_resolved(&self) -> Limits {
        Limits {
            calls_per_second: self.resolved_per_second,
            burst: self.resolved_burst,
            in_flight_per_user: self.in_flight_per_user * 4,
            ..*self
        }
    }
}

impl Limits {
    /// The limits from `path` if it exists (else the defaults), and the reason it was ignored.
    pub fn load(path: &Path) -> (Limits, Option<String>) {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Limits::default(), None),
            Err(e) => return ignored(path, e),
        };
        match std::fs::metadata(path) {
            Ok(m) if m.uid() == 0 && m.mode() & 0o022 == 0 => {}
            Ok(_) => return ignored(path, "it must be owned by root and writable only by root"),
            Err(e) => return ignored(path, e),
        }
        match serde_json::from_slice(&text) {
            Ok(limits) => (limits, None),
            Err(e) => ignored(path, e),
        }
    }

    /// Refuses one more project for `uid`, who holds `owned` of the host's `total`.
    pub fn check_new_project(&self, uid: u32, owned: usize, total: usize) -> Result<(), NetdError> {
        if uid == 0 {
            return Ok(());
        }
        if owned >= self.projects_per_user {
            return Err(NetdError::LimitReached(format!(
                "uid {uid} already holds {owned} projects, the limit per user \
                 (projects_per_user = {} in {LIMITS_FILE}); remove unused ones with \
                 `alca down` in their directories (`alca network-helper status` lists them)",
                self.projects_per_user
            )));
        }
        if total >= self.projects {
            return Err(NetdError::LimitReached(format!(
                "this host already holds {total} projects, the limit for all users \
                 (projects = {} in {LIMITS_FILE}); remove unused ones with `alca down`, or \
                 ask an admin",
                self.projects
            )));
        }
        Ok(())
    }
}

fn ignored(path: &Path, why: impl std::fmt::Display) -> (Limits, Option<String>) {
    let reason = format!(
        "{}: ignored ({why}); the default limits hold",
        path.display()
    );
    (Limits::default(), Some(reason))
}

/// A token bucket: `burst` calls at once, refilled at `calls_per_second`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-user and global admission of calls; see [`Gate::admit`].
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    buckets: HashMap<u32, Bucket>,
    in_flight: HashMap<u32, usize>,
    total: usize,
}

/// Buckets kept before the full (idle) ones are forgotten.
const MAX_BUCKETS: usize = 1024;

/// One admitted call; leaves the in-flight counts when dropped.
#[derive(Debug)]
pub struct Permit {
    gate: Option<Arc<Gate>>,
    uid: u32,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(gate) = &self.gate else { return };
        let mut state = gate.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(n) = state.in_flight.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.in_flight.remove(&self.uid);
            }
        }
    }
}

impl Gate {
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            state: Mutex::new(GateState::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets one call of `uid` in, or refuses it at once (never queues) when the user is over
    /// the rate or has too many calls running, or the daemon is at its bound of calls.
    pub fn admit(self: &Arc<Self>, uid: u32) -> Result<Permit, NetdError> {
        self.admit_at(uid, Instant::now())
    }

    fn admit_at(self: &Arc<Self>, uid: u32, now: Instant) -> Result<Permit, NetdError> {
        if uid == 0 {
            return Ok(Permit { gate: None, uid });
        }
        let l = self.limits;
        let mut state = self.lock();
        let running = state.in_flight.get(&uid).copied().unwrap_or(0);
        if running >= l.in_flight_per_user {
            return Err(NetdError::LimitReached(format!(
                "uid {uid} already has {running} calls running, the limit per user \
                 (in_flight_per_user = {} in {LIMITS_FILE}); wait for them to finish",
                l.in_flight_per_user
            )));
        }
        if state.total >= l.in_flight {
            return Err(NetdError::LimitReached(format!(
                "the daemon is serving {} calls, its limit (in_flight = {} in {LIMITS_FILE}); \
                 try again in a moment",
                state.total, l.in_flight
            )));
        }
        if state.buckets.len() >= MAX_BUCKETS {
            let full = f64::from(l.burst);
            state.buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * f64::from(l.calls_per_second)
                    < full
            });
        }
        let bucket = state.buckets.entry(uid).or_insert(Bucket {
            tokens: f64::from(l.burst),
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * f64::from(l.calls_per_second);
        bucket.tokens = (bucket.tokens + refill).min(f64::from(l.burst));
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(NetdError::LimitReached(format!(
                "uid {uid} made more than {} calls per second (calls_per_second and burst = {} \
                 in {LIMITS_FILE}); slow down and try again",
                l.calls_per_second, l.burst
            )));
        }
        bucket.tokens -= 1.0;
        *state.in_flight.entry(uid).or_insert(0) += 1;
        state.total += 1;
        Ok(Permit {
            gate: Some(Arc::clone(self)),
            uid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> Limits {
        Limits {
            projects_per_user: 2,
            projects: 3,
            calls_per_second: 10,
            burst: 3,
            in_flight_per_user: 2,
            in_flight: 3,
            resolved_per_second: 100,
            resolved_burst: 50,
        }
    }

    #[test]
    fn project_quota_names_the_limit_and_the_fix() {
        let l = limits();
        assert!(l.check_new_project(1001, 1, 1).is_ok());
        let err = l.check_new_project(1001, 2, 2).unwrap_err().message();
        assert!(
            err.contains("projects_per_user = 2") && err.contains("alca down"),
            "{err}"
        );
        let err = l.check_new_project(1002, 0, 3).unwrap_err().message();
        assert!(
            err.contains("projects = 3") && err.contains(LIMITS_FILE),
            "{err}"
        );
        assert!(
            l.check_new_project(0, 99, 99).is_ok(),
            "root is not limited"
        );
    }

    #[test]
    fn calls_are_rate_limited_per_user_and_refill() {
        let gate = Gate::new(Limits {
            in_flight_per_user: 100,
            in_flight: 100,
            ..limits()
        });
        let t0 = Instant::now();
        let held: Vec<_> = (0..3).map(|_| gate.admit_at(1001, t0).unwrap()).collect();
        let err = gate.admit_at(1001, t0).unwrap_err().message();
        assert!(err.contains("calls per second"), "{err}");
        assert!(
            gate.admit_at(1002, t0).is_ok(),
            "another user has a bucket of its own"
        );
        assert!(gate.admit_at(1001, t0 + Duration::from_millis(150)).is_ok());
        drop(held);
        for _ in 0..50 {
            gate.admit_at(0, t0).unwrap();
        }
    }

    #[test]
    fn calls_in_flight_are_bounded_per_user_and_in_all() {
        let gate = Gate::new(Limits {
            burst: 100,
            ..limits()
        });
        let t = Instant::now();
        let a1 = gate.admit_at(1001, t).unwrap();
        let _a2 = gate.admit_at(1001, t).unwrap();
        let err = gate.admit_at(1001, t).unwrap_err().message();
        assert!(err.contains("in_flight_per_user = 2"), "{err}");
        let _b1 = gate.admit_at(1002, t).unwrap();
        let err = gate.admit_at(1003, t).unwrap_err().message();
        assert!(err.contains("in_flight = 3"), "{err}");
        drop(a1);
        assert!(
            gate.admit_at(1003, t).is_ok(),
            "a finished call frees its place"
        );
    }

    #[test]
    fn the_limits_file_is_read_only_when_root_owns_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limits.json");
        assert_eq!(Limits::load(&path), (Limits::default(), None));
        std::fs::write(&path, r#"{"projects_per_user": 500}"#).unwrap();
        let (l, problem) = Limits::load(&path);
        if nix::unistd::geteuid().is_root() {
            assert_eq!(problem, None);
            assert_eq!(l.projects_per_user, 500);
            assert_eq!(l.projects, Limits::default().projects);
            std::fs::write(&path, r#"{"nope": 1}"#).unwrap();
            let (l, problem) = Limits::load(&path);
            assert_eq!(l, Limits::default());
            assert!(problem.unwrap().contains("unknown field"));
        } else {
            assert_eq!(l, Limits::default());
            assert!(problem.unwrap().contains("owned by root"));
        }
    }
}
