//! What `Status` and `List` report about a project, over D-Bus and through the helper container.

use serde::{Deserialize, Serialize};

/// One project as `Status` and `List` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "dbus", derive(zbus::zvariant::Type))]
pub struct ProjectStatus {
    pub project: String,
    pub owner_uid: u32,
    /// A spec is saved and will be re-applied at start.
    pub saved: bool,
    /// The project's `inet alca-<id>` table exists right now and, for a saved project, holds
    /// what its spec compiles to.
    pub applied: bool,
    /// How the live table differs from the saved spec (empty when it matches or is missing).
    pub problems: Vec<String>,
}
