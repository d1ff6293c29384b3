//! [`NetworkGuard`] over the `alcatraz-network-helper` container (macOS, or Linux when installed
//! with `--container`): each call is `docker exec -i alcatraz-network-helper alca-netd request`
//! with one typed JSON request on stdin and one JSON reply on stdout. With an
//! `internet-access` list the project's resolver runs inside the helper, next to its daemon
//! (the project's gateway is in the runtime's VM): started, found and stopped by requests.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use alca_contract::errors::NetdError;
use alca_contract::helper_protocol::{HelperReply, HelperRequest, CONTAINER_NAME};
use alca_contract::internet_status::{GrantInfo, InternetStatus};
use alca_contract::probe::{Denied, LiveCheck, Outcome, Probe};
use alca_contract::request::encode_spec;
use alca_contract::status::ProjectStatus;
use alca_contract::NetSpec;
use alca_dns::query_log::Event;

use super::resolver_process::ResolverSpec;

use super::netd_guard::explain;
use super::NetworkGuard;

/// The container runtime CLI the helper runs under.
pub const HELPER_RUNTIME: &str = "docker";

/// Talks to the helper container through the runtime CLI.
pub struct HelperGuard {
    uid: u32,
}

/// Whether the helper container exists and runs (false when docker is absent or refuses us).
pub fn helper_running() -> bool {
    container_state().as_deref() == Some("true")
}

