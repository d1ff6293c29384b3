//! `alca network allow NAME [--for 30m]`, `--list`, `--revoke NAME`: time-boxed additions to a
//! project's `internet-access` without editing the config. Run on the host by the user (the
//! daemon lets only the project's owner grant); the kernel ends each grant by itself.

use std::process::ExitCode;

use alca_contract::internet::parse_internet_entry;
use anyhow::{bail, Context};

use crate::lifecycle::Project;
use crate::network::guard_select::connect_guard;
use crate::project::State;

/// Longest grant the daemon accepts (one day).
const MAX_SECS: u64 = 86_400;

/// What `alca network allow` was asked to do.
pub enum AllowRequest {
    Grant { entry: String, duration: String },
    List,
    Revoke { entry: String },
}

pub fn run(request: AllowRequest) -> anyhow::Result<ExitCode> {
    let project = Project::open()?;
    let Some(state) = State::load(&project.root)? else {
        bail!("the project has no container yet: run `alca up` first");
    };
    if !crate::network::internet_spec::restricted(&project.config) {
        bail!(
            "network.internet-access is [\"*\"]: the internet is already open, so there is \
             nothing to allow"
        );
    }
    let guard = connect_guard();
    match request {
        AllowRequest::Grant { entry, duration } => {
            parse_internet_entry(&entry).with_context(|| {
                format!("{entry:?} is not an internet-access entry (e.g. \"example.com\", \"*.example.com:443\", \"203.0.113.7\")")
            })?;
            let secs = parse_duration(&duration)?;
            let info = guard.grant(&state.id, &entry, secs)?;
            println!(
                "Allowed {} for {} (until revoked or expired; `alca network allow --list`)",
                info.entry,
                shown(info.remaining_secs)
            );
        }
        AllowRequest::List => {
            let grants = guard.grants(&state.id)?;
            if grants.is_empty() {
                println!("(no grants)");
            }
            for g in grants {
                println!(
                    "{:<50} {} left",
                    g.entry.to_string(),
                    shown(g.remaining_secs)
                );
            }
        }
        AllowRequest::Revoke { entry } => {
            let n = guard.revoke(&state.id, &entry)?;
            if n == 0 {
                bail!("no grant of {entry:?} to revoke (`alca network allow --list`)");
            }
            println!("Revoked {entry}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `30m`, `2h`, `1h30m` or bare seconds, at most a day.
pub fn parse_duration(text: &str) -> anyhow::Result<u32> {
    let bad = || {
        anyhow::anyhow!(
            "--for {text:?}: write a duration such as 90s, 30m, 2h or 1h30m (at most 24h)"
        )
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() {
        total = total.saturating_add(number.parse::<u64>().map_err(|_| bad())?);
    }
    if total == 0 || total > MAX_SECS {
        return Err(bad());
    }
    u32::try_from(total).map_err(|_| bad())
}

fn shown(secs: u32) -> String {
    match secs {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s").unwrap(), 3);
        assert_eq!(parse_duration("30m").unwrap(), 1800);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("45").unwrap(), 45);
        assert_eq!(parse_duration("24h").unwrap(), 86_400);
        for bad in ["", "0s", "25h", "3d", "m", "1.5h", "-3s"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("--for"), "{bad}: {e}");
        }
        assert_eq!(shown(5400), "1h30m");
        assert_eq!(shown(61), "1m01s");
        assert_eq!(shown(3), "3s");
    }
}
