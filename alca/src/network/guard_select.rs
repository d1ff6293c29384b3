//! Which [`NetworkGuard`] a command talks to: the `alca-netd` daemon on the system bus, else
//! the helper container, else [`Unavailable`] (which fails closed). Kept apart from both
//! guards so neither depends on the other.

use alca_contract::helper_protocol::CONTAINER_NAME;

use super::helper_container_guard::{helper_running, HelperGuard};
use super::netd_guard::NetdGuard;
use super::{NetworkGuard, Unavailable};

/// The guard `up` uses: on Linux the daemon on the system bus (a local D-Bus round trip), else
/// the helper container when it runs (always the helper on macOS; install refuses to set up
/// both), else [`Unavailable`] (which fails closed) with the reason. The helper is asked only
/// when needed: asking costs a runtime CLI call on every `up`, `down` and `status`.
pub fn connect_guard() -> Box<dyn NetworkGuard> {
    let daemon = if cfg!(target_os = "macos") {
        Err(format!(
            "the helper container {CONTAINER_NAME} is not running (run `alca network-helper \
             install`, no sudo needed)"
        ))
    } else {
        NetdGuard::connect()
    };
    match daemon {
        Ok(guard) => Box::new(guard),
        Err(_) if helper_running() => Box::new(HelperGuard::new()),
        Err(reason) => Box::new(Unavailable { reason }),
    }
}
