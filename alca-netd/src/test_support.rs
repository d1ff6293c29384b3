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
