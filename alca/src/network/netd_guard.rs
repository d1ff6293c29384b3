//! [`NetworkGuard`] over the `alca-netd` daemon on the system bus, with its errors turned into
//! messages that tell the user what to do.

use alca_contract::client::{is_service_missing, Client};
use alca_contract::errors::NetdError;
use alca_contract::internet_status::{GrantInfo, InternetStatus};
use alca_contract::probe::{Denied, Key, LiveCheck, Outcome, Probe, ProbeReport};
use alca_contract::NetSpec;

use super::NetworkGuard;

/// The command that sets the helper up.
const INSTALL_HINT: &str = "sudo alca network-helper install";

/// Talks to `alca-netd` through D-Bus.
pub struct NetdGuard {
    client: Client,
}

impl NetdGuard {
    /// Connects to the system bus and makes sure the daemon answers (starting it by activation).
    pub fn connect() -> Result<Self, String> {
        let client = Client::connect().map_err(|e| unreachable_reason(&e))?;
        client.launcher().map_err(|e| unreachable_reason(&e))?;
        Ok(NetdGuard { client })
    }
}

/// Why the daemon could not be reached, in words.
fn unreachable_reason(err: &NetdError) -> String {
    if is_service_missing(err) {
        return format!(
            "the network helper alca-netd is not installed or cannot start ({})",
            err.message()
        );
    }
    match err {
        NetdError::ZBus(e) => format!("cannot reach the system D-Bus: {e}"),
        other => other.message(),
    }
}

/// Turns a daemon error into a user-facing error that says what to do next.
pub fn explain(err: NetdError) -> anyhow::Error {
    let message = match &err {
        NetdError::NotAuthorized(m) => format!(
            "not allowed to change network rules ({m}). Run `{INSTALL_HINT}` once, then log in \
             again (or run `newgrp alcatraz`) so your user is in group `alcatraz`"
        ),
        NetdError::NotOwner(m) => m.clone(),
        NetdError::InvalidRequest(m) => format!("the network helper refused the request: {m}"),
        NetdError::ApplyFailed(m) => format!(
            "the network helper could not apply the rules; the previous rules stay in place: {m}"
        ),
        NetdError::LimitReached(m) => format!("the network helper refused the request: {m}"),
        NetdError::Internal(m) => format!("the network helper failed: {m}"),
        NetdError::ZBus(_) => format!(
            "{}. Run `{INSTALL_HINT}` once to set it up",
            unreachable_reason(&err)
        ),
    };
    anyhow::anyhow!(message)
}

impl NetworkGuard for NetdGuard {
    fn claim(&self, project: &str) -> anyhow::Result<bool> {
        match self.client.claim(project) {
            Ok(()) => Ok(true),
            // Isolation, if the project needs it, fails at Apply with the same explanation.
            Err(NetdError::NotAuthorized(_)) => Ok(false),
            Err(e) => Err(explain(e)),
        }
    }

    fn apply(&self, spec: &NetSpec) -> anyhow::Result<()> {
        self.client.apply(spec).map_err(explain)
    }

    fn remove(&self, project: &str) -> anyhow::Result<()> {
        self.client.remove(project).map_err(explain)
    }

    fn is_applied(&self, project: &str) -> anyhow::Result<bool> {
        Ok(self.client.status(project).map_err(explain)?.applied)
    }

    fn apply_in_netns(&self, spec: &NetSpec, pid: u32) -> anyhow::Result<()> {
        self.client.apply_in_netns(spec, pid).map_err(explain)
    }

    fn hold_netns_spec(&self, spec: &NetSpec) -> anyhow::Result<()> {
        super::rootless::require_hook_file(std::path::Path::new(
            alca_contract::oci_hook::HOOK_FILE,
        ))?;
        self.client.hold_netns_spec(spec).map_err(explain)
    }

    fn netns_applied(&self, project: &str, pid: u32) -> anyhow::Result<bool> {
        self.client.netns_applied(project, pid).map_err(explain)
    }

    fn rules_line(&self, project: &str) -> anyhow::Result<String> {
        let status = self.client.status(project).map_err(explain)?;
        Ok(super::applied_line(&status))
    }

    fn arm_probes(&self, project: &str, probes: &[Probe]) -> anyhow::Result<LiveCheck> {
        self.client.arm_probes(project, probes).map_err(explain)
    }

    fn probe_outcome(&self, project: &str) -> anyhow::Result<Outcome> {
        self.client.probe_outcome(project).map_err(explain)
    }

    /// An older daemon without `ProbeFrom`, or a namespace it does not accept: `None`.
    fn probe_from(
        &self,
        project: &str,
        pid: u32,
        probes: &[Probe],
        targets: &[Key],
    ) -> Option<ProbeReport> {
        self.client.probe_from(project, pid, probes, targets).ok()
    }

    fn denied(&self, project: &str) -> anyhow::Result<Vec<Denied>> {
        self.client.denied(project).map_err(explain)
    }

    fn grant(&self, project: &str, entry: &str, secs: u32) -> anyhow::Result<GrantInfo> {
        self.client.grant(project, entry, secs).map_err(explain)
    }

    fn revoke(&self, project: &str, entry: &str) -> anyhow::Result<u32> {
        self.client.revoke(project, entry).map_err(explain)
    }

    fn grants(&self, project: &str) -> anyhow::Result<Vec<GrantInfo>> {
        self.client.grants(project).map_err(explain)
    }

    fn internet_status(&self, project: &str) -> anyhow::Result<InternetStatus> {
        self.client.internet_status(project).map_err(explain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_each_error_with_a_next_step() {
        let msg = explain(NetdError::NotAuthorized("uid 1000".into())).to_string();
        assert!(
            msg.contains(INSTALL_HINT) && msg.contains("newgrp alcatraz"),
            "{msg}"
        );
        let msg = explain(NetdError::ApplyFailed("nft: oops".into())).to_string();
        assert!(msg.contains("previous rules stay"), "{msg}");
        let missing = NetdError::ZBus(zbus_missing());
        assert!(is_service_missing(&missing));
        let msg = explain(missing).to_string();
        assert!(
            msg.contains("not installed") && msg.contains(INSTALL_HINT),
            "{msg}"
        );
    }

    fn zbus_missing() -> alca_contract::errors::TransportError {
        alca_contract::errors::TransportError::InputOutput(std::sync::Arc::new(
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ))
    }
}
