//! The seam between `alca` and whatever applies network isolation (the `alca-netd` daemon).
//!
//! `up` talks to a [`NetworkGuard`]; when none is reachable it must fail closed.

pub mod denied_log;
pub mod guard_select;
pub mod helper_container_guard;
pub mod host_addresses;
pub mod internet_spec;
pub mod matrix;
pub mod netd_guard;
pub mod netspec_build;
pub mod project_rules;
pub mod proxy_check;
pub mod refused_names;
pub mod resolver_main;
pub mod resolver_privileges;
pub mod resolver_process;
pub mod resolvers;
pub mod rootless;
pub mod verify_probes;

use std::net::SocketAddr;
use std::path::Path;

use alca_contract::internet_status::{GrantInfo, InternetStatus};
use alca_contract::probe::{Denied, Key, LiveCheck, Outcome, Probe, ProbeReport};
use alca_contract::NetSpec;
use alca_dns::query_log::Event;

use resolver_process::ResolverSpec;

/// Applies and removes one project's network rules.
pub trait NetworkGuard {
    /// Claims the project's bridge name before its network is created, so that no other user
    /// can put rules on it (every project, also `lan-access = ["*"]`). `Ok(false)`: nothing
    /// to claim with (no daemon, or the user may not use it); the daemon then refuses rules on
    /// the bridge once it exists unclaimed, to everyone but root.
    fn claim(&self, _project: &str) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// Atomically installs (or replaces) the project's rules. Must succeed before the
    /// container is started when isolation is required.
    fn apply(&self, spec: &NetSpec) -> anyhow::Result<()>;
    /// Removes the project's rules; removing absent rules is not an error.
    fn remove(&self, project: &str) -> anyhow::Result<()>;
    /// Whether rules for the project are currently applied.
    fn is_applied(&self, project: &str) -> anyhow::Result<bool>;
    /// Atomically installs (or replaces) the project's rules inside the network namespace of
    /// process `pid`: a rootless container, whose traffic never crosses the host's rules.
    fn apply_in_netns(&self, _spec: &NetSpec, _pid: u32) -> anyhow::Result<()> {
        anyhow::bail!(
            "this network helper cannot isolate rootless containers (it has no rules inside a \
             container's namespace); use a rootful runtime, or set network.lan-access = [\"*\"]"
        )
    }
    /// Gives the daemon the project's spec for its rootless container's next namespaces: its
    /// OCI hook has the daemon apply it at every start, before the container's command runs.
    fn hold_netns_spec(&self, _spec: &NetSpec) -> anyhow::Result<()> {
        anyhow::bail!(
            "this network helper cannot isolate rootless containers (it has no rules inside a \
             container's namespace); use a rootful runtime, or set network.lan-access = [\"*\"]"
        )
    }
    /// Starts (or keeps) the project's DNS resolver where this guard's daemon hears it and
    /// returns its address: by default a process of the user's (`alca __serve-dns`, which
    /// reaches the daemon over the system bus).
    fn ensure_resolver(&self, root: &Path, spec: &ResolverSpec) -> anyhow::Result<SocketAddr> {
        resolver_process::ensure(root, spec)
    }
    /// Stops the project's resolver, if one runs.
    fn stop_resolver(&self, root: &Path, _project: &str) -> anyhow::Result<()> {
        resolver_process::stop(root)
    }
    /// Where the project's resolver answers, if one runs.
    fn resolver_address(&self, root: &Path, _project: &str) -> Option<SocketAddr> {
        resolver_process::address(root)
    }
    /// What the project's resolver logged (`alca network log`).
    fn query_events(&self, root: &Path, _project: &str) -> anyhow::Result<Vec<Event>> {
        let path = resolver_process::query_log(root);
        alca_dns::query_log::read_events(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
    }
    /// The project's log of denied connections.
    fn denied(&self, _project: &str) -> anyhow::Result<Vec<Denied>> {
        Err(self.no_daemon())
    }
    /// Grants `entry` to the project for `secs` seconds (`alca network allow`).
    fn grant(&self, _project: &str, _entry: &str, _secs: u32) -> anyhow::Result<GrantInfo> {
        Err(self.no_daemon())
    }
    /// Ends the project's grants of `entry`; how many there were.
    fn revoke(&self, _project: &str, _entry: &str) -> anyhow::Result<u32> {
        Err(self.no_daemon())
    }
    /// The project's live grants.
    fn grants(&self, _project: &str) -> anyhow::Result<Vec<GrantInfo>> {
        Err(self.no_daemon())
    }
    /// The project's `internet-access` mode and allow sets' size as the daemon has them.
    fn internet_status(&self, _project: &str) -> anyhow::Result<InternetStatus> {
        Err(self.no_daemon())
    }
    /// Checks the project's live rules and arms `probes` (`alca network verify`).
    fn arm_probes(&self, _project: &str, _probes: &[Probe]) -> anyhow::Result<LiveCheck> {
        Err(self.no_daemon())
    }
    /// Which armed probes got past the rules, and the denied log; disarms.
    fn probe_outcome(&self, _project: &str) -> anyhow::Result<Outcome> {
        Err(self.no_daemon())
    }
    /// Arms `probes` and has the daemon connect to `targets` from the network namespace of the
    /// project's container (process `pid`); `None` where this guard cannot (the probes then
    /// run inside the container).
    fn probe_from(
        &self,
        _project: &str,
        _pid: u32,
        _probes: &[Probe],
        _targets: &[Key],
    ) -> Option<ProbeReport> {
        None
    }
    /// Why a daemon call cannot be made through this guard.
    fn no_daemon(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "no network helper answers: run `sudo alca network-helper install` (Linux) or \
             `alca network-helper install` (macOS) once"
        )
    }
    /// Whether the project's rules are in place inside the namespace of process `pid`.
    fn netns_applied(&self, _project: &str, _pid: u32) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// What `Rules applied:` says for the project: yes, or no and why.
    fn rules_line(&self, project: &str) -> anyhow::Result<String> {
        Ok(if self.is_applied(project)? {
            "Yes"
        } else {
            "No"
        }
        .into())
    }
}

/// `Rules applied:` for a project's status from the daemon: `Yes` only when its table is live
/// and holds what its spec compiles to.
pub fn applied_line(status: &alca_contract::status::ProjectStatus) -> String {
    if status.applied {
        "Yes".into()
    } else if !status.problems.is_empty() {
        format!(
            "No (the live rules differ from the project's: {}; `alca network verify` for more)",
            status.problems.join("; ")
        )
    } else if status.saved {
        "No (table missing: nothing isolates the project)".into()
    } else {
        "No".into()
    }
}

/// The guard used when no network helper is reachable: every request fails closed.
pub struct Unavailable {
    pub reason: String,
}

impl NetworkGuard for Unavailable {
    fn apply(&self, _spec: &NetSpec) -> anyhow::Result<()> {
        anyhow::bail!(
            "network isolation cannot be applied: {}. Run `sudo alca network-helper install` once, \
             or set network.lan-access = [\"*\"] to run without isolation",
            self.reason
        )
    }

    fn remove(&self, _project: &str) -> anyhow::Result<()> {
        anyhow::bail!("network helper unavailable: {}", self.reason)
    }

    fn is_applied(&self, _project: &str) -> anyhow::Result<bool> {
        Ok(false)
    }

    fn no_daemon(&self) -> anyhow::Error {
        anyhow::anyhow!("network helper unavailable: {}", self.reason)
    }
}
