//! Unit-test doubles for the lifecycle: a [`FakeRuntime`] that keeps containers and networks
//! in memory and a [`RecordingGuard`], both writing every call to one shared [`Log`] so a test
//! sees the order of runtime and guard calls (rules before start). Real runtimes and the real
//! daemon keep their end-to-end suites.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::rc::Rc;

use alca_contract::NetSpec;

use crate::network::NetworkGuard;
use crate::runtime::{
    ContainerInfo, ContainerSpec, ContainerState, ExecSpec, NetworkInfo, NetworkSpec, Runtime,
    RuntimeError, RuntimeKind,
};

/// Every call, in order, as `runtime.<op> <arg>` or `guard.<op> <arg>`.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: String) {
        self.0.borrow_mut().push(entry);
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.borrow().clone()
    }

    /// Index of the first entry starting with `prefix`.
    pub fn find(&self, prefix: &str) -> Option<usize> {
        self.0.borrow().iter().position(|e| e.starts_with(prefix))
    }

    pub fn has(&self, prefix: &str) -> bool {
        self.find(prefix).is_some()
    }
}

/// The gateway the fake networks report.
pub const GATEWAY: [u8; 4] = [10, 89, 0, 1];

/// An in-memory runtime.
pub struct FakeRuntime {
    pub kind: RuntimeKind,
    pub rootless: bool,
    pub log: Log,
    pub containers: RefCell<BTreeMap<String, ContainerInfo>>,
    pub networks: RefCell<BTreeMap<String, NetworkInfo>>,
    /// The container specs created, in order.
    pub created: RefCell<Vec<ContainerSpec>>,
    /// Commands run in a container exit non-zero.
    pub exec_fails: bool,
}

impl FakeRuntime {
    pub fn new(kind: RuntimeKind, log: &Log) -> FakeRuntime {
        FakeRuntime {
            kind,
            rootless: false,
            log: log.clone(),
            containers: RefCell::default(),
            networks: RefCell::default(),
            created: RefCell::default(),
            exec_fails: false,
        }
    }

    fn record(&self, op: &str, arg: &str) {
        self.log.push(format!("runtime.{op} {arg}"));
    }

    /// Adds a network as if an earlier `up` had made it.
    pub fn add_network(&self, name: &str) {
        self.networks.borrow_mut().insert(
            name.to_string(),
            NetworkInfo {
                name: name.to_string(),
                bridge: None,
                gateways: vec![IpAddr::from(GATEWAY)],
                labels: BTreeMap::new(),
            },
        );
    }

    pub fn state_of(&self, name: &str) -> Option<ContainerState> {
        self.containers.borrow().get(name).map(|c| c.state.clone())
    }
}

impl Runtime for FakeRuntime {
    fn kind(&self) -> RuntimeKind {
        self.kind
    }

    fn rootless(&self) -> bool {
        self.rootless
    }

    fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        self.record("has_image", image);
        Ok(true)
    }

    fn pull_image(&self, image: &str) -> Result<(), RuntimeError> {
        self.record("pull_image", image);
        Ok(())
    }

    fn create_network(&self, spec: &NetworkSpec) -> Result<NetworkInfo, RuntimeError> {
        self.record("create_network", &spec.name);
        self.add_network(&spec.name);
        Ok(self.networks.borrow()[&spec.name].clone())
    }

    fn network(&self, name: &str) -> Result<Option<NetworkInfo>, RuntimeError> {
        Ok(self.networks.borrow().get(name).cloned())
    }

    fn list_networks(&self) -> Result<Vec<NetworkInfo>, RuntimeError> {
        Ok(self.networks.borrow().values().cloned().collect())
    }

    fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.record("remove_network", name);
        self.networks.borrow_mut().remove(name);
        Ok(())
    }

    fn create(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        self.record("create", &spec.name);
        self.created.borrow_mut().push(spec.clone());
        self.containers.borrow_mut().insert(
            spec.name.clone(),
            ContainerInfo {
                runtime: self.kind,
                name: spec.name.clone(),
                id: format!("id-{}", spec.name),
                state: ContainerState::Created,
                image: spec.image.clone(),
                created: String::new(),
                labels: spec.labels.iter().cloned().collect(),
                pid: None,
            },
        );
        Ok(())
    }

    fn init(&self, name: &str) -> Result<(), RuntimeError> {
        self.record("init", name);
        match self.containers.borrow_mut().get_mut(name) {
            Some(c) => {
                c.pid = Some(4242);
                Ok(())
            }
            None => Err(RuntimeError::Other(format!("no container {name}"))),
        }
    }

    fn start(&self, name: &str) -> Result<(), RuntimeError> {
        self.record("start", name);
        match self.containers.borrow_mut().get_mut(name) {
            Some(c) => {
                c.state = ContainerState::Running;
                Ok(())
            }
            None => Err(RuntimeError::Other(format!("no container {name}"))),
        }
    }

    fn stop(&self, name: &str) -> Result<(), RuntimeError> {
        self.record("stop", name);
        if let Some(c) = self.containers.borrow_mut().get_mut(name) {
            c.state = ContainerState::Stopped;
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), RuntimeError> {
        self.record("remove", name);
        self.containers.borrow_mut().remove(name);
        Ok(())
    }

    fn container(&self, name: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        Ok(self.containers.borrow().get(name).cloned())
    }

    fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        Ok(self.containers.borrow().values().cloned().collect())
    }

    fn exec_command(&self, spec: &ExecSpec) -> Command {
        self.record("exec", &spec.argv.join(" "));
        Command::new(if self.exec_fails { "false" } else { "true" })
    }
}

/// A guard that records its calls and the specs it was given; `refuse` makes `apply` fail
/// as a daemon refusing the rules would. Clones share what they record.
#[derive(Clone)]
pub struct RecordingGuard {
    pub log: Log,
    pub refuse: Option<String>,
    pub applied: Rc<RefCell<Vec<NetSpec>>>,
}

impl RecordingGuard {
    pub fn new(log: &Log) -> RecordingGuard {
        RecordingGuard {
            log: log.clone(),
            refuse: None,
            applied: Rc::default(),
        }
    }
}

impl NetworkGuard for RecordingGuard {
    fn claim(&self, project: &str) -> anyhow::Result<bool> {
        self.log.push(format!("guard.claim {project}"));
        Ok(true)
    }

    fn apply(&self, spec: &NetSpec) -> anyhow::Result<()> {
        self.log.push(format!("guard.apply {}", spec.project));
        if let Some(why) = &self.refuse {
            anyhow::bail!("{why}");
        }
        self.applied.borrow_mut().push(spec.clone());
        Ok(())
    }

    fn hold_netns_spec(&self, spec: &NetSpec) -> anyhow::Result<()> {
        self.log
            .push(format!("guard.hold_netns_spec {}", spec.project));
        if let Some(why) = &self.refuse {
            anyhow::bail!("{why}");
        }
        Ok(())
    }

    fn apply_in_netns(&self, spec: &NetSpec, pid: u32) -> anyhow::Result<()> {
        self.log
            .push(format!("guard.apply_in_netns {} {pid}", spec.project));
        if let Some(why) = &self.refuse {
            anyhow::bail!("{why}");
        }
        self.applied.borrow_mut().push(spec.clone());
        Ok(())
    }

    fn remove(&self, project: &str) -> anyhow::Result<()> {
        self.log.push(format!("guard.remove {project}"));
        Ok(())
    }

    fn is_applied(&self, _project: &str) -> anyhow::Result<bool> {
        Ok(!self.applied.borrow().is_empty())
    }
}
