//! No input makes the config loader panic: arbitrary text, TOML-looking text, and structured
//! configs with the real keys and hostile values all end in `Ok` or a worded `ConfigError`.

use std::collections::HashMap;
use std::path::Path;

use alca::config::{self, parse};
use proptest::prelude::*;

const KEYS: &[&str] = &[
    "image",
    "workdir",
    "workdir_exclude",
    "runtime",
    "mounts",
    "commands",
    "resources",
    "envs",
    "caps",
    "ports",
    "network",
    "hooks",
    "source",
    "target",
    "readonly",
    "exclude",
    "up",
    "enter",
    "command",
    "append",
    "memory",
    "cpus",
    "drop",
    "add",
    "port",
    "hostPort",
    "hostIp",
    "protocol",
    "lan-access",
    "proxy",
    "post_up",
    "pre_down",
    "value",
    "override_on_enter",
    "PATH",
    "X-Y",
];

const STRINGS: &[&str] = &[
    "",
    " ",
    "/",
    ".",
    "..",
    "~",
    "~/x",
    "$HOME",
    "${HOME}",
    "${NOPE}",
    "$",
    "${",
    "${alca:HOST_IP}",
    "${alca:HOST_IP}:80",
    "${alca:NOPE}",
    "*",
    "*://1.2.3.4:80",
    "a:/b",
    "a:/b:ro",
    ":",
    "::",
    ":/x",
    "8080",
    "0",
    "65536",
    "8080:80/udp",
    "[::1]:80:80",
    "127.0.0.1:1:2",
    "10.0.0.0/8",
    "10.99.0.2:3128",
    "[fd00::1]:80",
    "4g",
    "1.5g",
    "-1",
    "ALL",
    "CAP_CHOWN",
    "chown",
    "auto",
    "podman",
    "/workspace",
    "/workspace/",
    "/a/../b",
    "é/ü",
    "\u{0}",
    "x\ny",
];

fn env() -> HashMap<String, String> {
    [("HOME".to_string(), "/home/p".to_string())].into()
}

fn leaf() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        prop::sample::select(STRINGS).prop_map(|s| toml::Value::String(s.to_string())),
        "[a-z0-9:/.$~{}*_-]{0,12}".prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        prop::num::f64::ANY.prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
    ]
}

fn value() -> impl Strategy<Value = toml::Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..4).prop_map(|m| {
                toml::Value::Table(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A top-level table with real keys; `extends`/`includes` only name files inside the project.
fn config_table() -> impl Strategy<Value = toml::Table> {
    let refs = prop::collection::vec(
        prop::sample::select(
            &[
                "other.toml",
                "*.toml",
                "missing.toml",
                ".alca.toml",
                "sub/*.toml",
            ][..],
        ),
        0..3,
    );
    (
        prop::collection::btree_map(prop::sample::select(KEYS), value(), 0..8),
        refs.clone(),
        refs,
    )
        .prop_map(|(m, ext, inc)| {
            let mut t: toml::Table = m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let list = |v: Vec<&str>| {
                toml::Value::Array(
                    v.into_iter()
                        .map(|s| toml::Value::String(s.into()))
                        .collect(),
                )
            };
            if !ext.is_empty() {
                t.insert("extends".into(), list(ext));
            }
            if !inc.is_empty() {
                t.insert("includes".into(), list(inc));
            }
            t
        })
}

fn check_error_shape(result: Result<config::Loaded, config::ConfigError>, root: &Path) {
    if let Err(e) = result {
        let msg = e.to_string();
        assert!(
            msg.starts_with(&root.display().to_string()),
            "error does not name a file: {msg}"
        );
        assert!(msg.contains("; "), "error has no fix: {msg}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = parse::parse_str(Path::new("/p/.alca.toml"), &text);
    }

    #[test]
    fn toml_looking_text_never_panics(text in "([a-z_\\-]{1,8} *= *(\"[a-z0-9:/.$~{}*]{0,10}\"|[0-9.\\-]{1,6}|true|\\[[^\\]\n]{0,20}\\]|\\{[^}\n]{0,20}\\})\n|\\[{1,2}[a-z.]{1,10}\\]{1,2}\n){0,8}") {
        let _ = parse::parse_str(Path::new("/p/.alca.toml"), &text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn structured_configs_never_panic(main in config_table(), other in config_table(), sub in config_table()) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join(".alca.toml"), toml::to_string(&main).unwrap()).unwrap();
        std::fs::write(root.join("other.toml"), toml::to_string(&other).unwrap()).unwrap();
        std::fs::write(root.join("sub/x.toml"), toml::to_string(&sub).unwrap()).unwrap();
        check_error_shape(config::load_with_env(&root, &env()), &root);
    }
}
