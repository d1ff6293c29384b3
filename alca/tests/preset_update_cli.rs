//! `alca init --update` against an agent that wrote the workspace (issue #22 item 4): the
//! source lines in preset files are the agent's, so an option-like URL, an absolute path or a
//! rewritten source line must neither run a command nor copy a file, through the real binary
//! and the real `git`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn alca(dir: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alca"))
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("XDG_STATE_HOME")
        .output()
        .expect("run alca")
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(o.status.success(), "git {args:?}");
}

#[test]
fn planted_source_lines_run_nothing_and_copy_nothing() {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    fs::write(
        repo.path().join(".alca.node.toml"),
        "[resources]\ncpus = 1\n",
    )
    .unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "presets"]);
    let url = format!("file://{}", repo.path().display());
    let o = alca(
        project.path(),
        home.path(),
        &["init", &format!("git+{url}")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let marker = home.path().join("upload-pack-ran");
    let secret = home.path().join("id_ed25519");
    fs::write(&secret, "PRIVATE KEY\n").unwrap();
    let planted = [
        (
            ".alca.dash.toml",
            format!(
                "git+--upload-pack=touch {}://x/y#:.alca.dash.toml",
                marker.display()
            ),
        ),
        (".alca.key.toml", format!("git+{url}#:{}", secret.display())),
    ];
    for (name, source) in &planted {
        fs::write(
            project.path().join(name),
            format!("# Alcatraz Preset Source: {source}\n"),
        )
        .unwrap();
    }
    // The managed file's own source line rewritten by the agent.
    let node = project.path().join(".alca.node.toml");
    let text = fs::read_to_string(&node).unwrap();
    let rewritten = text.replacen(
        &format!("git+{url}"),
        &format!("git+--upload-pack=touch {}://x/y", marker.display()),
        1,
    );
    fs::write(&node, rewritten).unwrap();

    let o = alca(project.path(), home.path(), &["init", "--update"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(!marker.exists(), "a command from a source line ran");
    for (name, source) in &planted {
        assert_eq!(
            fs::read_to_string(project.path().join(name)).unwrap(),
            format!("# Alcatraz Preset Source: {source}\n"),
            "{name} must be left unchanged"
        );
        assert!(
            err.contains(&format!("{name} names a preset source")),
            "{err}"
        );
    }
    let refreshed = fs::read_to_string(&node).unwrap();
    assert!(
        refreshed.starts_with(&format!("# Alcatraz Preset Source: git+{url}#")),
        "refreshed from the recorded source: {refreshed}"
    );
    assert!(!refreshed.contains("PRIVATE KEY"));

    // The same source lines given to `init` itself are refused before anything is fetched.
    for (_, source) in &planted[..1] {
        let o = alca(project.path(), home.path(), &["init", source]);
        assert_eq!(o.status.code(), Some(1));
    }
    assert!(!marker.exists());
}
