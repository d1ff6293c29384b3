//! `alca` binary entry point: parse the command line, run it, map errors to exit codes.

use std::process::ExitCode;

fn main() -> ExitCode {
    alca::commands::main()
}
