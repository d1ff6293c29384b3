//! Config trust: the agent can edit `.alca.toml` (and every file it includes) from inside the
//! container, so the effective config the user approved is recorded outside every workspace, and
//! a change that widens what the container or a host hook may do waits for the user's approval.

pub mod git_config;
pub mod hook_files;
pub mod protect;
pub mod store;
pub mod widen;

use std::fmt;

use alca_contract::internet::InternetAccess;
use sha2::{Digest, Sha256};

use crate::config::Config;

pub use widen::widenings;

/// One difference between the approved and the current config that widens access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widening {
    /// The config field, as written in `.alca.toml` (`hooks.post_up`, `mounts`, …).
    pub field: &'static str,
    /// What changed, in plain words.
    pub detail: String,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

/// The outcome of comparing the current config with the approved record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Identical to what was approved.
    Trusted,
    /// Changed, but nothing widens access: safe to apply and re-record.
    Narrowed,
    /// Never approved on this machine.
    New,
    /// These changes need approval.
    Widened(Vec<Widening>),
}

impl Verdict {
    /// Whether `up`/`run` may go on without asking.
    pub fn is_approved(&self) -> bool {
        matches!(self, Verdict::Trusted | Verdict::Narrowed)
    }
}

/// Compares `current` against the approved record (if any).
pub fn assess(approved: Option<&Config>, current: &Config) -> Verdict {
    let Some(approved) = approved else {
        return Verdict::New;
    };
    if digest(approved) == digest(current) {
        return Verdict::Trusted;
    }
    let widenings = widenings(approved, current);
    if widenings.is_empty() {
        Verdict::Narrowed
    } else {
        Verdict::Widened(widenings)
    }
}

/// The config as recorded: environment values (possibly secrets expanded from the host) are
/// dropped; their templates (`${VAR}` as written) stay and are what trust compares.
pub fn redacted(config: &Config) -> Config {
    let mut c = config.clone();
    for var in c.envs.values_mut() {
        var.value.clear();
    }
    c
}

/// A stable digest of the redacted effective config.
pub fn digest(config: &Config) -> String {
    let json = serde_json::to_vec(&redacted(config)).unwrap_or_default();
    hex(&Sha256::digest(&json))
}

/// Lower-case hex of a byte string.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The plain-words summary of what a never-approved config lets the container and hooks do:
/// everything it adds over a locked-down baseline.
pub fn summary(config: &Config) -> Vec<String> {
    let baseline = Config {
        mounts: Vec::new(),
        envs: Default::default(),
        caps: crate::config::Caps {
            drop: vec!["ALL".into()],
            add: Vec::new(),
        },
        ports: Vec::new(),
        network: Default::default(),
        hooks: Default::default(),
        ..config.clone()
    };
    let mut lines = vec![format!("image: {}", config.image)];
    lines.extend(widenings(&baseline, config).iter().map(Widening::to_string));
    if config.network.allows_everything() {
        lines.push("network: no isolation (lan-access = [\"*\"])".to_string());
    } else {
        lines.push("network: no LAN or host access beyond lan-access".to_string());
        lines.push(
            "network: the runtime's DNS resolvers, on port 53 (UDP and TCP) only".to_string(),
        );
    }
    lines.push(match &config.network.internet_access {
        InternetAccess::Everything => "internet: open (internet-access = [\"*\"])".to_string(),
        InternetAccess::Only(list) if list.is_empty() => "internet: none".to_string(),
        InternetAccess::Only(_) => format!(
            "internet: only {} (names through the project's resolver)",
            config.network.internet_access_raw.join(", ")
        ),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::widen::tests::base;

    #[test]
    fn a_new_config_is_summarised_in_plain_words() {
        let mut c = base();
        c.hooks.post_up = Some("make dev".into());
        let lines = summary(&c);
        assert_eq!(lines[0], "image: alpine:latest");
        assert!(lines.contains(&"hooks.post_up: runs on the host: make dev".to_string()));
        assert!(lines
            .iter()
            .any(|l| l == "mounts: mounts host /data at /data (read-only)"));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("caps: adds capabilities CHOWN")));
        assert!(lines.contains(&"network: no LAN or host access beyond lan-access".to_string()));
        assert!(lines.contains(
            &"network: the runtime's DNS resolvers, on port 53 (UDP and TCP) only".to_string()
        ));
        assert_eq!(
            lines.last().unwrap(),
            "internet: open (internet-access = [\"*\"])"
        );
        c.network.internet_access_raw = vec!["github.com".into()];
        c.network.internet_access =
            alca_contract::internet::parse_internet_access(&c.network.internet_access_raw).unwrap();
        assert_eq!(
            summary(&c).last().unwrap(),
            "internet: only github.com (names through the project's resolver)"
        );
    }

    #[test]
    fn environment_values_do_not_change_the_digest_but_templates_do() {
        let var = |value: &str, template: &str| crate::config::EnvVar {
            value: value.into(),
            override_on_enter: false,
            template: template.into(),
        };
        let mut a = base();
        a.envs.insert("K".into(), var("one", "${K}"));
        let mut b = a.clone();
        b.envs.insert("K".into(), var("two", "${K}"));
        assert_eq!(assess(Some(&a), &b), Verdict::Trusted);
        b.envs
            .insert("K".into(), var("x", "${AWS_SECRET_ACCESS_KEY}"));
        let Verdict::Widened(w) = assess(Some(&a), &b) else {
            panic!("a new template must widen")
        };
        assert_eq!(
            w[0].to_string(),
            "envs: K: \"${K}\" → \"${AWS_SECRET_ACCESS_KEY}\""
        );
        b.envs.insert("NEW".into(), var("", "${HOME}"));
        assert!(widenings(&a, &b)
            .iter()
            .any(|w| w.detail == "sets NEW = \"${HOME}\""));
    }
}
