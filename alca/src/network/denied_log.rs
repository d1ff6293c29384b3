//! The text of `alca network log`: one line per denied destination with the time it was last
//! seen (UTC, derived by the daemon from the log element's expiry), destination, port,
//! protocol, attempt count and the `lan-access` line that would allow it (or, for an internet
//! address of a project with `internet-access`, the `internet-access` line).

use std::collections::HashMap;

use alca_contract::deny_list::deny_nets;
use alca_contract::internet::suggest_internet_access;
use alca_contract::lan::suggest_lan_access;
use alca_contract::probe::{Denied, Key};

/// The header line.
pub const HEADER: &str =
    "LAST SEEN (UTC)      DESTINATION                              PORT   PROTO  COUNT  TO ALLOW";

/// One line for `d`, given the current Unix time. `internet_list`: the project has an
/// `internet-access` list, so an address outside the LAN ranges is an internet destination
/// no allowed name resolved to.
pub fn line(d: &Denied, now_secs: u64, internet_list: bool) -> String {
    let k = d.key;
    let lan = deny_nets(k.addr.is_ipv6())
        .iter()
        .any(|n| n.contains(&k.addr));
    let fix = if internet_list && !lan {
        format!(
            "internet-access = [\"{}\"]",
            suggest_internet_access(None, k.addr, k.proto, k.port)
        )
    } else {
        format!(
            "lan-access = [\"{}\"]",
            suggest_lan_access(k.addr, k.proto, k.port)
        )
    };
    format!(
        "{:<20} {:<40} {:<6} {:<6} {:<6} {fix}",
        utc(now_secs.saturating_sub(d.last_seen_secs)),
        k.addr,
        k.port,
        k.proto.to_string(),
        d.packets,
    )
}

/// Entries of `now` that are new or have more attempts than in `before` (for `-f`).
pub fn changed<'a>(before: &HashMap<Key, u64>, now: &'a [Denied]) -> Vec<&'a Denied> {
    let mut out: Vec<&Denied> = now
        .iter()
        .filter(|d| before.get(&d.key).is_none_or(|n| d.packets > *n))
        .collect();
    // Oldest first, so a followed log reads top to bottom.
    out.sort_by_key(|d| std::cmp::Reverse(d.last_seen_secs));
    out
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time (proleptic Gregorian, UTC).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::Proto;

    fn denied(addr: &str, proto: Proto, port: u16, packets: u64, ago: u64) -> Denied {
        Denied {
            key: Key {
                addr: addr.parse().unwrap(),
                proto,
                port,
            },
            packets,
            last_seen_secs: ago,
        }
    }

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59");
    }

    #[test]
    fn each_line_suggests_the_allowing_entry() {
        let l = line(
            &denied("10.99.0.2", Proto::Tcp, 18080, 3, 10),
            1_000_010,
            false,
        );
        assert!(l.starts_with("1970-01-12 13:46:40"), "{l}");
        assert!(l.contains("10.99.0.2") && l.contains("18080") && l.contains("tcp"));
        assert!(l.ends_with("lan-access = [\"10.99.0.2:18080\"]"), "{l}");
        let l = line(&denied("fd00::53", Proto::Udp, 53, 1, 0), 0, true);
        assert!(
            l.ends_with(" lan-access = [\"udp://[fd00::53]:53\"]"),
            "{l}"
        );
        let l = line(&denied("192.88.99.2", Proto::Tcp, 8081, 1, 0), 0, true);
        assert!(
            l.ends_with("internet-access = [\"192.88.99.2:8081\"]"),
            "{l}"
        );
        let l = line(&denied("2001:db8::7", Proto::Udp, 443, 1, 0), 0, true);
        assert!(
            l.ends_with("internet-access = [\"udp://[2001:db8::7]:443\"]"),
            "{l}"
        );
    }

    #[test]
    fn follow_shows_only_new_attempts_oldest_first() {
        let a = denied("10.0.0.1", Proto::Tcp, 1, 2, 5);
        let b = denied("10.0.0.2", Proto::Tcp, 2, 1, 50);
        let before = HashMap::from([(a.key, 2), (b.key, 0)]);
        let now = [
            a.clone(),
            b.clone(),
            denied("10.0.0.3", Proto::Udp, 3, 1, 1),
        ];
        let got: Vec<u16> = changed(&before, &now).iter().map(|d| d.key.port).collect();
        assert_eq!(got, [2, 3]);
    }
}
