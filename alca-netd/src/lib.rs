//! alca-netd's library: the root daemon's parts (D-Bus service, authorization, quotas, the
//! engine ordering state and firewall changes, the store, the helper-container mode, probes,
//! self-heal, the guard table, conntrack). The contract it shares with the CLI is
//! `alca-contract`, the compiler `alca-ruleset`, the netlink writer `alca-kernel`.

pub mod auth;
pub mod claims;
pub mod conntrack;
pub mod engine;
pub mod firewall;
pub mod guard;
pub mod heal;
pub mod helper;
pub mod hostns;
pub mod links;
pub mod netns_probe;
pub mod observe;
pub mod onlink;
pub mod quota;
pub mod service;
pub mod set_elements;
pub mod store;
pub mod unit_limits;
