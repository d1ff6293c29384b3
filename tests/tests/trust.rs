//! End-to-end config trust (SPEC §8): the agent can edit `.alca.toml` (and what it includes)
//! from inside the container, so a change that widens access waits for the user's approval,
//! and inside the container the config files and `.alca/` are read-only.
//!
//! Build the CLI first: `cargo build -p alca && cargo test -p alca-e2e --test trust`. Projects
//! use `lan-access = ["*"]` (no network helper needed) except where the lan-access widening
//! itself is tested, which never gets past the trust gate before it is opened to `*`.

use std::fs;

use alca_e2e::lifecycle::{Project, Rt, DEFAULT_CAP_EFF, OPEN, TEST_USER};
use alca_e2e::on_both_runtimes;
use serde_json::Value;

on_both_runtimes!(config_files_are_read_only_inside_the_container);

/// The container's id, to prove a refused `up` left it alone.
fn container_id(p: &Project) -> String {
    let v = p.inspect().expect("container exists");
    v["Id"].as_str().expect("container id").to_string()
}

/// `alca ARGS` must refuse for want of approval, naming `field` and the approval command.
fn expect_refused(p: &Project, args: &[&str], field: &str) {
    let r = p.alca("", args);
    r.expect_code(1, &format!("alca {args:?} with an unapproved {field}"));
    let said = r.all();
    assert!(said.contains(field), "the change is named: {said}");
    assert!(
        said.contains("alca trust"),
        "the approval command is shown: {said}"
    );
}

