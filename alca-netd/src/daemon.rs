//! What the daemon does, free of D-Bus: ownership rules, the order of state and firewall
//! changes, re-applying saved specs at start and sweeping stale tables.
//!
//! Ordering: the new spec is saved (atomically) *before* the nftables transaction runs and
//! rolled back if nft refuses it. A crash between the two leaves the new spec saved and the
//! old table live; the next start re-applies the saved one. So the table is always the old or
//! the new ruleset, and a table of a saved project is never swept as stale.

mod grants;
mod internet;
mod kept_elements;

pub use grants::{MAX_GRANTS, MAX_GRANT_SECS};

use std::collections::BTreeSet;
use std::fs::File;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

use crate::claims::{judge, Claim, Verdict};
use crate::firewall::{Firewall, FirewallError, Nft};
use crate::guard::GUARD_TABLE;
use alca_contract::errors::NetdError;
use alca_contract::probe::{Denied, Key, LiveCheck, Outcome, Probe, ProbeReport};
use alca_contract::status::ProjectStatus;
use alca_kernel::tables::TableOwner;
use alca_ruleset::{delete_batch, replace_batch_on, HostQuirks, Ruleset};

use crate::netns_probe;
use crate::probe_sets;
use crate::quota::{Limits, LIMITS_FILE};
use crate::store::{Saved, StateLock, Store, StoreError};
use alca_contract::net_spec::{bridge_name, table_name, validate_project_id, NetSpec, NAME_PREFIX};
use alca_kernel::set_elements::ElementBatch;

/// The element batches that end one verification: the fence's removal and the forgetting of the
/// probes' own denied-log entries.
#[derive(Debug, Default)]
struct Disarm {
    table: String,
    fence: Option<ElementBatch>,
    forget: Option<ElementBatch>,
}

/// A disarm still to run, holding the state lock and the project's probe slot until it has
/// (see [`Daemon::disarm_after_probe`]).
pub struct PendingDisarm {
    _lock: StateLock,
    _probing: Probing,
    disarm: Disarm,
}

/// The one `ProbeFrom` of a project that may run at a time (its connects run without the state
/// lock, so other projects' calls go on meanwhile); the slot is freed on drop.
pub struct Probing {
    busy: Arc<Mutex<BTreeSet<String>>>,
    project: String,
}

impl Drop for Probing {
    fn drop(&mut self) {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.project);
    }
}

/// Outcome of re-applying saved specs and sweeping stale tables.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub reapplied: Vec<String>,
    /// Tables another process (the running daemon) owns: `--reapply` leaves them to it.
    pub owned_elsewhere: Vec<String>,
    pub swept: Vec<String>,
    pub problems: Vec<String>,
}

/// What `network-helper status` says when the kernel protects the tables.
pub const PROTECTED: &str = "owned by the daemon, persistent (`nft flush ruleset` and others \
    cannot remove or change them; they outlive the daemon)";
/// What `network-helper status` and the daemon's log say when the kernel cannot protect the
/// tables.
pub const UNPROTECTED: &str = "tables not protected by the kernel: this kernel has no \
    NFT_TABLE_F_PERSIST (Linux >= 6.9), so `nft flush ruleset` can remove them; the daemon \
    restores them when it sees that happen, and not while it is down";

/// Whether a refused write means the table belongs to another netlink socket (`EPERM`).
fn owned_elsewhere(e: &FirewallError) -> bool {
    matches!(e, FirewallError::Netlink(io) if io.raw_os_error() == Some(libc::EPERM))
}

/// The daemon's state machine over a firewall and a store.
pub struct Daemon {
    firewall: Box<dyn Firewall>,
    store: Store,
    quirks: HostQuirks,
    limits: Limits,
    probing: Arc<Mutex<BTreeSet<String>>>,
    /// The host's on-link prefixes, denied like the private ranges (see [`crate::onlink`]).
    /// `None` until first read: the first reading re-applies nothing (start-up re-applies all).
    onlink: Mutex<Option<Vec<IpNet>>>,
    /// Time-boxed `internet-access` grants (see `grants`).
    grants: Mutex<grants::GrantBook>,
}

impl From<StoreError> for NetdError {
    fn from(e: StoreError) -> Self {
        NetdError::Internal(e.to_string())
    }
}

impl From<FirewallError> for NetdError {
    fn from(e: FirewallError) -> Self {
        NetdError::ApplyFailed(e.to_string())
    }
}

fn check_owner(project: &str, owner: u32, caller: u32) -> Result<(), NetdError> {
    if caller == 0 || caller == owner {
        return Ok(());
    }
    Err(NetdError::NotOwner(format!(
        "project {project} belongs to uid {owner}; only that user or root may change it"
    )))
}

impl Daemon {
    pub fn new(firewall: Box<dyn Firewall>, store: Store) -> Self {
        Daemon {
            firewall,
            store,
            quirks: HostQuirks::default(),
            limits: Limits::default(),
            probing: Arc::default(),
            onlink: Mutex::default(),
            grants: Mutex::default(),
        }
    }

    /// The same daemon holding users to `limits` (see [`crate::quota`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same daemon compiling for a host with `quirks` (found by the helper container).
    pub fn with_quirks(mut self, quirks: HostQuirks) -> Self {
        self.quirks = quirks;
        self
    }

