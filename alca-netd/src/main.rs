//! `alca-netd`: the minimal root daemon that applies per-project nftables isolation.
//!
//! Modes: no flag or `--foreground` serves `io.github.alcatraz.Netd1` on the system bus (after
//! re-applying saved specs and sweeping stale tables); `--reapply` does only the re-apply and
//! sweep, then exits (run by `alca-netd-reapply.service` after nftables reloads).
//! In the helper container (macOS, or Linux by choice): `--container` is the container's main
//! process (enters PID 1's network namespace, re-applies saved specs, then answers requests on
//! a unix socket and runs the projects' DNS resolvers), and `request` carries one JSON request
//! on stdin to it (`docker exec -i … alca-netd request`).
//! `--purge` (run by `alca network-helper uninstall`) deletes every `alca-` table and forgets
//! every saved spec and claim, printing each deleted table, then exits.
//! `--oci-hook` is not the daemon: Podman runs it as a rootless container's owner, at the
//! container's `createRuntime` stage, to have its rules applied ([`alca_netd::oci_hook`]).
//! The daemon does not exit when idle: `alca network-helper status` reports it truthfully.
//! `--foreground` (or bus activation) and `--reapply` keep only their systemd unit's
//! capabilities, whatever started them ([`alca_netd::unit_limits`]).

use std::sync::Arc;

use alca_contract::bus::{BUS_NAME, OBJECT_PATH};
use std::path::Path;

use alca_contract::helper_protocol::{HelperReply, SOCKET_PATH};
use alca_netd::daemon::{Daemon, RestoreReport};
use alca_netd::firewall::{Nft, TableFlags};
use alca_netd::helper_netns;
use alca_netd::helper_resolvers::HelperResolvers;
use alca_netd::helper_socket;
use alca_netd::service::NetdService;
use alca_netd::store::Store;
use anyhow::{bail, Context};

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Serve,
    Reapply,
    Container,
    Request,
    Purge,
    OciHook,
}

const USAGE: &str =
    "usage: alca-netd [--foreground | --reapply | --container | --purge | --oci-hook | request]";

