//! alca-netd's library: the typed network spec shared by the `alca` CLI and the root daemon,
//! its parser and validator, and the pure compiler from spec to nftables JSON.

pub mod compile;
pub mod host;
pub mod lan;
pub mod spec;

pub use lan::{AllowRule, LanEntry, LanError, Proto, ProxyEntry};
pub use spec::{NetSpec, SpecError};
