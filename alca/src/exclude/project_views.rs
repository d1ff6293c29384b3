//! The views one project needs, for the lifecycle commands: the workdir (with
//! `workdir_exclude`) and every mount with `exclude` patterns, each served by the platform
//! engine from its own state directory under `<project>/.alca/views/`.
//!
//! `up` starts them before the container exists and bind-mounts their mountpoints instead of
//! the sources; `down` stops them; `status` reports them.

use std::path::{Path, PathBuf};

use super::{engine_for_platform, state_dir_for, ExcludeError, ViewEngine, ViewHandle, ViewStatus};
use crate::config::Config;
use crate::project::STATE_DIR;
use crate::runtime::BindMount;

/// One source the container must only see through a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    /// Container path the source is mounted at.
    pub target: String,
    pub source: PathBuf,
    pub patterns: Vec<String>,
    /// Paths the runtime bind-mounts over this view (see `ExcludeMatcher::pin`).
    pub pinned: Vec<PathBuf>,
    pub state_dir: PathBuf,
}

/// Whether this platform serves every workspace through a view, with or without patterns.
/// On Linux it does: the view server runs as the user and strips set-uid/set-gid bits, so
/// nothing the container writes reaches the host as root-owned or set-uid (issue #22 item 3).
pub const ALWAYS_VIEW: bool = cfg!(target_os = "linux");

/// The views required by `config` for the project at `root`: the workdir (always on Linux,
/// else when it has `workdir_exclude`), every mount with `exclude` patterns, and every mount
/// whose source lies inside the project, so the runtime never resolves a path the agent can
/// swap for a symlink (it re-resolves bind sources at every start).
pub fn needed(root: &Path, config: &Config) -> Vec<Needed> {
    let alca_dir = root.join(STATE_DIR);
    let workdir = (
        config.workdir.clone(),
        root.to_path_buf(),
        &config.workdir_exclude,
        ALWAYS_VIEW,
    );
    let pinned = crate::trust::protect::pinned(root, &config.sources);
    let mounts = config.mounts.iter().map(|m| {
        (
            m.target.clone(),
            m.source.clone(),
            &m.exclude,
            inside(root, &m.source),
        )
    });
    std::iter::once(workdir)
        .chain(mounts)
        .filter(|(_, _, patterns, always)| *always || !patterns.is_empty())
        .map(|(target, source, patterns, _)| Needed {
            pinned: if source == root {
                pinned.clone()
            } else {
                Vec::new()
            },
            target,
            state_dir: state_dir_for(&alca_dir, &source),
            source,
            patterns: patterns.clone(),
        })
        .collect()
}

/// True when `path` is `root` or below it (both compared as written and canonical).
pub fn inside(root: &Path, path: &Path) -> bool {
    if path.starts_with(root) {
        return true;
    }
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(path)) => path.starts_with(root),
        _ => false,
    }
}

/// Refuses a mount source inside the project that is not a directory: a view serves
/// directories only, and a file path would reach the runtime as one the agent can swap.
fn check_workspace_mount(root: &Path, n: &Needed) -> Result<(), ExcludeError> {
    if n.source == root || !inside(root, &n.source) || n.source.is_dir() {
        return Ok(());
    }
    Err(ExcludeError::WorkspaceFileMount {
        path: n.source.clone(),
        target: n.target.clone(),
    })
}

/// The running views of a project, by container target.
#[derive(Debug, Default)]
pub struct ProjectViews {
    views: Vec<(String, ViewHandle)>,
}

