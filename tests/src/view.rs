//! Fixtures for the file-isolation suite: a project tree with secrets, the `alca` binary that
//! serves filtered views, bounded polling, and file digests compared across host and container.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The SPEC §4 example patterns.
pub const PATTERNS: [&str; 5] = [
    "**/.env",
    "**/.env.*",
    "**/secrets/",
    "**/*.key",
    "node_modules/",
];

/// Every name the fixture hides, as `ls -a` would print them (directory by directory).
pub const HIDDEN_NAMES: [&str; 6] = [
    ".env",
    ".env.local",
    "secrets",
    "id.key",
    "node_modules",
    "server.key",
];

/// The built `alca` binary next to the test executable (`target/<profile>/alca`).
pub fn alca_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target directory")?;
    let bin = profile_dir.join("alca");
    if !bin.is_file() {
        bail!(
            "{} not found: build it first (`cargo build -p alca` with the same CARGO_TARGET_DIR)",
            bin.display()
        );
    }
    Ok(bin)
}

/// A project directory with visible files and secrets at several depths. Every secret file
/// contains `marker`; the directory is removed on drop.
pub struct ProjectTree {
    pub dir: tempfile::TempDir,
    pub marker: String,
}

impl ProjectTree {
    pub fn create(tag: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("alca-e2e-excl-{tag}-"))
            .tempdir_in("/tmp")
            .context("creating the project directory")?;
        let marker = format!("ALCA_SECRET_{}_{}", tag.to_uppercase(), std::process::id());
        let tree = ProjectTree { dir, marker };
        tree.populate()?;
        Ok(tree)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    fn populate(&self) -> Result<()> {
        let secret = format!("{}\n", self.marker);
        let files: [(&str, &str); 9] = [
            (".env", &secret),
            (".env.local", &secret),
            ("app/.env", &secret),
            ("app/secrets/db.txt", &secret),
            ("id.key", &secret),
            ("app/certs/server.key", &secret),
            ("node_modules/left-pad/index.js", &secret),
            ("app/main.rs", "fn main() {}\n"),
            ("README.md", "# demo\n"),
        ];
        for (rel, content) in files {
            write(&self.path(rel), content.as_bytes())?;
        }
        std::os::unix::fs::symlink(".env", self.path("envlink")).context("symlink")?;
        std::os::unix::fs::symlink("app/secrets", self.path("secretlink")).context("symlink")?;
        Ok(())
    }

    /// The view's state directory inside the project, as `alca up` uses it.
    pub fn state_dir(&self) -> PathBuf {
        self.path(".alca/views/e2e")
    }

    /// Gives the whole tree to `user` (for a server run as that user).
    pub fn chown(&self, user: &str) -> Result<()> {
        run(
            "chown",
            &[
                "-R",
                &format!("{user}:{user}"),
                &self.root().to_string_lossy(),
            ],
        )?;
        Ok(())
    }
}

/// Creates parent directories and writes `content`.
pub fn write(path: &Path, content: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("mkdir {}", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("write {}", path.display()))
}

/// Polls `check` every 20 ms for at most `limit`; true as soon as it holds.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a host command; its stdout, or an error with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `sha256sum` of a host file (the same tool busybox has inside the container).
pub fn sha256(path: &Path) -> Result<String> {
    let out = run("sha256sum", &[&path.to_string_lossy()])?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .context("empty sha256sum output")
}

/// Whether `mountpoint` is an `alca-view` mount in this namespace.
pub fn view_mounted(mountpoint: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = mountpoint.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(&*want) && l.contains(" - fuse"))
}

/// Whether a process is alive (and not a zombie).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Content of file number `i` in the stress test: its path `name` on `i % 16 + 1` lines, so a
/// reader can tell a whole file from a torn or stale one by its name alone.
pub fn stress_content(name: &str, i: u64) -> String {
    format!("{name}\n").repeat((i % 16 + 1) as usize)
}

/// The same as [`stress_content`], written in busybox sh: appends file `$i`'s lines for
/// `$name` to `$1`.
pub const STRESS_CONTENT_SH: &str = "fill() { n=$((i % 16 + 1)); j=0; : > \"$1\"; \
     while [ $j -lt $n ]; do echo \"$name\" >> \"$1\"; j=$((j + 1)); done; }";

/// Whether `text` is a whole [`stress_content`] of the file at `name` (`.../f.<i>`).
pub fn stress_content_ok(name: &str, text: &str) -> bool {
    let i = name.rsplit('.').next().and_then(|s| s.parse::<u64>().ok());
    i.is_some_and(|i| text == stress_content(name, i))
}

/// Stops every filtered view of the project at `root`, as a reboot does (their FUSE servers
/// die, the mountpoints stay as empty directories).
pub fn stop_views(root: &Path) {
    use alca::exclude::ViewEngine;
    let engine = alca::exclude::fuse_engine::FuseEngine::new();
    for dir in alca::exclude::project_views::view_dirs(root) {
        engine.stop(&dir).expect("stop a view");
    }
}
