//! One module per `alca` command; [`main`] parses the command line and [`dispatch`] routes it
//! to its module.

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

pub mod cleanup;
pub mod down;
pub mod init;
pub mod list;
pub mod network;
pub mod network_allow;
pub mod network_helper;
pub mod reload;
pub mod run;
pub mod status;
pub mod sync;
pub mod sync_template;
pub mod trust;
pub mod up;

/// Runs one parsed command and returns the process exit code.
pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init(args) => init::run(&args),
        Command::Up(args) => up::run(&args),
        Command::Down(args) => down::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Status => status::run(),
        Command::Trust(args) => trust::run(&args),
        Command::List => list::run(),
        Command::Cleanup(args) => cleanup::run(&args),
        Command::NetworkHelper(cmd) => network_helper::run(cmd),
        Command::Network(cmd) => network::run(cmd),
        Command::Experimental(crate::cli::ExperimentalCommand::Sync(cmd)) => sync::run(&cmd),
        Command::Experimental(crate::cli::ExperimentalCommand::Reload) => reload::run(),
        Command::Completion { shell } => {
            let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics on a failed write (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "alca", &mut script);
            print_bytes(&script)
        }
        Command::ManPage => {
            let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            print_bytes(&page)
        }
        Command::ServeView { state_dir } => crate::exclude::serve_command(&state_dir),
        Command::ServeDns { state_dir } => {
            crate::network::resolver_main::serve(&state_dir)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes generated text to stdout.
fn print_bytes(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Parses the command line, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_outcome(&err),
    };
    let Some(command) = cli.command else {
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    };
    match dispatch(command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("alca: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--help`/`--version` print to stdout and succeed; a usage error prints to stderr and exits 1
/// (clap's own default is 2; SPEC §1 and the Go original use 1 for every error).
fn usage_outcome(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    if err.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
