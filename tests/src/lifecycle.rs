//! Fixtures for the lifecycle suite: the built `alca` binary (copied where any user can run it),
//! throw-away project directories whose container, network and files are removed on drop, and
//! small wrappers over the real `docker`/`podman` CLIs to check what `alca` did.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// No isolation: suites that exercise the lifecycle or trust, not the network helper.
pub const OPEN: &str = "[network]\nlan-access = [\"*\"]\n";

/// CapEff of the six default capabilities: CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) KILL(5)
/// SETGID(6) SETUID(7).
pub const DEFAULT_CAP_EFF: &str = "00000000000000eb";

/// Generates `<test>::docker` and `<test>::podman` from a function taking the runtime.
#[macro_export]
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn docker() {
                super::$name($crate::lifecycle::Rt::Docker)
            }
            #[test]
            fn podman() {
                super::$name($crate::lifecycle::Rt::Podman)
            }
        }
    )*};
}

/// An unprivileged test user that is in group `docker` (created by `tests/env/setup.sh`).
pub const TEST_USER: &str = "alcatest";

/// A container runtime under test, with the busybox image imported for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Docker,
    Podman,
}

impl Rt {
    /// The CLI binary, also the value of `runtime` in `.alca.toml`.
    pub fn cli(self) -> &'static str {
        match self {
            Rt::Docker => "docker",
            Rt::Podman => "podman",
        }
    }

    /// The busybox image the test environment imports into this runtime.
    pub fn image(self) -> &'static str {
        match self {
            Rt::Docker => "alca-test/busybox:latest",
            Rt::Podman => "localhost/alca-test/busybox:latest",
        }
    }

    /// Runs `<runtime> ARGS` as root and returns its output whatever the status.
    pub fn cmd(self, args: &[&str]) -> Output {
        Command::new(self.cli())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.cli()))
    }

    /// `inspect` of a container or network, or `None` when it does not exist.
    pub fn inspect(self, object: &str, name: &str) -> Option<Value> {
        let out = self.cmd(&[object, "inspect", name]);
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array().and_then(|a| a.first().cloned())
    }

    /// Whether the runtime answers (tests of an absent runtime fail loudly instead).
    pub fn available(self) -> bool {
        self.cmd(&["info"]).status.success()
    }
}

/// The `alca` binary built next to this test executable (`cargo build -p alca` first).
pub fn alca_built() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let bin = exe
        .ancestors()
        .nth(2)
        .context("test executable outside a target directory")?
        .join("alca");
    if !bin.is_file() {
        bail!(
            "{} not found: run `cargo build -p alca` with the same CARGO_TARGET_DIR first",
            bin.display()
        );
    }
    Ok(bin)
}

/// Copies `alca` into a new world-readable directory under `/tmp`, so `alcatest` can run it.
/// Returns the directory (the caller removes it) and the binary.
pub fn alca_shared_copy() -> Result<(PathBuf, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("alca-e2e-bin-")
        .tempdir_in("/tmp")?
        .keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let bin = dir.join("alca");
    fs::copy(alca_built()?, &bin)?;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;
    Ok((dir, bin))
}

/// Result of one `alca` invocation.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for assertions on messages.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32, what: &str) -> &Run {
        assert_eq!(
            self.code,
            code,
            "{what}: unexpected exit code\n{}",
            self.all()
        );
        self
    }
}

/// A throw-away project: a directory with `.alca.toml` under `/tmp`, owned by `owner`.
/// Dropping it takes the container down and removes the container, network and directory.
pub struct Project {
    pub root: PathBuf,
    pub rt: Rt,
    /// `None`: root; `Some(user)`: that user owns the directory and runs `alca`.
    pub owner: Option<&'static str>,
    /// The id last read from the state file, so drop cleans up even if the state is gone.
    known_id: RefCell<Option<String>>,
    /// For a non-root owner: the directory holding a copy of `alca` it can run, and the copy.
    bin: Option<(PathBuf, PathBuf)>,
    /// `XDG_STATE_HOME` of every `alca` run: this project's trust records, outside the project.
    pub state_home: PathBuf,
}

impl Project {
    /// Creates a project with the given `.alca.toml` body (runtime and image lines are added).
    pub fn new(rt: Rt, owner: Option<&'static str>, toml_body: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("alca-e2e-lc-")
            .tempdir_in("/tmp")
            .expect("tempdir")
            .keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod project");
        // Every workspace goes through a filtered view on Linux: the owner needs FUSE, which
        // only the product's install provides.
        if let Some(user) = owner {
            crate::netd::fuse_ready_for(user);
        }
        let p = Project {
            root: dir,
            rt,
            owner,
            known_id: RefCell::new(None),
            bin: owner.map(|_| alca_shared_copy().expect("copy alca for the test user")),
            state_home: private_dir("state", owner),
        };
        p.write_config(toml_body);
        fs::create_dir_all(p.root.join("sub/deeper")).expect("create subdirs");
        p.chown_all();
        p
    }

