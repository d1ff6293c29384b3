//! alca-netd's library: the typed network spec shared by the `alca` CLI and the root daemon,
//! its parser and validator, and the pure compiler from spec to nftables JSON.

pub mod auth;
pub mod auth_cache;
pub mod claims;
pub mod client;
pub mod compile;
pub mod conntrack;
pub mod engine;
pub mod errors;
pub mod firewall;
pub mod guard;
pub mod heal;
pub mod helper;
pub mod hostns;
pub mod internet;
pub mod lan;
pub mod links;
pub mod netns_probe;
pub mod nfnl;
pub mod observe;
pub mod onlink;
pub mod quota;
pub mod request;
pub mod service;
pub mod set_elements;
pub mod shipped;
pub mod spec;
pub mod store;
pub mod table_names;
pub mod unit_limits;

pub use lan::{AllowRule, LanEntry, LanError, Proto, ProxyEntry};
pub use spec::{NetSpec, SpecError};
