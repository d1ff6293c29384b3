//! Command-line surface of `alca` (kept compatible with the Go original): the parsed
//! arguments of every command; [`crate::commands`] runs them.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "alca",
    version,
    about = "Run AI code agents with full permissions inside a container they cannot escape",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print version (`-v` as in the Go original; `-V` also works)
    #[arg(short = 'v', short_alias = 'V', long, action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// Without a command: print this help and succeed, as the Go original does
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new .alca.toml in the current directory
    Init(InitArgs),
    /// Create or start the project's container with isolation applied
    Up(UpArgs),
    /// Stop and remove the project's container and its network rules
    Down(DownArgs),
    /// Run a command inside the project's container
    Run(RunArgs),
    /// Show container, drift, trust, network and exclusion state of this project
    Status,
    /// Review and approve this project's configuration (needed after it widens access)
    Trust(TrustArgs),
    /// List every alca container on this machine
    List,
    /// Remove containers and rules of projects that no longer exist
    Cleanup(CleanupArgs),
    /// Install, remove or inspect the privileged network helper (the one sudo step)
    #[command(subcommand)]
    NetworkHelper(NetworkHelperCommand),
    /// Inspect network isolation of the running container
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Experimental commands
    #[command(subcommand)]
    Experimental(ExperimentalCommand),
    /// Print a shell completion script (e.g. `alca completion bash > /etc/bash_completion.d/alca`)
    Completion {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
    /// Internal: print the alca(1) man page in roff (used by the packages)
    #[command(name = "__man-page", hide = true)]
    ManPage,
    /// Internal: serve a filtered view of a directory (started by `alca up`)
    #[command(name = "__serve-view", hide = true)]
    ServeView {
        /// State directory of the view (holds view.json)
        state_dir: std::path::PathBuf,
    },
    /// Internal: serve a project's DNS resolver for network.internet-access (started by `alca up`)
    #[command(name = "__serve-dns", hide = true)]
    ServeDns {
        /// State directory of the resolver (its spec comes on stdin)
        state_dir: std::path::PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Template to start from: alpine, debian-slim, debian-mise or nix
    #[arg(short, long)]
    pub template: Option<String>,
    /// Preset to initialise from (git+URL)
    pub preset: Option<String>,
    /// Update an existing preset-based .alca.toml
    #[arg(long)]
    pub update: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Rebuild the container when its configuration drifted
    #[arg(short, long)]
    pub force: bool,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Approve the current configuration without asking (for scripts); it is still shown
    #[arg(long, visible_alias = "yes", short = 'y')]
    pub trust: bool,
    /// Recreate the container even without drift (`alca experimental reload`)
    #[arg(skip)]
    pub recreate: bool,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Approve without asking (the configuration is still shown)
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove even when the pre_down hook fails or the container is in use
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Command and arguments to run inside the container
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Also remove stopped containers of projects that still exist
    #[arg(long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum NetworkHelperCommand {
    /// Install the network helper (once; with sudo on Linux, no sudo for --container and macOS)
    Install(HelperArgs),
    /// Remove the network helper and every alca network rule
    Uninstall(HelperArgs),
    /// Show whether the helper is installed and rules are applied
    Status,
    /// Build the helper-container image from this machine's alca-netd and nft and save it
    /// (`docker save`) for `install --image-archive` on macOS
    Image(ImageArgs),
    /// Internal (package post-install): the FUSE host steps of `install`
    #[command(name = "fuse-setup", hide = true)]
    FuseSetup,
    /// Internal (package pre-removal): undo what `fuse-setup` changed
    #[command(name = "fuse-revert", hide = true)]
    FuseRevert,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Where to write the image archive
    #[arg(long, short, value_name = "PATH")]
    pub output: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct HelperArgs {
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// User to add to group `alcatraz` (install only; default: $SUDO_USER)
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Run alca-netd in the privileged `alcatraz-network-helper` container instead of on the
    /// system bus (install only; the default on macOS; no sudo needed, Docker is the privilege)
    #[arg(long)]
    pub container: bool,
    /// Load the helper image from this `docker save` archive instead of building it from the
    /// local alca-netd and nft (install only; needed on macOS)
    #[arg(long, value_name = "PATH")]
    pub image_archive: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Probe destinations from inside the container and compare with the config
    Verify {
        /// Only probe blocked destinations that stay on this machine (host addresses, local
        /// bridges, link-scope multicast) besides the allow-listed entries
        #[arg(long)]
        local_only: bool,
        /// Print the destinations and what the config expects, without probing
        #[arg(long)]
        plan: bool,
    },
    /// Show connections the rules denied
    Log {
        /// Keep printing new entries
        #[arg(short, long)]
        follow: bool,
    },
    /// Allow an internet destination for a while without editing internet-access
    /// (e.g. `alca network allow example.com --for 30m`)
    Allow {
        /// The entry to allow, as in internet-access ("example.com", "*.example.com:443", an IP)
        #[arg(required_unless_present = "list", conflicts_with = "list")]
        entry: Option<String>,
        /// How long: 90s, 30m, 2h, 1h30m (at most 24h)
        #[arg(long = "for", value_name = "DURATION", default_value = "30m")]
        duration: String,
        /// List the live grants
        #[arg(long)]
        list: bool,
        /// End the grant of ENTRY now
        #[arg(long, requires = "entry")]
        revoke: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExperimentalCommand {
    /// Re-apply the configuration: recreate the container with the current settings
    /// (processes running in it are ended)
    Reload,
    /// File sync engine commands
    #[command(subcommand)]
    Sync(SyncCommand),
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Report sync conflicts (exit 0: none, 1: some)
    Check {
        /// Output template, as in the Go original: `{{ json . }}`, `{{ .Count }}`,
        /// `{{ range .Conflicts }}{{ .Path }}{{ "\n" }}{{ end }}`
        #[arg(long)]
        template: Option<String>,
    },
    /// Resolve sync conflicts
    Resolve,
}
