//! Background servers `alca` starts per project and leaves running after it exits (the
//! filtered-view server, the DNS resolver): started in a new session, ready once they print one
//! line on stdout, recorded by pid, recognised by their command line, stopped gently then firmly.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a stopping server gets at each step (exit on its own, SIGTERM, SIGKILL).
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts `exe args…` detached (its stderr to `log`, `stdin` written to its standard input)
/// and waits up to `ready_timeout` for its first stdout line, which is returned with its pid.
/// On failure the process is killed and the error says why.
pub fn spawn(
    exe: &Path,
    args: &[&OsStr],
    stdin: Option<&[u8]>,
    log: std::fs::File,
    ready_timeout: Duration,
) -> Result<(u32, String), String> {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(log);
    detach(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start it: {e}"))?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Dropping the pipe closes it: the server reads to the end.
        if let Err(e) = pipe.write_all(bytes) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("cannot hand it its spec: {e}"));
        }
    }
    match wait_ready(&mut child, ready_timeout) {
        Ok(line) => Ok((child.id(), line)),
        Err(detail) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(detail)
        }
    }
}

/// New session: the server survives the CLI and its terminal.
fn detach(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}

fn wait_ready(child: &mut Child, timeout: Duration) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no pipe to the server")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let res = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = tx.send(res);
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(line)) if !line.trim().is_empty() => Ok(line.trim().to_string()),
        Ok(Ok(_)) => Err(match child.wait() {
            Ok(status) => format!("it exited ({status})"),
            Err(e) => format!("it failed: {e}"),
        }),
        Ok(Err(e)) => Err(format!("cannot read from it: {e}")),
        Err(_) => Err(format!("it was not ready within {} s", timeout.as_secs())),
    }
}

/// The pid recorded in `pid_file`, if that process is alive and its command line holds both
/// `subcommand` and `state_dir` (so a stale or forged pid never names another process).
pub fn recorded_pid(pid_file: &Path, subcommand: &str, state_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let mut cmdline = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/cmdline"))
        .and_then(|mut f| f.read_to_end(&mut cmdline))
        .ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let ours = args.contains(&subcommand.as_bytes())
        && args.contains(&state_dir.as_os_str().as_encoded_bytes());
    ours.then_some(pid)
}

/// Waits for the process to exit; then SIGTERM, then SIGKILL. `gentle_first`: give it time to
/// exit on its own before the first signal (a view server exits after its unmount).
pub fn end_process(pid: u32, gentle_first: bool) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    let pid = Pid::from_raw(raw);
    let first = if gentle_first {
        None
    } else {
        Some(Signal::SIGTERM)
    };
    for signal in [first, Some(Signal::SIGTERM), Some(Signal::SIGKILL)] {
        if let Some(signal) = signal {
            let _ = kill(pid, signal);
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while Instant::now() < deadline {
            if !alive(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn alive(pid: Pid) -> bool {
    // A zombie (our own child in tests) counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Writes the pid file.
pub fn write_pid(pid_file: &Path, pid: u32) -> std::io::Result<()> {
    std::fs::write(pid_file, format!("{pid}\n"))
}

/// The last lines of a server's log, for an error message.
pub fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        ":\n  {}",
        lines[lines.len().saturating_sub(5)..].join("\n  ")
    )
}

/// Closes every descriptor above stderr a server inherited: it outlives the command that
/// started it, and must not keep that command's files open (a lock a caller held, a pipe
/// someone waits on to close).
pub fn close_inherited_fds() {
    // SAFETY: close_range only closes descriptors; none above 2 is in use by this process yet.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc != 0 {
        let max = nix::unistd::sysconf(nix::unistd::SysconfVar::OPEN_MAX)
            .ok()
            .flatten()
            .unwrap_or(1024)
            .min(65536);
        for fd in 3..max as i32 {
            // SAFETY: closing a descriptor number this process does not use is harmless.
            unsafe { libc::close(fd) };
        }
    }
}

/// Tells the parent the server is ready (`line`), then points stdout at /dev/null so the
/// parent may exit.
pub fn announce_ready(line: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: dup2 onto our own stdout descriptor; both descriptors are valid.
    unsafe { libc::dup2(devnull.as_raw_fd(), libc::STDOUT_FILENO) };
    Ok(())
}
