//! Golden tests of the ruleset compiler: the nft-JSON encoding ([`nft_json`]) of the compiled
//! `Ruleset` for each kind of spec ([`alca_ruleset::golden_cases`]) is compared with a reviewed
//! file under `tests/golden/`, and each golden is checked by the real `nft` (`nft -c -j -f`,
//! check mode) when it is available and we are root.
//!
//! Regenerate after an intended change with `ALCA_UPDATE_GOLDEN=1 cargo test -p alca-ruleset
//! --test golden` and review the diff; then re-record the kernel writer's fixtures
//! (`alca-kernel/tests/record-fixtures.sh`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use alca_contract::NetSpec;
use alca_ruleset::golden_cases::{cases, PROJECT};
use alca_ruleset::{delete_batch, nft_json, owner_uid, replace_batch};
use serde_json::Value;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("json") + "\n"
}

#[test]
fn batches_match_their_golden_files() {
    let update = std::env::var_os("ALCA_UPDATE_GOLDEN").is_some();
    for (name, ruleset) in cases() {
        let batch = nft_json(&ruleset);
        let path = golden_path(name);
        if update {
            std::fs::write(&path, pretty(&batch)).expect("write golden");
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with ALCA_UPDATE_GOLDEN=1", path.display()));
        let want: Value = serde_json::from_str(&text).expect("golden is JSON");
        assert_eq!(
            batch,
            want,
            "{name}: compiled batch differs from {}",
            path.display()
        );
    }
}

/// The daemon sends these batches over netlink (`alca_kernel::ruleset`): every one has an
/// encoding (alca-kernel/tests/nft_fixtures.rs and tests/tests/netlink_ruleset.rs hold it to what
/// nft sends and loads).
#[test]
fn every_golden_batch_has_a_netlink_encoding() {
    for (name, ruleset) in cases() {
        let messages =
            alca_kernel::ruleset::messages(&ruleset).unwrap_or_else(|e| panic!("{name}: {e}"));
        let commands = ruleset.commands.len();
        assert!(
            messages.len() >= commands,
            "{name}: {} messages",
            messages.len()
        );
    }
}

fn nft_usable() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let nft = Command::new("nft")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    root && nft
}

/// Runs `nft -c -j -f -` on `batch`; `Err(stderr)` when nft refuses it.
fn nft_check(batch: &Value) -> Result<(), String> {
    nft_stdin(&["-c", "-j", "-f", "-"], batch)
}

/// Runs `nft ARGS` with `batch` on stdin; `Err(stderr)` when nft fails.
fn nft_stdin(args: &[&str], batch: &Value) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(batch.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn nft_accepts_every_golden_batch() {
    if !nft_usable() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    for (name, ruleset) in cases() {
        if let Err(e) = nft_check(&nft_json(&ruleset)) {
            panic!("nft -c refused {name}: {e}");
        }
    }
    // Sanity: the checker itself can fail.
    let broken: Value = serde_json::json!({"nftables": [{"add": {"chain": {
        "family": "inet", "table": "alca-does-not-exist-0", "name": "x"}}}]});
    assert!(
        nft_check(&broken).is_err(),
        "nft -c accepted a chain in a missing table"
    );
}

#[test]
fn owner_uid_reads_back_from_the_kernel_and_delete_removes_the_table() {
    if !nft_usable() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let project = format!("{:08x}0e0e0e0e", std::process::id());
    let mut s = NetSpec::isolated(PROJECT);
    s.project = project.clone();
    s.bridge = alca_contract::net_spec::bridge_name(&project);
    let table = s.table_name();
    nft_stdin(&["-j", "-f", "-"], &nft_json(&replace_batch(&s, 4242))).expect("apply");
    // Applying twice is fine: the batch replaces the table whether or not it exists.
    nft_stdin(&["-j", "-f", "-"], &nft_json(&replace_batch(&s, 4243))).expect("re-apply");
    let listing = Command::new("nft")
        .args(["-j", "list", "table", "inet", &table])
        .output()
        .expect("nft list");
    let json: Value = serde_json::from_slice(&listing.stdout).expect("nft json");
    nft_stdin(&["-j", "-f", "-"], &nft_json(&delete_batch(&project))).expect("delete");
    assert_eq!(owner_uid(&json, &table), Some(4243));
    let gone = Command::new("nft")
        .args(["list", "table", "inet", &table])
        .output()
        .expect("nft list");
    assert!(
        !gone.status.success(),
        "{table} still exists after delete_batch"
    );
    // Deleting a missing table succeeds too.
    nft_stdin(&["-j", "-f", "-"], &nft_json(&delete_batch(&project))).expect("delete again");
}
