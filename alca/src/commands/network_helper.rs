//! `alca network-helper install|uninstall|status`: the one sudo step that installs `alca-netd`,
//! its bus policy, activation file, polkit action and rule, group `alcatraz`, and the FUSE host
//! steps file isolation needs.

mod container;
mod daemon_binary;
mod fuse_setup;
mod install;
mod package;
mod status;
mod system;
mod uninstall;

use std::process::ExitCode;

use crate::cli::NetworkHelperCommand;

/// Runs one `network-helper` subcommand.
pub fn run(command: NetworkHelperCommand) -> anyhow::Result<ExitCode> {
    match command {
        NetworkHelperCommand::Install(args) => install::run(&args),
        NetworkHelperCommand::Uninstall(args) => uninstall::run(&args),
        NetworkHelperCommand::Status => status::run(),
        NetworkHelperCommand::Image(args) => container::save_image(&args.output),
        NetworkHelperCommand::FuseSetup => {
            system::require_root("fuse-setup").and_then(|()| fuse_setup::apply())
        }
        NetworkHelperCommand::FuseRevert => {
            system::require_root("fuse-revert").and_then(|()| fuse_setup::revert())
        }
    }?;
    Ok(ExitCode::SUCCESS)
}
