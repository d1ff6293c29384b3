//! Keeps the authorization of the project resolver's frequent calls (`AllowResolved`, one per
//! DNS answer) cheap: a sender's uid and polkit's verdict are remembered for a short time.
//!
//! Why this is safe: a D-Bus unique name (`:1.42`) is never reused while the bus runs and its
//! peer's uid cannot change, so the uid is a fact about the name; polkit's verdict (is the user
//! in `alcatraz`?) may change, so it is trusted for [`VERDICT_TTL`] only, and asked again
//! after. What every call still checks, uncached: that the uid owns the project and that each
//! address belongs to an entry of the applied spec (see `Engine::allow_resolved`).
//! The cost per cached call is one map lookup instead of two bus round trips (the bus daemon
//! for the uid, polkitd for the verdict).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use zbus::message::Header;
use zbus::Connection;

use crate::auth::{authorize, caller_uid};
use crate::errors::NetdError;

/// How long polkit's yes is trusted for one sender.
pub const VERDICT_TTL: Duration = Duration::from_secs(10);
/// Senders remembered at most (each project's resolver is one); expired ones go first.
const MAX_SENDERS: usize = 1024;

/// Senders polkit allowed `action`, with their uid and when it said so.
#[derive(Debug)]
pub struct SenderCache {
    action: &'static str,
    senders: Mutex<HashMap<String, (u32, Instant)>>,
}

impl SenderCache {
    pub fn new(action: &'static str) -> Self {
        SenderCache {
            action,
            senders: Mutex::default(),
        }
    }

    /// The caller's uid once the caller is allowed the action: from the cache while polkit's
    /// verdict is fresh, else asked (and remembered when allowed).
    pub async fn authorize(
        &self,
        conn: &Connection,
        header: &Header<'_>,
    ) -> Result<u32, NetdError> {
        let sender = header
            .sender()
            .ok_or_else(|| NetdError::NotAuthorized("the call has no sender".into()))?
            .to_string();
        if let Some(uid) = self.fresh(&sender, Instant::now()) {
            return Ok(uid);
        }
        let uid = caller_uid(conn, header).await?;
        authorize(conn, header, uid, self.action).await?;
        self.remember(sender, uid, Instant::now());
        Ok(uid)
    }

    fn fresh(&self, sender: &str, now: Instant) -> Option<u32> {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let (uid, at) = senders.get(sender)?;
        (now.duration_since(*at) < VERDICT_TTL).then_some(*uid)
    }

    fn remember(&self, sender: String, uid: u32, now: Instant) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if senders.len() >= MAX_SENDERS {
            senders.retain(|_, (_, at)| now.duration_since(*at) < VERDICT_TTL);
        }
        if senders.len() < MAX_SENDERS {
            senders.insert(sender, (uid, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_trusted_for_a_short_time_only() {
        let cache = SenderCache::new("x");
        let t0 = Instant::now();
        assert_eq!(cache.fresh(":1.7", t0), None);
        cache.remember(":1.7".into(), 1001, t0);
        assert_eq!(cache.fresh(":1.7", t0 + Duration::from_secs(1)), Some(1001));
        assert_eq!(cache.fresh(":1.8", t0), None, "per sender");
        assert_eq!(
            cache.fresh(":1.7", t0 + VERDICT_TTL),
            None,
            "then asked again"
        );
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = SenderCache::new("x");
        let t0 = Instant::now();
        for i in 0..MAX_SENDERS + 10 {
            cache.remember(format!(":1.{i}"), 1000, t0);
        }
        assert_eq!(cache.senders.lock().unwrap().len(), MAX_SENDERS);
        // Once the old verdicts expired, new senders get their place.
        cache.remember(":2.0".into(), 1000, t0 + VERDICT_TTL);
        assert_eq!(cache.fresh(":2.0", t0 + VERDICT_TTL), Some(1000));
    }
}
