//! The DNS half of `alca network log` for a project with `internet-access`: the names its
//! resolver refused (or failed closed on), newest last, each with how often, when last, and
//! the `internet-access` line that would allow it.

use std::collections::BTreeMap;

use alca_contract::internet::parse_internet_entry;
use alca_dns::query_log::{Event, Outcome};

use super::denied_log::utc;

/// The header of the section.
pub const HEADER: &str =
    "LAST SEEN (UTC)      NAME                                     TYPES      COUNT  TO ALLOW";

/// One line per name (refused or failed), oldest first.
pub fn lines(events: &[Event]) -> Vec<String> {
    struct Seen {
        last: u64,
        count: u64,
        types: Vec<String>,
        failed: Option<String>,
    }
    let mut by_name: BTreeMap<&str, Seen> = BTreeMap::new();
    for e in events {
        let seen = by_name.entry(e.name.as_str()).or_insert(Seen {
            last: 0,
            count: 0,
            types: Vec::new(),
            failed: None,
        });
        seen.last = seen.last.max(e.time);
        seen.count += 1;
        if !seen.types.contains(&e.qtype) {
            seen.types.push(e.qtype.clone());
        }
        if e.outcome == Outcome::Failed {
            seen.failed = e.reason.clone();
        }
    }
    let mut rows: Vec<(&str, Seen)> = by_name.into_iter().collect();
    rows.sort_by_key(|(_, s)| s.last);
    rows.into_iter()
        .map(|(name, s)| {
            let fix = match (&s.failed, parse_internet_entry(name)) {
                (Some(reason), _) => format!("(allowed, but failed: {reason})"),
                (None, Ok(entry)) => format!("internet-access = [\"{entry}\"]"),
                (None, Err(_)) => "(not a name an entry can allow)".to_string(),
            };
            format!(
                "{:<20} {:<40} {:<10} {:<6} {fix}",
                utc(s.last),
                name,
                s.types.join(","),
                s.count
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time: u64, outcome: Outcome, name: &str, qtype: &str) -> Event {
        Event {
            time,
            outcome,
            name: name.into(),
            qtype: qtype.into(),
            reason: (outcome == Outcome::Failed).then(|| "upstream timed out".into()),
        }
    }

    #[test]
    fn names_are_grouped_with_the_line_that_allows_them() {
        let l = lines(&[
            event(20, Outcome::Refused, "blocked.test", "A"),
            event(10, Outcome::Refused, "wild.test", "A"),
            event(30, Outcome::Refused, "blocked.test", "AAAA"),
            event(25, Outcome::Failed, "allowed.test", "A"),
        ]);
        assert_eq!(l.len(), 3);
        assert!(l[0].contains("wild.test"), "{l:?}");
        assert!(l[0].ends_with("internet-access = [\"wild.test\"]"), "{l:?}");
        assert!(l[1].contains("(allowed, but failed: upstream timed out)"));
        assert!(l[2].contains("A,AAAA") && l[2].contains(" 2 "), "{l:?}");
        assert!(l[2].ends_with("internet-access = [\"blocked.test\"]"));
        assert!(l[2].starts_with("1970-01-01 00:00:30"));
    }
}
