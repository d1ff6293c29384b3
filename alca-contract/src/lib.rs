//! The contract between the unprivileged `alca` CLI and the root daemon `alca-netd`: the typed
//! network spec and its validation, the `lan-access`/`proxy` grammar, the request and probe
//! types and their bounded wire decoding, the bus and polkit names, the shipped system files,
//! and the helper-container protocol. Pure data and parsing: no I/O and no runtime. With the
//! `dbus` feature the named D-Bus errors, with `client` the blocking D-Bus client.

pub mod bus;
#[cfg(feature = "client")]
pub mod client;
pub mod deny_list;
#[cfg(feature = "dbus")]
pub mod errors;
pub mod helper_protocol;
pub mod internet;
pub mod internet_status;
pub mod lan;
pub mod net_spec;
pub mod oci_hook;
pub mod probe;
pub mod request;
pub mod resolver_channel;
pub mod resolver_spec;
pub mod shipped;
pub mod status;

pub use lan::{AllowRule, LanEntry, LanError, Proto, ProxyEntry};
pub use net_spec::{NetSpec, SpecError};
