//! Self-healing: the daemon watches nf_tables events and, when a change it did not make
//! touches one of its tables or the guard (a table unowned on a kernel without persist, or
//! orphaned, deleted by `nft flush ruleset`; a rule inserted into one), restores it from the
//! saved spec at once and logs that it did. Its own transactions come from its own netlink
//! port and are ignored, so a restore does not restore itself again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;
use alca_contract::net_spec::NAME_PREFIX;
use alca_kernel::events::Events;

/// How long changes are gathered after the first one before restoring: a flush or a
/// transaction comes as a burst of events, which one restore answers.
const GATHER: Duration = Duration::from_millis(5);

/// Subscribes (in the calling thread's network namespace, the daemon's) and starts the
/// watching thread.
pub fn spawn(daemon: Arc<Daemon>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let events = Events::subscribe()?;
    std::thread::Builder::new()
        .name("alca-netd-heal".into())
        .spawn(move || watch(&daemon, &events))
}

fn watch(daemon: &Daemon, events: &Events) {
    loop {
        let Some(mut touched) = next_foreign(daemon, events) else {
            return;
        };
        let until = Instant::now() + GATHER;
        while Instant::now() < until {
            // Events of the same burst are already queued: read what is there.
            match events.next_now() {
                Ok(Some(Some(changes))) => touched.extend(foreign(daemon, changes)),
                Ok(Some(None)) => {
                    touched.insert(String::new());
                }
                Ok(None) => break,
                Err(_) => break,
            };
        }
        let started = Instant::now();
        match daemon.heal(&touched) {
            Ok(healed) if !healed.is_empty() => tracing::warn!(
                tables = ?healed,
                micros = started.elapsed().as_micros() as u64,
                "restored tables changed by someone else"
            ),
            Ok(_) => {}
            Err(e) => tracing::error!(tables = ?touched, "cannot restore changed tables: {e}"),
        }
    }
}

/// Blocks until a datagram holds a change of an `alca-` table by someone else; `""` in the
/// set stands for "events were lost".
fn next_foreign(daemon: &Daemon, events: &Events) -> Option<BTreeSet<String>> {
    loop {
        match events.next() {
            Ok(Some(changes)) => {
                let touched = foreign(daemon, changes);
                if !touched.is_empty() {
                    return Some(touched);
                }
            }
            Ok(None) => return Some(BTreeSet::from([String::new()])),
            Err(e) => {
                tracing::error!("nf_tables events cannot be read any more: {e}");
                return None;
            }
        }
    }
}

fn foreign(daemon: &Daemon, changes: Vec<alca_kernel::events::Change>) -> BTreeSet<String> {
    let own = daemon.own_port();
    changes
        .into_iter()
        .filter(|c| c.port != own || own == 0)
        .map(|c| c.table)
        .filter(|t| t.starts_with(NAME_PREFIX))
        .collect()
}