fn parse_args(args: impl Iterator<Item = String>) -> anyhow::Result<Mode> {
    let mut mode = Mode::Serve;
    for arg in args {
        match arg.as_str() {
            "--foreground" => {}
            "--reapply" => mode = Mode::Reapply,
            "--container" => mode = Mode::Container,
            "--purge" => mode = Mode::Purge,
            "request" => mode = Mode::Request,
            alca_contract::oci_hook::HOOK_FLAG => mode = Mode::OciHook,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "-V" | "--version" => {
                println!("alca-netd {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(mode)
}

/// How we were started, for `alca network-helper status`.
fn launcher() -> &'static str {
    if std::env::var_os("INVOCATION_ID").is_some() {
        "systemd"
    } else if std::env::var_os("DBUS_STARTER_BUS_TYPE").is_some() {
        "D-Bus activation"
    } else {
        "manual"
    }
}

fn log_report(report: &RestoreReport) {
    if !report.reapplied.is_empty() {
        tracing::info!(projects = ?report.reapplied, "re-applied saved rules");
    }
    if !report.swept.is_empty() {
        tracing::info!(projects = ?report.swept, "swept stale tables");
    }
    if !report.owned_elsewhere.is_empty() {
        tracing::info!(tables = ?report.owned_elsewhere, "left to the running daemon that owns them");
    }
    for problem in &report.problems {
        tracing::error!("{problem}");
    }
}

async fn restore(daemon: &Arc<Daemon>) -> anyhow::Result<RestoreReport> {
    // The host's on-link networks join the deny sets of every table re-applied below.
    if let Err(e) = alca_netd::onlink::refresh(daemon).await {
        tracing::error!("cannot read the host's on-link networks: {e}");
    }
    let daemon = Arc::clone(daemon);
    let report = tokio::task::spawn_blocking(move || daemon.restore()).await??;
    log_report(&report);
    Ok(report)
}

/// Starts [`alca_netd::heal`] (before the restore, so that no change is missed; the restore's
/// own changes come from the daemon's port and are ignored).
fn start_healing(daemon: &Arc<Daemon>) {
    if let Err(e) = alca_netd::heal::spawn(Arc::clone(daemon)) {
        tracing::error!(
            "cannot watch nf_tables events; tables changed by others are not restored: {e}"
        );
    }
}

async fn serve(daemon: Arc<Daemon>) -> anyhow::Result<()> {
    start_healing(&daemon);
    restore(&daemon).await.context("re-applying saved rules")?;
    if !daemon.owned_tables() {
        tracing::warn!("{}", alca_netd::daemon::UNPROTECTED);
    }
    tokio::spawn(alca_netd::onlink::watch(Arc::clone(&daemon)));
    let service = NetdService::new(Arc::clone(&daemon), launcher());
    let _conn = zbus::connection::Builder::system()
        .name(BUS_NAME)
        .serve_at(OBJECT_PATH, service)
        .build()
        .await
        .with_context(|| format!("cannot own {BUS_NAME} on the system bus"))?;
    tracing::info!(launcher = launcher(), "serving {BUS_NAME}");
    until_stopped().await
}

/// Waits for SIGTERM (systemd, `docker stop`) or SIGINT.
async fn until_stopped() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("stopping");
    Ok(())
}

/// The helper's daemon, compiling for the host it found. Its tables are not owned (a
/// `--container` restarted by the runtime could not change the tables its previous process
/// owned), nor are they watched.
fn helper_daemon(platform: &str) -> Daemon {
    let quirks = helper_netns::detect_quirks(&Nft::default(), platform);
    let unowned = Nft::with_table_flags(TableFlags { persist: false });
    Daemon::new(Box::new(unowned), Store::system()).with_quirks(quirks)
}

fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `--container`: the helper container's main process, the one daemon of the container: it
/// answers every request on [`SOCKET_PATH`] ([`alca_netd::helper_socket`]) and runs the
/// projects' resolvers ([`HelperResolvers`]).
fn run_container() -> anyhow::Result<()> {
    let platform = helper_netns::platform();
    if !helper_netns::wait_until_ready(&Nft::default(), &platform) {
        tracing::warn!(
            platform,
            "nftables (or the platform's own table) is not ready; going on"
        );
    }
    let daemon = Arc::new(helper_daemon(&platform));
    let resolvers = Arc::new(HelperResolvers::system(Arc::clone(&daemon)));
    let runtime = current_thread_runtime()?;
    runtime.block_on(async {
        restore(&daemon).await.context("re-applying saved rules")?;
        let listener = helper_socket::bind(Path::new(SOCKET_PATH))
            .with_context(|| format!("cannot listen on {SOCKET_PATH}"))?;
        std::thread::Builder::new()
            .name("helper-socket".into())
            .spawn(move || helper_socket::serve(listener, daemon, resolvers))
            .context("cannot start the request thread")?;
        tracing::info!(platform, "helper ready");
        until_stopped().await
    })
}

/// `request`: one JSON request on stdin, carried to the container's daemon, one JSON reply on
/// stdout; exit 1 on an error reply.
fn run_request() -> anyhow::Result<bool> {
    use std::io::Read;
    let limit = alca_contract::helper_protocol::MAX_ENVELOPE_BYTES as u64 + 1;
    let mut input = Vec::new();
    std::io::stdin().take(limit).read_to_end(&mut input)?;
    let reply = helper_socket::forward(&input);
    println!("{}", serde_json::to_string(&reply)?);
    Ok(!matches!(reply, HelperReply::Error { .. }))
}

/// Uninstall: every `alca-` table and all saved state go; one line per deleted table.
fn purge() -> anyhow::Result<()> {
    let removed = Daemon::system()
        .purge()
        .map_err(|e| anyhow::anyhow!("cannot remove the alca- tables: {}", e.message()))?;
    for table in removed {
        println!("{table}");
    }
    Ok(())
}

/// `--oci-hook`, run by a rootless container's owner (not root): exit 1 with the reason,
/// which the OCI runtime shows when it aborts the start.
fn run_oci_hook() -> anyhow::Result<()> {
    if let Err(e) = alca_netd::oci_hook::run() {
        eprintln!("alca-netd --oci-hook: {e}");
        std::process::exit(1);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mode = parse_args(std::env::args().skip(1))?;
    if mode == Mode::OciHook {
        return run_oci_hook();
    }
    let default_level = if mode == Mode::Request {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALCA_NETD_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if !nix::unistd::geteuid().is_root() {
        bail!("alca-netd must run as root (it is started by D-Bus activation or systemd)");
    }
    match mode {
        Mode::Purge => return purge(),
        Mode::OciHook => return run_oci_hook(),
        Mode::Container | Mode::Request => {
            // Before any thread exists: setns only moves the calling thread.
            match helper_netns::enter_host_net().context("entering PID 1's network namespace")? {
                helper_netns::HostNet::Entered => {
                    tracing::info!("entered the network namespace of PID 1")
                }
                helper_netns::HostNet::AlreadyThere => {}
                helper_netns::HostNet::Denied => tracing::warn!(
                    "PID 1's network namespace may not be opened here; staying in the \
                     runtime's own (--net=host)"
                ),
            }
            if mode == Mode::Container {
                return run_container();
            }
            if !run_request()? {
                std::process::exit(1);
            }
            return Ok(());
        }
        Mode::Serve | Mode::Reapply => {
            // Before any thread exists: capabilities are per thread.
            let unit = if mode == Mode::Serve {
                alca_contract::shipped::SYSTEMD_SERVICE
            } else {
                alca_contract::shipped::SYSTEMD_REAPPLY
            };
            let kept = alca_netd::unit_limits::restrict_to_unit(unit)
                .context("cannot limit the daemon to its unit's capabilities")?;
            tracing::info!(capabilities = ?alca_netd::unit_limits::names(kept), "running with the unit's capabilities");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let daemon = Arc::new(Daemon::system());
    runtime.block_on(async {
        match mode {
            Mode::Reapply => {
                let report = restore(&daemon).await?;
                println!(
                    "re-applied {} project(s), swept {} stale table(s), left {} table(s) to \
                     the running daemon that owns them",
                    report.reapplied.len(),
                    report.swept.len(),
                    report.owned_elsewhere.len()
                );
                if !report.problems.is_empty() {
                    bail!(
                        "{} problem(s): {}",
                        report.problems.len(),
                        report.problems.join("; ")
                    );
                }
                Ok(())
            }
            _ => serve(daemon).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parses_modes_and_refuses_unknown_flags() {
        assert_eq!(parse_args(args(&[])).unwrap(), Mode::Serve);
        assert_eq!(parse_args(args(&["--foreground"])).unwrap(), Mode::Serve);
        assert_eq!(parse_args(args(&["--reapply"])).unwrap(), Mode::Reapply);
        assert_eq!(parse_args(args(&["--container"])).unwrap(), Mode::Container);
        assert_eq!(parse_args(args(&["request"])).unwrap(), Mode::Request);
        assert_eq!(parse_args(args(&["--purge"])).unwrap(), Mode::Purge);
        assert_eq!(parse_args(args(&["--oci-hook"])).unwrap(), Mode::OciHook);
        assert!(parse_args(args(&["--nope"])).is_err());
    }
}
