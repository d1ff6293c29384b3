//! The resolver on loopback against an in-process zone server serving `.test` names: what it
//! forwards, what it refuses and logs, and that the daemon has the addresses before the answer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alca_contract::internet::{parse_internet_entry, InternetEntry, ResolvedAddrs};
use alca_dns::policy::indexed;
use alca_dns::query_log::{read_events, Outcome, QueryLog, LOG_FILE};
use alca_dns::static_zone::{Zone, ZoneServer};
use alca_dns::upstream::{ask_over_tcp, ask_within};
use alca_dns::{bind, AllowSink, Policy, ResolverHandler, SinkError};
use hickory_server::proto::op::{Message, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};

const PROJECT: &str = "0123456789abcdef";

/// The first index of a grant (`alca_contract::internet_status::GRANT_INDEX_BASE`).
const GRANT: u16 = alca_contract::internet_status::GRANT_INDEX_BASE;

/// Entries under the daemon's indices.
type Indexed = Vec<(u16, InternetEntry)>;

/// Records every update; fails when told to; marks when the last one completed.
#[derive(Clone, Default)]
struct FakeSink {
    updates: Arc<Mutex<Vec<ResolvedAddrs>>>,
    refuse: Arc<AtomicBool>,
    delay_ms: u64,
    /// How long reading the daemon's entries takes.
    entries_delay_ms: u64,
    /// What the daemon's InternetEntries would return (`None`: no answer to give).
    daemon_entries: Arc<Mutex<Option<Indexed>>>,
}

impl AllowSink for FakeSink {
    async fn allow(&self, update: ResolvedAddrs) -> Result<(), SinkError> {
        tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
        if self.refuse.load(Ordering::SeqCst) {
            return Err(SinkError::Refused("entry 9 is not a domain entry".into()));
        }
        // Like the daemon: a grant's index must be one it has now.
        let live = self
            .daemon_entries
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default();
        if let Some(gone) = update
            .addrs
            .iter()
            .find(|a| a.entry >= GRANT && !live.iter().any(|(i, _)| *i == a.entry))
        {
            return Err(SinkError::Refused(format!(
                "addrs: entry {} is not a live name grant",
                gone.entry
            )));
        }
        self.updates.lock().unwrap().push(update);
        Ok(())
    }

    async fn entries(
        &self,
        _project: &str,
    ) -> Result<Option<Vec<(u16, InternetEntry)>>, SinkError> {
        tokio::time::sleep(Duration::from_millis(self.entries_delay_ms)).await;
        Ok(self.daemon_entries.lock().unwrap().clone())
    }
}

fn zone() -> Zone {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    Zone::new()
        .addr("allowed.test", ip("198.51.100.10"), 2)
        .addr("allowed.test", ip("2001:db8::10"), 7)
        .addr("a.wild.test", ip("198.51.100.11"), 60)
        .addr("wild.test", ip("198.51.100.12"), 60)
        .addr("blocked.test", ip("198.51.100.13"), 60)
        .cname("cname.test", "cdn.unlisted.test", 300)
        .addr("cdn.unlisted.test", ip("198.51.100.14"), 3)
}

struct Setup {
    resolver: SocketAddr,
    zone: ZoneServer,
    sink: FakeSink,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
    stop: Box<dyn Fn() + Send + Sync>,
}