/// CapEff of the container's PID 1, read with the runtime (`alca run` refuses while the
/// config waits for approval).
fn cap_eff(p: &Project) -> String {
    let out =
        p.rt.cmd(&["exec", &p.container(), "grep", "CapEff", "/proc/1/status"]);
    assert!(out.status.success(), "read CapEff");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn mount_targets(p: &Project) -> Vec<String> {
    let v = p.inspect().expect("container exists");
    v["Mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["Destination"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Writing, appending, replacing or removing config files from inside fails; the host copies
/// stay byte-identical, and the rest of the workspace stays writable.
fn config_files_are_read_only_inside_the_container(rt: Rt) {
    // Docker, for the test user, and rootful Podman both go through the filtered view (always
    // on Linux), Docker with an exclude pattern.
    let (owner, exclude) = match rt {
        Rt::Docker => (Some(TEST_USER), "workdir_exclude = [\"**/.env\"]\n"),
        Rt::Podman => (None, ""),
    };
    if let Some(user) = owner {
        alca_e2e::netd::fuse_ready_for(user);
    }
    let p = Project::new(rt, owner, OPEN);
    fs::create_dir_all(p.path("conf")).unwrap();
    fs::write(p.path("conf/extra.toml"), "[resources]\ncpus = 1\n").unwrap();
    fs::write(p.path(".alca.local.toml"), "").unwrap();
    p.write_config(&format!(
        "{exclude}includes = [\"conf/extra.toml\", \".alca.local.toml\"]\n{OPEN}"
    ));
    p.alca("", &["up", "-q"]).expect_code(0, "up");
    let before: Vec<(String, Vec<u8>)> = [
        ".alca.toml",
        ".alca.local.toml",
        "conf/extra.toml",
        ".alca/state.json",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            fs::read(p.path(f)).expect("host config file"),
        )
    })
    .collect();
    for (file, _) in &before {
        for attempt in [
            format!("echo '[hooks]' >> {file}"),
            format!("echo x > {file}"),
            format!("rm -f {file}"),
            format!("mv {file} {file}.moved"),
        ] {
            let r = p.alca("", &["run", "sh", "-c", &attempt]);
            assert_ne!(r.code, 0, "`{attempt}` must fail inside: {}", r.all());
        }
    }
    for attempt in ["touch .alca/planted", "mkdir -p .alca/views/x"] {
        let r = p.alca("", &["run", "sh", "-c", attempt]);
        assert_ne!(r.code, 0, "`{attempt}` must fail inside: {}", r.all());
    }
    for (file, content) in &before {
        assert_eq!(&fs::read(p.path(file)).unwrap(), content, "{file} changed");
    }
    assert!(!p.path(".alca/planted").exists());
    p.alca("", &["run", "sh", "-c", "echo ok > notes.txt"])
        .expect_code(0, "the rest of the workspace is writable");
    assert_eq!(fs::read_to_string(p.path("notes.txt")).unwrap(), "ok\n");
}

/// Each widening (host hook, a mount of `/`, a capability, `lan-access = ["*"]`) is refused
/// without a terminal — even with `-f` — leaving the container as it was, until `alca trust`.
#[test]
fn widening_changes_wait_for_approval() {
    let p = Project::new(Rt::Docker, None, OPEN);
    p.alca("", &["up", "-q"]).expect_code(0, "first up");
    let original = container_id(&p);

    let marker = p.path("post-up-ran");
    let hook = format!("[hooks]\npost_up = \"touch {}\"\n{OPEN}", marker.display());
    p.write_unapproved_config(&hook);
    expect_refused(&p, &["up"], "hooks.post_up");
    expect_refused(&p, &["up", "-f"], "hooks.post_up");
    assert!(!marker.exists(), "the unapproved hook ran");
    assert_eq!(
        container_id(&p),
        original,
        "a refused up touched the container"
    );
    let status = p.alca("", &["status"]);
    assert!(
        status
            .stdout
            .contains("Config trust: Changed, needs approval"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("hooks.post_up: runs on the host"));
    p.alca("", &["trust", "-y"]).expect_code(0, "approve");
    p.alca("", &["up", "-q"])
        .expect_code(0, "up after approval");
    assert!(marker.exists(), "the approved hook runs");

    p.write_unapproved_config(&format!("mounts = [\"/:/host:ro\"]\n{OPEN}"));
    expect_refused(&p, &["up", "-f"], "mounts");
    assert!(!mount_targets(&p).contains(&"/host".to_string()));
    p.approve();
    p.alca("", &["up", "-f", "-q"])
        .expect_code(0, "up -f after approval");
    assert!(mount_targets(&p).contains(&"/host".to_string()));

    p.write_unapproved_config(&format!("caps = [\"SYS_ADMIN\"]\n{OPEN}"));
    let rebuilt = container_id(&p);
    expect_refused(&p, &["up", "-f"], "adds capability SYS_ADMIN");
    assert_eq!(container_id(&p), rebuilt);
    assert!(cap_eff(&p).ends_with(DEFAULT_CAP_EFF));
    // `up --trust` approves what it shows (for scripts).
    p.alca("", &["up", "-f", "-q", "--trust"])
        .expect_code(0, "up --trust");
    assert!(
        cap_eff(&p).ends_with("00000000002000eb"),
        "SYS_ADMIN (bit 21) added"
    );

    // Narrowing needs nobody: drop SETGID (bit 6) from the defaults.
    p.write_unapproved_config(&format!(
        "[caps]\ndrop = [\"ALL\"]\nadd = [\"CHOWN\", \"DAC_OVERRIDE\", \"FOWNER\", \"KILL\", \"SETUID\"]\n{OPEN}"
    ));
    p.alca("", &["up", "-f", "-q"])
        .expect_code(0, "a narrowing change applies without approval");
    assert!(cap_eff(&p).ends_with("00000000000000ab"), "{}", cap_eff(&p));
}

/// `lan-access = ["*"]` switches isolation off: refused until approved, and no container is made.
#[test]
fn opening_the_lan_waits_for_approval() {
    let p = Project::new(Rt::Docker, None, "");
    p.write_unapproved_config(OPEN);
    expect_refused(&p, &["up"], "network.lan-access");
    assert!(
        p.id().is_none() || p.inspect().is_none(),
        "no container was created"
    );
    p.approve();
    p.alca("", &["up", "-q"])
        .expect_code(0, "up after approval");
    assert!(p.inspect().is_some());
}

/// Editing only an included file is caught, and a `pre_down` hook the agent added is skipped.
#[test]
fn included_files_and_pre_down_are_covered() {
    let p = Project::new(Rt::Docker, None, OPEN);
    fs::write(p.path(".alca.extra.toml"), "[resources]\ncpus = 1\n").unwrap();
    p.write_config(&format!("includes = [\".alca.extra.toml\"]\n{OPEN}"));
    p.alca("", &["up", "-q"]).expect_code(0, "up");

    let up_marker = p.path("included-hook-ran");
    let down_marker = p.path("pre-down-ran");
    fs::write(
        p.path(".alca.extra.toml"),
        format!(
            "[hooks]\npost_up = \"touch {}\"\npre_down = \"touch {}\"\n",
            up_marker.display(),
            down_marker.display()
        ),
    )
    .unwrap();
    expect_refused(&p, &["up"], "hooks.post_up");
    assert!(!up_marker.exists());
    let down = p.alca("", &["down"]);
    down.expect_code(0, "down still works");
    assert!(
        down.stderr.contains("hooks.pre_down") && down.stderr.contains("not approved"),
        "{}",
        down.stderr
    );
    assert!(!down_marker.exists(), "the unapproved pre_down hook ran");
}

/// A project never approved on this machine is shown and refused once; `--trust` approves it.
#[test]
fn a_new_project_is_approved_once() {
    let p = Project::new(Rt::Docker, None, OPEN);
    fs::remove_dir_all(p.state_home.join("alcatraz")).expect("forget the approval");
    let r = p.alca("", &["up"]);
    r.expect_code(1, "first up without approval");
    let said = r.all();
    assert!(said.contains("never approved"), "{said}");
    assert!(said.contains("image: alca-test/busybox:latest"), "{said}");
    assert!(said.contains("alca up --trust"), "{said}");
    assert!(p.id().is_none() || p.inspect().is_none());
    p.alca("", &["up", "-q", "--trust"])
        .expect_code(0, "up --trust");
    p.alca("", &["up", "-q"]).expect_code(0, "approved once");
    let status = p.alca("", &["status"]);
    assert!(
        status.stdout.contains("Config trust: Trusted"),
        "{}",
        status.stdout
    );
    let v: Value = p.inspect().expect("container");
    assert_eq!(v["State"]["Status"], "running");
}

/// On a terminal the change is shown and asked about: `n` refuses, `y` approves and applies.
#[test]
fn a_terminal_user_is_asked() {
    let p = Project::new(Rt::Docker, None, OPEN);
    let marker = p.path("asked-hook-ran");
    p.write_unapproved_config(&format!(
        "[hooks]\npost_up = \"touch {}\"\n{OPEN}",
        marker.display()
    ));
    let on_terminal = |answer: &str| on_a_terminal(&p, &["up", "-q"], answer);
    let (ok, said) = on_terminal("n\n");
    assert!(!ok, "answering no must fail: {said}");
    assert!(said.contains("Approve this configuration?"), "{said}");
    assert!(!marker.exists(), "the hook ran without approval");
    let (ok, said) = on_terminal("y\n");
    assert!(ok, "answering yes approves and brings it up: {said}");
    assert!(
        said.contains("hooks.post_up"),
        "the change was shown: {said}"
    );
    assert!(marker.exists(), "the approved hook runs");
    let status = p.alca("", &["status"]);
    assert!(
        status.stdout.contains("Config trust: Trusted"),
        "the approval was recorded: {}",
        status.stdout
    );
}

/// Runs `alca ARGS` in the project on a fresh pseudo-terminal (`script`) typing `input`;
/// returns whether it succeeded and everything the terminal showed.
fn on_a_terminal(p: &Project, args: &[&str], input: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = alca_e2e::lifecycle::alca_built().expect("alca built");
    let line = format!("{} {}", bin.display(), args.join(" "));
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(&p.root)
        .env("XDG_STATE_HOME", &p.state_home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("type the answer");
    let out = child.wait_with_output().expect("script finished");
    let shown =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), shown)
}
