//! The view server: the process behind `alca __serve-view STATE_DIR`. It mounts the filtered
//! view described by `STATE_DIR/view.json`, tells its parent it is ready, and serves until
//! the view is unmounted or it receives SIGTERM/SIGINT/SIGHUP.

use std::path::Path;

use fuser::{Config, MountOption, SessionACL};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::{umask, Mode};

use super::fs::FilterFs;
use super::view_spec::{ViewSpec, FS_NAME, READY_LINE, SPEC_FILE};
use super::ExcludeError;

/// Kernel request threads.
const THREADS: usize = 4;

/// Mounts and serves the view of `state_dir` until it is unmounted.
pub fn serve(state_dir: &Path) -> Result<(), ExcludeError> {
    crate::detached::close_inherited_fds();
    let spec_path = state_dir.join(SPEC_FILE);
    let spec = ViewSpec::read(&spec_path)?.ok_or_else(|| ExcludeError::State {
        path: spec_path.clone(),
        detail: "missing".into(),
    })?;
    let matcher = spec.matcher()?;
    // The container's requested modes are already masked by its own umask.
    umask(Mode::empty());
    raise_fd_limit();
    let signals = block_stop_signals()?;
    let fs = FilterFs::new(&spec.source, matcher).map_err(|cause| ExcludeError::Source {
        path: spec.source.clone(),
        cause,
    })?;
    let host_changes = fs.host_changes();
    let mut session = fuser::Session::new(fs, &spec.mountpoint, &mount_config())
        .map_err(|e| ExcludeError::io(format!("cannot mount {}", spec.mountpoint.display()), e))?;
    host_changes
        .spawn(session.notifier())
        .map_err(|e| ExcludeError::io("cannot start watching the source for changes", e))?;
    let mut unmounter = session.unmount_callable();
    let mountpoint = spec.mountpoint.clone();
    std::thread::spawn(move || {
        if signals.wait().is_ok() && unmounter.unmount().is_err() {
            super::fuse_engine::lazy_unmount(&mountpoint);
        }
    });
    announce_ready()?;
    session
        .run()
        .map_err(|e| ExcludeError::io("the filtered view stopped with an error", e))
}

fn mount_config() -> Config {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(FS_NAME.into()),
        MountOption::Subtype(FS_NAME.into()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
        MountOption::RW,
    ];
    // allow_other: the container runtime (root) and the container's users must reach it.
    config.acl = SessionACL::All;
    config.n_threads = Some(THREADS);
    config.clone_fd = true;
    config
}

/// Blocks the stop signals in this thread (and so in every thread spawned later) and
/// returns the set for a dedicated thread to wait on.
fn block_stop_signals() -> Result<SigSet, ExcludeError> {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block()
        .map_err(|e| ExcludeError::io("cannot block signals", e.into()))?;
    Ok(set)
}

/// Tells the parent the view is mounted, then detaches stdout so the parent may exit.
fn announce_ready() -> Result<(), ExcludeError> {
    crate::detached::announce_ready(READY_LINE)
        .map_err(|e| ExcludeError::io("cannot report readiness", e))
}

/// One descriptor per open file in the container: use the whole hard limit.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}