async fn setup(sink: FakeSink, upstreams: Option<Vec<SocketAddr>>) -> Setup {
    let zone = ZoneServer::start((Ipv4Addr::LOCALHOST, 0).into(), zone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(LOG_FILE);
    let entries = [
        "allowed.test:8080",
        "*.wild.test",
        "cname.test",
        "198.51.100.0/24",
    ]
    .iter()
    .map(|e| parse_internet_entry(e).unwrap())
    .collect();
    let handler = ResolverHandler::new(
        PROJECT.into(),
        Policy::new(entries),
        upstreams.unwrap_or_else(|| vec![zone.addr]),
        sink.clone(),
        QueryLog::new(log.clone()),
    );
    let listening = bind(Ipv4Addr::LOCALHOST.into(), 0, handler).await.unwrap();
    let resolver = listening.addr;
    let stop = Box::new(listening.stopper());
    tokio::spawn(listening.run());
    Setup {
        resolver,
        zone,
        sink,
        log,
        _dir: dir,
        stop,
    }
}

fn entries(list: &[&str]) -> Vec<InternetEntry> {
    list.iter()
        .map(|e| parse_internet_entry(e).unwrap())
        .collect()
}

fn question(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

async fn udp(s: &Setup, name: &str, qtype: RecordType) -> Message {
    // Longer than the resolver's own wait for its upstream.
    ask_within(
        &[s.resolver],
        &question(name, qtype),
        Duration::from_secs(6),
    )
    .await
    .unwrap()
}

fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_allowed_name_is_answered_after_the_daemon_has_its_addresses() {
    let sink = FakeSink {
        delay_ms: 150,
        ..FakeSink::default()
    };
    let s = setup(sink, None).await;
    let answer = udp(&s, "Allowed.Test.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&answer), ["198.51.100.10".parse::<IpAddr>().unwrap()]);
    // The sink slept 150 ms before recording: the answer could only come after it.
    let updates = s.sink.updates.lock().unwrap().clone();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].project, PROJECT);
    assert_eq!(updates[0].addrs.len(), 1);
    assert_eq!(updates[0].addrs[0].entry, 0);
    assert_eq!(
        updates[0].addrs[0].addr,
        "198.51.100.10".parse::<IpAddr>().unwrap()
    );
    assert_eq!(updates[0].addrs[0].ttl_secs, 2);

    let v6 = udp(&s, "allowed.test", RecordType::AAAA).await;
    assert_eq!(addrs(&v6), ["2001:db8::10".parse::<IpAddr>().unwrap()]);
    let updates = s.sink.updates.lock().unwrap().clone();
    assert_eq!(
        updates[1].addrs[0].addr,
        "2001:db8::10".parse::<IpAddr>().unwrap()
    );
    assert_eq!(updates[1].addrs[0].ttl_secs, 7);

    let tcp = ask_over_tcp(s.resolver, &question("a.wild.test", RecordType::A))
        .await
        .unwrap();
    assert_eq!(addrs(&tcp), ["198.51.100.11".parse::<IpAddr>().unwrap()]);
    assert_eq!(s.sink.updates.lock().unwrap()[2].addrs[0].entry, 1);
    assert!(read_events(&s.log).unwrap().is_empty(), "nothing refused");
    (s.stop)();
    s.zone.stop().await;
}

#[tokio::test]
async fn other_names_are_refused_logged_and_never_sent_upstream() {
    let s = setup(FakeSink::default(), None).await;
    for (name, qtype) in [
        ("blocked.test", RecordType::A),
        ("wild.test", RecordType::A),
        ("198.51.100.13.test", RecordType::A),
        ("allowed.test.evil.test", RecordType::AAAA),
    ] {
        let answer = udp(&s, name, qtype).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::Refused,
            "{name}"
        );
        assert!(answer.answers.is_empty());
    }
    let tcp = ask_over_tcp(s.resolver, &question("blocked.test", RecordType::A))
        .await
        .unwrap();
    assert_eq!(tcp.metadata.response_code, ResponseCode::Refused);
    assert_eq!(s.zone.seen.count(), 0, "{:?}", s.zone.seen.names());
    assert!(s.sink.updates.lock().unwrap().is_empty());
    let events = read_events(&s.log).unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "blocked.test",
            "wild.test",
            "198.51.100.13.test",
            "allowed.test.evil.test",
            "blocked.test"
        ]
    );
    assert!(events.iter().all(|e| e.outcome == Outcome::Refused));
    assert_eq!(events[3].qtype, "AAAA");
    (s.stop)();
    s.zone.stop().await;
}

#[tokio::test]
async fn a_cname_to_an_unlisted_name_allows_the_addresses_at_its_end() {
    let s = setup(FakeSink::default(), None).await;
    let answer = udp(&s, "cname.test", RecordType::A).await;
    assert_eq!(addrs(&answer), ["198.51.100.14".parse::<IpAddr>().unwrap()]);
    let updates = s.sink.updates.lock().unwrap().clone();
    assert_eq!(updates[0].addrs[0].entry, 2);
    assert_eq!(updates[0].addrs[0].ttl_secs, 3, "the A record's own TTL");
    // The target itself is not in the list.
    let direct = udp(&s, "cdn.unlisted.test", RecordType::A).await;
    assert_eq!(direct.metadata.response_code, ResponseCode::Refused);
    (s.stop)();
    s.zone.stop().await;
}

