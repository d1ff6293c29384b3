//! End-to-end: a resolver's bus connection, once narrowed (`NarrowToResolver`), can make only
//! the resolver's calls about its own project, even when the bus credits it to root (the
//! resolver rootful Podman's `sudo alca up` starts opens its connection as root, then drops to
//! `nobody` before it reads any DNS). Against the installed daemon on the real system bus.
//!
//! Needs root and the test environment (`tests/env/setup.sh`); run under the e2e lock:
//! `flock /tmp/alca-e2e.lock cargo test -p alca-e2e --test resolver_narrowing`.

use alca_contract::client::Netd1Proxy;
use alca_contract::errors::NetdError;
use alca_contract::internet::{ResolvedAddr, ResolvedAddrs};
use alca_e2e::netd::{install_helper_for, text};
use alca_e2e::privilege::require_root;

const OWNER: &str = "alcatest";

async fn proxy() -> Netd1Proxy<'static> {
    let conn = zbus::connection::Builder::system()
        .build()
        .await
        .expect("system bus");
    Netd1Proxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .expect("proxy")
}

/// The refusal a narrowed connection gets.
fn is_narrowed_refusal<T>(reply: &Result<T, NetdError>) -> bool {
    matches!(reply, Err(NetdError::NotAuthorized(m)) if m.contains("serves only the DNS resolver"))
}

#[test]
fn a_narrowed_resolver_connection_makes_only_its_own_resolver_calls() {
    require_root("the resolver narrowing suite");
    let out = install_helper_for(OWNER, &std::env::temp_dir());
    assert!(out.status.success(), "install: {}", text(&out));
    let own = format!("{:08x}5e1f0017", std::process::id());
    let other = format!("{:08x}07be0017", std::process::id());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let narrowed = proxy().await;
        let control = proxy().await;
        assert!(
            !is_narrowed_refusal(&control.list().await),
            "before narrowing, root lists"
        );
        narrowed
            .narrow_to_resolver(&own)
            .await
            .expect("a resolver narrows its connection");
        narrowed
            .narrow_to_resolver(&own)
            .await
            .expect("narrowing again to the same project");

        assert!(is_narrowed_refusal(&narrowed.list().await), "List");
        assert!(
            is_narrowed_refusal(&narrowed.remove(&other).await),
            "Remove"
        );
        assert!(
            is_narrowed_refusal(&narrowed.remove(&own).await),
            "Remove of its own project"
        );
        assert!(
            is_narrowed_refusal(&narrowed.apply("{}").await),
            "Apply is refused before its spec is read"
        );
        assert!(
            is_narrowed_refusal(&narrowed.grant(&own, "blocked.test", 30).await),
            "a grant for its own project"
        );
        assert!(
            is_narrowed_refusal(&narrowed.internet_entries(&other).await),
            "another project's entries"
        );
        assert!(
            is_narrowed_refusal(&narrowed.narrow_to_resolver(&other).await),
            "it cannot move to another project"
        );
        let update = |project: &str| {
            serde_json::to_string(&ResolvedAddrs {
                project: project.into(),
                addrs: vec![ResolvedAddr {
                    entry: 0,
                    addr: "192.88.99.2".parse().unwrap(),
                    ttl_secs: 30,
                }],
            })
            .unwrap()
        };
        assert!(
            is_narrowed_refusal(&narrowed.allow_resolved(&update(&other)).await),
            "addresses for another project"
        );
        // Its own calls pass the narrowing (and then meet the usual checks: no such project).
        let entries = narrowed.internet_entries(&own).await;
        assert!(!is_narrowed_refusal(&entries), "{entries:?}");
        let allowed = narrowed.allow_resolved(&update(&own)).await;
        assert!(!is_narrowed_refusal(&allowed), "{allowed:?}");
        assert!(
            !is_narrowed_refusal(&control.list().await),
            "another connection of the same uid is not narrowed"
        );
    });
}
