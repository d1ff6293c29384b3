//! File isolation (SPEC §4): hide `workdir_exclude` / mount `exclude` paths from the container
//! while every other file stays live both ways.
//!
//! Commands talk to [`ViewEngine`] only. On Linux the engine is a FUSE filtered view of the
//! source ([`fuse_engine::FuseEngine`]): one source of truth, nothing to sync, nothing to
//! conflict. The container bind-mounts the view's mountpoint instead of the source, so if the view
//! server dies the container sees `ENOTCONN`, never the unfiltered files. Another engine (for
//! example Mutagen on macOS) implements the same trait.
//!
//! What the container observes through a Linux view:
//! * excluded paths do not exist (`ENOENT` on lookup, absent from listings), whenever they
//!   were created; symlinks into them resolve through the view and fail the same way;
//! * creating, linking or renaming *to* an excluded path fails with `EACCES`; a directory
//!   rename that would move hidden entries to a visible path fails with `EXDEV` (tools fall
//!   back to copying the visible files); a directory holding only hidden entries looks empty
//!   but cannot be removed (`ENOTEMPTY`);
//! * everything else is the host file itself (no write-back cache; the kernel caches entries,
//!   attributes, pages and listings for long where inotify watches the host directory, and
//!   every host change there invalidates them at once; elsewhere it caches for 100 ms); files
//!   and directories it creates belong on the host to the user who ran `alca up` (the view
//!   server runs as that user), owners and modes shown are the host's, and `chown` to
//!   another user fails unless that user is root; set-uid and set-gid bits are never set
//!   (stripped from create, mknod, mkdir and chmod);
//! * on Linux every workspace goes through a view, with or without patterns
//!   ([`project_views::ALWAYS_VIEW`]), and the paths bind-mounted read-only over it (config
//!   files, `.git/config`, `.git/hooks`, `.alca`) cannot be renamed or removed, nor any
//!   directory above them (`EBUSY`);
//! * if the server dies, the workspace fails with `ENOTCONN` until `alca up`/`alca run`
//!   restart the view and the container;
//! * the view needs `user_allow_other` in `/etc/fuse.conf` and a `/dev/fuse` the user may open
//!   when run by an ordinary user; [`fuse_conf`] and [`fuse_device`] provide both, for the root
//!   step `alca network-helper install`, and `up` checks them before it creates anything.

pub mod patterns;
pub mod project_views;
pub mod tracked;
pub mod view_spec;

#[cfg(target_os = "linux")]
pub mod fs;
#[cfg(target_os = "linux")]
pub mod fuse_conf;
#[cfg(target_os = "linux")]
pub mod fuse_device;
#[cfg(target_os = "linux")]
pub mod fuse_engine;
#[cfg(target_os = "linux")]
pub mod server;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use patterns::{ExcludeMatcher, PatternError};

/// Why a view could not be started, stopped or inspected.
#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("file exclusion (workdir_exclude / mount exclude) is not supported on {0} yet; remove the exclude patterns or use Linux")]
    Unsupported(&'static str),
    // The io::Error is part of the message and deliberately not the error's `source`:
    // `{:#}` would print it twice ("Permission denied (os error 13): Permission denied …").
    #[error("cannot serve {path} through the filtered view: {cause}")]
    Source {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("mounts: {path} (mounted at {target}) is a file inside the project; the agent could swap it for a symlink the runtime would follow at the next start. Mount its directory instead, or use the file through the workspace")]
    WorkspaceFileMount { path: PathBuf, target: String },
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    /// The machine is not set up for this user's views yet (one line naming the fix).
    #[error("{0}")]
    HostNotReady(String),
    #[error("the filtered view of {source_dir} did not start: {detail}")]
    NotStarted { source_dir: PathBuf, detail: String },
    #[error("the filtered view at {mountpoint} failed verification: {detail}")]
    Verify { mountpoint: PathBuf, detail: String },
    #[error("invalid view state file {path}: {detail}; run `alca down` and `alca up` again")]
    State { path: PathBuf, detail: String },
}

impl ExcludeError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ExcludeError::Io {
            context: context.into(),
            cause: source,
        }
    }
}

/// A running view: bind-mount `mountpoint` into the container instead of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewHandle {
    pub mountpoint: PathBuf,
    /// Process serving the view.
    pub pid: u32,
    /// True when this call mounted a new view (first start, or after a crash/reboot/pattern
    /// change). A container created earlier still holds the old, dead mount and must be
    /// restarted (its bind mount is re-resolved on start).
    pub fresh: bool,
}

