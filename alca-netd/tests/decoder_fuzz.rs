//! Fuzzing of the request decoder the root daemon runs on every `Apply`: arbitrary bytes,
//! arbitrary JSON trees and near-valid specs with hostile field values. Whatever arrives, the
//! decoder must return (never panic), and anything it accepts must be valid, round-trip, and
//! compile to a batch that touches nothing but the project's own `alca-` table.

use alca_contract::net_spec::{
    bridge_name, MAX_ALLOW_RULES, MAX_DNS, MAX_REQUEST_BYTES, NAME_PREFIX,
};
use alca_contract::request::{decode_project, decode_spec, encode_spec, RequestError};
use alca_contract::NetSpec;
use alca_ruleset::replace_batch;
use alca_ruleset::types::{Match, Ruleset, Stmt};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Longest error message a client may get back (serde quotes input; it must stay bounded).
const MAX_MESSAGE: usize = 2048;

/// Checks everything an accepted spec must satisfy, or the refusal's message.
fn check_outcome(result: Result<NetSpec, RequestError>) -> Result<(), TestCaseError> {
    let spec = match result {
        Ok(spec) => spec,
        Err(e) => {
            let message = e.to_string();
            prop_assert!(!message.is_empty());
            prop_assert!(
                message.len() <= MAX_MESSAGE,
                "message too long: {}",
                message.len()
            );
            return Ok(());
        }
    };
    prop_assert!(spec.validate().is_ok());
    prop_assert_eq!(&spec.bridge, &bridge_name(&spec.project));
    prop_assert!(spec.allow.len() <= MAX_ALLOW_RULES && spec.dns.len() <= MAX_DNS);
    prop_assert!(spec.allow.iter().all(|r| r.port != Some(0)));
    let again = decode_spec(&encode_spec(&spec));
    prop_assert_eq!(again.as_ref(), Ok(&spec));
    check_batch_stays_in_own_table(&spec)
}

/// Every command of the compiled batch adds or deletes a table, set, chain or rule of the
/// project's own `inet alca-<id>` table (the closed [`Ruleset`] has no other verb, object or
/// family), deletes only that table, and matches only the project's own bridge.
fn check_batch_stays_in_own_table(spec: &NetSpec) -> Result<(), TestCaseError> {
    let own = spec.table_name();
    prop_assert!(own.starts_with(NAME_PREFIX));
    let batch = replace_batch(spec, 1000);
    for cmd in &batch.commands {
        prop_assert_eq!(cmd.table(), own.as_str(), "{:?}", cmd);
    }
    for name in interface_names(&batch) {
        prop_assert_eq!(&name, &spec.bridge);
    }
    Ok(())
}

/// The right-hand sides of every `meta iifname` match in the batch.
fn interface_names(batch: &Ruleset) -> Vec<String> {
    batch
        .rules()
        .flat_map(|r| &r.stmts)
        .filter_map(|s| match s {
            Stmt::Match(Match::Iifname(name)) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Arbitrary JSON trees, with keys biased towards the spec's own field names.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,24}".prop_map(Value::String),
        "[0-9a-f]{8,64}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "project",
            "bridge",
            "allow_all",
            "allow",
            "proxy",
            "dns",
            "net",
            "proto",
            "port",
        ])
        .prop_map(String::from),
        "\\PC{0,12}",
    ]
}

/// A project id: mostly valid, sometimes hostile.
fn project_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[0-9a-f]{8,64}",
        1 => "[0-9a-fA-F;/. $'\"-]{0,80}",
        1 => Just("../../etc/passwd".to_string()),
    ]
}

/// Addresses, prefixes and junk as an allow rule's `net`.
fn net_text() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (any::<[u8; 4]>(), 0u8..=34).prop_map(|(a, p)| json!(format!(
            "{}.{}.{}.{}/{p}",
            a[0], a[1], a[2], a[3]
        ))),
        4 => (any::<[u16; 8]>(), 0u8..=130).prop_map(|(s, p)| json!(format!(
            "{}/{p}",
            std::net::Ipv6Addr::from(s)
        ))),
        1 => "\\PC{0,30}".prop_map(Value::String),
        1 => any::<i64>().prop_map(|n| json!(n)),
    ]
}

