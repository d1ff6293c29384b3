//! `alca-netd`: the minimal root daemon that applies per-project nftables isolation.
//!
//! Modes: no flag or `--foreground` serves `io.github.alcatraz.Netd1` on the system bus (after
//! re-applying saved specs and sweeping stale tables); `--reapply` does only the re-apply and
//! sweep, then exits (run by `alca-netd-reapply.service` after nftables reloads).
//! The daemon does not exit when idle: `alca network-helper status` reports it truthfully.

use std::sync::Arc;

use alca_netd::engine::{Engine, RestoreReport};
use alca_netd::service::{NetdService, BUS_NAME, OBJECT_PATH};
use anyhow::{bail, Context};

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Serve,
    Reapply,
}

const USAGE: &str = "usage: alca-netd [--foreground | --reapply]";

fn parse_args(args: impl Iterator<Item = String>) -> anyhow::Result<Mode> {
    let mut mode = Mode::Serve;
    for arg in args {
        match arg.as_str() {
            "--foreground" => {}
            "--reapply" => mode = Mode::Reapply,
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
    for problem in &report.problems {
        tracing::error!("{problem}");
    }
}

async fn restore(engine: &Arc<Engine>) -> anyhow::Result<RestoreReport> {
    let engine = Arc::clone(engine);
    let report = tokio::task::spawn_blocking(move || engine.restore()).await??;
    log_report(&report);
    Ok(report)
}

async fn serve(engine: Arc<Engine>) -> anyhow::Result<()> {
    restore(&engine).await.context("re-applying saved rules")?;
    let service = NetdService::new(Arc::clone(&engine), launcher());
    let _conn = zbus::connection::Builder::system()
        .name(BUS_NAME)
        .serve_at(OBJECT_PATH, service)
        .build()
        .await
        .with_context(|| format!("cannot own {BUS_NAME} on the system bus"))?;
    tracing::info!(launcher = launcher(), "serving {BUS_NAME}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("stopping");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALCA_NETD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mode = parse_args(std::env::args().skip(1))?;
    if !nix::unistd::geteuid().is_root() {
        bail!("alca-netd must run as root (it is started by D-Bus activation or systemd)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let engine = Arc::new(Engine::system());
    runtime.block_on(async {
        match mode {
            Mode::Serve => serve(engine).await,
            Mode::Reapply => {
                let report = restore(&engine).await?;
                println!(
                    "re-applied {} project(s), swept {} stale table(s)",
                    report.reapplied.len(),
                    report.swept.len()
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
        assert!(parse_args(args(&["--nope"])).is_err());
    }
}
