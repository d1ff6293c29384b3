//! The names both sides of `io.github.alcatraz.Netd1` agree on: the bus name, object path and
//! interface, and the polkit actions the daemon checks (the shipped policy files name them too).

/// Well-known bus name the daemon owns on the system bus.
pub const BUS_NAME: &str = "io.github.alcatraz.Netd1";
/// Object path of the one exported object.
pub const OBJECT_PATH: &str = "/io/github/alcatraz/Netd1";
/// Interface name (same as the bus name).
pub const INTERFACE: &str = "io.github.alcatraz.Netd1";

/// polkit action for installing or replacing a project's rules.
pub const ACTION_APPLY: &str = "io.github.alcatraz.netd.apply";
/// polkit action for removing a project's rules.
pub const ACTION_REMOVE: &str = "io.github.alcatraz.netd.remove";
/// polkit action for reading state and verifying (Status, List, probes, the denied log): asked
/// without interaction, so only members of `alcatraz` (and root) may use the daemon at all.
pub const ACTION_READ: &str = "io.github.alcatraz.netd.read";
