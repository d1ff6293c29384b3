//! The pure half of `alca network verify`: the shell script that probes every target from
//! inside the container, the parsing of what it printed, and the verdict of each target from
//! that output plus what the daemon recorded (the probes that got past isolation).
//!
//! The container needs `sh`, `nc` (busybox or netcat, with `-w`) and, for the DNS and
//! multicast rows, `nslookup`; a missing tool is reported, never guessed around.

use std::net::IpAddr;

pub use alca_contract::probe::Seen;
use alca_contract::probe::{Key, Outcome};
use alca_contract::Proto;
use serde::{Deserialize, Serialize};

use super::matrix::{Method, Reach, Target};

/// Seconds each connect may take (`nc -w`); the whole script is bounded by this, as every
/// probe runs in parallel, plus [`KILL_AFTER`].
pub const CONNECT_TIMEOUT: u32 = 1;
/// Seconds after which a probe still running (an open connection) is killed.
pub const KILL_AFTER: u32 = 3;

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub label: String,
    pub destination: String,
    pub expected: Reach,
    pub observed: Reach,
    pub detail: String,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.expected == self.observed
    }
}

/// `ADDR` for nc (`fe80::…` link-local gets the container's `eth0` scope).
fn nc_addr(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => format!("{a}%eth0"),
        other => other.to_string(),
    }
}

/// Single-quotes `s` for `sh` (only used for names and addresses we built).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script: one background job per target, each printing one `@@INDEX RC TEXT` line.
pub fn script(targets: &[Target]) -> String {
    let mut s = format!(
        "t() {{ i=$1; shift; out=$(timeout {KILL_AFTER} \"$@\" </dev/null 2>&1); rc=$?; \
         echo \"@@$i $rc $(echo $out | tr '\\n' ' ')\"; }}\n\
         command -v nc >/dev/null 2>&1 || echo '@@nonc'\n\
         command -v nslookup >/dev/null 2>&1 || echo '@@nonslookup'\n"
    );
    for (i, t) in targets.iter().enumerate() {
        let line = match (&t.method, t.key) {
            (Method::Tcp, Some(k)) => format!(
                "t {i} nc -w {CONNECT_TIMEOUT} {} {} &\n",
                quote(&nc_addr(&k.addr)),
                k.port
            ),
            (Method::Dns { name }, Some(k)) => format!(
                "t {i} nslookup -timeout={CONNECT_TIMEOUT} -retry=1 {} {} &\n",
                quote(name),
                quote(&k.addr.to_string())
            ),
            (Method::Dns { name }, None) => format!("t {i} nslookup {} &\n", quote(name)),
            (Method::Tcp, None) => continue,
        };
        s.push_str(&line);
    }
    s.push_str("wait\n");
    s
}

/// What the script printed, per target index.
pub fn parse(output: &str, targets: &[Target]) -> Vec<Seen> {
    let missing = |tool: &str| output.lines().any(|l| l.trim() == format!("@@no{tool}"));
    let mut seen = vec![Seen::TimedOut; targets.len()];
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("@@") else {
            continue;
        };
        let mut parts = rest.splitn(3, ' ');
        let (Some(Ok(i)), Some(Ok(rc))) = (
            parts.next().map(str::parse::<usize>),
            parts.next().map(str::parse::<i32>),
        ) else {
            continue;
        };
        let text = parts.next().unwrap_or("").trim();
        if let Some(t) = targets.get(i) {
            seen[i] = classify(&t.method, rc, text);
        }
    }
    for (t, s) in targets.iter().zip(seen.iter_mut()) {
        let tool = match t.method {
            Method::Tcp => "nc",
            Method::Dns { .. } => "nslookup",
        };
        if missing(tool) {
            *s = Seen::NoTool(tool.into());
        }
    }
    seen
}

fn classify(method: &Method, rc: i32, text: &str) -> Seen {
    if let Method::Dns { .. } = method {
        let answered = rc == 0 && text.contains("Name:");
        return if answered {
            Seen::Connected
        } else if text.contains("timed out") || text.is_empty() {
            Seen::TimedOut
        } else {
            Seen::Unreachable(text.chars().take(120).collect())
        };
    }
    if text.contains("Connection refused") {
        Seen::Refused
    } else if text.contains("timed out") {
        Seen::TimedOut
    } else if rc == 0 || ((rc == 124 || rc == 143) && !text.starts_with("nc:")) {
        Seen::Connected
    } else {
        Seen::Unreachable(text.chars().take(120).collect())
    }
}

