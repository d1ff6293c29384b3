//! Bus connections that gave up everything but a project resolver's calls.
//!
//! A project's DNS resolver parses untrusted DNS. When root starts it (rootful Podman), it
//! opens its bus connection as root and only then drops to `nobody`; the bus keeps crediting
//! that connection to uid 0. So before it reads a single DNS message the resolver calls
//! `NarrowToResolver(project)`, and from then on this daemon answers that connection's
//! `AllowResolved` and `InternetEntries` for that one project and refuses everything else
//! (`Apply`, `Remove`, grants, other projects). A resolver taken over through a DNS parsing bug
//! can then do no more than a working resolver does: add addresses the project's applied list
//! already allows. A unique bus name is never reused while the bus runs, so the narrowing holds
//! for the connection's whole life; names whose connection closed are let go.

use std::collections::HashMap;
use std::sync::Mutex;

use alca_contract::errors::NetdError;

/// Connections remembered at most; past it, closed ones are let go first, then new narrowings
/// are refused (the resolver then does not start: closed, never open).
pub const MAX_NARROWED: usize = 4096;

/// Unique bus name → the one project it may serve.
#[derive(Debug, Default)]
pub struct NarrowedSenders {
    senders: Mutex<HashMap<String, String>>,
}

impl NarrowedSenders {
    /// Narrows `sender` to `project`. Narrowing again to the same project is a no-op; to
    /// another is refused (a narrowed connection cannot widen itself). `still_connected` says
    /// whether a remembered name's connection is still on the bus, asked only when full.
    pub fn narrow(
        &self,
        sender: &str,
        project: &str,
        still_connected: impl Fn(&str) -> bool,
    ) -> Result<(), NetdError> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        match senders.get(sender) {
            Some(p) if p == project => return Ok(()),
            Some(p) => return Err(narrowed_to(p)),
            None => {}
        }
        if senders.len() >= MAX_NARROWED {
            senders.retain(|name, _| still_connected(name));
        }
        if senders.len() >= MAX_NARROWED {
            return Err(NetdError::LimitReached(format!(
                "{MAX_NARROWED} resolver connections are open; close some and start again"
            )));
        }
        senders.insert(sender.to_string(), project.to_string());
        Ok(())
    }

    /// Whether `sender` may make a call about `project`: `None` for a call no resolver makes
    /// (refused to every narrowed connection), `Some(project)` for a resolver's call about it.
    pub fn check(&self, sender: &str, project: Option<&str>) -> Result<(), NetdError> {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        match (senders.get(sender), project) {
            (None, _) => Ok(()),
            (Some(own), Some(asked)) if own == asked => Ok(()),
            (Some(own), _) => Err(narrowed_to(own)),
        }
    }

    /// Whether the bound is reached (the names' connections must then be asked about).
    pub fn full(&self) -> bool {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.len() >= MAX_NARROWED
    }

    /// The names remembered (for the bounded clean-up).
    pub fn names(&self) -> Vec<String> {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.keys().cloned().collect()
    }
}

fn narrowed_to(project: &str) -> NetdError {
    NetdError::NotAuthorized(format!(
        "this connection serves only the DNS resolver of project {project}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrowed_connection_makes_only_its_resolver_calls() {
        let narrowed = NarrowedSenders::default();
        assert!(
            narrowed.check(":1.5", None).is_ok(),
            "not narrowed: as before"
        );
        narrowed.narrow(":1.5", "p1", |_| true).unwrap();
        assert!(narrowed.check(":1.5", Some("p1")).is_ok());
        assert!(matches!(
            narrowed.check(":1.5", None),
            Err(NetdError::NotAuthorized(_))
        ));
        assert!(
            narrowed.check(":1.5", Some("p2")).is_err(),
            "another project"
        );
        assert!(
            narrowed.narrow(":1.5", "p1", |_| true).is_ok(),
            "again: no-op"
        );
        assert!(
            narrowed.narrow(":1.5", "p2", |_| true).is_err(),
            "cannot move to another project"
        );
        assert!(narrowed.check(":1.6", None).is_ok(), "per connection");
    }

    #[test]
    fn it_is_bounded_and_lets_closed_connections_go_first() {
        let narrowed = NarrowedSenders::default();
        for i in 0..MAX_NARROWED {
            narrowed.narrow(&format!(":1.{i}"), "p", |_| true).unwrap();
        }
        assert!(matches!(
            narrowed.narrow(":2.0", "p", |_| true),
            Err(NetdError::LimitReached(_))
        ));
        // Every remembered connection closed: they go, the new one is narrowed.
        narrowed.narrow(":2.0", "p", |_| false).unwrap();
        assert_eq!(narrowed.names(), vec![":2.0".to_string()]);
    }
}
