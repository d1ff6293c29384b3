//! The Linux engine: runs `alca __serve-view` as a detached background process per view,
//! records its pid in the view's state directory, and detects dead servers and stale mounts
//! (`ENOTCONN`) so `up` can restart them. The view's mountpoint lives in the state directory,
//! never at the source, so a missing view shows the container an empty or dead directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::fuse_device::{self, FUSE_DEVICE};
use super::view_spec::{ViewSpec, FS_NAME, READY_LINE, SPEC_FILE};
use super::{
    fuse_conf, Conflict, ExcludeError, ExcludeMatcher, ViewEngine, ViewHandle, ViewStatus,
};
use crate::detached;

/// Hidden subcommand that runs [`super::server::serve`].
pub const SERVE_SUBCOMMAND: &str = "__serve-view";
const PID_FILE: &str = "view.pid";
const LOG_FILE: &str = "view.log";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// FUSE filtered views.
#[derive(Debug, Default)]
pub struct FuseEngine {
    /// The `alca` binary that serves views; `None`: this process's own executable.
    program: Option<PathBuf>,
}

impl FuseEngine {
    pub fn new() -> Self {
        FuseEngine::default()
    }

    /// An engine whose servers run `program __serve-view` (for callers that are not the
    /// `alca` binary themselves, such as test harnesses).
    pub fn with_program(program: PathBuf) -> Self {
        FuseEngine {
            program: Some(program),
        }
    }
}

impl ViewEngine for FuseEngine {
    fn name(&self) -> &'static str {
        "fuse-view"
    }

    /// An ordinary user needs `/dev/fuse` open to them and `user_allow_other` (the view is
    /// mounted `allow_other`); both are `alca network-helper install`'s job. Root needs neither.
    fn preflight(&self) -> Result<(), ExcludeError> {
        if crate::privilege::running_as_root() {
            return Ok(());
        }
        let device = Path::new(FUSE_DEVICE);
        let mut missing = Vec::new();
        if !device.exists() {
            return Err(ExcludeError::HostNotReady(format!(
                "file exclusion (workdir_exclude) needs FUSE, but {FUSE_DEVICE} does not exist: load the module \
                 with `sudo modprobe fuse`, then run `sudo alca network-helper install`"
            )));
        }
        if !fuse_device::usable(device) {
            missing.push(format!("{FUSE_DEVICE} is not open to you"));
        }
        let conf = Path::new(fuse_conf::FUSE_CONF);
        if !fuse_conf::user_allow_other_enabled(conf).unwrap_or(false) {
            missing.push(format!("{} lacks user_allow_other", conf.display()));
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(ExcludeError::HostNotReady(format!(
            "file exclusion (workdir_exclude) needs FUSE, but {}: run `sudo alca network-helper install` \
             (then log in again, or run `newgrp alcatraz`, if it added you to group alcatraz)",
            missing.join(" and ")
        )))
    }

    fn start_pinned(
        &self,
        source: &Path,
        patterns: &[String],
        pinned: &[PathBuf],
        state_dir: &Path,
    ) -> Result<ViewHandle, ExcludeError> {
        ExcludeMatcher::compile(patterns)?;
        let source = canonical_dir(source)?;
        let state_dir = canonical_state_dir(state_dir)?;
        let spec = ViewSpec::new(source, patterns, &state_dir).with_pinned(pinned);
        match self.status(&state_dir) {
            ViewStatus::Running { pid, mountpoint }
                if ViewSpec::read(&state_dir.join(SPEC_FILE))?.as_ref() == Some(&spec) =>
            {
                return Ok(ViewHandle {
                    mountpoint,
                    pid,
                    fresh: false,
                });
            }
            ViewStatus::Stopped => {}
            _ => self.stop(&state_dir)?,
        }
        create_mountpoint(&spec.mountpoint)?;
        spec.write(&state_dir)?;
        let pid = spawn_server(self.program.as_deref(), &spec, &state_dir)?;
        write_pid(&state_dir, pid)?;
        if let Err(err) = verify(&spec) {
            let _ = self.stop(&state_dir);
            return Err(err);
        }
        Ok(ViewHandle {
            mountpoint: spec.mountpoint,
            pid,
            fresh: true,
        })
    }

    fn stop(&self, state_dir: &Path) -> Result<(), ExcludeError> {
        let Ok(state_dir) = state_dir.canonicalize() else {
            return Ok(());
        };
        let mountpoint = state_dir.join("mnt");
        if is_view_mounted(&mountpoint) && !unmount(&mountpoint, false) {
            lazy_unmount(&mountpoint);
        }
        if let Some(pid) = server_pid(&state_dir) {
            end_process(pid);
        }
        if is_view_mounted(&mountpoint) {
            return Err(ExcludeError::io(
                format!(
                    "cannot unmount the filtered view at {}",
                    mountpoint.display()
                ),
                std::io::Error::from_raw_os_error(libc::EBUSY),
            ));
        }
        match std::fs::remove_file(state_dir.join(PID_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ExcludeError::io(
                format!("cannot remove {}", state_dir.join(PID_FILE).display()),
                e,
            )),
            _ => Ok(()),
        }
    }

    fn status(&self, state_dir: &Path) -> ViewStatus {
        let Ok(state_dir) = state_dir.canonicalize() else {
            return ViewStatus::Stopped;
        };
        let mountpoint = state_dir.join("mnt");
        let pid = server_pid(&state_dir);
        let mounted = is_view_mounted(&mountpoint);
        match (mounted, pid) {
            (false, None) => ViewStatus::Stopped,
            (false, Some(_)) => ViewStatus::Dead {
                mountpoint,
                reason: "view server running without its mount".into(),
            },
            (true, pid) => match (std::fs::metadata(&mountpoint), pid) {
                (Ok(_), Some(pid)) => ViewStatus::Running { pid, mountpoint },
                (Err(e), _) if e.raw_os_error() == Some(libc::ENOTCONN) => ViewStatus::Dead {
                    mountpoint,
                    reason: "view server gone (ENOTCONN)".into(),
                },
                (Err(e), _) => ViewStatus::Dead {
                    mountpoint,
                    reason: format!("view not answering ({e})"),
                },
                (Ok(_), None) => ViewStatus::Dead {
                    mountpoint,
                    reason: "view mounted but its server is unknown".into(),
                },
            },
        }
    }

    fn conflicts(&self, _state_dir: &Path) -> Result<Vec<Conflict>, ExcludeError> {
        Ok(Vec::new())
    }

    fn no_conflicts_message(&self) -> &'static str {
        "no conflicts (live filtered view)"
    }
}

