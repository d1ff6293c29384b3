//! The client side of `io.github.alcatraz.Netd1`, used by the `alca` CLI: a typed proxy plus a
//! blocking wrapper (the CLI is synchronous) that runs calls on a private runtime.

use std::time::Duration;

use zbus::proxy;

use crate::errors::NetdError;
use crate::internet::ResolvedAddrs;
use crate::internet_status::{GrantInfo, InternetEntries, InternetStatus};
use crate::net_spec::NetSpec;
use crate::probe::{Denied, Key, LiveCheck, Outcome, Probe, ProbeReport};
use crate::request::encode_spec;
use crate::status::ProjectStatus;

#[proxy(
    interface = "io.github.alcatraz.Netd1",
    default_service = "io.github.alcatraz.Netd1",
    default_path = "/io/github/alcatraz/Netd1"
)]
pub trait Netd1 {
    fn apply(&self, spec_json: &str) -> Result<(), NetdError>;
    fn claim(&self, project: &str) -> Result<(), NetdError>;
    fn remove(&self, project: &str) -> Result<(), NetdError>;
    fn status(&self, project: &str) -> Result<ProjectStatus, NetdError>;
    fn list(&self) -> Result<Vec<ProjectStatus>, NetdError>;
    fn arm_probes(&self, project: &str, probes_json: &str) -> Result<String, NetdError>;
    fn probe_outcome(&self, project: &str) -> Result<String, NetdError>;
    fn probe_from(
        &self,
        project: &str,
        pid: u32,
        probes_json: &str,
        targets_json: &str,
    ) -> Result<String, NetdError>;
    fn denied(&self, project: &str) -> Result<String, NetdError>;
    fn apply_in_netns(&self, spec_json: &str, pid: u32) -> Result<(), NetdError>;
    fn netns_applied(&self, project: &str, pid: u32) -> Result<bool, NetdError>;
    fn hold_netns_spec(&self, spec_json: &str) -> Result<(), NetdError>;
    fn netns_applied_spec(&self, project: &str, pid: u32) -> Result<String, NetdError>;
    fn apply_held_in_netns(&self, project: &str, pid: u32) -> Result<(), NetdError>;
    /// The resolver's update (a [`ResolvedAddrs`] as JSON); async callers (the project's
    /// resolver) use this proxy method directly, on one long-lived connection.
    fn allow_resolved(&self, update: &str) -> Result<(), NetdError>;
    fn internet_entries(&self, project: &str) -> Result<String, NetdError>;
    /// The resolver's first call: this connection gives up every call but its own
    /// `AllowResolved` and `InternetEntries` about `project`.
    fn narrow_to_resolver(&self, project: &str) -> Result<(), NetdError>;
    fn internet_status(&self, project: &str) -> Result<String, NetdError>;
    fn grant(&self, project: &str, entry: &str, secs: u32) -> Result<String, NetdError>;
    fn revoke(&self, project: &str, entry: &str) -> Result<u32, NetdError>;
    fn grants(&self, project: &str) -> Result<String, NetdError>;
    #[zbus(property)]
    fn launcher(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn table_protection(&self) -> zbus::Result<String>;
}

/// How long a call may take: polkit may ask the user for a password.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A blocking connection to the daemon on the system bus.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    proxy: Netd1Proxy<'static>,
}

impl Client {
    /// Connects to the system bus (the daemon itself is started on the first call, by D-Bus
    /// activation or systemd).
    pub fn connect() -> Result<Self, NetdError> {
        Self::connect_as(None)
    }

