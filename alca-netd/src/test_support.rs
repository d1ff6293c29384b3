//! Helpers shared by the daemon's unit tests (one definition instead of a copy per module).

use alca_contract::lan::Proto;
use alca_contract::probe::Key;

/// A TCP key.
pub fn key(addr: &str, port: u16) -> Key {
    Key {
        addr: addr.parse().unwrap(),
        proto: Proto::Tcp,
        port,
    }
}

/// A firewall that records every batch; tables are not tracked (the daemon's own tests do
/// that).
#[derive(Clone, Default)]
pub struct Recorder(pub std::sync::Arc<std::sync::Mutex<Vec<alca_ruleset::Ruleset>>>);

impl crate::firewall::Firewall for Recorder {
    fn apply(&self, batch: &alca_ruleset::Ruleset) -> Result<(), crate::firewall::FirewallError> {
        crate::firewall::ensure_only_alca(batch)?;
        self.0.lock().unwrap().push(batch.clone());
        Ok(())
    }
    fn apply_elements(
        &self,
        batch: &alca_kernel::set_elements::ElementBatch,
    ) -> Result<(), crate::firewall::FirewallError> {
        crate::firewall::ensure_only_alca(batch)
    }
    fn alca_tables(&self) -> Result<Vec<String>, crate::firewall::FirewallError> {
        Ok(vec![])
    }
    fn list_table(
        &self,
        _name: &str,
    ) -> Result<Option<serde_json::Value>, crate::firewall::FirewallError> {
        Ok(None)
    }
}