/// `Some("true"|"false")` when the helper container exists, `None` when it does not (or the
/// runtime cannot be asked).
pub fn container_state() -> Option<String> {
    let out = Command::new(HELPER_RUNTIME)
        .args(["container", "inspect", "--format", "{{.State.Running}}"])
        .arg(CONTAINER_NAME)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Default for HelperGuard {
    fn default() -> Self {
        HelperGuard::new()
    }
}

impl HelperGuard {
    /// A guard acting for the current user.
    pub fn new() -> Self {
        HelperGuard {
            uid: nix::unistd::getuid().as_raw(),
        }
    }

    /// Sends one request and decodes the reply (errors come back as the D-Bus ones would).
    pub fn call(&self, request: &HelperRequest) -> Result<HelperReply, NetdError> {
        let unreachable = |what: String| {
            NetdError::Internal(format!(
                "cannot reach the helper container {CONTAINER_NAME}: {what}"
            ))
        };
        let body = serde_json::to_vec(request).map_err(|e| unreachable(e.to_string()))?;
        let mut child = Command::new(HELPER_RUNTIME)
            .args(["exec", "-i", CONTAINER_NAME, "alca-netd", "request"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| unreachable(format!("cannot run {HELPER_RUNTIME}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(&body)
                .map_err(|e| unreachable(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| unreachable(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str::<HelperReply>(stdout.trim()) {
            Ok(reply) => reply.into_result(),
            Err(_) => Err(unreachable(format!(
                "{} {}",
                String::from_utf8_lossy(&out.stderr).trim(),
                stdout.trim()
            ))),
        }
    }

    /// One project's state as the helper sees it.
    pub fn status(&self, project: &str) -> Result<ProjectStatus, NetdError> {
        match self.call(&HelperRequest::Status {
            uid: self.uid,
            project: project.into(),
        })? {
            HelperReply::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// The version of `alca-netd` inside the helper (also a liveness check).
    pub fn version(&self) -> Result<String, NetdError> {
        match self.call(&HelperRequest::Version)? {
            HelperReply::Version(v) => Ok(v),
            other => Err(unexpected(&other)),
        }
    }

    /// Uninstall: every `alca-` table and saved spec goes; returns the tables deleted.
    pub fn purge(&self) -> Result<Vec<String>, NetdError> {
        match self.call(&HelperRequest::Purge)? {
            HelperReply::Purged(tables) => Ok(tables),
            other => Err(unexpected(&other)),
        }
    }

    /// One request whose reply `pick` takes apart; any other reply is an error.
    fn ask<T>(
        &self,
        request: HelperRequest,
        pick: impl FnOnce(HelperReply) -> Result<T, HelperReply>,
    ) -> anyhow::Result<T> {
        pick(self.call(&request).map_err(explain)?).map_err(|other| explain(unexpected(&other)))
    }

    fn done(&self, request: HelperRequest) -> Result<(), NetdError> {
        match self.call(&request)? {
            HelperReply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(reply: &HelperReply) -> NetdError {
    NetdError::Internal(format!("the helper gave an unexpected reply: {reply:?}"))
}

impl NetworkGuard for HelperGuard {
    fn claim(&self, project: &str) -> anyhow::Result<bool> {
        self.done(HelperRequest::Claim {
            uid: self.uid,
            project: project.into(),
        })
        .map_err(explain)?;
        Ok(true)
    }

    fn apply(&self, spec: &NetSpec) -> anyhow::Result<()> {
        self.done(HelperRequest::Apply {
            uid: self.uid,
            spec: encode_spec(spec),
        })
        .map_err(explain)
    }

    fn remove(&self, project: &str) -> anyhow::Result<()> {
        self.done(HelperRequest::Remove {
            uid: self.uid,
            project: project.into(),
        })
        .map_err(explain)
    }

    fn is_applied(&self, project: &str) -> anyhow::Result<bool> {
        Ok(self.status(project).map_err(explain)?.applied)
    }

    fn rules_line(&self, project: &str) -> anyhow::Result<String> {
        Ok(super::applied_line(&self.status(project).map_err(explain)?))
    }

    fn ensure_resolver(&self, _root: &Path, spec: &ResolverSpec) -> anyhow::Result<SocketAddr> {
        let request = HelperRequest::StartResolver {
            uid: self.uid,
            spec: spec.clone(),
        };
        self.ask(request, |reply| match reply {
            HelperReply::Resolver(Some(addr)) => Ok(addr),
            other => Err(other),
        })
    }

    fn stop_resolver(&self, root: &Path, project: &str) -> anyhow::Result<()> {
        // One the native daemon's path may have left (the helper was installed since).
        super::resolver_process::stop(root)?;
        self.done(HelperRequest::StopResolver {
            uid: self.uid,
            project: project.into(),
        })
        .map_err(explain)
    }

    fn resolver_address(&self, _root: &Path, project: &str) -> Option<SocketAddr> {
        let request = HelperRequest::ResolverAddress {
            uid: self.uid,
            project: project.into(),
        };
        match self.call(&request) {
            Ok(HelperReply::Resolver(addr)) => addr,
            _ => None,
        }
    }

    fn query_events(&self, _root: &Path, project: &str) -> anyhow::Result<Vec<Event>> {
        let request = HelperRequest::QueryLog {
            uid: self.uid,
            project: project.into(),
        };
        self.ask(request, |reply| match reply {
            HelperReply::QueryLog(text) => Ok(alca_dns::query_log::parse_events(&text)),
            other => Err(other),
        })
    }

    fn denied(&self, project: &str) -> anyhow::Result<Vec<Denied>> {
        let request = HelperRequest::Denied {
            uid: self.uid,
            project: project.into(),
        };
        self.ask(request, |reply| match reply {
            HelperReply::Denied(value) => Ok(value),
            other => Err(other),
        })
    }

    fn grant(&self, project: &str, entry: &str, secs: u32) -> anyhow::Result<GrantInfo> {
        let request = HelperRequest::Grant {
            uid: self.uid,
            project: project.into(),
            entry: entry.into(),
            secs,
        };
        self.ask(request, |reply| match reply {
            HelperReply::Grant(value) => Ok(value),
            other => Err(other),
        })
    }

    fn revoke(&self, project: &str, entry: &str) -> anyhow::Result<u32> {
        let request = HelperRequest::Revoke {
            uid: self.uid,
            project: project.into(),
            entry: entry.into(),
        };
        self.ask(request, |reply| match reply {
            HelperReply::Revoked(value) => Ok(value),
            other => Err(other),
        })
    }

    fn grants(&self, project: &str) -> anyhow::Result<Vec<GrantInfo>> {
        let request = HelperRequest::Grants {
            uid: self.uid,
            project: project.into(),
        };
        self.ask(request, |reply| match reply {
            HelperReply::Grants(value) => Ok(value),
            other => Err(other),
        })
    }

    fn arm_probes(&self, project: &str, probes: &[Probe]) -> anyhow::Result<LiveCheck> {
        let request = HelperRequest::ArmProbes {
            uid: self.uid,
            project: project.into(),
            probes: serde_json::to_string(probes)?,
        };
        self.ask(request, |reply| match reply {
            HelperReply::Check(value) => Ok(value),
            other => Err(other),
        })
    }

    fn probe_outcome(&self, project: &str) -> anyhow::Result<Outcome> {
        let request = HelperRequest::ProbeOutcome {
            uid: self.uid,
            project: project.into(),
        };
        self.ask(request, |reply| match reply {
            HelperReply::Outcome(value) => Ok(value),
            other => Err(other),
        })
    }

    fn internet_status(&self, project: &str) -> anyhow::Result<InternetStatus> {
        let request = HelperRequest::InternetStatus {
            uid: self.uid,
            project: project.into(),
        };
        self.ask(request, |reply| match reply {
            HelperReply::InternetStatus(value) => Ok(value),
            other => Err(other),
        })
    }
}
