//! Configs written from the Go original's documented examples load unchanged
//! (`tests/fixtures/go-original/`, see its README for where each one comes from).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use alca::config::{self, Loaded, PortProto, DEFAULT_CAPS_ADD};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/go-original")
        .join(name)
}

fn env() -> HashMap<String, String> {
    [
        ("HOME", "/home/tester"),
        ("PROJECT_ROOT", "/srv/project"),
        ("MY_TOKEN", "token-123"),
        ("EDITOR", "nvim"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn load(name: &str) -> Loaded {
    match config::load_with_env(&fixture(name), &env()) {
        Ok(l) => l,
        Err(e) => panic!("fixture {name} must load: {e}"),
    }
}

fn load_clean(name: &str) -> Loaded {
    let l = load(name);
    assert!(l.warnings.is_empty(), "{name}: {:?}", l.warnings);
    l
}

#[test]
fn every_fixture_directory_is_covered() {
    let dir = fixture("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join(".alca.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "caps-additive",
            "caps-full-control",
            "caps-keep-docker-defaults",
            "command-append",
            "envs",
            "extends-includes",
            "full-example",
            "includes-glob",
            "lan-access-all",
            "lan-access-host",
            "mounts-env",
            "ports",
            "sing-box-proxy",
            "template-debian",
            "template-nix",
        ]
    );
}

#[test]
fn full_example() {
    let l = load("full-example");
    let c = &l.config;
    assert_eq!(c.image, "nixos/nix");
    assert_eq!(
        c.commands.enter.as_deref(),
        Some("[ -f flake.nix ] && exec nix develop")
    );
    assert_eq!(c.resources.memory.as_deref(), Some("16g"));
    assert_eq!(c.resources.cpus, Some(8.0));
    assert_eq!(c.envs["EDITOR"].value, "nvim");
    // The documented example puts `mounts` after `[commands]`, which makes it
    // `commands.mounts` in TOML: the Go original silently ignored it, we say so.
    assert!(c.mounts.is_empty());
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("unknown key `commands.mounts` is ignored"));
}

#[test]
fn extends_includes_environment_example() {
    let c = load_clean("extends-includes").config;
    assert_eq!(c.image, "nixos/nix");
    let m: Vec<(&Path, &str)> = c
        .mounts
        .iter()
        .map(|m| (m.source.as_path(), m.target.as_str()))
        .collect();
    assert_eq!(
        m,
        [
            (Path::new("/home/tester/.gitconfig"), "/root/.gitconfig"),
            (Path::new("/my/local/cache"), "/cache")
        ]
    );
    assert_eq!(c.resources.memory.as_deref(), Some("32g"));
    assert_eq!(c.resources.cpus, Some(16.0));
    assert_eq!(c.sources.len(), 3);
}

#[test]
fn command_append() {
    let c = load_clean("command-append").config;
    assert_eq!(c.commands.up.as_deref(), Some("nix develop bash"));
}

#[test]
fn caps_modes() {
    let c = load_clean("caps-additive").config.caps;
    assert_eq!(c.drop, ["ALL"]);
    let mut want: Vec<&str> = DEFAULT_CAPS_ADD.to_vec();
    want.extend(["NET_BIND_SERVICE"]);
    assert_eq!(c.add, want);
    let c = load_clean("caps-full-control").config.caps;
    assert_eq!(c.drop, ["NET_RAW", "MKNOD", "AUDIT_WRITE"]);
    assert_eq!(c.add, ["CHOWN", "FOWNER", "KILL", "SETUID", "SETGID"]);
    let c = load_clean("caps-keep-docker-defaults").config.caps;
    assert_eq!(c.drop, ["NET_RAW", "MKNOD", "SYS_CHROOT"]);
    assert!(c.add.is_empty());
}

#[test]
fn mounts_with_env_vars() {
    let c = load_clean("mounts-env").config;
    assert_eq!(c.mounts[0].source, Path::new("/home/tester/data"));
    assert_eq!(c.mounts[1].source, Path::new("/srv/project/configs"));
    assert_eq!(c.mounts[1].target, "/configs");
}

#[test]
fn envs_example() {
    let e = load_clean("envs").config.envs;
    assert_eq!(e["NIXPKGS_ALLOW_UNFREE"].value, "1");
    assert_eq!(e["MY_TOKEN"].value, "token-123");
    assert!(e["EDITOR"].override_on_enter);
}

#[test]
fn lan_access_examples() {
    let n = load_clean("lan-access-host").config.network;
    assert_eq!(n.lan_access_raw, ["*://${alca:HOST_IP}:8080"]);
    assert!(n.lan_access[0].needs_host_ip());
    assert!(load_clean("lan-access-all")
        .config
        .network
        .allows_everything());
}

#[test]
fn sing_box_cookbook() {
    let c = load_clean("sing-box-proxy").config;
    assert_eq!(c.image, "alpine:3.21");
    assert!(c
        .network
        .proxy
        .is_some_and(|p| p.port == 1080 && p.needs_host_ip()));
    assert!(c
        .hooks
        .post_up
        .as_deref()
        .is_some_and(|h| h.contains("docker run -d --name alca-singbox")));
    assert_eq!(
        c.hooks.pre_down.as_deref(),
        Some("docker rm -f alca-singbox >/dev/null 2>&1 || true")
    );
}

#[test]
fn go_init_templates() {
    let c = load_clean("template-nix").config;
    assert_eq!(
        c.mounts[0].source,
        fixture("template-nix").join(".alca.cache/go")
    );
    assert_eq!(c.envs.len(), 2);
    let c = load_clean("template-debian").config;
    assert!(c
        .commands
        .up
        .as_deref()
        .is_some_and(|u| u.ends_with(". ~/.bashrc")));
    assert_eq!(
        c.resources.memory.as_deref(),
        Some("8g"),
        ".alca.local.toml is included"
    );
}

#[test]
fn ports_forms() {
    let p = load_clean("ports").config.ports;
    assert_eq!(p.len(), 7);
    assert_eq!((p[4].host_port, p[4].container_port), (Some(8081), 80));
    assert_eq!(p[6].proto, PortProto::Udp);
    assert_eq!(p[6].host_port, Some(19001));
}

#[test]
fn includes_glob_example() {
    let c = load_clean("includes-glob").config;
    assert_eq!(
        c.resources.cpus,
        Some(4.0),
        ".alca.local.toml sorts after .alca.dev.toml"
    );
}

#[test]
fn a_mount_on_the_workdir_is_refused_with_the_fix() {
    let dir = fixture("rejected/workdir-mount");
    let err = config::load_with_env(&dir, &env()).unwrap_err().to_string();
    assert!(
        err.ends_with("mounts[0].target: \"/workspace\" is the workdir, which is already the project mount; remove this mount; to hide paths from the project mount use workdir_exclude"),
        "{err}"
    );
}
