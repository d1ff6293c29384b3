//! alca-netd's library: the root daemon's parts (D-Bus service, authorization, quotas, the
//! daemon ordering state and firewall changes, the store, the helper-container mode, probes,
//! self-heal, the guard table, conntrack), and the OCI hook
//! (`--oci-hook`), a client of the daemon run by rootless Podman. The contract it shares with the CLI is
//! `alca-contract`, the compiler `alca-ruleset`, the netlink writer `alca-kernel`.

pub mod auth;
pub mod auth_cache;
pub mod bridge_links;
pub mod claims;
pub mod conntrack;
pub mod daemon;
pub mod firewall;
pub mod guard;
pub mod heal;
pub mod helper_container;
pub mod helper_netns;
pub mod helper_resolvers;
pub mod helper_socket;
pub mod netns_probe;
pub mod netns_rules;
pub mod oci_hook;
pub mod onlink;
pub mod probe_sets;
pub mod quota;
pub mod resolver_senders;
pub mod service;
pub mod store;
pub mod table_shape;
#[cfg(test)]
mod test_support;
pub mod unit_limits;
