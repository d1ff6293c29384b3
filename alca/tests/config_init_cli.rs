//! `alca init` through the real binary: templates, refusal to overwrite, `.gitignore`,
//! unknown templates, and `git+URL` presets fetched with the real `git` from a local repository.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use alca::config;

const SCHEMA_LINE: &str = "#:schema https://raw.githubusercontent.com/bolasblack/alcatraz/refs/heads/master/alca-config.schema.json\n";

fn alca(dir: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alca"))
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .output()
        .expect("run alca")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn init_writes_a_loadable_config_and_gitignore() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".gitignore"), "target/\n").unwrap();
    let o = alca(dir.path(), dir.path(), &["init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("from the alpine template"),
        "{}",
        stdout(&o)
    );
    let text = fs::read_to_string(dir.path().join(".alca.toml")).unwrap();
    assert!(text.starts_with(SCHEMA_LINE), "{text}");
    let gi = fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert!(gi.starts_with("target/\n"), "{gi}");
    for entry in [
        ".alca/",
        ".alca.local.toml",
        ".alca.*.local.toml",
        ".alca.mounts/",
    ] {
        assert_eq!(
            gi.lines().filter(|l| *l == entry).count(),
            1,
            "{entry} in {gi}"
        );
    }
    let loaded = config::load(dir.path()).unwrap();
    assert_eq!(loaded.config.image, "alpine:latest");
}

#[test]
fn init_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".alca.toml"), "image = \"mine\"\n").unwrap();
    let o = alca(dir.path(), dir.path(), &["init", "--template", "nix"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "alca: error: {}/.alca.toml already exists; edit it, or delete it to start over\n",
            dir.path().display()
        )
    );
    assert_eq!(
        fs::read_to_string(dir.path().join(".alca.toml")).unwrap(),
        "image = \"mine\"\n"
    );
    assert!(!dir.path().join(".gitignore").exists());
}

#[test]
fn unknown_template_lists_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = alca(dir.path(), dir.path(), &["init", "--template", "ubuntu"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "alca: error: unknown template \"ubuntu\"; valid templates: alpine, debian-slim, debian-mise, nix\n"
    );
    assert!(!dir.path().join(".alca.toml").exists());
}

#[test]
fn every_template_loads() {
    for (name, image) in [
        ("alpine", "alpine:latest"),
        ("debian-slim", "debian:bookworm-slim"),
        ("debian-mise", "debian:bookworm-slim"),
        ("nix", "nixos/nix"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = alca(dir.path(), dir.path(), &["init", "-t", name]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let loaded = config::load(dir.path()).unwrap();
        assert_eq!(loaded.config.image, image, "{name}");
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
    }
}

#[test]
fn template_and_preset_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let o = alca(
        dir.path(),
        dir.path(),
        &["init", "-t", "nix", "git+file:///nowhere"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--template cannot be combined with a preset or --update"));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    stdout(&o).trim().to_string()
}

/// A local repository with presets at the root and in `backend/`.
fn preset_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q"]);
    fs::write(r.join(".alca.node.toml"), "[resources]\nmemory = \"2g\"\n").unwrap();
    fs::write(
        r.join(".alca.secrets.toml.example"),
        "[envs]\nTOKEN = \"${TOKEN}\"\n",
    )
    .unwrap();
    fs::write(r.join("README.md"), "presets\n").unwrap();
    fs::create_dir(r.join("backend")).unwrap();
    fs::write(r.join("backend/.alca.db.toml"), "ports = [\"5432\"]\n").unwrap();
    git(r, &["add", "-A"]);
    git(r, &["commit", "-q", "-m", "presets"]);
    repo
}

#[test]
fn presets_are_fetched_with_their_source_and_updated() {
    let repo = preset_repo();
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = format!("file://{}", repo.path().display());
    let head = git(repo.path(), &["rev-parse", "HEAD"]);

    let o = alca(
        project.path(),
        home.path(),
        &["init", &format!("git+{url}")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let node = fs::read_to_string(project.path().join(".alca.node.toml")).unwrap();
    assert_eq!(
        node,
        format!("# Alcatraz Preset Source: git+{url}#{head}:.alca.node.toml\n[resources]\nmemory = \"2g\"\n")
    );
    assert!(project.path().join(".alca.secrets.toml.example").is_file());
    assert!(!project.path().join("README.md").exists());
    assert!(
        !project.path().join(".alca.toml").exists(),
        "presets do not create .alca.toml"
    );
    assert!(home
        .path()
        .join(".alcatraz/cache-presets/-/git-file/-")
        .is_dir());

    let o = alca(
        project.path(),
        home.path(),
        &["init", &format!("git+{url}#:backend")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let db = fs::read_to_string(project.path().join(".alca.db.toml")).unwrap();
    assert!(
        db.starts_with(&format!(
            "# Alcatraz Preset Source: git+{url}#{head}:backend/.alca.db.toml\n"
        )),
        "{db}"
    );

    // A second fetch does not overwrite local files.
    let o = alca(
        project.path(),
        home.path(),
        &["init", &format!("git+{url}")],
    );
    assert!(
        stdout(&o).contains("Skipped .alca.node.toml"),
        "{}",
        stdout(&o)
    );

    fs::write(
        repo.path().join(".alca.node.toml"),
        "[resources]\nmemory = \"4g\"\n",
    )
    .unwrap();
    git(repo.path(), &["commit", "-q", "-am", "more memory"]);
    let new_head = git(repo.path(), &["rev-parse", "HEAD"]);
    let o = alca(project.path(), home.path(), &["init", "--update"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let node = fs::read_to_string(project.path().join(".alca.node.toml")).unwrap();
    assert_eq!(
        node,
        format!("# Alcatraz Preset Source: git+{url}#{new_head}:.alca.node.toml\n[resources]\nmemory = \"4g\"\n")
    );
}

#[test]
fn a_preset_that_cannot_be_fetched_fails_clearly() {
    let project = tempfile::tempdir().unwrap();
    let o = alca(
        project.path(),
        project.path(),
        &["init", "git+file:///nonexistent/alca-presets"],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("fetching preset repository file:///nonexistent/alca-presets failed"),
        "{e}"
    );
    let o = alca(project.path(), project.path(), &["init", "github:org/repo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("expected git+<clone-url>[#[commit][:dir]]"));
}
