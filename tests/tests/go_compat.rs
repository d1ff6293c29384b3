//! End-to-end proof that a project set up with the Go original keeps working (issue #16): a
//! config written for it (newline-terminated `commands.enter`, `[network] ports`,
//! `lan-access = ["10.99.0.3:*"]`) and its `.alca/state.json` (UUID `project_id`, RFC 3339
//! `created_at`), with the container it made still there. As `alcatest` through the installed
//! helper: `status` finds the old container, `cleanup` does not call it an orphan, `up`
//! replaces it by an isolated one, `run` prints the command's output, the port is published,
//! `10.99.0.3` answers on any port and nothing else on the LAN does, `down` removes it all.
//!
//! Needs root (tests/run.sh) and the test env (tests/env/setup.sh); run under the e2e lock.
//! Traffic goes only to the `lanhost` netns (routes asserted first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alca_e2e::docker::{docker, docker_ok, nc_script, Probe, TEST_IMAGE};
use alca_e2e::lifecycle::free_port;
use alca_e2e::netd::{
    alca_in, alca_in_ok, alca_tables, built_binary, docker_project, install_helper_for, text,
};
use alca_e2e::netns::{assert_route_via, run_ok, Listener, LAN4, LANHOST_NS, LAN_VETH};

const USER: &str = "alcatest";
/// The extra LAN address the Go config allows (added to `lanhost` for the test).
const LAN_EXTRA: &str = "10.99.0.3";
const OPEN_A: u16 = 21851;
const OPEN_B: u16 = 21852;
/// The Go original's state of this project (internal/state/state.go, written as its
/// json.MarshalIndent does; the container name rule of newState: "alca-" + projectID[:12]).
const UUID: &str = "0e2e90c0-7a11-4c0b-9d5e-5a17c0de0001";
const GO_CONTAINER: &str = "alca-0e2e90c0-7a1";
const OUR_ID: &str = "0e2e90c07a114c0b9d5e5a17c0de0001";

fn alca(dir: &Path, args: &[&str]) -> Output {
    alca_in(USER, dir, args)
}

fn ok(dir: &Path, args: &[&str]) -> String {
    alca_in_ok(USER, dir, args)
}

