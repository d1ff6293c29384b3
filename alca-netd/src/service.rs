//! The D-Bus face of the daemon: `io.github.alcatraz.Netd1` at `/io/github/alcatraz/Netd1`.
//!
//! Each method authenticates (uid from the bus, polkit on the sender's bus name), decodes the
//! typed request, checks the bridge with rtnetlink, then runs the [`Daemon`] off the async
//! executor. Callers never send nft text.

use std::sync::Arc;

use zbus::message::Header;
use zbus::{interface, Connection};

use alca_contract::bus::{ACTION_APPLY, ACTION_READ, ACTION_REMOVE, OBJECT_PATH};
use alca_contract::probe::{decode_probes, decode_targets};
use alca_contract::status::ProjectStatus;

use crate::auth::{authorize, caller_uid};
use crate::auth_cache::SenderCache;
use crate::bridge_links::{check_bridge, link_kind, LinkKind};
use crate::daemon::Daemon;
use crate::netns_probe::{open_on_bridge, open_proc_netns};
use crate::netns_rules::{open_owned, spec_problem, NetnsRefusal, NetnsRules, OwnedNetns};
use crate::quota::{Gate, Permit};
use crate::resolver_senders::NarrowedSenders;
use alca_contract::errors::NetdError;
use alca_contract::net_spec::{bridge_name, NetSpec};
use alca_contract::request::{decode_project, decode_resolved, decode_spec};

/// The exported object.
pub struct NetdService {
    daemon: Arc<Daemon>,
    gate: Arc<Gate>,
    /// `AllowResolved`'s own rate limits and cached authorization (see [`crate::auth_cache`]).
    resolved_gate: Arc<Gate>,
    resolver_auth: SenderCache,
    launcher: String,
    /// Projects whose rules live in rootless containers' namespaces, with their sockets.
    netns: Arc<NetnsRules>,
    /// Resolver connections that gave up every other call ([`crate::resolver_senders`]).
    narrowed: NarrowedSenders,
}

impl NetdService {
    pub fn new(daemon: Arc<Daemon>, launcher: impl Into<String>) -> Self {
        let gate = Gate::new(daemon.limits());
        let resolved_gate = Gate::new(daemon.limits().for_resolved());
        NetdService {
            daemon,
            gate,
            resolved_gate,
            // Filling in the addresses of names the owner's applied spec already allows
            // widens nothing the owner did not approve (through `Apply`): the read action
            // (members of `alcatraz`, never a password prompt) is enough.
            resolver_auth: SenderCache::new(ACTION_READ),
            launcher: launcher.into(),
            netns: Arc::default(),
            narrowed: NarrowedSenders::default(),
        }
    }

    /// Who is calling, admitted by the rate and concurrency limits, and allowed `action` by
    /// polkit. The permit is held until the call is answered.
    async fn admit(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        action: &str,
    ) -> Result<(u32, Permit), NetdError> {
        self.admit_for(conn, header, action, None).await
    }

    /// [`Self::admit`] of a call about one project, whose name is checked before anything uses
    /// it.
    async fn admit_project(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        action: &str,
        project: &str,
    ) -> Result<(u32, Permit), NetdError> {
        let admitted = self.admit(conn, header, action).await?;
        decode_project(project).map_err(NetdError::invalid)?;
        Ok(admitted)
    }

    /// [`Self::admit`] of a call a project's resolver may make about `resolver_project`
    /// (`None`: a call no narrowed resolver connection may make).
    async fn admit_for(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        action: &str,
        resolver_project: Option<&str>,
    ) -> Result<(u32, Permit), NetdError> {
        self.narrowed.check(&sender_of(header)?, resolver_project)?;
        let uid = caller_uid(conn, header).await?;
        let permit = self.gate.admit(uid)?;
        authorize(conn, header, uid, action).await?;
        Ok((uid, permit))
    }

    /// Runs a blocking daemon call (file lock, `nft`) on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, NetdError>
    where
        T: Send + 'static,
        F: FnOnce(&Daemon) -> Result<T, NetdError> + Send + 'static,
    {
        let daemon = Arc::clone(&self.daemon);
        tokio::task::spawn_blocking(move || f(&daemon))
            .await
            .map_err(|e| NetdError::Internal(format!("worker failed: {e}")))?
    }