    /// The production daemon: real `nft`, state in `/var/lib/alcatraz`, the limits of
    /// [`LIMITS_FILE`] (or the defaults).
    pub fn system() -> Self {
        let (limits, problem) = Limits::load(std::path::Path::new(LIMITS_FILE));
        if let Some(problem) = problem {
            tracing::error!("{problem}");
        }
        Daemon::new(Box::new(Nft::default()), Store::system()).with_limits(limits)
    }

    /// The ruleset of a saved project on this host now.
    fn batch(&self, spec: &NetSpec, owner_uid: u32) -> Ruleset {
        let onlink = self.onlink.lock().unwrap_or_else(|e| e.into_inner());
        replace_batch_on(
            spec,
            owner_uid,
            self.quirks,
            onlink.as_deref().unwrap_or_default(),
        )
    }

    /// Takes the host's on-link prefixes; when they changed since the last reading, re-applies
    /// every applied project with deny sets (not `lan-access = ["*"]`). Returns what could not
    /// be re-applied.
    pub fn set_onlink(&self, nets: Vec<IpNet>) -> Vec<String> {
        let _lock = match self.store.lock() {
            Ok(l) => l,
            Err(e) => return vec![format!("updating the on-link networks: {e}")],
        };
        {
            let mut current = self.onlink.lock().unwrap_or_else(|e| e.into_inner());
            let first = current.is_none();
            if current.as_ref() == Some(&nets) {
                return vec![];
            }
            tracing::info!(networks = ?nets, "the host's on-link networks");
            *current = Some(nets);
            if first {
                return vec![];
            }
        }
        let saved = match self.store.all() {
            Ok((saved, _)) => saved,
            Err(e) => return vec![format!("updating the on-link networks: {e}")],
        };
        saved
            .iter()
            .filter(|s| !s.spec.allow_all)
            .filter_map(|s| {
                let table = s.spec.table_name();
                if !matches!(self.firewall.has_alca_table(&table), Ok(true)) {
                    return None;
                }
                let batch = self.batch(&s.spec, s.owner_uid);
                self.replace_keeping_answers(&batch, &s.spec, s.spec.internet.as_ref())
                    .err()
                    .map(|e| {
                        format!(
                            "re-applying {} for new on-link networks: {e}",
                            s.spec.project
                        )
                    })
            })
            .collect()
    }

    /// The limits users are held to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Installs or replaces a validated spec on behalf of `caller`, claiming its bridge (see
    /// [`crate::claims`]); `bridge_present` says whether the bridge interface exists now.
    pub fn apply(&self, spec: NetSpec, caller: u32, bridge_present: bool) -> Result<(), NetdError> {
        let _lock = self.store.lock()?;
        let previous = self.store.load(&spec.project)?;
        let owner_uid = match &previous {
            Some(p) => {
                check_owner(&spec.project, p.owner_uid, caller)?;
                p.owner_uid
            }
            None if caller != 0 && self.table_exists(&spec.project)? => {
                return Err(NetdError::NotOwner(format!(
                    "project {} has rules but no saved owner; only root may replace them",
                    spec.project
                )))
            }
            None => caller,
        };
        let saved = previous.is_some();
        self.claim_locked(&spec, owner_uid, caller, bridge_present, saved)?;
        let batch = self.batch(&spec, owner_uid);
        let saved = Saved { owner_uid, spec };
        self.store.save(&saved)?;
        let before = previous.as_ref().and_then(|p| p.spec.internet.as_ref());
        let kept = match self.replace_keeping_answers(&batch, &saved.spec, before) {
            Ok(kept) => kept,
            Err(e) => {
                self.roll_back(&saved.spec.project, previous)?;
                return Err(e.into());
            }
        };
        if let Some(old) = previous.filter(|p| p.spec != saved.spec) {
            let proxy_changed = old.spec.proxy != saved.spec.proxy;
            let judged = kept_elements::as_cut_by(&saved.spec, &kept);
            self.firewall
                .cut_connections(&saved.spec.bridge, Some(&judged), proxy_changed);
        }
        self.reinstate_grants(&saved.spec);
        Ok(())
    }

    /// Claims the bridge of `project` for `caller` before its network exists (every project,
    /// also those without rules). Claiming one's own claim again is not an error.
    pub fn claim(&self, project: &str, caller: u32, bridge_present: bool) -> Result<(), NetdError> {
        let _lock = self.store.lock()?;
        let previous = self.store.load(project)?;
        let saved = previous.is_some();
        let owner_uid = match &previous {
            Some(p) => {
                check_owner(project, p.owner_uid, caller)?;
                p.owner_uid
            }
            None => caller,
        };
        let spec = previous.map(|p| p.spec).unwrap_or_else(|| NetSpec {
            project: project.to_string(),
            bridge: bridge_name(project),
            allow_all: true,
            allow: vec![],
            proxy: None,
            dns: vec![],
            internet: None,
        });
        self.claim_locked(&spec, owner_uid, caller, bridge_present, saved)
    }

