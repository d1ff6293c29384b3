//! First run without the network helper: in a terminal, `up` offers to install it (the one sudo
//! step), as the Go original does ("Network helper required … Install now? [y/N]"). Without a
//! terminal, or when the user says no, nothing is installed and `up` fails closed as before.

use std::process::Command;

use crate::network::helper_container_guard::helper_running;
use crate::network::netd_guard::NetdGuard;
use crate::prompt::{confirm, stdin_is_tty};

/// The question asked on a terminal.
pub const QUESTION: &str = "Network helper required for network isolation (alca-netd is not \
     installed). Install now (runs `sudo alca network-helper install`)?";

/// When isolation is required, the helper is unreachable and stdin is a terminal, asks and
/// runs the install through sudo on yes. Never installs without a yes; its outcome is left to
/// the rules step that follows (which fails closed while the helper is still missing).
pub fn offer_if_missing(isolation: bool) {
    let reachable = || NetdGuard::connect().is_ok() || helper_running();
    if !should_offer(isolation, stdin_is_tty(), reachable) || !confirm(QUESTION) {
        return;
    }
    let Ok(me) = std::env::current_exe() else {
        eprintln!("alca: warning: cannot find the alca binary to install the helper");
        return;
    };
    let status = Command::new("sudo")
        .arg(me)
        .args(["network-helper", "install", "-y"])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("alca: warning: the helper install ended with {s}"),
        Err(e) => eprintln!("alca: warning: cannot run sudo: {e}"),
    }
}

/// Asked only when isolation is required, on a terminal, on Linux, and the helper does not
/// answer (checked last: it costs a D-Bus round trip).
fn should_offer(isolation: bool, terminal: bool, reachable: impl FnOnce() -> bool) -> bool {
    isolation && terminal && !cfg!(target_os = "macos") && !reachable()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Go original's wording (internal/cli/up.go: "Network helper required for network
    /// isolation." then promptConfirm("Install now?")),
    /// answered by `confirm`'s `[y/N]`.
    #[test]
    fn the_question_names_the_helper_and_the_sudo_step() {
        assert!(QUESTION.starts_with("Network helper required"));
        assert!(QUESTION.contains("Install now"));
        assert!(QUESTION.contains("sudo alca network-helper install"));
    }

    /// Without a terminal nothing is asked (the Go original prompts only interactively; here
    /// `up` then fails closed); with a reachable helper or no isolation nothing is asked either.
    #[test]
    fn asked_only_on_a_terminal_when_the_helper_is_missing() {
        assert!(should_offer(true, true, || false));
        assert!(!should_offer(true, false, || false));
        assert!(!should_offer(true, true, || true));
        assert!(!should_offer(false, true, || panic!(
            "not asked without isolation"
        )));
        assert!(!should_offer(true, false, || panic!(
            "not asked without a terminal"
        )));
    }
}