fn canonical_dir(source: &Path) -> Result<PathBuf, ExcludeError> {
    let canon = source.canonicalize().map_err(|e| ExcludeError::Source {
        path: source.to_path_buf(),
        cause: e,
    })?;
    if !canon.is_dir() {
        return Err(ExcludeError::Source {
            path: source.to_path_buf(),
            cause: std::io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    Ok(canon)
}

fn canonical_state_dir(state_dir: &Path) -> Result<PathBuf, ExcludeError> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| ExcludeError::io(format!("cannot create {}", state_dir.display()), e))?;
    state_dir
        .canonicalize()
        .map_err(|e| ExcludeError::io(format!("cannot resolve {}", state_dir.display()), e))
}

/// Creates the (empty) mountpoint once any stale mount on it is gone.
fn create_mountpoint(mnt: &Path) -> Result<(), ExcludeError> {
    match std::fs::create_dir(mnt) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(ExcludeError::io(
            format!("cannot create {}", mnt.display()),
            e,
        )),
        _ => Ok(()),
    }
}

/// Starts the detached server and waits until it reports the view mounted.
fn spawn_server(
    program: Option<&Path>,
    spec: &ViewSpec,
    state_dir: &Path,
) -> Result<u32, ExcludeError> {
    let not_started = |detail: String| ExcludeError::NotStarted {
        source_dir: spec.source.clone(),
        detail,
    };
    let exe = match program {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| not_started(format!("cannot find the alca binary: {e}")))?,
    };
    let log_path = state_dir.join(LOG_FILE);
    let log = std::fs::File::create(&log_path)
        .map_err(|e| ExcludeError::io(format!("cannot create {}", log_path.display()), e))?;
    let args = [OsStr::new(SERVE_SUBCOMMAND), state_dir.as_os_str()];
    let failed = |detail: String| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        not_started(format!("the view server: {detail}{}", log_tail(&log)))
    };
    match detached::spawn(&exe, &args, None, log, READY_TIMEOUT) {
        Ok((pid, line)) if line == READY_LINE => Ok(pid),
        Ok((pid, line)) => {
            detached::end_process(pid, false);
            Err(failed(format!(
                "it printed {line:?} instead of {READY_LINE:?}"
            )))
        }
        Err(detail) => Err(failed(detail)),
    }
}

fn log_tail(log: &str) -> String {
    let hint = if log.contains("user_allow_other") {
        "\n  fix: add `user_allow_other` to /etc/fuse.conf (done by `sudo alca network-helper install`)"
    } else {
        ""
    };
    format!("{}{hint}", detached::log_tail(log))
}

