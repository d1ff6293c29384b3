//! The root check every end-to-end suite that needs root makes first, with one policy: not
//! root fails the suite (a suite that skips itself passes without testing anything). The check
//! itself is alca's own (`geteuid`), not a spawned `id -u`.

/// Fails the calling test unless it runs as root; `who` names the suite in the message.
pub fn require_root(who: &str) {
    assert!(
        alca::privilege::running_as_root(),
        "{who} must run as root (tests/run.sh)"
    );
}