/// State of one view as seen from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewStatus {
    /// Mounted and answering.
    Running { pid: u32, mountpoint: PathBuf },
    /// Mounted but its server is gone (`ENOTCONN`), or the server runs without its mount.
    Dead { mountpoint: PathBuf, reason: String },
    /// Nothing mounted.
    Stopped,
}

impl fmt::Display for ViewStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewStatus::Running { pid, mountpoint } => {
                write!(
                    f,
                    "active (filtered view at {}, pid {pid})",
                    mountpoint.display()
                )
            }
            ViewStatus::Dead { mountpoint, reason } => {
                write!(
                    f,
                    "broken ({reason} at {}); run `alca up`",
                    mountpoint.display()
                )
            }
            ViewStatus::Stopped => f.write_str("stopped"),
        }
    }
}

/// A file-sync conflict reported by `alca experimental sync check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub path: PathBuf,
    pub detail: String,
}

/// How excluded paths are kept away from the container.
pub trait ViewEngine {
    /// Short name shown by `status` and `sync check`.
    fn name(&self) -> &'static str;

    /// Checks, before anything is created, that this machine lets the current user run views
    /// at all (an error names the fix).
    fn preflight(&self) -> Result<(), ExcludeError> {
        Ok(())
    }

    /// Starts (or reuses) the view of `source` without the paths matching `patterns`.
    /// `state_dir` belongs to this view alone (see [`state_dir_for`]); it holds the pid, the
    /// log and the mountpoint. Idempotent: a healthy view with the same patterns is reused,
    /// a dead one is cleaned up and started again. Fails closed: on error nothing is mounted.
    fn start(
        &self,
        source: &Path,
        patterns: &[String],
        state_dir: &Path,
    ) -> Result<ViewHandle, ExcludeError> {
        self.start_pinned(source, patterns, &[], state_dir)
    }

    /// [`ViewEngine::start`], with paths (relative to `source`) that neither the container nor
    /// a rename of a directory above them may move (they are bind-mounted over the view).
    fn start_pinned(
        &self,
        source: &Path,
        patterns: &[String],
        pinned: &[PathBuf],
        state_dir: &Path,
    ) -> Result<ViewHandle, ExcludeError>;

    /// Unmounts the view and ends its server; stopping a stopped view is not an error.
    fn stop(&self, state_dir: &Path) -> Result<(), ExcludeError>;

    /// Inspects the view without changing anything.
    fn status(&self, state_dir: &Path) -> ViewStatus;

    /// Unresolved sync conflicts; live views never have any.
    fn conflicts(&self, state_dir: &Path) -> Result<Vec<Conflict>, ExcludeError>;

    /// One-line summary of what `conflicts` found, for `sync check`.
    fn no_conflicts_message(&self) -> &'static str;
}

/// The engine for this platform.
pub fn engine_for_platform() -> Result<Box<dyn ViewEngine>, ExcludeError> {
    #[cfg(target_os = "linux")]
    {
        Ok(Box::new(fuse_engine::FuseEngine::new()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(ExcludeError::Unsupported(std::env::consts::OS))
    }
}

/// `alca __serve-view STATE_DIR`: runs the view server in this process until unmounted.
pub fn serve_command(state_dir: &Path) -> anyhow::Result<std::process::ExitCode> {
    #[cfg(target_os = "linux")]
    {
        server::serve(state_dir)?;
        Ok(std::process::ExitCode::SUCCESS)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = state_dir;
        Err(ExcludeError::Unsupported(std::env::consts::OS).into())
    }
}

/// The state directory of the view of `source`: `<alca_dir>/views/<hash of source>`.
/// `alca_dir` is the project's `.alca/` directory.
pub fn state_dir_for(alca_dir: &Path, source: &Path) -> PathBuf {
    let digest = Sha256::digest(source.as_os_str().as_encoded_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    alca_dir.join("views").join(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dirs_differ_per_source_and_are_stable() {
        let a = state_dir_for(Path::new("/p/.alca"), Path::new("/p"));
        let b = state_dir_for(Path::new("/p/.alca"), Path::new("/data"));
        assert_ne!(a, b);
        assert_eq!(a, state_dir_for(Path::new("/p/.alca"), Path::new("/p")));
        assert!(a.starts_with("/p/.alca/views"));
    }

    #[test]
    fn status_lines_tell_what_to_do() {
        let dead = ViewStatus::Dead {
            mountpoint: PathBuf::from("/m"),
            reason: "server not running".into(),
        };
        assert!(dead.to_string().contains("alca up"));
        assert_eq!(ViewStatus::Stopped.to_string(), "stopped");
    }
}