fn exists(container: &str) -> bool {
    docker(&["container", "inspect", container])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Downs the project, removes the Go container, the extra LAN address and the helper, pass
/// or fail.
struct Cleanup {
    scratch: PathBuf,
    project: PathBuf,
    lan_dev: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = alca(&self.project, &["down", "--force"]);
        let _ = docker(&["rm", "-f", GO_CONTAINER]);
        let _ = run_ok(
            "ip",
            &[
                "-n",
                LANHOST_NS,
                "addr",
                "del",
                &format!("{LAN_EXTRA}/24"),
                "dev",
                &self.lan_dev,
            ],
        );
        let _ = Command::new(built_binary("alca"))
            .args(["network-helper", "uninstall", "-y"])
            .output();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The `lanhost` interface holding 10.99.0.2.
fn lanhost_dev() -> String {
    let out = run_ok("ip", &["-n", LANHOST_NS, "-o", "-4", "addr", "show"]).expect("ip addr");
    out.lines()
        .find(|l| l.contains(&format!("{LAN4}/")))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("lanhost has 10.99.0.2")
        .to_string()
}

fn probe(dir: &Path, addr: &str, port: u16) -> Probe {
    let out = alca(dir, &["run", "sh", "-c", &nc_script(addr, port)]);
    Probe::classify(&text(&out))
}

#[test]
fn a_go_original_project_keeps_working() {
    alca_e2e::privilege::require_root("the go_compat suite");
    let scratch = std::env::temp_dir().join(format!("alca-e2e-gocompat-{}", std::process::id()));
    let host_port = free_port();
    // docs/config/fields.md: `enter` as a multi-line string; test_integration/test_enter.sh:
    // `enter = """\nexport ALCA_TEST=integration\n"""` then `alca run env` shows it.
    let config = format!(
        "[commands]\nenter = \"\"\"\nexport ALCA_TEST=integration\n\"\"\"\n\
         [network]\nlan-access = [\"{LAN_EXTRA}:*\"]\nports = [\"{host_port}:8080\"]\n"
    );
    let project = docker_project(&scratch, "go-project", USER, &config);
    let lan_dev = lanhost_dev();
    let _cleanup = Cleanup {
        scratch: scratch.clone(),
        project: project.clone(),
        lan_dev: lan_dev.clone(),
    };
    run_ok(
        "ip",
        &[
            "-n",
            LANHOST_NS,
            "addr",
            "add",
            &format!("{LAN_EXTRA}/24"),
            "dev",
            &lan_dev,
        ],
    )
    .expect("add the extra lanhost address");
    for addr in [LAN4, LAN_EXTRA] {
        assert_route_via(addr, LAN_VETH);
    }
    let _ = Command::new(built_binary("alca"))
        .args(["network-helper", "uninstall", "-y"])
        .output();
    let install = install_helper_for(USER, &scratch);
    assert!(install.status.success(), "{}", text(&install));

    // What the Go original leaves: its state file and its container (labels of
    // internal/state/state.go: alca.project.id = the UUID, alca.project.path).
    std::fs::create_dir_all(project.join(".alca")).unwrap();
    std::fs::write(
        project.join(".alca/state.json"),
        format!(
            "{{\n  \"project_id\": \"{UUID}\",\n  \"container_name\": \"{GO_CONTAINER}\",\n  \
             \"created_at\": \"2025-06-01T09:15:02.123456789+02:00\",\n  \"runtime\": \"Docker\"\n}}"
        ),
    )
    .unwrap();
    run_ok(
        "chown",
        &["-R", &format!("{USER}:{USER}"), project.to_str().unwrap()],
    )
    .unwrap();
    docker_ok(&[
        "run",
        "-d",
        "--name",
        GO_CONTAINER,
        "--network",
        "none",
        "--label",
        &format!("alca.project.id={UUID}"),
        "--label",
        &format!("alca.project.path={}", project.display()),
        TEST_IMAGE,
        "sleep",
        "600",
    ])
    .expect("start the Go original's container");

    // status reads the Go state (migrated in place) and finds the old container.
    let status = ok(&project, &["status"]);
    assert!(
        status.contains(&format!("Project ID: {OUR_ID}")),
        "{status}"
    );
    assert!(status.contains(GO_CONTAINER), "{status}");
    assert!(status.contains("Running"), "{status}");
    let migrated = std::fs::read_to_string(project.join(".alca/state.json")).unwrap();
    assert!(
        migrated.contains(&format!("\"id\": \"{OUR_ID}\"")),
        "{migrated}"
    );
    assert!(project.join(".alca/state.go.json").exists());
    // cleanup (without -y and without a terminal it only lists) does not call it an orphan.
    let cleanup = ok(&project, &["cleanup"]);
    assert!(!cleanup.contains(GO_CONTAINER), "{cleanup}");

    // up replaces the Go container (it has none of the isolation) by an isolated one.
    let up = ok(&project, &["up", "--trust"]);
    assert!(up.contains("was made by the Go original"), "{up}");
    assert!(!exists(GO_CONTAINER), "the Go container is replaced");
    let ours = format!("alca-{}", &OUR_ID[..12]);
    assert!(exists(&ours), "{up}");
    assert!(alca_tables().unwrap().contains(&format!("alca-{OUR_ID}")));

    // The command's output appears, after the newline-terminated enter ran.
    let hello = ok(&project, &["run", "echo", "hello"]);
    assert_eq!(hello.trim_end(), "hello");
    let env = ok(&project, &["run", "env"]);
    assert!(env.contains("ALCA_TEST=integration"), "{env}");
    let failing = alca(&project, &["run", "sh", "-c", "exit 3"]);
    assert_eq!(failing.status.code(), Some(3), "{}", text(&failing));

    // [network] ports is published.
    let binding = docker_ok(&[
        "inspect",
        "-f",
        "{{json (index .NetworkSettings.Ports \"8080/tcp\")}}",
        &ours,
    ])
    .expect("inspect ports");
    assert!(
        binding.contains(&format!("\"HostPort\":\"{host_port}\"")),
        "{binding}"
    );

    // "10.99.0.3:*": every port of that address, nothing else on the LAN.
    let _listeners: Vec<Listener> = [OPEN_A, OPEN_B]
        .iter()
        .map(|p| Listener::start(Some(LANHOST_NS), "lanhost", "::", *p, 120).expect("listener"))
        .collect();
    for port in [OPEN_A, OPEN_B] {
        let got = probe(&project, LAN_EXTRA, port);
        assert!(got.answered_by("lanhost"), "{LAN_EXTRA}:{port}: {got:?}");
    }
    let got = probe(&project, LAN4, OPEN_A);
    assert_eq!(got, Probe::Refused, "{LAN4}:{OPEN_A} is not allowed");

    let down = ok(&project, &["down"]);
    assert!(!exists(&ours), "{down}");
    assert!(!alca_tables().unwrap().contains(&format!("alca-{OUR_ID}")));
}