    /// The claim step of [`Daemon::apply`] and [`Daemon::claim`], under the state lock: refuses
    /// a name held by another project or user, or an existing bridge nobody claimed; a new
    /// claim counts against the quotas.
    fn claim_locked(
        &self,
        spec: &NetSpec,
        owner_uid: u32,
        caller: u32,
        bridge_present: bool,
        saved: bool,
    ) -> Result<(), NetdError> {
        let existing = self.store.load_claim(&spec.bridge)?;
        match judge(
            existing.as_ref(),
            &spec.project,
            owner_uid,
            caller,
            bridge_present,
            saved,
        )? {
            Verdict::Keep => match existing {
                Some(c) if c.released => Ok(self.store.save_claim(&Claim {
                    released: false,
                    ..c
                })?),
                _ => Ok(()),
            },
            Verdict::Take => {
                self.check_bridge_is_free(spec)?;
                if !saved {
                    self.check_quota(caller)?;
                }
                Ok(self
                    .store
                    .save_claim(&Claim::new(&spec.project, owner_uid))?)
            }
        }
    }

    /// One more project for `caller` must stay within [`Limits`]: held claims are counted
    /// (every project has one), read only when there could be enough to matter.
    fn check_quota(&self, caller: u32) -> Result<(), NetdError> {
        if caller == 0 {
            return Ok(());
        }
        let (claims, _) = self.store.all_claims()?;
        let held: Vec<&Claim> = claims.iter().filter(|c| !c.released).collect();
        let owned = held.iter().filter(|c| c.owner_uid == caller).count();
        self.limits.check_new_project(caller, owned, held.len())
    }

    /// A bridge belongs to one project: the ids of two projects may share the ten digits that
    /// name the bridge, and the other project's rules (a proxy DNAT, an allow rule) would then
    /// act on this project's containers. Only the saved projects whose id names the same
    /// bridge are read (an Apply must not read every project's file).
    fn check_bridge_is_free(&self, spec: &NetSpec) -> Result<(), NetdError> {
        let other = self
            .store
            .project_ids()?
            .into_iter()
            .filter(|id| *id != spec.project && bridge_name(id) == spec.bridge)
            .find_map(|id| self.store.load(&id).ok().flatten());
        match other {
            Some(other) => Err(NetdError::NotOwner(format!(
                "bridge {} already belongs to project {} (uid {}); remove that project first",
                spec.bridge, other.spec.project, other.owner_uid
            ))),
            None => Ok(()),
        }
    }

    fn roll_back(&self, project: &str, previous: Option<Saved>) -> Result<(), NetdError> {
        match previous {
            Some(p) => self.store.save(&p)?,
            None => self.store.delete(project)?,
        }
        Ok(())
    }

    /// Removes a project's rules and saved spec. Absent projects are not an error; a table with
    /// no saved spec (owner unknown) may only be removed by root. The bridge's claim is dropped,
    /// or kept for its owner (released) while the bridge still exists (`bridge_present`).
    pub fn remove(
        &self,
        project: &str,
        caller: u32,
        bridge_present: bool,
    ) -> Result<(), NetdError> {
        let _lock = self.store.lock()?;
        match self.store.load(project)? {
            Some(saved) => check_owner(project, saved.owner_uid, caller)?,
            None if caller != 0 && self.table_exists(project)? => {
                return Err(NetdError::NotOwner(format!(
                    "project {project} has rules but no saved owner; only root may remove them"
                )))
            }
            None => {}
        }
        let bridge = bridge_name(project);
        let claim = self.store.load_claim(&bridge)?;
        let ours = claim.filter(|c| c.project == project);
        if let Some(c) = &ours {
            check_owner(project, c.owner_uid, caller)?;
        }
        self.firewall
            .apply_project(&delete_batch(project), &bridge, false)?;
        self.firewall.cut_connections(&bridge, None, true);
        self.forget_grants(project);
        self.store.delete(project)?;
        match ours {
            Some(c) if bridge_present => self.store.save_claim(&Claim {
                released: true,
                ..c
            })?,
            Some(_) => self.store.delete_claim(&bridge)?,
            None => {}
        }
        Ok(())
    }

    fn table_exists(&self, project: &str) -> Result<bool, NetdError> {
        Ok(self.firewall.has_alca_table(&table_name(project))?)
    }

    /// One project's state, for its owner or root: for a saved project, the live table
    /// compared with what its spec compiles to ([`probe_sets::check_live`], as verify does),
    /// read over netlink ([`Firewall::live_shape`]).
    pub fn status(&self, project: &str, caller: u32) -> Result<ProjectStatus, NetdError> {
        match self.store.load(project)? {
            Some(saved) => {
                check_owner(project, saved.owner_uid, caller)?;
                let table = table_name(project);
                let expected = self.batch(&saved.spec, saved.owner_uid);
                let live = self.firewall.live_shape(&table, &expected)?;
                let problems = match &live {
                    Some(live) => probe_sets::check_live(live, &expected),
                    None => Vec::new(),
                };
                Ok(ProjectStatus {
                    project: project.into(),
                    owner_uid: saved.owner_uid,
                    saved: true,
                    applied: live.is_some() && problems.is_empty(),
                    problems,
                })
            }
            None => self.unsaved_status(project, caller),
        }
    }

    fn unsaved_status(&self, project: &str, caller: u32) -> Result<ProjectStatus, NetdError> {
        let applied = self.table_exists(project)?;
        match () {
            () if applied && caller != 0 => Err(NetdError::NotOwner(format!(
                "project {project} has rules but no saved owner; only root may inspect them"
            ))),
            () => Ok(ProjectStatus {
                project: project.into(),
                owner_uid: caller,
                saved: false,
                applied,
                problems: Vec::new(),
            }),
        }
    }

    /// The netlink port the firewall writes from (see [`crate::heal`]).
    pub fn own_port(&self) -> u32 {
        self.firewall.own_port()
    }

