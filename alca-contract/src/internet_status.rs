//! What the daemon tells about a project's `network.internet-access` at run time: the entries
//! its resolver must follow (with the live time-boxed grants), the mode and the size of the
//! allow sets. Replies of `InternetEntries`, `InternetStatus`, `Grant` and `Grants`, as JSON.

use serde::{Deserialize, Serialize};

use crate::internet::{InternetEntry, InternetSpec};

/// Indices of grants (in [`crate::internet::ResolvedAddr::entry`]) start here, above every
/// config entry's index; a grant's index is never reused while the daemon runs.
pub const GRANT_INDEX_BASE: u16 = 32_768;

/// What `InternetStatus` reports about one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetStatus {
    /// `open` (no list: `["*"]`), `list` (only the entries), `none` (`[]`: no internet).
    pub mode: String,
    /// The applied entries, as written in `internet-access`.
    pub entries: Vec<String>,
    /// Addresses in the allow sets right now (each expires by itself).
    pub elements: usize,
}

/// The entries the project's resolver must follow: the applied list, in order (an index into
/// it is a [`crate::internet::ResolvedAddr::entry`]), and the live grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetEntries {
    /// `None`: the project has no list (the internet is open; the resolver is not needed).
    pub internet: Option<InternetSpec>,
    /// Live time-boxed grants, each with the index the resolver reports its addresses under.
    #[serde(default)]
    pub grants: Vec<GrantInfo>,
}

/// A time-boxed grant as `Grant`, `Grants` and `InternetEntries` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantInfo {
    /// What the resolver puts in [`crate::internet::ResolvedAddr::entry`] for this grant.
    pub index: u16,
    pub entry: InternetEntry,
    pub remaining_secs: u32,
}
