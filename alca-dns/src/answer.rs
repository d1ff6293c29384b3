//! From an upstream answer to the addresses the kernel must allow: every A/AAAA record reached
//! through the CNAME chain that starts at the queried (allowed) name, and nothing else in the
//! message (an upstream cannot get an unrelated name's address allowed by adding it).

use std::collections::HashSet;
use std::net::IpAddr;

use alca_contract::internet::{ResolvedAddr, ResolvedAddrs, MAX_RESOLVED_PER_UPDATE};
use hickory_server::proto::op::Message;
use hickory_server::proto::rr::{Name, RData};

/// The addresses (with their TTLs) the answer gives for `qname`, following CNAMEs.
pub fn chained_addresses(qname: &Name, answer: &Message) -> Vec<(IpAddr, u32)> {
    let mut names: HashSet<Name> = HashSet::from([qname.to_lowercase()]);
    // Each pass adds at least one name or stops; a chain is at most as long as the records.
    for _ in 0..=answer.answers.len() {
        let before = names.len();
        for r in &answer.answers {
            if let RData::CNAME(target) = &r.data {
                if names.contains(&r.name.to_lowercase()) {
                    names.insert(target.0.to_lowercase());
                }
            }
        }
        if names.len() == before {
            break;
        }
    }
    let mut out: Vec<(IpAddr, u32)> = Vec::new();
    for r in &answer.answers {
        if !names.contains(&r.name.to_lowercase()) {
            continue;
        }
        let ip = match &r.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        match out.iter_mut().find(|(seen, _)| *seen == ip) {
            Some(seen) => seen.1 = seen.1.max(r.ttl),
            None => out.push((ip, r.ttl)),
        }
    }
    out
}

/// The updates to send for `addrs` allowed by `entries`: one element per (entry, address),
/// split so no update is over the daemon's limit.
pub fn updates(project: &str, entries: &[u16], addrs: &[(IpAddr, u32)]) -> Vec<ResolvedAddrs> {
    let all: Vec<ResolvedAddr> = entries
        .iter()
        .flat_map(|&entry| {
            addrs.iter().map(move |&(addr, ttl_secs)| ResolvedAddr {
                entry,
                addr,
                ttl_secs,
            })
        })
        .collect();
    all.chunks(MAX_RESOLVED_PER_UPDATE)
        .map(|chunk| ResolvedAddrs {
            project: project.to_string(),
            addrs: chunk.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_server::proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_server::proto::rr::Record;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn message(records: Vec<Record>) -> Message {
        let mut m = Message::query();
        m.answers = records;
        m
    }

    #[test]
    fn follows_the_chain_from_the_queried_name_only() {
        let m = message(vec![
            Record::from_rdata(
                name("allowed.test."),
                60,
                RData::CNAME(CNAME(name("Cdn.Other.test."))),
            ),
            Record::from_rdata(
                name("cdn.other.test."),
                5,
                RData::A(A([198, 51, 100, 7].into())),
            ),
            Record::from_rdata(
                name("cdn.other.test."),
                9,
                RData::AAAA(AAAA("2001:db8::7".parse().unwrap())),
            ),
            // Not on the chain: an upstream must not get this one allowed.
            Record::from_rdata(
                name("evil.test."),
                60,
                RData::A(A([198, 51, 100, 66].into())),
            ),
        ]);
        let got = chained_addresses(&name("ALLOWED.test."), &m);
        assert_eq!(
            got,
            vec![
                ("198.51.100.7".parse().unwrap(), 5),
                ("2001:db8::7".parse().unwrap(), 9)
            ]
        );
    }

    #[test]
    fn a_cname_loop_ends() {
        let m = message(vec![
            Record::from_rdata(name("a.test."), 60, RData::CNAME(CNAME(name("b.test.")))),
            Record::from_rdata(name("b.test."), 60, RData::CNAME(CNAME(name("a.test.")))),
        ]);
        assert!(chained_addresses(&name("a.test."), &m).is_empty());
    }

    #[test]
    fn updates_are_split_at_the_daemon_limit() {
        let addrs: Vec<(IpAddr, u32)> = (0..40u8)
            .map(|i| (IpAddr::from([198, 51, 100, i]), 2))
            .collect();
        let u = updates("p", &[0, 3], &addrs);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].addrs.len(), MAX_RESOLVED_PER_UPDATE);
        assert_eq!(u[1].addrs.len(), 80 - MAX_RESOLVED_PER_UPDATE);
        assert_eq!(u[1].addrs.last().unwrap().entry, 3);
    }
}