fn seen_text(seen: &Seen) -> String {
    match seen {
        Seen::Connected => "connected".into(),
        Seen::Refused => "refused".into(),
        Seen::TimedOut => "no answer".into(),
        Seen::Unreachable(m) => m.clone(),
        Seen::NoTool(t) => format!("`{t}` is missing in the image"),
    }
}

/// The verdict of one target from what the container saw and what the daemon recorded.
/// `proxy`: the proxy's key, when one is set.
pub fn verdict(target: &Target, seen: &Seen, outcome: &Outcome, proxy: Option<Key>) -> Row {
    let destination = match target.key {
        Some(k) if k.proto == Proto::Udp => format!("udp {}", socket(&k)),
        Some(k) => socket(&k),
        None => "container resolver".into(),
    };
    let passed = |k: &Key| outcome.passed.contains(k);
    let logged = |k: &Key| outcome.denied.iter().any(|d| d.key == *k);
    let (observed, detail) = match (target.key, seen) {
        (_, Seen::NoTool(_)) => (target.expect, seen_text(seen)),
        (None, Seen::Connected) => (Reach::Allowed, "answered".into()),
        (None, other) => (Reach::Blocked, seen_text(other)),
        (Some(k), _) if passed(&k) => {
            let how = if target.probe().is_some_and(|p| p.fence) {
                "got past the rules (stopped by the verify fence)".to_string()
            } else {
                seen_text(seen)
            };
            (Reach::Allowed, how)
        }
        (Some(_), _) if target.expect == Reach::Redirected && proxy.is_some_and(|p| passed(&p)) => {
            (Reach::Redirected, "sent to the proxy".into())
        }
        // A question to an outside server answered without getting past the rules: the
        // project's resolver answered it (`internet-access`).
        (Some(_), Seen::Connected)
            if target.expect == Reach::Redirected
                && matches!(target.method, Method::Dns { .. }) =>
        {
            (
                Reach::Redirected,
                "answered by the project's resolver".into(),
            )
        }
        (Some(_), Seen::Connected) => (Reach::Allowed, "connected".into()),
        (Some(k), other) => {
            let by = if logged(&k) {
                "refused by rule"
            } else {
                "did not get through"
            };
            (Reach::Blocked, format!("{by} ({})", seen_text(other)))
        }
    };
    Row {
        label: target.label.clone(),
        destination,
        expected: target.expect,
        observed,
        detail,
    }
}

fn socket(k: &Key) -> String {
    std::net::SocketAddr::new(k.addr, k.port).to_string()
}