    /// Compiles `spec` for the caller and applies it inside the container namespace `target`
    /// (holding it first, for the container's OCI hook, when `hold`).
    async fn apply_netns(
        &self,
        spec: NetSpec,
        uid: u32,
        target: OwnedNetns,
        hold: bool,
    ) -> Result<(), NetdError> {
        let netns = Arc::clone(&self.netns);
        self.run(move |e| {
            let (owner, batch, flags) = e.netns_batch(&spec, uid)?;
            if hold {
                netns.hold(&spec, owner)?;
            }
            netns.apply(&spec, owner, target, &batch, flags)
        })
        .await
    }

    /// An owner-checked call about one project whose reply is JSON: authenticates the caller,
    /// checks the id, runs `f(daemon, project, uid)` on the blocking pool. `resolver_call`: the
    /// project's own narrowed resolver may make it too ([`crate::resolver_senders`]).
    async fn query<T, F>(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        project: String,
        resolver_call: bool,
        f: F,
    ) -> Result<String, NetdError>
    where
        T: serde::Serialize + Send + 'static,
        F: FnOnce(&Daemon, &str, u32) -> Result<T, NetdError> + Send + 'static,
    {
        let resolver_project = resolver_call.then_some(project.as_str());
        let (uid, _permit) = self
            .admit_for(conn, header, ACTION_READ, resolver_project)
            .await?;
        decode_project(&project).map_err(NetdError::invalid)?;
        let reply = self.run(move |e| f(e, &project, uid)).await?;
        Ok(to_json(&reply))
    }
}

/// The unique bus name that sent `header`.
fn sender_of(header: &Header<'_>) -> Result<String, NetdError> {
    header
        .sender()
        .map(|s| s.to_string())
        .ok_or_else(|| NetdError::NotAuthorized("the call has no sender".into()))
}

/// Which of `names` still have a connection on the bus (asked one by one; only when the
/// narrowed connections reach their bound).
async fn still_connected(conn: &Connection, names: Vec<String>) -> Vec<String> {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return names;
    };
    let mut alive = Vec::new();
    for name in names {
        let Ok(bus_name) = zbus::names::BusName::try_from(name.as_str()) else {
            continue;
        };
        if dbus.name_has_owner(bus_name).await.unwrap_or(true) {
            alive.push(name);
        }
    }
    alive
}

/// Replies are plain data (addresses, numbers, strings): serialising cannot fail.
fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A namespace of another user is a `NotOwner`; any other refusal an `InvalidRequest`.
fn refused(e: NetnsRefusal, project: &str) -> NetdError {
    let msg = format!("{e} (project {project})");
    match e {
        NetnsRefusal::NotOwned { .. } => NetdError::NotOwner(msg),
        _ => NetdError::InvalidRequest(msg),
    }
}

/// A spec for a rootless container's namespace, decoded, and refused when that path cannot
/// enforce it ([`spec_problem`]).
fn netns_spec(spec_json: &str) -> Result<NetSpec, NetdError> {
    let spec = decode_spec(spec_json).map_err(NetdError::invalid)?;
    match spec_problem(&spec) {
        Some(problem) => Err(NetdError::invalid(problem)),
        None => Ok(spec),
    }
}

/// A short string argument (a grant's entry): bounded before anything parses it.
pub(crate) fn bounded_arg(arg: &str) -> Result<(), NetdError> {
    const MAX_ARG: usize = 512;
    if arg.len() > MAX_ARG {
        return Err(NetdError::invalid(format!(
            "argument is {} bytes, more than the limit of {MAX_ARG}",
            arg.len()
        )));
    }
    Ok(())
}

#[interface(name = "io.github.alcatraz.Netd1")]
impl NetdService {
    /// Installs or atomically replaces the rules of the project in `spec_json` (a NetSpec).
    async fn apply(
        &self,
        spec_json: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        let (uid, _permit) = self.admit(conn, &header, ACTION_APPLY).await?;
        let spec = decode_spec(&spec_json).map_err(NetdError::invalid)?;
        let present = check_bridge(&spec.bridge)
            .await
            .map_err(NetdError::invalid)?;
        tracing::info!(uid, project = %spec.project, "apply");
        self.run(move |e| e.apply(spec, uid, present)).await
    }

