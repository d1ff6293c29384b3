//! The projects' DNS resolvers of the helper container (macOS, `network.internet-access`):
//! the container's daemon starts each next to itself, in the VM's network namespace where the
//! project bridges' gateways are, and serves its one channel ([`resolver_channel`]).
//!
//! The root side stays thin: this file never reads DNS. It starts `alca-dns-resolver` (crate
//! `alca-dns`) as [`RESOLVER_UID`] with no groups, no capabilities and `no_new_privs`, hands
//! it its spec on stdin and one end of a socket pair as descriptor [`CHANNEL_FD`], and answers
//! that channel's two calls with the daemon's own `allow_resolved` and `internet_entries`,
//! each first checked by [`NarrowedSenders`] exactly as a narrowed D-Bus connection is: the
//! channel was narrowed to its project when it was made, so a resolver taken over through a
//! parsing bug can add addresses its project's applied list allows, and nothing else.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use alca_contract::errors::NetdError;
use alca_contract::helper_protocol::{MAX_QUERY_LOG_BYTES, RESOLVER_DIR, RESOLVER_UID};
use alca_contract::request::decode_resolved;
use alca_contract::resolver_channel::{
    decode_line, encode_line, ResolverAnswer, ResolverCall, CHANNEL_FD, MAX_CALL_BYTES,
};
use alca_contract::resolver_spec::{ResolverSpec, READY_WORD};

use crate::daemon::Daemon;
use crate::resolver_senders::NarrowedSenders;

/// How long a resolver may take to say it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The resolver's query log in its directory (as `alca_dns::query_log::LOG_FILE`).
const QUERY_LOG: &str = "dns-queries.jsonl";
/// Its stderr.
const STDERR_LOG: &str = "resolver.log";
/// Resolvers at most (one per project).
const MAX_RESOLVERS: usize = 256;

struct Running {
    child: Child,
    spec: ResolverSpec,
    addr: SocketAddr,
}

/// The running resolvers, by project, and the narrowing of their channels.
pub struct HelperResolvers {
    daemon: Arc<Daemon>,
    binary: PathBuf,
    dir: PathBuf,
    running: Mutex<HashMap<String, Running>>,
    narrowed: Arc<NarrowedSenders>,
    channels: AtomicU64,
    /// Channels not closed yet (the narrowing lets closed ones go when it is full).
    open: Arc<Mutex<HashSet<String>>>,
}