    /// [`Client::connect`], authenticating as `uid` when given: a process in a user namespace
    /// (an OCI hook of rootless Podman is uid 0 in the user's namespace) must name the uid the
    /// bus sees it as, its host uid, or the bus refuses the handshake.
    pub fn connect_as(uid: Option<u32>) -> Result<Self, NetdError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| NetdError::Internal(format!("cannot start a runtime: {e}")))?;
        let proxy = runtime.block_on(async {
            let mut builder = zbus::connection::Builder::system().method_timeout(CALL_TIMEOUT);
            if let Some(uid) = uid {
                builder = builder.user_id(uid);
            }
            let conn = builder.build().await?;
            Netd1Proxy::builder(&conn)
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .await
        })?;
        Ok(Client { runtime, proxy })
    }

    pub fn apply(&self, spec: &NetSpec) -> Result<(), NetdError> {
        self.runtime.block_on(self.proxy.apply(&encode_spec(spec)))
    }

    /// Sends a raw request body (tests and tools; the CLI uses [`Client::apply`]).
    pub fn apply_json(&self, json: &str) -> Result<(), NetdError> {
        self.runtime.block_on(self.proxy.apply(json))
    }

    /// Applies `spec` inside the network namespace of process `pid`, a rootless container of
    /// the caller's (see [`crate::netns_rules`]).
    pub fn apply_in_netns(&self, spec: &NetSpec, pid: u32) -> Result<(), NetdError> {
        let json = encode_spec(spec);
        self.runtime.block_on(self.proxy.apply_in_netns(&json, pid))
    }

    /// Whether the project's rules are in place inside the namespace of process `pid`.
    pub fn netns_applied(&self, project: &str, pid: u32) -> Result<bool, NetdError> {
        self.runtime
            .block_on(self.proxy.netns_applied(project, pid))
    }

    /// Gives the daemon `spec` to apply inside the namespaces of the project's rootless
    /// container whenever its OCI hook asks ([`Client::apply_held_in_netns`]): before
    /// `podman init`, so even the first start runs the hook with rules to apply.
    pub fn hold_netns_spec(&self, spec: &NetSpec) -> Result<(), NetdError> {
        let json = encode_spec(spec);
        self.runtime.block_on(self.proxy.hold_netns_spec(&json))
    }

    /// Applies the spec the daemon holds for `project` inside the namespace of process `pid`
    /// (the OCI hook of a rootless container, at each start).
    pub fn apply_held_in_netns(&self, project: &str, pid: u32) -> Result<(), NetdError> {
        self.runtime
            .block_on(self.proxy.apply_held_in_netns(project, pid))
    }

    /// The spec whose rules are in place inside the namespace of process `pid`, if they are.
    pub fn netns_applied_spec(
        &self,
        project: &str,
        pid: u32,
    ) -> Result<Option<NetSpec>, NetdError> {
        let json = self
            .runtime
            .block_on(self.proxy.netns_applied_spec(project, pid))?;
        if json.is_empty() {
            return Ok(None);
        }
        decode_reply(&json).map(Some)
    }

    /// Claims the project's bridge name before its network is created.
    pub fn claim(&self, project: &str) -> Result<(), NetdError> {
        self.runtime.block_on(self.proxy.claim(project))
    }

    pub fn remove(&self, project: &str) -> Result<(), NetdError> {
        self.runtime.block_on(self.proxy.remove(project))
    }

    pub fn status(&self, project: &str) -> Result<ProjectStatus, NetdError> {
        self.runtime.block_on(self.proxy.status(project))
    }

    pub fn list(&self) -> Result<Vec<ProjectStatus>, NetdError> {
        self.runtime.block_on(self.proxy.list())
    }

    /// Checks the live rules and arms `probes` for one verification.
    pub fn arm_probes(&self, project: &str, probes: &[Probe]) -> Result<LiveCheck, NetdError> {
        let body = serde_json::to_string(probes).unwrap_or_default();
        decode_reply(
            &self
                .runtime
                .block_on(self.proxy.arm_probes(project, &body))?,
        )
    }

    /// Which armed probes got past the rules, and the denied log; disarms.
    pub fn probe_outcome(&self, project: &str) -> Result<Outcome, NetdError> {
        decode_reply(&self.runtime.block_on(self.proxy.probe_outcome(project))?)
    }

    /// Arms `probes`, has the daemon connect to `targets` from the network namespace of the
    /// project's container (its process `pid`), and returns what it saw; disarms.
    pub fn probe_from(
        &self,
        project: &str,
        pid: u32,
        probes: &[Probe],
        targets: &[Key],
    ) -> Result<ProbeReport, NetdError> {
        let probes = serde_json::to_string(probes).unwrap_or_default();
        let targets = serde_json::to_string(targets).unwrap_or_default();
        let call = self.proxy.probe_from(project, pid, &probes, &targets);
        decode_reply(&self.runtime.block_on(call)?)
    }

    /// The project's log of denied attempts, most recent first.
    pub fn denied(&self, project: &str) -> Result<Vec<Denied>, NetdError> {
        decode_reply(&self.runtime.block_on(self.proxy.denied(project))?)
    }

    /// Adds resolved addresses to the project's allow sets; returns once the kernel has them.
    pub fn allow_resolved(&self, update: &ResolvedAddrs) -> Result<(), NetdError> {
        let body = serde_json::to_string(update).unwrap_or_default();
        self.runtime.block_on(self.proxy.allow_resolved(&body))
    }

    /// The project's applied `internet-access` (what its resolver must follow).
    pub fn internet_entries(&self, project: &str) -> Result<InternetEntries, NetdError> {
        decode_reply(
            &self
                .runtime
                .block_on(self.proxy.internet_entries(project))?,
        )
    }

    /// The project's `internet-access` mode and the size of its allow sets.
    pub fn internet_status(&self, project: &str) -> Result<InternetStatus, NetdError> {
        decode_reply(&self.runtime.block_on(self.proxy.internet_status(project))?)
    }

    /// Grants `entry` to the project for `secs` seconds (`alca network allow NAME --for`).
    pub fn grant(&self, project: &str, entry: &str, secs: u32) -> Result<GrantInfo, NetdError> {
        decode_reply(
            &self
                .runtime
                .block_on(self.proxy.grant(project, entry, secs))?,
        )
    }

    /// Ends the project's grants of `entry`; how many there were.
    pub fn revoke(&self, project: &str, entry: &str) -> Result<u32, NetdError> {
        self.runtime.block_on(self.proxy.revoke(project, entry))
    }

    /// The project's live grants.
    pub fn grants(&self, project: &str) -> Result<Vec<GrantInfo>, NetdError> {
        decode_reply(&self.runtime.block_on(self.proxy.grants(project))?)
    }

    /// How the daemon was started; starts it if it is activatable.
    pub fn launcher(&self) -> Result<String, NetdError> {
        Ok(self.runtime.block_on(self.proxy.launcher())?)
    }

    /// Whether the kernel protects the daemon's tables (owner and persist flags), in words.
    pub fn table_protection(&self) -> Result<String, NetdError> {
        Ok(self.runtime.block_on(self.proxy.table_protection())?)
    }

    /// Whether some process owns the daemon's name right now (does not start it).
    pub fn is_running(&self) -> Result<bool, NetdError> {
        Ok(self.daemon_pid()?.is_some())
    }

    /// PID of the process owning the daemon's name, if any (does not start it).
    pub fn daemon_pid(&self) -> Result<Option<u32>, NetdError> {
        self.runtime.block_on(async {
            let dbus = zbus::fdo::DBusProxy::new(self.proxy.inner().connection()).await?;
            let name = zbus::names::BusName::try_from(crate::bus::BUS_NAME)?;
            if !dbus
                .name_has_owner(name.clone())
                .await
                .map_err(zbus::Error::from)?
            {
                return Ok(None);
            }
            match dbus.get_connection_unix_process_id(name).await {
                Ok(pid) => Ok(Some(pid)),
                // The owner left between the two calls.
                Err(zbus::fdo::Error::NameHasNoOwner(_)) => Ok(None),
                Err(e) => Err(zbus::Error::from(e).into()),
            }
        })
    }

    /// Asks the bus daemon to re-read its configuration (after the policy file changed).
    pub fn reload_bus_config(&self) -> Result<(), NetdError> {
        self.runtime.block_on(async {
            let dbus = zbus::fdo::DBusProxy::new(self.proxy.inner().connection()).await?;
            dbus.reload_config().await.map_err(zbus::Error::from)?;
            Ok(())
        })
    }
}

fn decode_reply<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, NetdError> {
    serde_json::from_str(json)
        .map_err(|e| NetdError::Internal(format!("unreadable reply from alca-netd: {e}")))
}

/// Whether an error means "nobody provides the service" (not installed or cannot start).
pub fn is_service_missing(err: &NetdError) -> bool {
    let NetdError::ZBus(zbus::Error::MethodError(name, _, _)) = err else {
        return matches!(err, NetdError::ZBus(zbus::Error::InputOutput(_)));
    };
    matches!(
        name.as_str(),
        "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner"
            | "org.freedesktop.DBus.Error.Spawn.ExecFailed"
            | "org.freedesktop.DBus.Error.Spawn.ChildExited"
            | "org.freedesktop.DBus.Error.Spawn.ServiceNotFound"
            | "org.freedesktop.DBus.Error.AccessDenied"
    )
}
