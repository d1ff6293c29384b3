//! The kernel writer against `nft`, without root: for every golden ruleset of the compiler
//! (`alca_ruleset::golden_cases`), the writer's messages rendered as `nft --debug=netlink`
//! prints messages ([`alca_kernel::nft_text`]) must equal what `nft -c --debug=netlink` printed
//! for the same ruleset's JSON (`tests/fixtures/NAME.txt`, recorded once by
//! `tests/record-fixtures.sh`). That is every expression of every rule (loads, compares, masks,
//! lookups, verdicts, rejects, NAT, dynset, their registers and data), every set (flags,
//! timeout, size) with its elements (keys, interval ends, user data), every base chain (type,
//! hook, priority) and every rule comment, in nft's order. `tests/tests/netlink_ruleset.rs`
//! (root) proves the same against a live kernel.

use std::path::PathBuf;

use alca_kernel::{nft_text, ruleset};
use alca_ruleset::golden_cases::cases;
use alca_ruleset::types::{Chain, Command, Stmt};
use alca_ruleset::Ruleset;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; record it with alca-kernel/tests/record-fixtures.sh",
            path.display()
        )
    })
}

#[test]
fn every_golden_ruleset_is_written_as_nft_writes_it() {
    let mut compared = 0;
    for (name, ruleset) in cases() {
        let messages = ruleset::messages(&ruleset).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = nft_text::render(&messages);
        let nft = fixture(name);
        if ours != nft {
            let line = ours
                .lines()
                .zip(nft.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(ours.lines().count().min(nft.lines().count()));
            panic!(
                "{name}: the writer differs from nft at line {}:\n  writer: {:?}\n  nft:    {:?}",
                line + 1,
                ours.lines().nth(line),
                nft.lines().nth(line)
            );
        }
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} golden cases");
}

/// The comparison can fail: a base chain one priority off, or a rule with one more counter,
/// shows.
#[test]
fn a_changed_ruleset_is_seen() {
    let (name, ruleset) = cases()
        .into_iter()
        .find(|(n, _)| *n == "default")
        .expect("the default case");
    let render = |r: &Ruleset| nft_text::render(&ruleset::messages(r).expect("encodes"));
    assert_eq!(render(&ruleset), fixture(name));
    let mut later = ruleset.clone();
    for command in &mut later.commands {
        if let Command::AddChain(Chain {
            base: Some(base), ..
        }) = command
        {
            base.priority += 1;
            break;
        }
    }
    assert_ne!(render(&later), fixture(name));
    let mut counted = ruleset.clone();
    for command in &mut counted.commands {
        if let Command::AddRule(rule) = command {
            rule.stmts.insert(0, Stmt::Counter);
            break;
        }
    }
    assert_ne!(render(&counted), fixture(name));
}
