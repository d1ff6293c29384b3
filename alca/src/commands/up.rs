//! `alca up [-f] [-q] [--trust]`: create or start the project's container, with its network
//! and rules in place before it can send a packet, then run the `post_up` host hook. The work
//! is [`crate::lifecycle::bring_up`], which `experimental reload` shares.

use std::process::ExitCode;

use crate::cli::UpArgs;

pub fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    crate::lifecycle::bring_up::bring_up(args)?;
    Ok(ExitCode::SUCCESS)
}