#[tokio::test]
async fn a_daemon_refusal_or_a_dead_upstream_fails_closed_with_servfail() {
    let sink = FakeSink::default();
    sink.refuse.store(true, Ordering::SeqCst);
    let s = setup(sink, None).await;
    let answer = udp(&s, "allowed.test", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(
        answer.answers.is_empty(),
        "no address without the kernel rule"
    );
    let events = read_events(&s.log).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].outcome, Outcome::Failed);
    assert!(
        events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("refused the addresses"),
        "{events:?}"
    );
    (s.stop)();
    s.zone.stop().await;

    // An upstream that never answers: a bound UDP socket nobody reads.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = setup(
        FakeSink::default(),
        Some(vec![silent.local_addr().unwrap()]),
    )
    .await;
    let answer = udp(&s, "allowed.test", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    let events = read_events(&s.log).unwrap();
    assert!(
        events[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("no upstream answer"),
        "{events:?}"
    );
    (s.stop)();
    s.zone.stop().await;
}

#[tokio::test]
async fn nxdomain_for_an_allowed_name_is_passed_on_without_an_update() {
    let s = setup(FakeSink::default(), None).await;
    let answer = udp(&s, "missing.wild.test", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(s.sink.updates.lock().unwrap().is_empty());
    (s.stop)();
    s.zone.stop().await;
}

#[tokio::test]
async fn a_grant_the_daemon_has_is_learnt_at_the_next_refused_query() {
    let s = setup(FakeSink::default(), None).await;
    let refused = udp(&s, "blocked.test", RecordType::A).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    // `alca network allow blocked.test` appended an entry to the applied spec.
    let mut with_grant = indexed(entries(&[
        "allowed.test:8080",
        "*.wild.test",
        "cname.test",
        "198.51.100.0/24",
    ]));
    with_grant.push((32_768, parse_internet_entry("blocked.test").unwrap()));
    *s.sink.daemon_entries.lock().unwrap() = Some(with_grant);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = udp(&s, "blocked.test", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let updates = s.sink.updates.lock().unwrap().clone();
    assert_eq!(updates[0].addrs[0].entry, 32_768, "the grant's own index");
    // The grant revoked: the daemon's list no longer has it.
    *s.sink.daemon_entries.lock().unwrap() = Some(indexed(entries(&["allowed.test:8080"])));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = udp(&s, "a.wild.test", RecordType::A).await;
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::NoError,
        "still in the old list"
    );
    let b = udp(&s, "nope.test", RecordType::A).await;
    assert_eq!(b.metadata.response_code, ResponseCode::Refused);
    let a = udp(&s, "a.wild.test", RecordType::A).await;
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::Refused,
        "refreshed by nope.test"
    );
    (s.stop)();
    s.zone.stop().await;
}

#[tokio::test]
async fn a_name_granted_again_after_its_grant_ended_answers_at_once() {
    let s = setup(FakeSink::default(), None).await;
    let spec = indexed(entries(&[
        "allowed.test:8080",
        "*.wild.test",
        "cname.test",
        "198.51.100.0/24",
    ]));
    let mut first = spec.clone();
    first.push((GRANT, parse_internet_entry("blocked.test").unwrap()));
    *s.sink.daemon_entries.lock().unwrap() = Some(first);
    let answer = udp(&s, "blocked.test", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    // The grant ended and the user granted the name again: the daemon has a new index, the
    // resolver still the old one (its entries are fresh). The daemon refuses the old index;
    // the resolver reads the entries again and uses the new one, in the same query.
    let mut again = spec.clone();
    again.push((GRANT + 1, parse_internet_entry("blocked.test").unwrap()));
    *s.sink.daemon_entries.lock().unwrap() = Some(again);
    let answer = udp(&s, "blocked.test", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    let last = s.sink.updates.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last.addrs[0].entry, GRANT + 1, "the new grant's index");
    // The grant ended and nothing allows the name: refused and logged, not a server failure.
    *s.sink.daemon_entries.lock().unwrap() = Some(spec);
    let refused = udp(&s, "blocked.test", RecordType::A).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    let events = read_events(&s.log).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.outcome == Outcome::Refused && e.name.starts_with("blocked.test")),
        "{events:?}"
    );
    (s.stop)();
    s.zone.stop().await;
}

#[tokio::test]
async fn both_questions_of_one_lookup_see_a_new_grant() {
    let sink = FakeSink {
        entries_delay_ms: 300,
        ..FakeSink::default()
    };
    let s = setup(sink, None).await;
    let mut with_grant = indexed(entries(&["allowed.test:8080"]));
    with_grant.push((GRANT, parse_internet_entry("blocked.test").unwrap()));
    *s.sink.daemon_entries.lock().unwrap() = Some(with_grant);
    // A lookup asks A and AAAA at once; the first starts the refresh, the second must wait
    // for it rather than be refused by the entries being replaced.
    let (a, aaaa) = tokio::join!(
        udp(&s, "blocked.test", RecordType::A),
        udp(&s, "blocked.test", RecordType::AAAA)
    );
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    (s.stop)();
    s.zone.stop().await;
}