    /// Whether project tables are owned by the daemon and outlive it (kernel >= 6.9).
    pub fn owned_tables(&self) -> bool {
        self.firewall.owned_tables()
    }

    /// Restores the guard and the saved projects among `touched` (table names; `""`: all)
    /// after someone else changed them ([`crate::heal`]); the tables it restored.
    pub fn heal(&self, touched: &BTreeSet<String>) -> Result<Vec<String>, NetdError> {
        let _lock = self.store.lock()?;
        let all = touched.contains("");
        let (saved, _) = self.store.all()?;
        let mut healed = Vec::new();
        if all || touched.contains(GUARD_TABLE) {
            self.install_guard(&saved)?;
            healed.push(GUARD_TABLE.to_string());
        }
        for s in &saved {
            let table = s.spec.table_name();
            if all || touched.contains(&table) {
                let batch = self.batch(&s.spec, s.owner_uid);
                self.replace_keeping_answers(&batch, &s.spec, s.spec.internet.as_ref())?;
                healed.push(table);
            }
        }
        Ok(healed)
    }

    /// (Re-)creates the guard, with the bridges of the saved projects whose table is live as
    /// the ones that have rules.
    fn install_guard(&self, saved: &[Saved]) -> Result<(), FirewallError> {
        let tables: BTreeSet<String> = self.firewall.alca_tables()?.into_iter().collect();
        let ruled: Vec<String> = saved
            .iter()
            .filter(|s| tables.contains(&s.spec.table_name()))
            .map(|s| s.spec.bridge.clone())
            .collect();
        self.firewall.install_guard(&ruled)
    }

    /// The caller's projects (every project and stray table for root).
    pub fn list(&self, caller: u32) -> Result<Vec<ProjectStatus>, NetdError> {
        let tables: BTreeSet<String> = self.firewall.alca_tables()?.into_iter().collect();
        let (saved, _) = self.store.all()?;
        let mut out: Vec<ProjectStatus> = saved
            .iter()
            .filter(|s| caller == 0 || s.owner_uid == caller)
            .map(|s| ProjectStatus {
                project: s.spec.project.clone(),
                owner_uid: s.owner_uid,
                saved: true,
                applied: tables.contains(&s.spec.table_name()),
                problems: Vec::new(),
            })
            .collect();
        if caller == 0 {
            out.extend(
                stray_projects(&tables, &saved).map(|project| ProjectStatus {
                    project,
                    owner_uid: 0,
                    saved: false,
                    applied: true,
                    problems: Vec::new(),
                }),
            );
        }
        Ok(out)
    }

    /// The saved project of `caller` (or any, for root); refused when nothing is saved.
    /// Refuses `caller` when `project`'s saved spec or its bridge's claim belongs to another
    /// user (a project nobody holds yet may be acted for): the helper's resolver requests.
    pub fn check_holder(&self, project: &str, caller: u32) -> Result<(), NetdError> {
        if let Some(saved) = self.store.load(project)? {
            return check_owner(project, saved.owner_uid, caller);
        }
        match self.store.load_claim(&bridge_name(project))? {
            Some(claim) => check_owner(project, claim.owner_uid, caller),
            None => Ok(()),
        }
    }

    fn owned(&self, project: &str, caller: u32) -> Result<Saved, NetdError> {
        let saved = self.store.load(project)?.ok_or_else(|| {
            NetdError::InvalidRequest(format!(
                "project {project} has no network rules; run `alca up` first"
            ))
        })?;
        check_owner(project, saved.owner_uid, caller)?;
        Ok(saved)
    }

    /// Checks the live table against its saved spec and, when the probe fence is intact,
    /// arms `probes` (see [`probe_sets`]). Only tightens: armed probes are recorded or dropped.
    pub fn arm_probes(
        &self,
        project: &str,
        caller: u32,
        probes: &[Probe],
    ) -> Result<LiveCheck, NetdError> {
        let _lock = self.store.lock()?;
        let saved = self.owned(project, caller)?;
        self.check_and_arm(&saved, probes)
    }

    /// Which armed probes got past isolation, and the denied log; then disarms.
    pub fn probe_outcome(&self, project: &str, caller: u32) -> Result<Outcome, NetdError> {
        let _lock = self.store.lock()?;
        self.owned(project, caller)?;
        let (outcome, disarm) = self.read_outcome(&table_name(project))?;
        self.disarm(&disarm)?;
        Ok(outcome)
    }

    /// The owner and output-hook batch of `spec` for a rootless container's namespace
    /// ([`crate::netns_rules`]): a project saved on the host keeps its owner (only that user
    /// or root may use its id), a new one is the caller's; with the table flags the daemon's
    /// own tables get.
    pub fn netns_batch(
        &self,
        spec: &NetSpec,
        caller: u32,
    ) -> Result<(u32, Ruleset, TableOwner), NetdError> {
        let owner_uid = match self.store.load(&spec.project)? {
            Some(saved) => {
                check_owner(&spec.project, saved.owner_uid, caller)?;
                saved.owner_uid
            }
            None => caller,
        };
        let onlink = self.onlink.lock().unwrap_or_else(|e| e.into_inner());
        let batch = alca_ruleset::replace_batch_in_netns(
            spec,
            owner_uid,
            onlink.as_deref().unwrap_or_default(),
        );
        // Always owned: the daemon keeps the writing socket open while the container lives;
        // persistent too where the kernel has it.
        let owner = if self.firewall.owned_tables() {
            TableOwner::SocketPersistent
        } else {
            TableOwner::Socket
        };
        Ok((owner_uid, batch, owner))
    }