impl ProjectViews {
    /// Starts (or reuses) every view the config needs. Fails closed: if one cannot be
    /// started and verified, the ones started by this call are stopped again.
    pub fn start(root: &Path, config: &Config) -> Result<ProjectViews, ExcludeError> {
        let needed = needed(root, config);
        if needed.is_empty() {
            return Ok(ProjectViews::default());
        }
        for n in &needed {
            check_workspace_mount(root, n)?;
        }
        let engine = engine_for_platform()?;
        engine.preflight()?;
        let mut views = Vec::new();
        for n in &needed {
            match engine.start_pinned(&n.source, &n.patterns, &n.pinned, &n.state_dir) {
                Ok(handle) => views.push((n.target.clone(), handle)),
                Err(err) => {
                    for started in needed.iter().take(views.len()) {
                        let _ = engine.stop(&started.state_dir);
                    }
                    return Err(err);
                }
            }
        }
        Ok(ProjectViews { views })
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// True when a view was (re)mounted by this call: a container created earlier holds the
    /// old mount and must be restarted to see the new one.
    pub fn any_fresh(&self) -> bool {
        self.views.iter().any(|(_, h)| h.fresh)
    }

    /// Progress line for `up`, if there are views.
    pub fn summary(&self) -> Option<String> {
        if self.views.is_empty() {
            return None;
        }
        let targets: Vec<&str> = self.views.iter().map(|(t, _)| t.as_str()).collect();
        Some(format!("Filtered view ready for {}", targets.join(", ")))
    }

    /// Points every bind mount whose target has a view at the view's mountpoint.
    pub fn rebind(&self, mounts: &mut [BindMount]) {
        for mount in mounts {
            if let Some((_, view)) = self.views.iter().find(|(t, _)| *t == mount.target) {
                mount.source = view.mountpoint.clone();
            }
        }
    }
}

/// Stops every view of the project (all of `.alca/views/*`, also ones no longer configured).
pub fn stop_all(root: &Path) -> Result<(), ExcludeError> {
    let dirs = view_dirs(root);
    if dirs.is_empty() {
        return Ok(());
    }
    let engine = engine_for_platform()?;
    let mut first_err = None;
    for dir in dirs {
        if let Err(e) = engine.stop(&dir) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// `target: status` lines for the configured views.
pub fn status_lines(root: &Path, config: &Config) -> Vec<String> {
    let needed = needed(root, config);
    let engine = match engine_for_platform() {
        Ok(engine) => engine,
        Err(e) => return vec![e.to_string()],
    };
    needed
        .iter()
        .map(|n| format!("{}: {}", n.target, describe(engine.as_ref(), n)))
        .collect()
}

fn describe(engine: &dyn ViewEngine, n: &Needed) -> String {
    match engine.status(&n.state_dir) {
        ViewStatus::Stopped => {
            "not running (the container cannot see these files; run `alca up`)".into()
        }
        other => other.to_string(),
    }
}

/// State directories of the project's views (`.alca/views/*`).
pub fn view_dirs(root: &Path) -> Vec<PathBuf> {
    let dir = root.join(STATE_DIR).join("views");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Caps, Commands, Config, Hooks, Mount, Network, Resources, RuntimeChoice};

    fn config(workdir_exclude: &[&str], mount_exclude: &[&str]) -> Config {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Config {
            image: "img".into(),
            workdir: "/workspace".into(),
            workdir_exclude: strings(workdir_exclude),
            runtime: RuntimeChoice::Auto,
            mounts: vec![Mount {
                source: PathBuf::from("/data"),
                target: "/data".into(),
                readonly: false,
                exclude: strings(mount_exclude),
            }],
            commands: Commands::default(),
            resources: Resources::default(),
            envs: Default::default(),
            caps: Caps::default(),
            ports: vec![],
            network: Network::default(),
            hooks: Hooks::default(),
            sources: vec![],
        }
    }

    #[test]
    fn the_workdir_mounts_with_patterns_and_mounts_inside_the_project_need_views() {
        let n = needed(Path::new("/p"), &config(&[], &[]));
        assert_eq!(
            n.len(),
            usize::from(ALWAYS_VIEW),
            "the workdir, always on Linux"
        );
        assert!(n.iter().all(|v| v.target == "/workspace"));
        if ALWAYS_VIEW {
            assert!(n[0].pinned.contains(&PathBuf::from(".git/config")));
        }
        let mut inner = config(&[], &[]);
        inner.mounts[0].source = PathBuf::from("/p/.alca.mounts/data");
        let n = needed(Path::new("/p"), &inner);
        assert_eq!(n.last().map(|v| v.target.as_str()), Some("/data"));
        assert!(n.last().is_some_and(|v| v.pinned.is_empty()));
        let n = needed(Path::new("/p"), &config(&["**/.env"], &[]));
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].target.as_str(), n[0].source.as_path()),
            ("/workspace", Path::new("/p"))
        );
        assert!(n[0].state_dir.starts_with("/p/.alca/views"));
        let n = needed(Path::new("/p"), &config(&["a"], &["*.key"]));
        assert_eq!(n.len(), 2);
        assert_eq!(n[1].target, "/data");
        assert_ne!(n[0].state_dir, n[1].state_dir);
    }

    #[test]
    fn rebind_replaces_only_viewed_targets() {
        let views = ProjectViews {
            views: vec![(
                "/workspace".into(),
                ViewHandle {
                    mountpoint: PathBuf::from("/p/.alca/views/x/mnt"),
                    pid: 1,
                    fresh: true,
                },
            )],
        };
        let mut mounts = vec![
            BindMount {
                source: "/p".into(),
                target: "/workspace".into(),
                readonly: false,
                recursive: true,
            },
            BindMount {
                source: "/d".into(),
                target: "/data".into(),
                readonly: true,
                recursive: true,
            },
        ];
        views.rebind(&mut mounts);
        assert_eq!(mounts[0].source, PathBuf::from("/p/.alca/views/x/mnt"));
        assert_eq!(mounts[1].source, PathBuf::from("/d"));
        assert!(views.any_fresh());
        assert!(views.summary().is_some_and(|s| s.contains("/workspace")));
    }

    #[test]
    fn stop_all_without_views_is_a_no_op() {
        let dir = tempfile::tempdir().expect("tempdir");
        stop_all(dir.path()).expect("nothing to stop");
        assert!(view_dirs(dir.path()).is_empty());
    }
}
