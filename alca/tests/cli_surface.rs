//! The command-line surface of SPEC §1 through the real binary: every command and subcommand has
//! `--help`, the top-level help lists them all, usage errors go to stderr with exit 1, and
//! project commands outside a project point at `alca init`.

use std::path::Path;
use std::process::{Command, Output};

fn alca(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alca"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .expect("run alca")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every command of SPEC §1 (and §9), with a flag its help must show (`""`: none).
const COMMANDS: &[(&[&str], &str)] = &[
    (&["init"], "--template"),
    (&["up"], "--force"),
    (&["down"], "--force"),
    (&["run"], "<COMMAND>"),
    (&["status"], ""),
    (&["trust"], "--yes"),
    (&["list"], ""),
    (&["cleanup"], "--all"),
    (&["network-helper"], "install"),
    (&["network-helper", "install"], "--yes"),
    (&["network-helper", "uninstall"], "--yes"),
    (&["network-helper", "status"], ""),
    (&["network"], "verify"),
    (&["network", "verify"], ""),
    (&["network", "log"], "--follow"),
    (&["experimental"], "sync"),
    (&["experimental", "sync"], "check"),
    (&["experimental", "sync", "check"], ""),
    (&["experimental", "sync", "resolve"], ""),
];

#[test]
fn top_level_help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = alca(dir.path(), &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for name in [
        "init",
        "up",
        "down",
        "run",
        "status",
        "trust",
        "list",
        "cleanup",
        "network-helper",
        "network",
        "experimental",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} "))),
            "`alca --help` lists `{name}`:\n{help}"
        );
    }
    assert!(
        !help.contains("__serve-view"),
        "internal command hidden: {help}"
    );
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for (path, flag) in COMMANDS {
        let mut args = path.to_vec();
        args.push("--help");
        let out = alca(dir.path(), &args);
        let help = text(&out.stdout);
        assert!(out.status.success(), "alca {path:?} --help: {out:?}");
        assert!(
            help.contains(&format!("Usage: alca {}", path.join(" "))),
            "alca {path:?} --help shows its usage:\n{help}"
        );
        assert!(
            help.contains(flag),
            "alca {path:?} --help shows {flag}:\n{help}"
        );
    }
}

#[test]
fn version_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = alca(dir.path(), &["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("alca {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Asserts `alca ARGS` fails with exit 1, prints nothing on stdout and says each of `expected`
/// on stderr.
fn assert_fails(dir: &Path, args: &[&str], expected: &[&str]) {
    let out = alca(dir, args);
    assert_eq!(out.status.code(), Some(1), "alca {args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "nothing pretends on stdout: {out:?}");
    let err = text(&out.stderr);
    for want in expected {
        assert!(err.contains(want), "alca {args:?} says {want:?}: {err}");
    }
}

#[test]
fn usage_errors_go_to_stderr_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (&["bogus"][..], "unrecognized subcommand 'bogus'"),
        (&["run"], "required arguments were not provided"),
        (&["up", "--bogus"], "unexpected argument '--bogus'"),
        (&["network-helper"], "Usage: alca network-helper <COMMAND>"),
    ] {
        assert_fails(dir.path(), args, &[expected]);
    }
}

#[test]
fn project_commands_outside_a_project_point_at_init() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["up"][..],
        &["down"],
        &["run", "true"],
        &["trust"],
        &["network", "verify"],
        &["network", "log"],
    ] {
        assert_fails(
            dir.path(),
            args,
            &["no .alca.toml found", "run `alca init` first"],
        );
    }
}