impl HelperResolvers {
    /// Resolvers run from `binary`, each with a directory under `dir`.
    pub fn new(daemon: Arc<Daemon>, binary: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        HelperResolvers {
            daemon,
            binary: binary.into(),
            dir: dir.into(),
            running: Mutex::new(HashMap::new()),
            narrowed: Arc::new(NarrowedSenders::default()),
            channels: AtomicU64::new(0),
            open: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The helper image's resolver binary and directory.
    pub fn system(daemon: Arc<Daemon>) -> Self {
        HelperResolvers::new(
            daemon,
            alca_contract::helper_protocol::IMAGE_RESOLVER,
            RESOLVER_DIR,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address of the project's resolver running with exactly `spec`, else a new one's
    /// (the old one stopped first). `uid` is the caller, who must own the project's claim.
    pub fn start(&self, spec: ResolverSpec, uid: u32) -> Result<SocketAddr, NetdError> {
        spec.validate().map_err(NetdError::invalid)?;
        let mut running = self.lock();
        if let Some(r) = running.get_mut(&spec.project) {
            if r.spec == spec && matches!(r.child.try_wait(), Ok(None)) {
                return Ok(r.addr);
            }
        }
        if let Some(old) = running.remove(&spec.project) {
            end(old.child);
        }
        running.retain(|_, r| matches!(r.child.try_wait(), Ok(None)));
        if running.len() >= MAX_RESOLVERS {
            return Err(NetdError::LimitReached(format!(
                "{MAX_RESOLVERS} project resolvers run in the helper; take some projects down"
            )));
        }
        let started = self.spawn(&spec, uid)?;
        let addr = started.addr;
        running.insert(spec.project.clone(), started);
        Ok(addr)
    }

    /// Stops the project's resolver, if one runs.
    pub fn stop(&self, project: &str) {
        if let Some(old) = self.lock().remove(project) {
            end(old.child);
        }
    }

    /// Where the project's resolver answers, if it runs.
    pub fn address(&self, project: &str) -> Option<SocketAddr> {
        let mut running = self.lock();
        let alive = running
            .get_mut(project)
            .is_some_and(|r| matches!(r.child.try_wait(), Ok(None)));
        if !alive {
            running.remove(project);
        }
        running.get(project).map(|r| r.addr)
    }

    /// The project's query log as written (the rotated part first), bounded. The files are
    /// the unprivileged resolver's: opened without following links, regular files only.
    pub fn query_log(&self, project: &str) -> Result<String, NetdError> {
        let log = self.dir.join(project).join(QUERY_LOG);
        let mut rotated = log.clone().into_os_string();
        rotated.push(".1");
        let mut text = Vec::new();
        for path in [PathBuf::from(rotated), log] {
            read_owned_file(&path, &mut text)?;
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    fn spawn(&self, spec: &ResolverSpec, uid: u32) -> Result<Running, NetdError> {
        let failed = |what: String| {
            NetdError::Internal(format!(
                "cannot start the DNS resolver of project {}: {what}",
                spec.project
            ))
        };
        if !self.binary.is_file() {
            return Err(failed(format!(
                "{} is not in the helper image: build the image with alca-dns-resolver next \
                 to alca-netd (`cargo build -p alca-dns`, or a release archive), then run \
                 `alca network-helper install` again",
                self.binary.display()
            )));
        }
        let dir = self.project_dir(&spec.project).map_err(failed)?;
        let (ours, theirs) = UnixStream::pair().map_err(|e| failed(e.to_string()))?;
        let stderr = fresh_file(&dir.join(STDERR_LOG)).map_err(|e| failed(e.to_string()))?;
        let theirs_fd = std::os::fd::AsRawFd::as_raw_fd(&theirs);
        let mut command = Command::new(&self.binary);
        command
            .arg(&dir)
            .env_clear()
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .uid(RESOLVER_UID)
            .gid(RESOLVER_UID);
        // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if theirs_fd == CHANNEL_FD {
                    if libc::fcntl(CHANNEL_FD, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(theirs_fd, CHANNEL_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| failed(format!("{}: {e}", self.binary.display())))?;
        drop(theirs);
        let input = serde_json::to_vec(spec).map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&input).map_err(|e| failed(e.to_string()))?;
        }
        let addr = match ready_line(&mut child) {
            Ok(addr) => addr,
            Err(why) => {
                end(child);
                let log = std::fs::read_to_string(dir.join(STDERR_LOG)).unwrap_or_default();
                return Err(failed(format!("{why}; its log: {}", log.trim())));
            }
        };
        self.serve_channel(ours, &spec.project, uid)
            .map_err(|e| failed(e.message()))?;
        tracing::info!(project = %spec.project, %addr, "resolver started");
        Ok(Running {
            child,
            spec: spec.clone(),
            addr,
        })
    }

    /// `dir/<project>`, made for the resolver's uid (mode 0700); refused if it is not a
    /// directory of ours (a link planted there is never followed).
    fn project_dir(&self, project: &str) -> Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let dir = self.dir.join(project);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| e.to_string())?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        std::os::unix::fs::lchown(&dir, Some(RESOLVER_UID), Some(RESOLVER_UID))
            .and_then(|()| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Narrows a new channel to `project` and answers it on a thread of its own until the
    /// resolver closes it.
    fn serve_channel(&self, stream: UnixStream, project: &str, uid: u32) -> Result<(), NetdError> {
        let name = format!(
            "helper-resolver:{}",
            self.channels.fetch_add(1, Ordering::Relaxed)
        );
        let open = Arc::clone(&self.open);
        let is_open = |n: &str| lock_set(&open).contains(n);
        self.narrowed.narrow(&name, project, is_open)?;
        lock_set(&open).insert(name.clone());
        let daemon = Arc::clone(&self.daemon);
        let narrowed = Arc::clone(&self.narrowed);
        std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                serve_calls(&daemon, &narrowed, &name, uid, stream);
                lock_set(&open).remove(&name);
            })
            .map_err(|e| NetdError::Internal(e.to_string()))?;
        Ok(())
    }
}

fn lock_set(set: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers one channel's calls in order until it closes or sends a line it may not.
fn serve_calls(
    daemon: &Daemon,
    narrowed: &NarrowedSenders,
    name: &str,
    uid: u32,
    stream: UnixStream,
) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = MAX_CALL_BYTES as u64 + 2;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        let answer = answer_call(daemon, narrowed, name, uid, body);
        if writer.write_all(&encode_line(&answer)).is_err() {
            return;
        }
        if !line.ends_with(b"\n") {
            // Longer than any call: the channel is out of step; close it.
            return;
        }
    }
}

/// One call, checked as the D-Bus methods check a narrowed connection's.
pub fn answer_call(
    daemon: &Daemon,
    narrowed: &NarrowedSenders,
    name: &str,
    uid: u32,
    line: &[u8],
) -> ResolverAnswer {
    let result = decode_line::<ResolverCall>(line, MAX_CALL_BYTES)
        .map_err(NetdError::InvalidRequest)
        .and_then(|call| match call {
            ResolverCall::AllowResolved { update } => {
                let update = decode_resolved(&update).map_err(NetdError::invalid)?;
                narrowed.check(name, Some(&update.project))?;
                daemon
                    .allow_resolved(&update, uid)
                    .map(|_| ResolverAnswer::Allowed)
            }
            ResolverCall::InternetEntries { project } => {
                alca_contract::request::decode_project(&project).map_err(NetdError::invalid)?;
                narrowed.check(name, Some(&project))?;
                daemon
                    .internet_entries(&project, uid)
                    .map(ResolverAnswer::Entries)
            }
        });
    result.unwrap_or_else(|e| ResolverAnswer::Refused(e.message()))
}

/// The resolver's `ready ADDRESS` line on its stdout, within [`READY_TIMEOUT`].
fn ready_line(child: &mut Child) -> Result<SocketAddr, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout.take(256)).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let line = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("it did not get ready within {READY_TIMEOUT:?}")),
    };
    match line.trim().split_once(' ') {
        Some((w, addr)) if w == READY_WORD => addr
            .parse()
            .map_err(|_| format!("it printed {line:?}, not \"{READY_WORD} ADDRESS\"")),
        _ => Err(format!(
            "it printed {:?}, not \"{READY_WORD} ADDRESS\"",
            line.trim()
        )),
    }
}