    /// Rewrites `.alca.toml` with the given body plus this project's runtime and image, and
    /// approves it as the user would (`alca trust -y`).
    pub fn write_config(&self, toml_body: &str) {
        self.write_unapproved_config(toml_body);
        self.approve();
    }

    /// Approves the current config (`alca trust -y`), panicking when that fails.
    pub fn approve(&self) {
        self.alca("", &["trust", "-y"])
            .expect_code(0, "alca trust -y");
    }

    /// Rewrites `.alca.toml` as an agent could from inside, without approving it.
    pub fn write_unapproved_config(&self, toml_body: &str) {
        let text = format!(
            "image = \"{}\"\nruntime = \"{}\"\n{toml_body}\n",
            self.rt.image(),
            self.rt.cli()
        );
        fs::write(self.root.join(".alca.toml"), text).expect("write .alca.toml");
        self.chown_all();
    }

    /// Gives the whole tree to the owner (no-op for root).
    pub fn chown_all(&self) {
        if let Some(user) = self.owner {
            let status = Command::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(&self.root)
                .status()
                .expect("chown");
            assert!(status.success(), "chown {user} failed");
        }
    }

    /// Runs `alca ARGS` in `rel` (relative to the root) as the owner, stdin closed.
    pub fn alca(&self, rel: &str, args: &[&str]) -> Run {
        self.alca_with(rel, args, &[], None)
    }

    /// Runs `alca ARGS` with extra environment variables and optional stdin content.
    pub fn alca_with(
        &self,
        rel: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Run {
        self.try_alca(rel, args, env, stdin)
            .unwrap_or_else(|e| panic!("running alca {args:?}: {e:#}"))
    }

    /// [`Project::alca_with`] without panicking (used on drop).
    fn try_alca(
        &self,
        rel: &str,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Result<Run> {
        let mut cmd = match self.owner {
            None => Command::new(alca_built()?),
            Some(user) => {
                let (_, bin) = self.bin.as_ref().context("no alca copy for the owner")?;
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", "env", &format!("HOME=/home/{user}")]);
                c.arg(bin);
                c
            }
        };
        cmd.args(args)
            .current_dir(self.root.join(rel))
            .env("XDG_STATE_HOME", &self.state_home)
            .envs(env.iter().copied());
        run_with_stdin(cmd, stdin)
    }

    /// The project id from `.alca/state.json` (after the first `up`).
    pub fn id(&self) -> Option<String> {
        let read = || -> Option<String> {
            let text = fs::read_to_string(self.root.join(".alca/state.json")).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            v["id"].as_str().map(String::from)
        };
        match read() {
            Some(id) => {
                *self.known_id.borrow_mut() = Some(id.clone());
                Some(id)
            }
            None => self.known_id.borrow().clone(),
        }
    }

    /// `alca-<first 12 id chars>`: the container and network name.
    pub fn container(&self) -> String {
        let id = self.id().expect("project has a state file");
        format!("alca-{}", &id[..12])
    }

    /// `inspect` of the project's container.
    pub fn inspect(&self) -> Option<Value> {
        self.rt.inspect("container", &self.container())
    }

    /// Path of a file inside the project.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Some(id) = self.id() {
            let name = format!("alca-{}", &id[..12]);
            if self.root.is_dir() {
                let _ = self.try_alca("", &["down", "--force"], &[], None);
            }
            for rt in [Rt::Docker, Rt::Podman] {
                let _ = rt.cmd(&["rm", "-f", &name]);
                let _ = rt.cmd(&["network", "rm", &name]);
            }
        }
        let _ = fs::remove_dir_all(&self.root);
        let _ = fs::remove_dir_all(&self.state_home);
        if let Some((dir, _)) = &self.bin {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

fn run_with_stdin(mut cmd: Command, stdin: Option<&str>) -> Result<Run> {
    use std::io::Write;
    let input = if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    cmd.stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("spawning alca")?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).context("writing stdin")?;
    }
    let out = child.wait_with_output().context("waiting for alca")?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A free TCP port on 127.0.0.1 (asked from the kernel, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A new directory under `/tmp` that only `owner` (root when `None`) can enter.
fn private_dir(tag: &str, owner: Option<&str>) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(&format!("alca-e2e-{tag}-"))
        .tempdir_in("/tmp")
        .expect("tempdir")
        .keep();
    if let Some(user) = owner {
        let status = Command::new("chown")
            .arg(format!("{user}:{user}"))
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown {user} failed");
    }
    dir
}

/// A directory under `/tmp` removed on drop (mount sources).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("alca-e2e-{tag}-"))
            .tempdir_in("/tmp")
            .expect("tempdir")
            .keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
