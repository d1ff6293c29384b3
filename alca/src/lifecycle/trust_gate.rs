//! The trust gate `up` and `run` pass first: a config that was never approved on this
//! machine, or that widens what was approved, is applied only once the user says so. The
//! records live in the trust store; `alca trust` shows and approves through here too.

use anyhow::{bail, Context};

use crate::config::Config;
use crate::prompt::{confirm, stdin_is_tty};
use crate::trust::store::{approve, load_approved, load_record, store_dir};
use crate::trust::{assess, hook_files, summary, Verdict};

use super::Project;

/// Whether the user already said yes for this run (`up --trust`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Given,
    AskOnTerminal,
}

/// Passes when the current config is approved (a narrowing change is recorded on the way);
/// otherwise asks on a terminal, or fails with the command that approves it.
pub fn gate(project: &Project, consent: Consent, action: &str) -> anyhow::Result<()> {
    let verdict = verdict(project)?;
    if verdict.is_approved() {
        if verdict == Verdict::Narrowed {
            record(project)?;
        }
        return Ok(());
    }
    print_changes(&verdict, &project.config);
    let approved = match consent {
        Consent::Given => true,
        Consent::AskOnTerminal => stdin_is_tty() && confirm("Approve this configuration?"),
    };
    if approved {
        return record(project);
    }
    bail!(
        "the configuration of {} is not approved, so `alca {action}` changed nothing. Review \
         it with `alca trust` and approve it there (`alca trust -y` without a terminal){}",
        project.root.display(),
        if action == "up" {
            ", or run `alca up --trust`"
        } else {
            ""
        }
    )
}

/// What the approved record says of the current config, including the workspace files its
/// hooks name.
pub fn verdict(project: &Project) -> anyhow::Result<Verdict> {
    let dir = records_dir()?;
    let Some(record) = load_record(&dir, &project.root) else {
        return Ok(Verdict::New);
    };
    let verdict = assess(Some(&record.config), &project.config);
    let current = hook_files::named_files(&project.root, &project.config);
    let files = hook_files::widenings(&record.hook_files, &current);
    Ok(match verdict {
        Verdict::New => Verdict::New,
        _ if files.is_empty() => verdict,
        Verdict::Widened(mut w) => {
            w.extend(files);
            Verdict::Widened(w)
        }
        Verdict::Trusted | Verdict::Narrowed => Verdict::Widened(files),
    })
}

/// The approved config of a project, when there is a record.
pub fn approved_config(root: &std::path::Path) -> Option<Config> {
    load_approved(&records_dir().ok()?, root)
}

fn records_dir() -> anyhow::Result<std::path::PathBuf> {
    store_dir().context(
        "cannot locate the trust records: neither XDG_STATE_HOME nor HOME is set; set HOME",
    )
}

/// Approves the config `alca init` just wrote from a built-in template at `root`: the user
/// created it with that command, so `alca init && alca up` works without a terminal. An edit
/// afterwards (by anyone, from inside the container too) is still gated. Presets fetched from
/// a URL are not approved here: their content is someone else's.
pub fn approve_initial(root: &std::path::Path) -> anyhow::Result<()> {
    let config = super::load_config(root)?;
    record(&Project {
        root: root.to_path_buf(),
        config,
    })
}

pub fn record(project: &Project) -> anyhow::Result<()> {
    let dir = records_dir()?;
    approve(&dir, &project.root, &project.config)
        .with_context(|| format!("cannot write the trust record under {}", dir.display()))
}

/// Shows on stderr, in plain words, what approval would allow.
pub fn print_changes(verdict: &Verdict, config: &Config) {
    match verdict {
        Verdict::New => {
            eprintln!(
                "This project's configuration was never approved on this machine. It allows:"
            );
            for line in summary(config) {
                eprintln!("  {line}");
            }
        }
        Verdict::Widened(changes) => {
            eprintln!("The configuration widens what was approved (it may have been edited from inside the container):");
            for c in changes {
                eprintln!("  {c}");
            }
        }
        Verdict::Trusted | Verdict::Narrowed => {}
    }
}
