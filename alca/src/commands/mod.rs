//! One module per `alca` command; `dispatch` routes a parsed command line to it.

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::Command;

pub mod init;

/// Runs one parsed command and returns the process exit code.
pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init(args) => init::run(&args),
        Command::Up(_) => not_built("up"),
        Command::Down(_) => not_built("down"),
        Command::Run(_) => not_built("run"),
        Command::Status => not_built("status"),
        Command::List => not_built("list"),
        Command::Cleanup(_) => not_built("cleanup"),
        Command::NetworkHelper(_) => not_built("network-helper"),
        Command::Network(_) => not_built("network"),
        Command::Experimental(_) => not_built("experimental"),
    }
}

/// Commands that are declared but not implemented say so instead of pretending.
fn not_built(name: &str) -> anyhow::Result<ExitCode> {
    bail!("`alca {name}` is not implemented yet in this build")
}