fn allow_rule() -> impl Strategy<Value = Value> {
    let proto = prop_oneof![
        3 => Just(json!("tcp")),
        3 => Just(json!("udp")),
        1 => Just(json!("TCP")),
        1 => Just(json!("icmp")),
        6 => Just(Value::Null),
    ];
    let port = prop_oneof![
        6 => (0i64..65_536).prop_map(|p| json!(p)),
        1 => prop_oneof![Just(-1i64), Just(65_536), Just(1 << 40)].prop_map(|p| json!(p)),
        1 => Just(json!("80")),
        6 => Just(Value::Null),
    ];
    let extra = prop::bool::weighted(0.05);
    (net_text(), proto, port, extra).prop_map(|(net, proto, port, extra)| {
        let mut rule = json!({ "net": net });
        if !proto.is_null() {
            rule["proto"] = proto;
        }
        if !port.is_null() {
            rule["port"] = port;
        }
        if extra {
            rule["nft"] = json!("flush ruleset");
        }
        rule
    })
}

fn socket_text() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (any::<[u8; 4]>(), 0u32..70_000).prop_map(|(a, p)| json!(format!(
            "{}.{}.{}.{}:{p}",
            a[0], a[1], a[2], a[3]
        ))),
        3 => (any::<[u16; 8]>(), 0u32..70_000)
            .prop_map(|(s, p)| json!(format!("[{}]:{p}", std::net::Ipv6Addr::from(s)))),
        1 => "\\PC{0,24}".prop_map(Value::String),
    ]
}

fn dns_entry() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<[u8; 4]>().prop_map(|a| json!(std::net::Ipv4Addr::from(a).to_string())),
        4 => any::<[u16; 8]>().prop_map(|s| json!(std::net::Ipv6Addr::from(s).to_string())),
        1 => "\\PC{0,16}".prop_map(Value::String),
    ]
}

/// Specs shaped like the real thing, with every field drawn from valid and hostile values.
fn near_valid_spec() -> impl Strategy<Value = String> {
    (
        project_id(),
        prop::option::weighted(0.1, "\\PC{0,20}"),
        any::<bool>(),
        prop::collection::vec(allow_rule(), 0..8),
        prop::option::weighted(0.3, socket_text()),
        prop_oneof![
            4 => prop::collection::vec(dns_entry(), 0..3),
            1 => prop::collection::vec(dns_entry(), 0..(MAX_DNS + 3)),
        ],
    )
        .prop_map(|(project, bridge, allow_all, allow, proxy, dns)| {
            let bridge = bridge.unwrap_or_else(|| bridge_name(&project));
            let mut spec = json!({
                "project": project, "bridge": bridge, "allow_all": allow_all,
                "allow": allow, "dns": dns,
            });
            if let Some(proxy) = proxy {
                spec["proxy"] = proxy;
            }
            spec.to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// D-Bus strings are UTF-8; any byte sequence a client can produce arrives as such text.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let text = String::from_utf8_lossy(&bytes);
        check_outcome(decode_spec(&text))?;
        if let Ok(project) = decode_project(&text) {
            prop_assert!(alca_contract::net_spec::validate_project_id(project).is_ok());
        }
    }

    #[test]
    fn arbitrary_json_trees_never_panic(tree in any_json()) {
        check_outcome(decode_spec(&tree.to_string()))?;
    }

    #[test]
    fn near_valid_specs_are_accepted_only_when_safe(json in near_valid_spec()) {
        check_outcome(decode_spec(&json))?;
    }

    /// Many allow rules near the count limit: refused above it, accepted and compiled below.
    #[test]
    fn rule_count_limit_holds(n in (MAX_ALLOW_RULES - 2)..(MAX_ALLOW_RULES + 3)) {
        let project = "0123456789abcdef";
        let allow: Vec<Value> = (0..n)
            .map(|i| json!({"net": format!("10.{}.{}.0/24", i / 256, i % 256), "port": 443}))
            .collect();
        let body = json!({"project": project, "bridge": bridge_name(project), "allow": allow})
            .to_string();
        prop_assume!(body.len() <= MAX_REQUEST_BYTES);
        let result = decode_spec(&body);
        prop_assert_eq!(result.is_ok(), n <= MAX_ALLOW_RULES, "{} rules", n);
        check_outcome(result)?;
    }
}

/// The fuzzers above reach both outcomes: a decoder that refused everything would pass them.
#[test]
fn the_near_valid_generator_produces_accepted_specs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = near_valid_spec();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..512 {
        let json = strategy.new_tree(&mut runner).expect("tree").current();
        match decode_spec(&json) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    eprintln!("near-valid specs: {accepted} accepted, {refused} refused");
    assert!(
        accepted >= 10,
        "only {accepted} of 512 near-valid specs accepted"
    );
    assert!(
        refused >= 10,
        "only {refused} of 512 near-valid specs refused"
    );
}