    /// The bridge of one of the caller's projects (the one `ProbeFrom`'s namespace must be on).
    pub fn project_bridge(&self, project: &str, caller: u32) -> Result<String, NetdError> {
        Ok(self.owned(project, caller)?.spec.bridge)
    }

    /// [`Daemon::arm_probes`], then a connect to each of `targets` from inside `netns` (which
    /// the caller showed is on the project's bridge), then [`Daemon::probe_outcome`], under
    /// one lock. Nothing is probed when the fence is not in place. The disarm is left to
    /// [`Daemon::disarm_after_probe`], with the lock, so the reply need not wait for it.
    pub fn probe_from(
        &self,
        project: &str,
        caller: u32,
        netns: &File,
        probes: &[Probe],
        targets: &[Key],
    ) -> Result<(ProbeReport, PendingDisarm), NetdError> {
        let probing = self.begin_probing(project)?;
        let check = {
            let _lock = self.store.lock()?;
            let saved = self.owned(project, caller)?;
            self.check_and_arm(&saved, probes)?
        };
        // The connects (up to a second each, in parallel) run without the state lock: other
        // projects' calls go on; this project's other probes wait for `probing`.
        let seen = if check.armed {
            netns_probe::connect_all(netns, targets)
        } else {
            Vec::new()
        };
        let lock = self.store.lock()?;
        let (outcome, disarm) = if check.armed {
            self.read_outcome(&table_name(project))?
        } else {
            Default::default()
        };
        let report = ProbeReport {
            check,
            seen,
            outcome,
        };
        Ok((
            report,
            PendingDisarm {
                _lock: lock,
                _probing: probing,
                disarm,
            },
        ))
    }

    /// Takes the project's probe slot, or refuses while another probe of it runs.
    fn begin_probing(&self, project: &str) -> Result<Probing, NetdError> {
        let mut busy = self.probing.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(project.to_string()) {
            return Err(NetdError::LimitReached(format!(
                "a verification of project {project} is already running; wait for it to finish"
            )));
        }
        Ok(Probing {
            busy: Arc::clone(&self.probing),
            project: project.to_string(),
        })
    }

    fn check_and_arm(&self, saved: &Saved, probes: &[Probe]) -> Result<LiveCheck, NetdError> {
        let table = table_name(&saved.spec.project);
        let Some(live) = self.firewall.list_table(&table)? else {
            return Ok(LiveCheck {
                applied: false,
                problems: vec![format!(
                    "table inet {table} is missing: nothing isolates it"
                )],
                armed: false,
            });
        };
        let expected = self.batch(&saved.spec, saved.owner_uid);
        let problems = probe_sets::check_live(&live, &expected);
        let armed = probe_sets::fence_ready(&live);
        if armed {
            self.firewall
                .apply_elements(&probe_sets::arm_batch(&table, probes))?;
        }
        Ok(LiveCheck {
            applied: true,
            problems,
            armed,
        })
    }

    /// The outcome of the armed probes, and the disarm still to run.
    fn read_outcome(&self, table: &str) -> Result<(Outcome, Disarm), NetdError> {
        let Some(live) = self.firewall.list_table(table)? else {
            return Ok((Outcome::default(), Disarm::default()));
        };
        let outcome = Outcome {
            passed: probe_sets::read_passed(&live),
            denied: probe_sets::read_denied(&live),
        };
        let armed = probe_sets::read_armed(&live);
        let logged: Vec<_> = outcome
            .denied
            .iter()
            .map(|d| d.key)
            .filter(|k| armed.contains(k))
            .collect();
        let disarm = Disarm {
            table: table.to_string(),
            fence: probe_sets::fence_ready(&live).then(|| probe_sets::disarm_batch(table)),
            forget: (!logged.is_empty()).then(|| probe_sets::forget_batch(table, &logged)),
        };
        Ok((outcome, disarm))
    }

    /// Removes the fence and the probes' own entries of the denied log.
    fn disarm(&self, disarm: &Disarm) -> Result<(), NetdError> {
        if let (Some(d), Some(f)) = (&disarm.fence, &disarm.forget) {
            // Both in one transaction; if an entry expired meanwhile the kernel refuses the
            // whole batch, and then each goes on its own below.
            if self.firewall.apply_elements(&d.clone().then(f)).is_ok() {
                return Ok(());
            }
        }
        if let Some(fence) = &disarm.fence {
            self.firewall.apply_elements(fence)?;
        }
        if let Some(forget) = &disarm.forget {
            // Best effort: an entry that expired meanwhile makes the kernel refuse the batch.
            if let Err(e) = self.firewall.apply_elements(forget) {
                let table = &disarm.table;
                tracing::warn!(table, "cannot drop the probes from the denied log: {e}");
            }
        }
        Ok(())
    }

    /// Runs the disarm a [`Daemon::probe_from`] left, then lets the next call in.
    pub fn disarm_after_probe(&self, pending: PendingDisarm) {
        if let Err(e) = self.disarm(&pending.disarm) {
            let table = &pending.disarm.table;
            tracing::warn!(
                table,
                "cannot disarm the probe fence (it expires by itself): {e}"
            );
        }
    }

