//! The daemon's element batches over netlink (`alca_netd::set_elements`) leave a table exactly
//! as `nft -j -f` of the same batch does, and a refused one changes nothing: in a scratch
//! network namespace, two copies of a project's table, one driven each way. Needs root
//! (tests/run.sh).

use alca_contract::lan::Proto;
use alca_contract::probe::{Key, Probe};
use alca_e2e::netns::{for_table, golden, run_ok, ScratchNs};
use alca_netd::firewall::{Firewall, FirewallError, Nft};
use alca_netd::probe_sets::{arm_batch, disarm_batch, forget_batch};
use alca_netd::set_elements::{ElementBatch, ElementOp};
use serde_json::Value;

const BY_NETLINK: &str = "alca-00000000000000000000000000000001";
const BY_NFT: &str = "alca-00000000000000000000000000000002";

fn key(addr: &str, proto: Proto, port: u16) -> Key {
    Key {
        addr: addr.parse().unwrap(),
        proto,
        port,
    }
}

fn probes() -> Vec<Probe> {
    vec![
        Probe {
            key: key("10.255.255.254", Proto::Tcp, 9),
            fence: true,
        },
        Probe {
            key: key("198.51.100.2", Proto::Udp, 53),
            fence: false,
        },
        Probe {
            key: key("fd00::1", Proto::Tcp, 443),
            fence: true,
        },
    ]
}

/// The project table of the default spec, named `name`.
fn load_table(ns: &ScratchNs, name: &str) {
    ns.nft_batch(&for_table(&golden("default"), name)).unwrap();
}

/// Each set of the table with its elements, without the table name and the ever-changing
/// `expires`.
fn sets(ns: &ScratchNs, table: &str) -> Vec<(String, Vec<Value>)> {
    let listing = ns.list_table(table).unwrap();
    let mut out = Vec::new();
    for obj in listing["nftables"].as_array().unwrap() {
        let Some(set) = obj.get("set") else { continue };
        let mut elems: Vec<Value> = set["elem"].as_array().cloned().unwrap_or_default();
        for e in &mut elems {
            if let Some(inner) = e.get_mut("elem").and_then(Value::as_object_mut) {
                inner.remove("expires");
            }
        }
        elems.sort_by_key(|e| e.to_string());
        out.push((set["name"].as_str().unwrap().to_string(), elems));
    }
    out
}

fn elements_of(ns: &ScratchNs, table: &str, set: &str) -> Vec<Value> {
    sets(ns, table)
        .into_iter()
        .find(|(name, _)| name == set)
        .map(|(_, e)| e)
        .unwrap()
}

/// Runs `batch` (written for [`BY_NETLINK`]) over netlink there and through nft on [`BY_NFT`].
fn both_ways(ns: &ScratchNs, batch: ElementBatch) {
    let json = batch.to_json().to_string().replace(BY_NETLINK, BY_NFT);
    ns.nft_batch(&serde_json::from_str(&json).unwrap()).unwrap();
    ns.enter(move || Nft::default().apply_elements(&batch))
        .unwrap()
        .expect("the netlink element batch");
}

#[test]
fn element_batches_over_netlink_do_what_nft_does() {
    if run_ok("id", &["-u"]).map(|u| u != "0").unwrap_or(true) {
        panic!("the set element test must run as root (tests/run.sh)");
    }
    let ns = ScratchNs::create("alca-e2e-elements").unwrap();
    load_table(&ns, BY_NETLINK);
    load_table(&ns, BY_NFT);

    // Arm: flushes, then probes (with their timeout) and the fenced ones.
    both_ways(&ns, arm_batch(BY_NETLINK, &probes()));
    let armed = sets(&ns, BY_NETLINK);
    assert_eq!(armed, sets(&ns, BY_NFT));
    assert_eq!(elements_of(&ns, BY_NETLINK, "probe4").len(), 2, "{armed:?}");
    assert_eq!(elements_of(&ns, BY_NETLINK, "fence4").len(), 1, "{armed:?}");
    assert_eq!(elements_of(&ns, BY_NETLINK, "probe6").len(), 1, "{armed:?}");
    let fenced = &elements_of(&ns, BY_NETLINK, "fence4")[0];
    assert_eq!(fenced["elem"]["timeout"], 120, "{fenced}");
    assert_eq!(
        fenced["elem"]["val"]["concat"],
        serde_json::json!(["10.255.255.254", "tcp", 9])
    );

    // Forget: the probes' own entries of the denied log go, the rest stays.
    let logged = [probes()[0].key, probes()[2].key];
    for table in [BY_NETLINK, BY_NFT] {
        for element in ["10.255.255.254 . tcp . 9", "192.168.1.1 . udp . 53"] {
            let set = format!("{{ {element} }}");
            ns.nft(&["add", "element", "inet", table, "denied4", &set])
                .unwrap();
        }
        ns.nft(&[
            "add",
            "element",
            "inet",
            table,
            "denied6",
            "{ fd00::1 . tcp . 443 }",
        ])
        .unwrap();
    }
    both_ways(
        &ns,
        disarm_batch(BY_NETLINK).then(&forget_batch(BY_NETLINK, &logged)),
    );
    assert_eq!(sets(&ns, BY_NETLINK), sets(&ns, BY_NFT));
    let denied4 = elements_of(&ns, BY_NETLINK, "denied4");
    assert_eq!(denied4.len(), 1, "{denied4:?}");
    assert!(
        denied4[0].to_string().contains("192.168.1.1"),
        "{denied4:?}"
    );
    assert!(elements_of(&ns, BY_NETLINK, "denied6").is_empty());
    for set in ["probe4", "fence4", "probe6", "fence6", "passed4", "passed6"] {
        assert!(elements_of(&ns, BY_NETLINK, set).is_empty(), "{set}");
    }

    // A batch the kernel refuses (deleting an element that is not there) changes nothing.
    let refused = ElementBatch {
        table: BY_NETLINK.into(),
        ops: vec![
            ElementOp::Add {
                set: "probe4",
                keys: vec![probes()[1].key],
                timeout_secs: Some(120),
            },
            ElementOp::Delete {
                set: "denied4",
                keys: vec![key("10.1.2.3", Proto::Tcp, 1)],
            },
        ],
    };
    let err = ns
        .enter(move || Nft::default().apply_elements(&refused))
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, FirewallError::Netlink(e) if e.raw_os_error() == Some(nix::libc::ENOENT)),
        "{err}"
    );
    assert!(elements_of(&ns, BY_NETLINK, "probe4").is_empty());

    // Only project tables are touched.
    let foreign = ElementBatch {
        table: "filter".into(),
        ops: vec![ElementOp::Flush { set: "probe4" }],
    };
    let err = ns
        .enter(move || Nft::default().apply_elements(&foreign))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, FirewallError::Foreign(_)), "{err}");
}