/// The view is mounted, answers, is not the source itself, and hides what it must at its top.
fn verify(spec: &ViewSpec) -> Result<(), ExcludeError> {
    let fail = |detail: String| ExcludeError::Verify {
        mountpoint: spec.mountpoint.clone(),
        detail,
    };
    if !is_view_mounted(&spec.mountpoint) {
        return Err(fail("not mounted".into()));
    }
    use std::os::unix::fs::MetadataExt;
    let view = std::fs::metadata(&spec.mountpoint).map_err(|e| fail(e.to_string()))?;
    let source = std::fs::metadata(&spec.source).map_err(|e| fail(e.to_string()))?;
    if view.dev() == source.dev() {
        return Err(fail("the mountpoint shows the unfiltered source".into()));
    }
    let matcher = spec.matcher()?;
    let entries = std::fs::read_dir(&spec.mountpoint).map_err(|e| fail(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| fail(e.to_string()))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if matcher.is_excluded(Path::new(&entry.file_name()), is_dir) {
            return Err(fail(format!(
                "excluded entry {:?} is visible",
                entry.file_name()
            )));
        }
    }
    Ok(())
}

fn write_pid(state_dir: &Path, pid: u32) -> Result<(), ExcludeError> {
    let path = state_dir.join(PID_FILE);
    detached::write_pid(&path, pid)
        .map_err(|e| ExcludeError::io(format!("cannot write {}", path.display()), e))
}

/// The recorded server pid, if that process is alive and really serves this state dir.
fn server_pid(state_dir: &Path) -> Option<u32> {
    detached::recorded_pid(&state_dir.join(PID_FILE), SERVE_SUBCOMMAND, state_dir)
}

/// Waits for the server to exit after its unmount; then SIGTERM, then SIGKILL.
fn end_process(pid: u32) {
    detached::end_process(pid, true);
}

/// Whether a view (fstype `fuse.alca-view`) is mounted exactly at `mountpoint`.
pub fn is_view_mounted(mountpoint: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = mountpoint.as_os_str().as_encoded_bytes();
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let mut tail = line.split(" - ").nth(1).unwrap_or("").split(' ');
        let (fstype, source) = (tail.next().unwrap_or(""), tail.next().unwrap_or(""));
        fields.get(4).map(|m| unescape_mount_path(m)).as_deref() == Some(target)
            && (fstype == "fuse" || fstype == format!("fuse.{FS_NAME}"))
            && source == FS_NAME
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Ok(v) = u8::from_str_radix(&field[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn fusermount() -> &'static str {
    if Path::new("/usr/bin/fusermount3").exists() || Path::new("/bin/fusermount3").exists() {
        "fusermount3"
    } else {
        "fusermount"
    }
}

fn unmount(mountpoint: &Path, lazy: bool) -> bool {
    let mut cmd = Command::new(fusermount());
    cmd.arg(if lazy { "-uz" } else { "-u" })
        .arg(mountpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if cmd.status().is_ok_and(|s| s.success()) {
        return true;
    }
    // root without fusermount: unmount directly.
    let flags = if lazy {
        nix::mount::MntFlags::MNT_DETACH
    } else {
        nix::mount::MntFlags::empty()
    };
    nix::mount::umount2(mountpoint, flags).is_ok()
}

/// Detaches the view even while something still uses it.
pub fn lazy_unmount(mountpoint: &Path) {
    unmount(mountpoint, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/a\040b"), b"/a b".to_vec());
        assert_eq!(unescape_mount_path("/plain"), b"/plain".to_vec());
        assert_eq!(unescape_mount_path(r"/x\"), b"/x\\".to_vec());
    }

    #[test]
    fn missing_state_dir_is_stopped_and_stop_is_a_no_op() {
        let engine = FuseEngine::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("none");
        assert_eq!(engine.status(&state), ViewStatus::Stopped);
        engine.stop(&state).expect("stop of nothing");
    }

    #[test]
    fn start_rejects_bad_patterns_and_missing_sources_before_mounting() {
        let engine = FuseEngine::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let err = engine
            .start(dir.path(), &["a{b".into()], &dir.path().join("s"))
            .unwrap_err();
        assert!(err.to_string().contains("`a{b`"), "{err}");
        let err = engine
            .start(&dir.path().join("gone"), &[], &dir.path().join("s"))
            .unwrap_err();
        assert!(err.to_string().contains("gone"), "{err}");
    }

    #[test]
    fn log_tail_suggests_the_fuse_conf_fix() {
        let tail = log_tail(
            "x\nfusermount3: option allow_other only allowed if 'user_allow_other' is set\n",
        );
        assert!(tail.contains("/etc/fuse.conf"), "{tail}");
        assert_eq!(log_tail(""), "");
    }

    #[test]
    fn stale_pid_files_are_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(PID_FILE),
            format!("{}\n", std::process::id()),
        )
        .expect("write");
        assert_eq!(
            server_pid(dir.path()),
            None,
            "this test process is no view server"
        );
    }
}
