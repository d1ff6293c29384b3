//! The privilege boundary as a build fact: the unprivileged `alca` depends on the contract only,
//! never on the root daemon, its compiler or its netlink writer (issue #19).

use std::process::Command;

#[test]
fn alca_depends_on_no_root_side_crate() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "alca",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(crates.contains(&"alca-contract"), "{tree}");
    for root_side in [
        "alca-netd",
        "alca-ruleset",
        "alca-ruleset-types",
        "alca-kernel",
        "zbus_polkit",
        "rtnetlink",
        "nftables",
    ] {
        assert!(
            !crates.contains(&root_side),
            "alca depends on {root_side}:\n{tree}"
        );
    }
}
