//! `alca trust [-y]`: shows what the project's config allows (or how it widens what was
//! approved) and records the user's approval; the gate `up` and `run` pass is
//! [`crate::lifecycle::trust_gate`].

use std::process::ExitCode;

use crate::cli::TrustArgs;
use crate::lifecycle::trust_gate::{print_changes, record, verdict};
use crate::lifecycle::Project;
use crate::prompt::{confirm, stdin_is_tty};
use crate::trust::Verdict;

pub fn run(args: &TrustArgs) -> anyhow::Result<ExitCode> {
    let project = Project::open()?;
    let verdict = verdict(&project)?;
    if verdict.is_approved() {
        if verdict == Verdict::Narrowed {
            record(&project)?;
        }
        println!(
            "The configuration of {} is trusted.",
            project.root.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_changes(&verdict, &project.config);
    if args.yes || (stdin_is_tty() && confirm("Approve this configuration?")) {
        record(&project)?;
        println!("Approved.");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("Not approved. Run `alca trust -y` to approve it without a terminal.");
    Ok(ExitCode::FAILURE)
}
