//! The command line a user of the Go original already types (issue #16), through the real
//! binary. Each expectation names the Go source or doc it comes from.

use std::path::Path;
use std::process::{Command, Output};

fn alca(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alca"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join(".state"))
        .output()
        .expect("run alca")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Go internal/cli/root.go: cobra's version flag (`-v`, `--version`) on the root command.
#[test]
fn short_v_prints_the_version() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["-v", "--version", "-V"] {
        let out = alca(dir.path(), &[flag]);
        assert!(out.status.success(), "{flag}");
        assert_eq!(
            text(&out.stdout),
            format!("alca {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// Go internal/cli/root.go: the root command has no Run, so a bare `alca` prints its help
/// and exits 0.
#[test]
fn bare_alca_prints_help_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let out = alca(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(help.contains("Usage: alca"), "{help}");
    assert!(help.contains("completion"), "{help}");
}

/// cobra's `completion bash|zsh|fish` command; the bash script is valid bash.
#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _alca"),
        ("zsh", "#compdef alca"),
        ("fish", "complete -c alca"),
    ] {
        let out = alca(dir.path(), &["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("network-helper"), "{shell}");
    }
    let bash = alca(dir.path(), &["completion", "bash"]);
    let check = Command::new("bash")
        .args(["-n", "-c", &text(&bash.stdout)])
        .status()
        .unwrap();
    assert!(check.success());
    let bad = alca(dir.path(), &["completion", "tcsh"]);
    assert_eq!(bad.status.code(), Some(1));
}

/// The man page the packages ship (packaging/build.sh → usr/share/man/man1/alca.1).
#[test]
fn man_page_is_roff_with_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = alca(dir.path(), &["__man-page"]);
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(page.contains(".TH alca 1"), "{page}");
    for cmd in ["init", "up", "run", "network\\-helper", "completion"] {
        assert!(page.contains(cmd), "{cmd} missing");
    }
}

/// Go internal/cli/status.go: `return fmt.Errorf("failed to load config: %w", err)` → the
/// error on stderr and exit 1.
#[test]
fn status_with_a_broken_config_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".alca.toml"), "image = 3\n").unwrap();
    let out = alca(dir.path(), &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("failed to load config"), "{err}");
    assert!(err.contains(".alca.toml: image: invalid type"), "{err}");
}

/// Go docs/sync-conflicts.md "Custom Output with --template": `{{ .Count }} conflicts`,
/// `{{ json . }}`; exit 0 without conflicts.
#[test]
fn sync_check_renders_the_template() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".alca.toml"), "image = \"a\"\n").unwrap();
    let out = alca(
        dir.path(),
        &[
            "experimental",
            "sync",
            "check",
            "--template",
            "{{ .Count }} conflicts",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0 conflicts");
    let out = alca(
        dir.path(),
        &["experimental", "sync", "check", "--template={{ json . }}"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, serde_json::json!({"conflicts": [], "count": 0}));
    let bad = alca(
        dir.path(),
        &["experimental", "sync", "check", "--template", "{{ .Count "],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("invalid template"));
}

/// Go internal/cli/experimental.go runReload: the experimental warning, and without a
/// container "container not found: run 'alca up' first".
#[test]
fn reload_needs_a_container() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".alca.toml"), "image = \"a\"\n").unwrap();
    let out = alca(dir.path(), &["experimental", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("Warning: EXPERIMENTAL COMMAND"), "{err}");
    assert!(
        err.contains("container not found: run `alca up` first"),
        "{err}"
    );
}

/// Go internal/cli/network_helper.go prints "Rules applied: Yes (N rule files)|No" wherever
/// it runs; outside a project the line is there too.
#[test]
fn network_helper_status_outside_a_project_has_rules_applied() {
    let dir = tempfile::tempdir().unwrap();
    let out = alca(dir.path(), &["network-helper", "status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let line = said
        .lines()
        .find(|l| l.starts_with("Rules applied: "))
        .unwrap_or_else(|| panic!("no Rules applied line: {said}"));
    let value = &line["Rules applied: ".len()..];
    assert!(
        value == "No"
            || (value.starts_with("Yes (") && value.ends_with(" project)")
                || value.ends_with(" projects)"))
            || value.starts_with("Unknown ("),
        "{line}"
    );
}

/// The seed's promise `alca init && alca up` (Go docs/quickstart.md): the config `init`
/// writes is approved by `init` itself, so the trust gate passes without a terminal; an edit
/// afterwards that widens it is gated again.
#[test]
fn init_approves_what_it_wrote_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let out = alca(dir.path(), &["init"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trust = alca(dir.path(), &["trust"]);
    assert!(trust.status.success(), "{}", text(&trust.stderr));
    assert!(
        text(&trust.stdout).contains("is trusted"),
        "{}",
        text(&trust.stdout)
    );
    let path = dir.path().join(".alca.toml");
    let edited = std::fs::read_to_string(&path).unwrap() + "\n[hooks]\npost_up = \"curl evil\"\n";
    std::fs::write(&path, edited).unwrap();
    let trust = alca(dir.path(), &["trust"]);
    assert_eq!(trust.status.code(), Some(1));
    assert!(
        text(&trust.stderr).contains("runs on the host: curl evil"),
        "{}",
        text(&trust.stderr)
    );
}