/// SIGTERM, a bounded wait, then SIGKILL; reaped.
fn end(mut child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    for _ in 0..40 {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A new empty file at `path` in a directory the resolver's uid owns: whatever it left there
/// (a link to a file of root's, say) is unlinked, never followed or truncated.
fn fresh_file(path: &Path) -> std::io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Appends `path` (a regular file, not followed if a link; missing: nothing) to `out`, up to
/// [`MAX_QUERY_LOG_BYTES`] in all.
fn read_owned_file(path: &Path, out: &mut Vec<u8>) -> Result<(), NetdError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(NetdError::Internal(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| NetdError::Internal(e.to_string()))?;
    if !meta.is_file() {
        return Err(NetdError::Internal(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let room = MAX_QUERY_LOG_BYTES.saturating_sub(out.len() as u64);
    file.take(room)
        .read_to_end(out)
        .map_err(|e| NetdError::Internal(format!("cannot read {}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Recorder;
    use alca_contract::internet::{parse_internet_entry, InternetSpec, ResolvedAddrs};
    use alca_contract::net_spec::{bridge_name, NetSpec};
    use alca_contract::resolver_channel::ResolverCall;

    const P1: &str = "0123456789abcdef";
    const P2: &str = "fedcba9876543210";

    fn daemon_with_lists() -> (Daemon, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::new(
            Box::new(Recorder::default()),
            crate::store::Store::new(dir.path()),
        );
        for p in [P1, P2] {
            let mut spec = NetSpec::isolated(p);
            spec.bridge = bridge_name(p);
            spec.internet = Some(InternetSpec {
                entries: vec![parse_internet_entry("allowed.test:80").unwrap()],
                resolver: "10.89.0.1:5353".parse().unwrap(),
                ttl_floor_secs: 0,
                ttl_max_secs: 600,
            });
            daemon.apply(spec, 1000, false).unwrap();
        }
        (daemon, dir)
    }

    fn call(c: &ResolverCall) -> Vec<u8> {
        let mut line = encode_line(c);
        line.pop();
        line
    }

    fn allow(project: &str, addr: &str) -> Vec<u8> {
        let update = serde_json::json!({
            "project": project,
            "addrs": [{"entry": 0, "addr": addr, "ttl_secs": 30}],
        });
        call(&ResolverCall::AllowResolved {
            update: update.to_string(),
        })
    }

    #[test]
    fn a_channel_does_only_its_projects_resolver_calls() {
        let (daemon, _dir) = daemon_with_lists();
        let narrowed = NarrowedSenders::default();
        narrowed.narrow("helper-resolver:0", P1, |_| true).unwrap();
        let answer = |line: &[u8]| answer_call(&daemon, &narrowed, "helper-resolver:0", 1000, line);
        assert_eq!(answer(&allow(P1, "192.88.99.2")), ResolverAnswer::Allowed);
        let ResolverAnswer::Entries(entries) =
            answer(&call(&ResolverCall::InternetEntries { project: P1.into() }))
        else {
            panic!("entries expected");
        };
        assert_eq!(entries.internet.unwrap().entries.len(), 1);
        // Another project of the same owner: refused, as to a narrowed bus connection.
        for refused in [
            allow(P2, "192.88.99.2"),
            call(&ResolverCall::InternetEntries { project: P2.into() }),
        ] {
            let ResolverAnswer::Refused(why) = answer(&refused) else {
                panic!("refused expected");
            };
            assert!(why.contains(P1), "{why}");
        }
        // The daemon's own address checks: a LAN address, an entry that is not there.
        for bad in [allow(P1, "127.0.0.1"), allow(P1, "::1")] {
            assert!(matches!(answer(&bad), ResolverAnswer::Refused(_)));
        }
        let update = ResolvedAddrs {
            project: P1.into(),
            addrs: vec![],
        };
        let not_a_call = serde_json::to_vec(&update).unwrap();
        assert!(matches!(answer(&not_a_call), ResolverAnswer::Refused(_)));
        let apply = br#"{"call":"apply","spec":"{}"}"#;
        assert!(
            matches!(answer(apply), ResolverAnswer::Refused(m) if m.contains("unknown variant"))
        );
    }

    #[test]
    fn the_query_log_is_read_without_following_links() {
        let (daemon, dir) = daemon_with_lists();
        let resolvers = HelperResolvers::new(Arc::new(daemon), "/nonexistent", dir.path());
        let project_dir = dir.path().join(P1);
        std::fs::create_dir_all(&project_dir).unwrap();
        assert_eq!(resolvers.query_log(P1).unwrap(), "");
        std::fs::write(project_dir.join("dns-queries.jsonl.1"), "a\n").unwrap();
        std::fs::write(project_dir.join(QUERY_LOG), "b\n").unwrap();
        assert_eq!(resolvers.query_log(P1).unwrap(), "a\nb\n");
        std::fs::remove_file(project_dir.join(QUERY_LOG)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", project_dir.join(QUERY_LOG)).unwrap();
        assert!(resolvers.query_log(P1).is_err());
    }

    #[test]
    fn the_stderr_log_never_follows_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("roots-file");
        std::fs::write(&target, "keep").unwrap();
        let log = dir.path().join(STDERR_LOG);
        std::os::unix::fs::symlink(&target, &log).unwrap();
        let mut file = fresh_file(&log).unwrap();
        file.write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "new");
        assert!(!std::fs::symlink_metadata(&log).unwrap().is_symlink());
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_it() {
        let (daemon, dir) = daemon_with_lists();
        let resolvers = HelperResolvers::new(Arc::new(daemon), "/nonexistent/resolver", dir.path());
        let spec = ResolverSpec {
            project: P1.into(),
            listen: "10.89.0.1".parse().unwrap(),
            entries: vec![],
            upstreams: vec!["192.88.99.2:53".parse().unwrap()],
            gateway_up_later: false,
        };
        let e = resolvers.start(spec, 1000).unwrap_err().message();
        assert!(e.contains("/nonexistent/resolver"), "{e}");
        assert_eq!(resolvers.address(P1), None);
    }
}