/// Whether a tool was missing for any row (the verification could not run fully).
pub fn tool_missing(seen: &[Seen]) -> Option<String> {
    seen.iter().find_map(|s| match s {
        Seen::NoTool(t) => Some(t.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::probe::Denied;

    fn tcp(label: &str, addr: &str, port: u16, expect: Reach) -> Target {
        Target {
            label: label.into(),
            key: Some(Key {
                addr: addr.parse().unwrap(),
                proto: Proto::Tcp,
                port,
            }),
            method: Method::Tcp,
            expect,
            local: true,
        }
    }

    #[test]
    fn script_runs_every_probe_in_parallel_and_quotes() {
        let targets = vec![
            tcp("gw", "172.29.1.1", 9, Reach::Blocked),
            tcp("ll", "fe80::1", 9, Reach::Blocked),
            Target {
                label: "dns".into(),
                key: None,
                method: Method::Dns {
                    name: "alca-x'y".into(),
                },
                expect: Reach::Allowed,
                local: true,
            },
        ];
        let s = script(&targets);
        assert!(s.contains("t 0 nc -w 1 '172.29.1.1' 9 &"), "{s}");
        assert!(s.contains("'fe80::1%eth0'"), "{s}");
        assert!(s.contains(r"t 2 nslookup 'alca-x'\''y' &"), "{s}");
        assert!(s.contains("timeout 3 ") && s.trim_end().ends_with("wait"));
    }

    #[test]
    fn parses_busybox_output() {
        let targets = vec![
            tcp("a", "10.0.0.1", 9, Reach::Blocked),
            tcp("b", "10.0.0.2", 9, Reach::Blocked),
            tcp("c", "10.0.0.3", 80, Reach::Allowed),
            tcp("d", "fd00::1", 9, Reach::Blocked),
            tcp("e", "10.0.0.5", 9, Reach::Blocked),
        ];
        let out = "@@1 1 nc: timed out\n@@0 1 nc: can't connect to remote host (10.0.0.1): Connection refused\n\
                   @@2 0 hello\n@@3 1 nc: can't connect to remote host (fd00::1): Network is unreachable\n";
        let seen = parse(out, &targets);
        assert_eq!(seen[0], Seen::Refused);
        assert_eq!(seen[1], Seen::TimedOut);
        assert_eq!(seen[2], Seen::Connected);
        assert!(matches!(&seen[3], Seen::Unreachable(m) if m.contains("unreachable")));
        assert_eq!(seen[4], Seen::TimedOut, "no line: nothing came back");
        let seen = parse("@@nonc\n", &targets);
        assert_eq!(tool_missing(&seen), Some("nc".into()));
    }

    #[test]
    fn a_probe_past_the_rules_is_a_mismatch_even_if_fenced() {
        let t = tcp("private 10/8", "10.255.255.254", 9, Reach::Blocked);
        let k = t.key.unwrap();
        let hole = Outcome {
            passed: vec![k],
            denied: vec![],
        };
        let row = verdict(&t, &Seen::TimedOut, &hole, None);
        assert!(!row.ok());
        assert_eq!(row.observed, Reach::Allowed);
        assert!(row.detail.contains("verify fence"), "{row:?}");
        let fine = Outcome {
            passed: vec![],
            denied: vec![Denied {
                key: k,
                packets: 1,
                last_seen_secs: 0,
            }],
        };
        let row = verdict(&t, &Seen::Refused, &fine, None);
        assert!(row.ok());
        assert_eq!(row.detail, "refused by rule (refused)");
    }

    #[test]
    fn allowed_and_redirected_rows() {
        let t = tcp("lan-access", "10.99.0.2", 18080, Reach::Allowed);
        let k = t.key.unwrap();
        let seen_it = Outcome {
            passed: vec![k],
            denied: vec![],
        };
        assert!(verdict(&t, &Seen::Connected, &seen_it, None).ok());
        assert!(!verdict(&t, &Seen::Refused, &Outcome::default(), None).ok());
        let p = tcp("proxy redirect", "192.0.2.1", 80, Reach::Redirected);
        let proxy = Key {
            addr: "10.99.0.1".parse().unwrap(),
            proto: Proto::Tcp,
            port: 3128,
        };
        let via = Outcome {
            passed: vec![proxy],
            denied: vec![],
        };
        assert!(verdict(&p, &Seen::Connected, &via, Some(proxy)).ok());
        let direct = Outcome {
            passed: vec![p.key.unwrap(), proxy],
            denied: vec![],
        };
        assert!(!verdict(&p, &Seen::TimedOut, &direct, Some(proxy)).ok());
    }

    #[test]
    fn a_dns_question_to_an_outside_server_is_redirected_only_when_answered_inside() {
        let t = Target {
            label: "internet-access name allowed.test".into(),
            key: Some(Key {
                addr: "192.88.99.1".parse().unwrap(),
                proto: Proto::Udp,
                port: 53,
            }),
            method: Method::Dns {
                name: "allowed.test".into(),
            },
            expect: Reach::Redirected,
            local: false,
        };
        let row = verdict(&t, &Seen::Connected, &Outcome::default(), None);
        assert!(row.ok(), "{row:?}");
        assert_eq!(row.detail, "answered by the project's resolver");
        // Not answered: the resolver is not there.
        let row = verdict(&t, &Seen::TimedOut, &Outcome::default(), None);
        assert_eq!(row.observed, Reach::Blocked);
        // Past the rules towards the server asked: a hole, whatever came back.
        let leak = Outcome {
            passed: vec![t.key.unwrap()],
            denied: vec![],
        };
        let row = verdict(&t, &Seen::Connected, &leak, None);
        assert!(!row.ok());
        assert_eq!(row.observed, Reach::Allowed);
    }
}
