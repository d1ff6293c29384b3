//! The per-project DNS resolver behind `network.internet-access`: an unprivileged process that
//! forwards only the names the project's list allows, REFUSEs (and logs) every other name, and,
//! before it answers, has the daemon put every address of an allowed answer into the project's
//! kernel allow sets, so the container's first connect never races the rule.
//!
//! DNS parsing is hickory's (`hickory-proto` messages, `hickory-server` listeners); nothing here
//! parses DNS by hand, and nothing here runs as root. The binary `alca-dns-resolver` is the
//! resolver of the helper container (macOS), started there by the daemon as an unprivileged
//! uid; on Linux the same resolver runs as `alca __serve-dns`.

pub mod answer;
pub mod channel_sink;
pub mod handler;
pub mod netd_sink;
pub mod policy;
pub mod query_log;
pub mod resolver_run;
pub mod serve;
pub mod sink;
pub mod static_zone;
pub mod upstream;

pub use handler::ResolverHandler;
pub use policy::Policy;
pub use serve::{bind, bind_before_up, Listening};
pub use sink::{AllowSink, SinkError};