    /// The project's log of denied attempts, most recent first.
    pub fn denied(&self, project: &str, caller: u32) -> Result<Vec<Denied>, NetdError> {
        self.owned(project, caller)?;
        let live = self.firewall.list_table(&table_name(project))?;
        Ok(live
            .map(|l| probe_sets::read_denied(&l))
            .unwrap_or_default())
    }

    /// Installs the guard first, then re-applies every saved spec (adopting the tables an
    /// earlier daemon left) and deletes `alca-` tables that have none (stale).
    pub fn restore(&self) -> Result<RestoreReport, NetdError> {
        let _lock = self.store.lock()?;
        let (saved, problems) = self.store.all()?;
        let mut report = RestoreReport {
            problems: problems.iter().map(ToString::to_string).collect(),
            ..Default::default()
        };
        match self.install_guard(&saved) {
            Err(e) if owned_elsewhere(&e) => report.owned_elsewhere.push(GUARD_TABLE.into()),
            other => other?,
        }
        for s in &saved {
            // Projects saved before claims existed: their bridge is theirs.
            if matches!(self.store.load_claim(&s.spec.bridge), Ok(None)) {
                if let Err(e) = self
                    .store
                    .save_claim(&Claim::new(&s.spec.project, s.owner_uid))
                {
                    report
                        .problems
                        .push(format!("claiming {}: {e}", s.spec.bridge));
                }
            }
            let batch = self.batch(&s.spec, s.owner_uid);
            match self.replace_keeping_answers(&batch, &s.spec, s.spec.internet.as_ref()) {
                Ok(_) => report.reapplied.push(s.spec.project.clone()),
                Err(e) if owned_elsewhere(&e) => report.owned_elsewhere.push(s.spec.table_name()),
                Err(e) => report
                    .problems
                    .push(format!("re-applying {}: {e}", s.spec.project)),
            }
        }
        // A table whose saved file exists but is unreadable is kept: it may still protect a
        // running container, and an admin has to look at it anyway.
        let unreadable: Vec<String> = report.problems.clone();
        let tables: BTreeSet<String> = self.firewall.alca_tables()?.into_iter().collect();
        for project in stray_projects(&tables, &saved) {
            if unreadable
                .iter()
                .any(|p| p.contains(&format!("{project}.json")))
            {
                continue;
            }
            let sweep = delete_batch(&project);
            match self
                .firewall
                .apply_project(&sweep, &bridge_name(&project), false)
            {
                Ok(()) => report.swept.push(project),
                Err(e) => report.problems.push(format!("sweeping {project}: {e}")),
            }
        }
        Ok(report)
    }

    /// Uninstall: deletes every `alca-` table and forgets every saved spec.
    pub fn purge(&self) -> Result<Vec<String>, NetdError> {
        let _lock = self.store.lock()?;
        let mut removed = vec![];
        for table in self.firewall.alca_tables()? {
            let project = table.trim_start_matches(NAME_PREFIX).to_string();
            self.firewall.apply(&delete_batch(&project))?;
            removed.push(table);
        }
        let (saved, _) = self.store.all()?;
        for s in saved {
            self.store.delete(&s.spec.project)?;
        }
        let (claims, _) = self.store.all_claims()?;
        for c in claims {
            self.store.delete_claim(&c.bridge)?;
        }
        Ok(removed)
    }
}

