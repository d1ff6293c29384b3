//! `caps`: an array adds to the secure defaults (drop ALL + a small set), a table `{drop, add}`
//! is used verbatim, and a table with both lists empty means the secure defaults (as in the Go
//! original: an empty resolved `Caps` gets `DefaultCapsDrop()` + `DefaultCaps`). Names are
//! checked against the Linux capability list; a `CAP_` prefix and lower case are accepted and
//! normalised (`cap_net_raw` → `NET_RAW`).

use crate::config::either::ListOrTable;
use crate::config::error::Origin;
use crate::config::model::{Caps, DEFAULT_CAPS_ADD};
use crate::config::raw::RawCaps;
use crate::config::ConfigError;

/// Every Linux capability name (without `CAP_`), as of Linux 6.x.
pub const LINUX_CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The set a container starts with when `drop` does not name ALL: Docker's default set
/// (moby's `oci/caps` defaults). Podman's default (containers.conf `default_capabilities`) is
/// a subset of it, so what a config keeps of this set is the most its container gets.
pub const RUNTIME_DEFAULT_CAPS: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// `caps` of one file, names already normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapsLayer {
    /// Array form: added to the defaults.
    Add(Vec<String>),
    /// Table form: verbatim.
    Full { drop: Vec<String>, add: Vec<String> },
}

/// Checks the `caps` value of one file.
pub fn caps(raw: &ListOrTable<RawCaps>, origin: &Origin) -> Result<CapsLayer, ConfigError> {
    Ok(match raw {
        ListOrTable::List(names) => CapsLayer::Add(names_at(names, &origin.field, origin)?),
        ListOrTable::Table(t) => CapsLayer::Full {
            drop: names_at(&t.drop, &format!("{}.drop", origin.field), origin)?,
            add: names_at(&t.add, &format!("{}.add", origin.field), origin)?,
        },
    })
}

fn names_at(names: &[String], field: &str, origin: &Origin) -> Result<Vec<String>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| normalise(n, &Origin::new(&origin.file, format!("{field}[{i}]"))))
        .collect()
}

/// Normalises one capability name or explains why it is not one.
pub fn normalise(name: &str, origin: &Origin) -> Result<String, ConfigError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" || LINUX_CAPS.contains(&bare) {
        return Ok(bare.to_string());
    }
    Err(origin.err(
        format!("{name:?} is not a Linux capability"),
        "use a name from `man 7 capabilities` such as \"NET_BIND_SERVICE\" (the CAP_ prefix is optional) or \"ALL\"",
    ))
}

/// Merges two layers: same form → lists appended; different forms → the overlay wins.
pub fn merge(base: Option<CapsLayer>, overlay: Option<CapsLayer>) -> Option<CapsLayer> {
    match (base, overlay) {
        (b, None) => b,
        (Some(CapsLayer::Add(mut a)), Some(CapsLayer::Add(b))) => {
            a.extend(b);
            Some(CapsLayer::Add(a))
        }
        (
            Some(CapsLayer::Full { mut drop, mut add }),
            Some(CapsLayer::Full { drop: d2, add: a2 }),
        ) => {
            drop.extend(d2);
            add.extend(a2);
            Some(CapsLayer::Full { drop, add })
        }
        (_, o) => o,
    }
}

/// The effective drop/add lists (duplicates removed, order kept). Nothing to drop and nothing
/// to add (`[caps]` alone, `caps = {}`) is the secure default, never the runtime's own set.
pub fn effective(layer: Option<CapsLayer>) -> Caps {
    match layer {
        None => Caps::default(),
        Some(CapsLayer::Full { drop, add }) if drop.is_empty() && add.is_empty() => Caps::default(),
        Some(CapsLayer::Add(extra)) => {
            let base = DEFAULT_CAPS_ADD.iter().map(|s| s.to_string());
            Caps {
                drop: vec!["ALL".to_string()],
                add: dedup(base.chain(extra).collect()),
            }
        }
        Some(CapsLayer::Full { drop, add }) => Caps {
            drop: dedup(drop),
            add: dedup(add),
        },
    }
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn o() -> Origin {
        Origin::new(Path::new("/p/.alca.toml"), "caps")
    }

    #[test]
    fn array_adds_to_defaults_and_normalises() {
        let l = caps(
            &ListOrTable::List(vec!["cap_net_bind_service".into(), "CHOWN".into()]),
            &o(),
        )
        .unwrap();
        let c = effective(Some(l));
        assert_eq!(c.drop, ["ALL"]);
        assert_eq!(c.add.len(), 7);
        assert_eq!(c.add.last().unwrap(), "NET_BIND_SERVICE");
    }

    #[test]
    fn table_is_verbatim() {
        let t = RawCaps {
            drop: vec!["NET_RAW".into()],
            add: vec![],
        };
        let c = effective(Some(caps(&ListOrTable::Table(t), &o()).unwrap()));
        assert_eq!(c.drop, ["NET_RAW"]);
        assert!(c.add.is_empty());
    }

    /// Go internal/config/config.go (rawToConfig, AGD-026): "Empty Caps means no caps field
    /// was in config - apply secure defaults": Drop = ["ALL"], Add = DefaultCaps
    /// (CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETUID, SETGID).
    #[test]
    fn empty_table_is_the_secure_default() {
        let empty = RawCaps {
            drop: vec![],
            add: vec![],
        };
        let c = effective(Some(caps(&ListOrTable::Table(empty), &o()).unwrap()));
        assert_eq!(c.drop, ["ALL"]);
        assert_eq!(
            c.add,
            [
                "CHOWN",
                "DAC_OVERRIDE",
                "FOWNER",
                "KILL",
                "SETUID",
                "SETGID"
            ]
        );
        assert_eq!(c, Caps::default());
    }

    #[test]
    fn unknown_names_are_errors_with_index() {
        let t = RawCaps {
            drop: vec!["ALL".into()],
            add: vec!["CHOWN".into(), "NET_RAWW".into()],
        };
        let e = caps(&ListOrTable::Table(t), &o()).unwrap_err().0;
        assert!(
            e.contains("caps.add[1]: \"NET_RAWW\" is not a Linux capability"),
            "{e}"
        );
    }

    #[test]
    fn merge_rules() {
        let add = |v: &[&str]| Some(CapsLayer::Add(v.iter().map(|s| s.to_string()).collect()));
        assert_eq!(merge(add(&["A"]), add(&["B"])), add(&["A", "B"]));
        let full = Some(CapsLayer::Full {
            drop: vec!["ALL".into()],
            add: vec![],
        });
        assert_eq!(merge(add(&["A"]), full.clone()), full);
        assert_eq!(merge(full.clone(), None), full);
    }
}