    /// Claims the bridge of `project` for the caller before its network is created (every
    /// project, also those that apply no rules), so no other user can put rules on it.
    async fn claim(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        let (uid, _permit) = self
            .admit_project(conn, &header, ACTION_APPLY, &project)
            .await?;
        let present = check_bridge(&bridge_name(&project))
            .await
            .map_err(NetdError::invalid)?;
        tracing::info!(uid, project = %project, "claim");
        self.run(move |e| e.claim(&project, uid, present)).await
    }

    /// Removes the project's rules and saved spec; absent projects are not an error.
    async fn remove(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        let (uid, _permit) = self
            .admit_project(conn, &header, ACTION_REMOVE, &project)
            .await?;
        let present = link_kind(&bridge_name(&project))
            .await
            .map_err(NetdError::invalid)?
            == LinkKind::Bridge;
        tracing::info!(uid, project = %project, "remove");
        self.netns.forget(&project, uid)?;
        self.run(move |e| e.remove(&project, uid, present)).await
    }

    /// The state of one of the caller's projects (any project for root):
    /// (project, owner uid, saved, applied, how the live table differs from the spec).
    #[zbus(out_args("status"))]
    async fn status(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<ProjectStatus, NetdError> {
        let (uid, _permit) = self
            .admit_project(conn, &header, ACTION_READ, &project)
            .await?;
        self.run(move |e| e.status(&project, uid)).await
    }

    /// The caller's projects (every project and stray table for root).
    #[zbus(out_args("projects"))]
    async fn list(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<ProjectStatus>, NetdError> {
        let (uid, _permit) = self.admit(conn, &header, ACTION_READ).await?;
        self.run(move |e| e.list(uid)).await
    }

    /// Checks the live rules of one of the caller's projects against its saved spec and arms
    /// the probes in `probes_json` (a list of `{key, fence}`) for `alca network verify`; they
    /// expire by themselves. Returns the check as JSON (applied, problems, armed).
    #[zbus(out_args("check_json"))]
    async fn arm_probes(
        &self,
        project: String,
        probes_json: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        let probes = decode_probes(&probes_json).map_err(NetdError::invalid)?;
        self.query(conn, &header, project, false, move |e, p, uid| {
            e.arm_probes(p, uid, &probes)
        })
        .await
    }

    /// Which armed probes got past the isolation rules, and the denied log, as JSON; disarms.
    #[zbus(out_args("outcome_json"))]
    async fn probe_outcome(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        self.query(conn, &header, project, false, |e, p, uid| {
            e.probe_outcome(p, uid)
        })
        .await
    }

    /// `alca up`'s quick verify without an exec: checks and arms like `ArmProbes`, connects to
    /// each TCP destination of `targets_json` from the network namespace of process `pid`
    /// (which must be plugged into the project's bridge), then reads the outcome and disarms
    /// like `ProbeOutcome`. Returns JSON: check, what each connect saw, outcome.
    #[zbus(out_args("report_json"))]
    async fn probe_from(
        &self,
        project: String,
        pid: u32,
        probes_json: String,
        targets_json: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        let (uid, permit) = self
            .admit_project(conn, &header, ACTION_READ, &project)
            .await?;
        let probes = decode_probes(&probes_json).map_err(NetdError::invalid)?;
        let targets = decode_targets(&targets_json).map_err(NetdError::invalid)?;
        let owned = project.clone();
        let bridge = self.run(move |e| e.project_bridge(&owned, uid)).await?;
        let netns = open_on_bridge(pid, &bridge, open_proc_netns)
            .await
            .map_err(|e| NetdError::invalid(format!("{e} of project {project}")))?;
        tracing::info!(uid, project = %project, pid, targets = targets.len(), "probe from");
        let (report, pending) = self
            .run(move |e| e.probe_from(&project, uid, &netns, &probes, &targets))
            .await?;
        // The disarm runs after the reply is on its way; it holds the lock until done.
        let daemon = Arc::clone(&self.daemon);
        tokio::task::spawn_blocking(move || {
            daemon.disarm_after_probe(pending);
            drop(permit);
        });
        Ok(to_json(&report))
    }

    /// Installs or atomically replaces the rules of `spec_json` (a NetSpec) inside the network
    /// namespace of process `pid`: a rootless container of the caller's, whose traffic never
    /// crosses the host's rules ([`crate::netns_rules`]). The table is owned by the daemon.
    async fn apply_in_netns(
        &self,
        spec_json: String,
        pid: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        let (uid, _permit) = self.admit(conn, &header, ACTION_APPLY).await?;
        let spec = netns_spec(&spec_json)?;
        let target = open_owned(pid, uid).map_err(|e| refused(e, &spec.project))?;
        tracing::info!(uid, project = %spec.project, pid, "apply in netns");
        self.apply_netns(spec, uid, target, true).await
    }

    /// Keeps `spec_json` (a NetSpec) for the caller's project, to be applied inside the network
    /// namespace of its rootless container whenever the container's OCI hook asks
    /// (`ApplyHeldInNetns`); also kept by every `ApplyInNetns`. `Remove` forgets it.
    async fn hold_netns_spec(
        &self,
        spec_json: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        let (uid, _permit) = self.admit(conn, &header, ACTION_APPLY).await?;
        let spec = netns_spec(&spec_json)?;
        tracing::info!(uid, project = %spec.project, "hold for netns");
        let netns = Arc::clone(&self.netns);
        self.run(move |e| {
            // Compiled once here so a spec the hook could not apply is refused now.
            let (owner, _, _) = e.netns_batch(&spec, uid)?;
            netns.hold(&spec, owner)
        })
        .await
    }

    /// Applies the spec held for the caller's `project` inside the network namespace of process
    /// `pid` (checked as for `ApplyInNetns`): what the OCI `createRuntime` hook of a rootless
    /// container asks at each start, before the container's command runs.
    async fn apply_held_in_netns(
        &self,
        project: String,
        pid: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        let (uid, _permit) = self
            .admit_project(conn, &header, ACTION_APPLY, &project)
            .await?;
        let spec = self.netns.held(&project, uid)?;
        let target = open_owned(pid, uid).map_err(|e| refused(e, &project))?;
        tracing::info!(uid, project = %project, pid, "apply held spec in netns");
        self.apply_netns(spec, uid, target, false).await
    }

    /// Whether the rules of one of the caller's projects are in place inside the network
    /// namespace of process `pid` (applied there by this daemon, which still owns them).
    #[zbus(out_args("applied"))]
    async fn netns_applied(
        &self,
        project: String,
        pid: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<bool, NetdError> {
        let applied = self.netns_applied_spec(project, pid, header, conn).await?;
        Ok(!applied.is_empty())
    }

    /// The spec (JSON) whose rules are in place inside the network namespace of process `pid`
    /// for one of the caller's projects, or "" when they are not: what `alca network verify`
    /// judges a rootless container against (the owned table is exactly that spec's).
    #[zbus(out_args("spec_json"))]
    async fn netns_applied_spec(
        &self,
        project: String,
        pid: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        let (uid, _permit) = self
            .admit_project(conn, &header, ACTION_READ, &project)
            .await?;
        let target = open_owned(pid, uid).map_err(|e| refused(e, &project))?;
        let netns = Arc::clone(&self.netns);
        let spec = self
            .run(move |_| netns.applied_spec(&project, uid, target))
            .await?;
        Ok(spec.map(|s| to_json(&s)).unwrap_or_default())
    }

    /// The bounded log of denied attempts of one of the caller's projects, as JSON.
    #[zbus(out_args("denied_json"))]
    async fn denied(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        self.query(conn, &header, project, false, |e, p, uid| e.denied(p, uid))
            .await
    }

    /// Adds the addresses the project's resolver found for names its `internet-access` list
    /// allows (`update`: a ResolvedAddrs as JSON) to the project's allow sets, each expiring
    /// after its bounded TTL. Replies once the kernel holds them, so the resolver may then
    /// answer the container. Only the project's owner (or root) may.
    async fn allow_resolved(
        &self,
        update: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        let uid = self.resolver_auth.authorize(conn, &header).await?;
        let _permit = self.resolved_gate.admit(uid)?;
        let update = decode_resolved(&update).map_err(NetdError::invalid)?;
        self.narrowed
            .check(&sender_of(&header)?, Some(&update.project))?;
        self.run(move |e| e.allow_resolved(&update, uid).map(drop))
            .await
    }

    /// The applied `internet-access` of one of the caller's projects, as JSON
    /// (`{"internet": InternetSpec or null}`): what the project's resolver must follow.
    #[zbus(out_args("entries_json"))]
    async fn internet_entries(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        self.query(conn, &header, project, true, |e, p, uid| {
            e.internet_entries(p, uid)
        })
        .await
    }

    /// Called by a project's resolver before it reads any DNS: from now on this connection
    /// may only make the resolver's calls (`AllowResolved`, `InternetEntries`) about
    /// `project`, whatever uid the bus credits it to ([`crate::resolver_senders`]).
    async fn narrow_to_resolver(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), NetdError> {
        decode_project(&project).map_err(NetdError::invalid)?;
        let sender = sender_of(&header)?;
        let alive = if self.narrowed.full() {
            Some(still_connected(conn, self.narrowed.names()).await)
        } else {
            None
        };
        self.narrowed.narrow(&sender, &project, |name| {
            alive.as_ref().is_none_or(|a| a.iter().any(|n| n == name))
        })
    }

    /// Grants `entry` (an `internet-access` entry: a name, `*.name` or one address, with an
    /// optional port) to one of the caller's projects for `secs` seconds (at most a day); the
    /// kernel ends it. Returns the grant as JSON (index, entry, remaining_secs).
    #[zbus(out_args("grant_json"))]
    async fn grant(
        &self,
        project: String,
        entry: String,
        secs: u32,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        let (uid, _permit) = self
            .admit_project(conn, &header, ACTION_APPLY, &project)
            .await?;
        bounded_arg(&entry)?;
        tracing::info!(uid, project = %project, entry = %entry, secs, "grant");
        let grant = self
            .run(move |e| e.grant(&project, &entry, secs, uid))
            .await?;
        Ok(to_json(&grant))
    }

    /// Ends the grants of `entry` of one of the caller's projects now; how many there were.
    #[zbus(out_args("revoked"))]
    async fn revoke(
        &self,
        project: String,
        entry: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<u32, NetdError> {
        let (uid, _permit) = self
            .admit_project(conn, &header, ACTION_APPLY, &project)
            .await?;
        bounded_arg(&entry)?;
        tracing::info!(uid, project = %project, entry = %entry, "revoke");
        let n = self.run(move |e| e.revoke(&project, &entry, uid)).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The live grants of one of the caller's projects, as JSON.
    #[zbus(out_args("grants_json"))]
    async fn grants(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        self.query(conn, &header, project, false, |e, p, uid| e.grants(p, uid))
            .await
    }

    /// The `internet-access` mode of one of the caller's projects, its entries and the number
    /// of addresses in its allow sets, as JSON.
    #[zbus(out_args("status_json"))]
    async fn internet_status(
        &self,
        project: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, NetdError> {
        self.query(conn, &header, project, false, |e, p, uid| {
            e.internet_status(p, uid)
        })
        .await
    }

    /// How this daemon was started: `systemd`, `D-Bus activation` or `manual`.
    #[zbus(property)]
    async fn launcher(&self) -> String {
        self.launcher.clone()
    }

    /// Version of the running daemon.
    #[zbus(property)]
    async fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_string()
    }

    /// Whether the kernel protects the project tables and the guard: `owned, persistent`, or
    /// why not.
    #[zbus(property)]
    async fn table_protection(&self) -> String {
        if self.daemon.owned_tables() {
            crate::daemon::PROTECTED.to_string()
        } else {
            crate::daemon::UNPROTECTED.to_string()
        }
    }
}

/// The introspection XML of the interface, as shipped in `dbus/io.github.alcatraz.Netd1.xml`.
pub fn introspection_xml() -> String {
    use zbus::object_server::Interface;
    let service = NetdService::new(
        Arc::new(Daemon::new(
            Box::new(crate::firewall::Nft::default()),
            crate::store::Store::new("/nonexistent"),
        )),
        "",
    );
    let mut body = String::new();
    service.introspect_to_writer(&mut body, 2);
    format!(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \
         \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n\
         <node name=\"{OBJECT_PATH}\">\n{body}</node>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../dbus/io.github.alcatraz.Netd1.xml");

    /// The shipped XML is the live interface's; `UPDATE_INTROSPECTION=1` regenerates it.
    #[test]
    fn shipped_introspection_matches_the_interface() {
        let live = introspection_xml();
        if std::env::var_os("UPDATE_INTROSPECTION").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../dbus/io.github.alcatraz.Netd1.xml"
            );
            std::fs::write(path, &live).unwrap();
            return;
        }
        assert_eq!(
            live, SHIPPED,
            "run UPDATE_INTROSPECTION=1 cargo test -p alca-netd introspection"
        );
        assert!(live.contains("name=\"Apply\""));
    }
}
