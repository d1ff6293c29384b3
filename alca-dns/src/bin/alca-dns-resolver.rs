//! `alca-dns-resolver DIR`: a project's DNS resolver inside the helper container (macOS),
//! started by the container's daemon (`alca-netd --container`) already as an unprivileged uid
//! with `no_new_privs`: its spec comes on stdin, its channel to the daemon is descriptor
//! [`CHANNEL_FD`], its query log goes to `DIR`. It refuses to run with root or any capability
//! (DNS is never parsed with privileges), prints `ready ADDRESS` and serves until SIGTERM.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;

use alca_contract::resolver_channel::CHANNEL_FD;
use alca_contract::resolver_spec::{ResolverSpec, READY_WORD};
use alca_dns::channel_sink::ChannelSink;
use alca_dns::query_log::LOG_FILE;

/// Longest spec read from stdin.
const MAX_SPEC_BYTES: u64 = 256 * 1024;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("alca-dns-resolver: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    close_other_fds();
    unprivileged()?;
    // SAFETY: prctl with constant arguments; no other process may then read our memory.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err("cannot make the resolver non-dumpable".into());
    }
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        return Err("usage: alca-dns-resolver DIR (spec on stdin, channel on fd 3)".into());
    };
    let mut input = Vec::new();
    std::io::stdin()
        .take(MAX_SPEC_BYTES)
        .read_to_end(&mut input)
        .map_err(|e| format!("cannot read the spec on stdin: {e}"))?;
    let spec: ResolverSpec =
        serde_json::from_slice(&input).map_err(|e| format!("the spec on stdin is invalid: {e}"))?;
    spec.validate().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let log = PathBuf::from(dir).join(LOG_FILE);
    runtime.block_on(async move {
        // SAFETY: the daemon handed this process fd 3 for the channel and nothing else.
        let sink = unsafe { ChannelSink::from_fd(CHANNEL_FD) }
            .map_err(|e| format!("no channel to the daemon on fd {CHANNEL_FD}: {e}"))?;
        alca_dns::resolver_run::run(spec, sink, log, announce)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Fails unless the process holds no root uid and no capability at all.
fn unprivileged() -> Result<(), String> {
    // SAFETY: plain getters.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if uid == 0 || euid == 0 {
        return Err("refusing to parse DNS as root".into());
    }
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    for field in ["CapPrm:", "CapEff:", "CapAmb:"] {
        let value = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(str::trim)
            .ok_or_else(|| format!("/proc/self/status has no {field}"))?;
        if u64::from_str_radix(value, 16) != Ok(0) {
            return Err(format!(
                "refusing to parse DNS with capabilities ({field} {value})"
            ));
        }
    }
    Ok(())
}

/// Every descriptor above the channel is closed before any DNS is read.
fn close_other_fds() {
    let first = CHANNEL_FD as u32 + 1;
    // SAFETY: close_range only closes descriptors; none above the channel is in use yet.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
    if rc != 0 {
        for fd in first as i32..4096 {
            // SAFETY: closing a descriptor number this process does not use is harmless.
            unsafe { libc::close(fd) };
        }
    }
}

/// `ready ADDRESS` on stdout, then stdout goes to /dev/null (the daemon stops reading).
fn announce(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY_WORD} {addr}")?;
    out.flush()?;
    let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: dup2 onto our own stdout descriptor; both descriptors are valid.
    unsafe { libc::dup2(devnull.as_raw_fd(), libc::STDOUT_FILENO) };
    Ok(())
}