/// Projects that have an `alca-<id>` table but no saved spec.
fn stray_projects<'a>(
    tables: &'a BTreeSet<String>,
    saved: &'a [Saved],
) -> impl Iterator<Item = String> + 'a {
    tables
        .iter()
        .filter_map(|t| t.strip_prefix(NAME_PREFIX))
        .filter(|p| validate_project_id(p).is_ok())
        .filter(move |p| !saved.iter().any(|s| s.spec.project == *p))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::NamesTables;
    use alca_kernel::set_elements::ElementBatch;
    use alca_ruleset::types::Command;
    use serde_json::Value;

    /// In-memory firewall: a set of table names; can be told to refuse the next batch.
    #[derive(Clone, Default)]
    struct FakeNft {
        tables: Arc<Mutex<BTreeSet<String>>>,
        refuse: Arc<Mutex<bool>>,
        /// Every batch applied, as text.
        log: Arc<Mutex<Vec<String>>>,
    }

    impl FakeNft {
        /// Refuses a batch when told to, else logs it (`what`, as text).
        fn take(&self, batch: &impl NamesTables, what: String) -> Result<(), FirewallError> {
            crate::firewall::ensure_only_alca(batch)?;
            if std::mem::take(&mut *self.refuse.lock().unwrap()) {
                return Err(FirewallError::Nft("refused".into()));
            }
            self.log.lock().unwrap().push(what);
            Ok(())
        }
    }

    impl Firewall for FakeNft {
        fn apply(&self, batch: &Ruleset) -> Result<(), FirewallError> {
            self.take(batch, alca_ruleset::nft_json(batch).to_string())?;
            let mut tables = self.tables.lock().unwrap();
            for cmd in &batch.commands {
                match cmd {
                    Command::AddTable(name) => tables.insert(name.clone()),
                    Command::DeleteTable(name) => tables.remove(name),
                    _ => false,
                };
            }
            Ok(())
        }

        fn apply_elements(&self, batch: &ElementBatch) -> Result<(), FirewallError> {
            self.take(batch, format!("{batch:?}"))
        }

        fn alca_tables(&self) -> Result<Vec<String>, FirewallError> {
            Ok(self.tables.lock().unwrap().iter().cloned().collect())
        }

        fn list_table(&self, _name: &str) -> Result<Option<Value>, FirewallError> {
            Ok(None)
        }
    }

    fn spec(project: &str) -> NetSpec {
        NetSpec::isolated(project)
    }

    fn daemon() -> (Daemon, FakeNft, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let nft = FakeNft::default();
        let daemon = Daemon::new(Box::new(nft.clone()), Store::new(dir.path()));
        (daemon, nft, dir)
    }

    #[test]
    fn owner_may_replace_and_remove_others_may_not() {
        let (e, nft, _dir) = daemon();
        e.apply(spec("aaaaaaaa"), 1001, false).unwrap();
        assert!(nft.tables.lock().unwrap().contains("alca-aaaaaaaa"));
        assert!(matches!(
            e.apply(spec("aaaaaaaa"), 1002, false),
            Err(NetdError::NotOwner(_))
        ));
        assert!(matches!(
            e.remove("aaaaaaaa", 1002, false),
            Err(NetdError::NotOwner(_))
        ));
        assert!(matches!(
            e.status("aaaaaaaa", 1002),
            Err(NetdError::NotOwner(_))
        ));
        assert!(e.list(1002).unwrap().is_empty());
        assert_eq!(e.list(1001).unwrap().len(), 1);
        e.apply(spec("aaaaaaaa"), 0, false).unwrap();
        assert_eq!(e.status("aaaaaaaa", 1001).unwrap().owner_uid, 1001);
        e.remove("aaaaaaaa", 1001, false).unwrap();
        assert!(nft.tables.lock().unwrap().is_empty());
        assert!(!e.status("aaaaaaaa", 1001).unwrap().saved);
    }

    #[test]
    fn a_bridge_belongs_to_one_project() {
        let (e, nft, _dir) = daemon();
        e.apply(spec("0123456789aaaaaa"), 1001, false).unwrap();
        let mut squatter = spec("0123456789bbbbbb");
        assert_eq!(squatter.bridge, "alca-0123456789");
        squatter.proxy = Some("127.0.0.1:9".parse().unwrap());
        for caller in [1002, 1001, 0] {
            let err = e.apply(squatter.clone(), caller, false).unwrap_err();
            assert!(
                matches!(&err, NetdError::NotOwner(m) if m.contains("alca-0123456789")),
                "{err:?}"
            );
        }
        assert!(!nft.tables.lock().unwrap().contains("alca-0123456789bbbbbb"));
        e.remove("0123456789aaaaaa", 1001, false).unwrap();
        e.apply(squatter, 1002, false).unwrap();
    }

    #[test]
    fn tables_without_a_saved_owner_are_replaced_by_root_only() {
        let (e, nft, _dir) = daemon();
        nft.tables.lock().unwrap().insert("alca-cccccccc".into());
        assert!(matches!(
            e.apply(spec("cccccccc"), 1001, false),
            Err(NetdError::NotOwner(_))
        ));
        assert_eq!(e.store.load("cccccccc").unwrap(), None);
        e.apply(spec("cccccccc"), 0, false).unwrap();
    }

    #[test]
    fn refused_transaction_keeps_the_previous_state() {
        let (e, nft, _dir) = daemon();
        e.apply(spec("aaaaaaaa"), 1001, false).unwrap();
        *nft.refuse.lock().unwrap() = true;
        let mut wider = spec("aaaaaaaa");
        wider.allow_all = true;
        assert!(matches!(
            e.apply(wider, 1001, false),
            Err(NetdError::ApplyFailed(_))
        ));
        let (saved, _) = e.store.all().unwrap();
        assert!(!saved[0].spec.allow_all, "rolled back to the old spec");
        *nft.refuse.lock().unwrap() = true;
        assert!(e.apply(spec("bbbbbbbb"), 1001, false).is_err());
        assert_eq!(e.store.load("bbbbbbbb").unwrap(), None);
    }

    #[test]
    fn restore_reapplies_saved_and_sweeps_strays() {
        let (e, nft, _dir) = daemon();
        e.apply(spec("aaaaaaaa"), 1001, false).unwrap();
        {
            let mut t = nft.tables.lock().unwrap();
            t.clear();
            t.insert("alca-deadbeefdeadbeef".into());
            t.insert("alca-not-a-project".into());
        }
        let report = e.restore().unwrap();
        assert_eq!(report.reapplied, vec!["aaaaaaaa"]);
        assert_eq!(report.swept, vec!["deadbeefdeadbeef"]);
        let tables = nft.tables.lock().unwrap().clone();
        assert!(tables.contains("alca-aaaaaaaa"));
        assert!(!tables.contains("alca-deadbeefdeadbeef"));
        assert!(
            tables.contains("alca-not-a-project"),
            "only project-shaped names are swept"
        );
    }

    #[test]
    fn unowned_tables_are_root_only_and_purge_clears_all() {
        let (e, nft, _dir) = daemon();
        nft.tables.lock().unwrap().insert("alca-cccccccc".into());
        assert!(matches!(
            e.remove("cccccccc", 1001, false),
            Err(NetdError::NotOwner(_))
        ));
        e.apply(spec("aaaaaaaa"), 1001, false).unwrap();
        assert_eq!(e.list(0).unwrap().len(), 2);
        let removed = e.purge().unwrap();
        assert_eq!(removed.len(), 2);
        assert!(nft.tables.lock().unwrap().is_empty());
        assert!(e.list(0).unwrap().is_empty());
    }

    #[test]
    fn squats_on_a_claimed_or_unclaimed_bridge_are_refused() {
        let (e, nft, _dir) = daemon();
        // A lan-access = ["*"] project: claimed before its network exists, no rules.
        e.claim("0123456789aaaaaa", 1001, false).unwrap();
        e.claim("0123456789aaaaaa", 1001, true).unwrap();
        let mut squatter = spec("0123456789bbbbbb");
        squatter.proxy = Some("10.0.0.1:9".parse().unwrap());
        for present in [false, true] {
            let err = e.apply(squatter.clone(), 1002, present).unwrap_err();
            assert!(
                matches!(&err, NetdError::NotOwner(m) if m.contains("claimed")),
                "{err:?}"
            );
            assert!(e.claim("0123456789bbbbbb", 1002, present).is_err());
        }
        // The same project id, known to another user, is not theirs either.
        assert!(e.apply(spec("0123456789aaaaaa"), 1002, true).is_err());
        // Removed while its network still exists: reserved for the owner.
        e.remove("0123456789aaaaaa", 1001, true).unwrap();
        assert!(e.apply(squatter.clone(), 1002, true).is_err());
        e.apply(spec("0123456789aaaaaa"), 1001, true).unwrap();
        e.remove("0123456789aaaaaa", 1001, false).unwrap();
        // An existing bridge nobody claimed (another user's network, or the create→Apply race).
        let err = e.apply(spec("ddddddddddaaaaaa"), 1002, true).unwrap_err();
        assert!(matches!(&err, NetdError::NotOwner(m) if m.contains("no project claimed")));
        assert!(!nft.tables.lock().unwrap().contains("alca-0123456789bbbbbb"));
        assert!(!nft.tables.lock().unwrap().contains("alca-ddddddddddaaaaaa"));
        // Once the name is free, anyone may take it.
        e.apply(squatter, 1002, false).unwrap();
    }

    #[test]
    fn the_project_quota_holds_per_user_and_for_the_host() {
        let (e, _nft, _dir) = daemon();
        let e = e.with_limits(Limits {
            projects_per_user: 2,
            projects: 3,
            ..Limits::default()
        });
        e.apply(spec("a1a1a1a1a1"), 1001, false).unwrap();
        e.claim("a2a2a2a2a2", 1001, false).unwrap();
        let err = e.apply(spec("a3a3a3a3a3"), 1001, false).unwrap_err();
        assert!(
            matches!(&err, NetdError::LimitReached(m) if m.contains("projects_per_user = 2")),
            "{err:?}"
        );
        e.apply(spec("a1a1a1a1a1"), 1001, false).unwrap();
        e.claim("b1b1b1b1b1", 1002, false).unwrap();
        let err = e.claim("b2b2b2b2b2", 1002, false).unwrap_err();
        assert!(matches!(&err, NetdError::LimitReached(m) if m.contains("projects = 3")));
        e.apply(spec("c1c1c1c1c1"), 0, false).unwrap();
        e.remove("a2a2a2a2a2", 1001, false).unwrap();
        assert!(
            e.claim("a3a3a3a3a3", 1001, false).is_err(),
            "root's count for the host"
        );
        e.remove("c1c1c1c1c1", 0, false).unwrap();
        e.claim("a3a3a3a3a3", 1001, false).unwrap();
    }

    #[test]
    fn restore_claims_the_bridges_of_projects_saved_before_claims() {
        let (e, _nft, dir) = daemon();
        e.store
            .save(&Saved {
                owner_uid: 1001,
                spec: spec("0123456789aaaaaa"),
            })
            .unwrap();
        assert!(e.apply(spec("0123456789bbbbbb"), 1002, false).is_err());
        e.restore().unwrap();
        let claim = e.store.load_claim("alca-0123456789").unwrap().unwrap();
        assert_eq!(
            (claim.project.as_str(), claim.owner_uid),
            ("0123456789aaaaaa", 1001)
        );
        assert!(dir.path().join("claims/alca-0123456789.json").is_file());
    }

    #[test]
    fn new_onlink_networks_reapply_the_projects_with_deny_sets() {
        let (e, nft, _dir) = daemon();
        let net = |s: &str| -> IpNet { s.parse().unwrap() };
        assert!(e.set_onlink(vec![net("192.88.99.128/25")]).is_empty());
        e.apply(spec("aaaaaaaa"), 1001, false).unwrap();
        let mut open = spec("bbbbbbbb");
        open.allow_all = true;
        e.apply(open, 1001, false).unwrap();
        let log = |nft: &FakeNft| nft.log.lock().unwrap().clone();
        assert!(log(&nft)[0].contains("192.88.99.128"), "{}", log(&nft)[0]);
        let before = log(&nft).len();
        assert!(e.set_onlink(vec![net("192.88.99.128/25")]).is_empty());
        assert_eq!(log(&nft).len(), before, "no change, nothing re-applied");
        assert!(e.set_onlink(vec![net("2001:db8:77::/64")]).is_empty());
        let after = log(&nft);
        assert_eq!(after.len(), before + 1, "only the project with deny sets");
        assert!(after[before].contains("alca-aaaaaaaa") && after[before].contains("2001:db8:77::"));
        assert!(!after[before].contains("192.88.99.128"));
    }
}
