//! End-to-end: the workspace is hostile (issue #22). The agent is root in its container and
//! writes the whole workspace; each test here is one of the attacks, run from inside a
//! real Docker container of a project owned by the unprivileged user `alcatest`, and asserts
//! that it fails for the attacker.
//!
//! Build the CLI first: `cargo build -p alca && cargo test -p alca-e2e --test hostile`.
//! Projects use `lan-access = ["*"]`: these attacks go through files, not the network.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use alca_e2e::lifecycle::{Project, Rt, OPEN, TEST_USER};
use alca_e2e::view::stop_views;

/// `sh -c SCRIPT` in the project's container, straight through the runtime (as the agent);
/// stdout and stderr together.
fn inside(p: &Project, script: &str) -> String {
    let out = p.rt.cmd(&["exec", &p.container(), "sh", "-c", script]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A root-only host file (mode 0600) holding a marker, removed on drop.
struct RootOnly {
    path: PathBuf,
    marker: String,
}

impl RootOnly {
    fn new(tag: &str) -> RootOnly {
        let marker = format!("root-only-{tag}-{}", std::process::id());
        let path = PathBuf::from(format!("/tmp/alca-e2e-{marker}"));
        fs::write(&path, format!("{marker}\n")).expect("write root-only file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        RootOnly { path, marker }
    }
}

impl Drop for RootOnly {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn host_mount_sources(p: &Project) -> Vec<String> {
    let v = p.inspect().expect("container exists");
    v["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["Source"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Item 1: `.alcax.toml -> <root-only file>` and `.alca.y.toml -> .env` (picked up by the
/// template's `./.alca.*.toml` include) planted from inside; after `down`, an approval and
/// `up`, neither content is readable and neither is mounted.
#[test]
fn symlinked_config_names_are_never_mounted() {
    let secret = RootOnly::new("item1");
    let env_marker = format!("env-secret-{}", std::process::id());
    let p = Project::new(
        Rt::Docker,
        Some(TEST_USER),
        &format!("workdir_exclude = [\"**/.env\"]\nincludes = [\"./.alca.*.toml\"]\n{OPEN}"),
    );
    fs::write(p.path(".env"), format!("TOKEN = \"{env_marker}\"\n")).unwrap();
    p.chown_all();
    p.alca("", &["up", "-q"]).expect_code(0, "first up");
    let planted = format!(
        "ln -s {} .alcax.toml && ln -s .env .alca.y.toml",
        secret.path.display()
    );
    p.alca("", &["run", "sh", "-c", &planted])
        .expect_code(0, "the agent plants the links");
    assert!(fs::symlink_metadata(p.path(".alcax.toml"))
        .unwrap()
        .file_type()
        .is_symlink());
    p.alca("", &["down"]).expect_code(0, "down");
    // The worst case: the user approves whatever is asked.
    p.approve();
    p.alca("", &["up", "-q"])
        .expect_code(0, "up after the plant");
    let seen = inside(
        &p,
        "cat /workspace/.alcax.toml /workspace/.alca.y.toml /workspace/.env",
    );
    assert!(
        !seen.contains(&secret.marker),
        "the root-only host file is readable inside:\n{seen}"
    );
    assert!(
        !seen.contains(&env_marker),
        "the excluded .env is readable inside:\n{seen}"
    );
    let mountinfo = inside(&p, "cat /proc/self/mountinfo");
    assert!(
        mountinfo.contains("/workspace"),
        "mountinfo read: {mountinfo}"
    );
    for name in [".alcax.toml", ".alca.y.toml", "/workspace/.env "] {
        assert!(!mountinfo.contains(name), "{name} is mounted:\n{mountinfo}");
    }
    let sources = host_mount_sources(&p);
    let env = p.path(".env").display().to_string();
    let secret_path = secret.path.display().to_string();
    assert!(
        !sources.iter().any(|s| *s == env || *s == secret_path),
        "the runtime mounted a planted target: {sources:?}"
    );
}

/// Item 3: `chown 0` and `chmod 4755`/`6755`/`2755` (files, directories, a fifo) from inside
/// leave no set-uid/set-gid file and no root-owned file on the host.
#[test]
fn no_set_uid_root_file_reaches_the_host() {
    let p = Project::new(Rt::Docker, Some(TEST_USER), OPEN);
    p.alca("", &["up", "-q"]).expect_code(0, "up");
    let said = inside(
        &p,
        "cd /workspace && cp /bin/busybox rootsh; chown 0:0 rootsh; chmod 4755 rootsh; \
         cp /bin/busybox gsh; chmod 6755 gsh; mkdir -m 2775 gdir; mkdir sdir; chmod u+s,g+s sdir; \
         touch made; chmod 4777 made; mkfifo -m 6666 fifo; touch sdir/inner; chmod 4755 sdir/inner; \
         ls -lna /workspace /workspace/sdir",
    );
    let uid = p.path("").metadata().expect("project dir").uid();
    let mut checked = 0;
    for name in [
        "rootsh",
        "gsh",
        "gdir",
        "sdir",
        "made",
        "fifo",
        "sdir/inner",
    ] {
        let meta = fs::symlink_metadata(p.path(name))
            .unwrap_or_else(|e| panic!("{name} was created through the view: {e}\n{said}"));
        assert_eq!(
            meta.mode() & 0o6000,
            0,
            "{name} carries a set-uid/set-gid bit on the host ({:o}):\n{said}",
            meta.mode()
        );
        assert_eq!(meta.uid(), uid, "{name} is not owned by the user:\n{said}");
        assert_ne!(meta.uid(), 0, "{name} is root-owned on the host");
        checked += 1;
    }
    assert_eq!(checked, 7);
    // The ordinary bits still pass: the copy is executable.
    let mode = fs::metadata(p.path("rootsh")).unwrap().mode();
    assert_eq!(mode & 0o777, 0o755, "chmod keeps rwx bits: {mode:o}");
}

/// Item 2: the documented `.alca.mounts/data:/data` source swapped for a symlink to `/` from
/// inside; the runtime restarts the container (`docker restart`) and then again after a reboot
/// simulation (the views gone, the runtime starting the container by itself): no host root is
/// visible, and the next `alca up` asks about the new target.
#[test]
fn a_swapped_mount_source_never_shows_the_host_root() {
    let p = Project::new(Rt::Docker, Some(TEST_USER), OPEN);
    fs::create_dir_all(p.path(".alca.mounts/data")).unwrap();
    fs::write(p.path(".alca.mounts/data/in-data.txt"), "in-data\n").unwrap();
    p.write_config(&format!("mounts = [\".alca.mounts/data:/data\"]\n{OPEN}"));
    p.alca("", &["up", "-q"]).expect_code(0, "up");
    assert!(inside(&p, "cat /data/in-data.txt").contains("in-data"));
    p.alca(
        "",
        &[
            "run",
            "sh",
            "-c",
            "cd .alca.mounts && mv data data.old && ln -s / data",
        ],
    )
    .expect_code(0, "the agent swaps the source");
    assert!(fs::symlink_metadata(p.path(".alca.mounts/data"))
        .unwrap()
        .file_type()
        .is_symlink());
    let probe = "for d in /data /workspace; do test -e $d/etc/passwd && echo HOST-ROOT:$d; \
                 test -d $d/proc/1 && echo HOST-ROOT:$d; done; echo probed";
    let restarted = p.rt.cmd(&["restart", "-t", "1", &p.container()]);
    assert!(restarted.status.success(), "docker restart");
    let seen = inside(&p, probe);
    assert!(
        seen.contains("probed") && !seen.contains("HOST-ROOT"),
        "{seen}"
    );

    // Reboot: the views are gone and the runtime starts the container again by itself.
    stop_views(&p.root);
    let restarted = p.rt.cmd(&["restart", "-t", "1", &p.container()]);
    if restarted.status.success() {
        let seen = inside(&p, probe);
        assert!(!seen.contains("HOST-ROOT"), "after the reboot: {seen}");
    }
    let r = p.alca("", &["up", "-q"]);
    r.expect_code(1, "up with a source that now resolves to /");
    assert!(
        r.all().contains("mounts") && r.all().contains("alca trust"),
        "the new target is asked about: {}",
        r.all()
    );
}

/// Item 5: the agent tries to plant `core.fsmonitor` in `.git/config`, a hook, and to move
/// `.git` aside for a fresh one; `git status` on the host afterwards runs nothing.
#[test]
fn host_git_runs_nothing_the_agent_wrote() {
    let p = Project::new(Rt::Docker, Some(TEST_USER), OPEN);
    let git = |args: &[&str]| {
        Command::new("runuser")
            .args(["-u", TEST_USER, "--", "git", "-C"])
            .arg(&p.root)
            .args(args)
            .output()
            .expect("git")
    };
    assert!(git(&["init", "-q"]).status.success(), "git init");
    let config = fs::read(p.path(".git/config")).unwrap();
    p.alca("", &["up", "-q"]).expect_code(0, "up");
    let marker = p.path("fsmonitor-ran");
    let m = marker.display();
    for attempt in [
        format!("printf '[core]\\n\\tfsmonitor = touch {m}\\n' >> .git/config"),
        format!("printf '#!/bin/sh\\ntouch {m}\\n' > .git/hooks/post-index-change"),
        "rm -rf .git/hooks".to_string(),
        "mv .git .git.old".to_string(),
        "mkdir -p a && mv .git a/".to_string(),
        "mv .git/config .git/config.old".to_string(),
    ] {
        let r = p.alca("", &["run", "sh", "-c", &attempt]);
        assert_ne!(r.code, 0, "`{attempt}` must fail inside: {}", r.all());
    }
    assert_eq!(fs::read(p.path(".git/config")).unwrap(), config);
    let status = git(&["status", "--short"]);
    assert!(status.status.success(), "git status");
    assert!(!marker.exists(), "host git ran the agent's command");
    assert!(p.path(".git/hooks").is_dir());
}

/// Item 10a: a host-expanded env value (a token) never appears in the runtime CLI's argv,
/// which any local user reads in `/proc/PID/cmdline`; the container still gets it. A `docker`
/// wrapper first in `PATH` records every argv alca runs.
#[test]
fn env_values_stay_out_of_the_runtime_argv() {
    let token = format!("tok-{}-secret", std::process::id());
    let p = Project::new(
        Rt::Docker,
        Some(TEST_USER),
        &format!("[envs]\nAPI_TOKEN = \"${{HOST_TOKEN}}\"\n{OPEN}"),
    );
    let wrap = alca_e2e::lifecycle::TempDir::new("argv");
    let log = wrap.0.join("argv.log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let real = which("docker");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec {} \"$@\"\n",
        log.display(),
        real.display()
    );
    fs::write(wrap.0.join("docker"), script).unwrap();
    fs::set_permissions(wrap.0.join("docker"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", wrap.0.display(), std::env::var("PATH").unwrap());
    let env = [("PATH", path.as_str()), ("HOST_TOKEN", token.as_str())];
    p.alca_with("", &["trust", "-y"], &env, None)
        .expect_code(0, "approve");
    p.alca_with("", &["up", "-q"], &env, None)
        .expect_code(0, "up");
    let r = p.alca_with("", &["run", "sh", "-c", "echo got=$API_TOKEN"], &env, None);
    r.expect_code(0, "run");
    let argv = fs::read_to_string(&log).unwrap();
    assert!(
        argv.lines().any(|l| l.starts_with("create ")),
        "the wrapper saw `docker create`: {argv}"
    );
    assert!(
        !argv.contains(&token),
        "the token is in the runtime's argv:\n{argv}"
    );
    assert!(argv.contains("-e API_TOKEN "), "passed by name: {argv}");
    let seen = inside(&p, "echo in=$API_TOKEN");
    assert!(
        seen.contains(&format!("in={token}")),
        "the container has the value: {seen}"
    );
}

/// The first `name` on `PATH`.
fn which(name: &str) -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not on PATH"))
}

/// Item 7: the swap, backup and auto-save files a host editor leaves next to `.env` are as
/// invisible inside as `.env` itself, and a committed `.env` (readable through `.git`) is
/// warned about by `up` and `status`, naming the fix.
#[test]
fn editor_artefacts_are_hidden_and_a_committed_secret_is_warned_about() {
    let p = Project::new(
        Rt::Docker,
        Some(TEST_USER),
        &format!("workdir_exclude = [\"**/.env\"]\n{OPEN}"),
    );
    let marker = format!("swap-secret-{}", std::process::id());
    let artefacts = [
        "..env.swp",
        "..env.swo",
        ".env~",
        "#.env#",
        ".env.swp",
        ".env.bak",
    ];
    fs::write(p.path(".env"), format!("TOKEN={marker}\n")).unwrap();
    for name in artefacts {
        fs::write(p.path(name), format!("TOKEN={marker}\n")).unwrap();
    }
    let git = |args: &[&str]| {
        let out = Command::new("runuser")
            .args(["-u", TEST_USER, "--", "git", "-c", "user.name=t"])
            .args(["-c", "user.email=t@example.invalid", "-C"])
            .arg(&p.root)
            .args(args)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}");
    };
    p.chown_all();
    git(&["init", "-q"]);
    git(&["add", "-f", ".env"]);
    git(&["commit", "-q", "-m", "oops"]);
    let up = p.alca("", &["up", "-q"]);
    up.expect_code(0, "up");
    assert!(
        up.all().contains("excluded but tracked by git") && up.all().contains("git rm --cached"),
        "up warns about the committed .env: {}",
        up.all()
    );
    let status = p.alca("", &["status"]);
    assert!(
        status.all().contains("excluded but tracked by git"),
        "status warns too: {}",
        status.all()
    );
    let listing = inside(&p, "ls -a /workspace");
    for name in artefacts {
        assert!(
            !listing.lines().any(|l| l.trim() == name),
            "{name} is listed:\n{listing}"
        );
    }
    let read = inside(
        &p,
        "cd /workspace && cat ..env.swp ..env.swo .env~ '#.env#' .env.swp .env.bak .env",
    );
    assert!(
        !read.contains(&marker),
        "an artefact leaked the secret: {read}"
    );
}

/// `alca up` must refuse for want of approval, naming `field` and the approval command.
fn expect_asked(p: &Project, field: &str) {
    let r = p.alca("", &["up", "-q"]);
    r.expect_code(1, &format!("up with an unapproved {field}"));
    assert!(
        r.all().contains(field) && r.all().contains("alca trust"),
        "{field} is asked about: {}",
        r.all()
    );
}

/// Item 6: a new config layer dropped in by the agent, an added `!negation`, a port moved to
/// all addresses, and the rename of an included file's parent directory.
#[test]
fn each_trust_trick_is_asked_about() {
    let port = alca_e2e::lifecycle::free_port();
    let body = |exclude: &str, publish: &str| {
        format!(
            "workdir_exclude = [{exclude}]\nincludes = [\"./.alca.*.toml\", \"conf/extra.toml\"]\n\
             ports = [\"{publish}\"]\n{OPEN}"
        )
    };
    let p = Project::new(Rt::Docker, Some(TEST_USER), OPEN);
    fs::create_dir_all(p.path("conf")).unwrap();
    fs::write(p.path("conf/extra.toml"), "[resources]\ncpus = 1\n").unwrap();
    p.write_config(&body("\"**/.env\"", &format!("{port}:80")));
    p.alca("", &["up", "-q"]).expect_code(0, "up");

    // A new layer picked up by the template's glob include: narrowing by itself.
    p.alca(
        "",
        &[
            "run",
            "sh",
            "-c",
            "printf '[resources]\\ncpus = 1\\n' > .alca.agent.toml",
        ],
    )
    .expect_code(0, "the agent drops in a layer");
    expect_asked(&p, "config files");
    fs::remove_file(p.path(".alca.agent.toml")).unwrap();

    p.write_unapproved_config(&body("\"**/.env\", \"!.env\"", &format!("{port}:80")));
    expect_asked(&p, "workdir_exclude");
    p.write_unapproved_config(&body("\"**/.env\"", &format!("0.0.0.0:{port}:80")));
    expect_asked(&p, "ports");
    p.write_config(&body("\"**/.env\"", &format!("{port}:80")));

    // The included file's parent directory cannot be moved aside from inside.
    for attempt in ["mv conf conf.old", "mv conf x && mkdir conf", "rm -rf conf"] {
        let r = p.alca("", &["run", "sh", "-c", attempt]);
        assert_ne!(r.code, 0, "`{attempt}` must fail inside: {}", r.all());
    }
    assert!(p.path("conf/extra.toml").is_file());
}

/// Item 5: a hook's approval covers the workspace script it runs; the agent editing that
/// script from inside is asked about, and the hook does not run.
#[test]
fn a_hook_script_changed_from_inside_is_asked_about() {
    let p = Project::new(Rt::Docker, Some(TEST_USER), OPEN);
    let marker = p.path("hook-ran-evil");
    fs::write(p.path("dev.sh"), "true\n").unwrap();
    p.write_config(&format!("[hooks]\npost_up = \"sh ./dev.sh\"\n{OPEN}"));
    p.alca("", &["up", "-q"])
        .expect_code(0, "up with the approved hook");
    let evil = format!("echo 'touch {}' > dev.sh", marker.display());
    p.alca("", &["run", "sh", "-c", &evil])
        .expect_code(0, "the agent rewrites the hook's script");
    expect_asked(&p, "dev.sh");
    assert!(!marker.exists(), "the changed script ran");
}

/// Issue #21, no agent code at restart: the agent replaces the image's `sleep` with its own
/// program, tries to overwrite the mounted keep-alive and to move it aside for a copy of its
/// own; the runtime restarts the container (`restart`, as its restart policy or a reboot would
/// start it); PID 1 is still the host's read-only binary and nothing the agent wrote ran.
#[test]
fn a_keep_alive_replaced_from_inside_never_runs_at_restart() {
    for (rt, owner) in [(Rt::Docker, Some(TEST_USER)), (Rt::Podman, None)] {
        let p = Project::new(rt, owner, OPEN);
        p.alca("", &["up", "-q"]).expect_code(0, "up");
        let host_binary = || -> String {
            let v = p.inspect().expect("container exists");
            let mounts = v["Mounts"].as_array().cloned().unwrap_or_default();
            let keep_alive = mounts
                .iter()
                .find(|m| {
                    m["Destination"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("/.alca/")
                })
                .unwrap_or_else(|| panic!("{rt:?}: no keep-alive mount: {mounts:?}"));
            assert_eq!(keep_alive["RW"], false, "{rt:?}: {keep_alive}");
            keep_alive["Source"].as_str().unwrap().to_string()
        };
        let source = host_binary();
        let host_sum = Command::new("sha256sum").arg(&source).output().unwrap();
        let host_sum = String::from_utf8_lossy(&host_sum.stdout)
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let pid1 = || {
            inside(
                &p,
                "tr '\\0' ' ' < /proc/1/cmdline; echo; sha256sum /proc/1/exe",
            )
        };
        let before = pid1();
        assert!(
            before.starts_with("/.alca/") && before.contains(&host_sum),
            "{rt:?}: PID 1 is not the host's keep-alive ({source}): {before}"
        );
        let attack = "printf '#!/bin/sh\\ntouch /workspace/agent-ran\\nexec /bin/busybox sleep 1000\\n' \
                      > /tmp/evil && chmod 755 /tmp/evil && rm -f /bin/sleep && cp /tmp/evil /bin/sleep; \
                      for f in /.alca/*; do cp /tmp/evil $f; done; \
                      mv /.alca /.alca.old && mkdir /.alca && cp /tmp/evil /.alca/busybox && \
                      cp /tmp/evil /.alca/catatonit; ls -la /.alca /bin/sleep; echo attacked";
        let seen = inside(&p, attack);
        assert!(seen.contains("attacked"), "{rt:?}: {seen}");
        assert!(
            inside(&p, "cat /bin/sleep").contains("agent-ran"),
            "{rt:?}: the image's sleep was replaced"
        );
        let restarted = p.rt.cmd(&["restart", "-t", "1", &p.container()]);
        assert!(restarted.status.success(), "{rt:?} restart");
        let after = pid1();
        assert!(
            after.starts_with("/.alca/") && after.contains(&host_sum),
            "{rt:?}: after the restart PID 1 is not the host's keep-alive: {after}"
        );
        assert_eq!(host_binary(), source);
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            !p.path("agent-ran").exists(),
            "{rt:?}: the agent's program ran at the restart"
        );
        let ps = inside(&p, "ps -o pid,args");
        assert!(!ps.contains("sleep 1000"), "{rt:?}: {ps}");
    }
}
