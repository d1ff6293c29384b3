//! Network fixtures for the isolation suites: route checks that keep test traffic on the test
//! veth, bounded TCP listeners (on the host or inside a netns) that report SO_ORIGINAL_DST,
//! IPv6 on the `lanhost` test host, and nft packet counters inside a netns.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// The test-env netns playing a LAN host (10.99.0.2, 192.88.99.2).
pub const LANHOST_NS: &str = "lanhost";
/// Host side of the veth to `lanhost`.
pub const LAN_VETH: &str = "alca-lan0";
/// The test LAN host inside `lanhost` (a private address: refused unless allowed).
pub const LAN4: &str = "10.99.0.2";
/// A non-LAN ("internet") test host inside `lanhost`: reachable by default. It sits in
/// 192.88.99.0/24 (the 6to4 relay anycast prefix, deprecated by RFC 7526 and not handed out
/// again): public space that is in no deny list (the TEST-NETs are denied as special ranges),
/// routed to `lanhost` by a /32 route on the test veth, so its traffic never leaves the host.
pub const PUBLIC4: &str = "192.88.99.2";
/// The host's own address on the test veth (a host service address: refused).
pub const HOST_LAN4: &str = "10.99.0.1";
/// The ULA address this module adds inside `lanhost`.
pub const LANHOST_V6: &str = "fd99::2";
/// The host side of that ULA link.
pub const LAN_VETH_V6: &str = "fd99::1";
/// A non-LAN IPv6 test host inside `lanhost` (documentation prefix), routed via the veth.
pub const PUBLIC_V6: &str = "2001:db8:99::2";

/// Runs a command and returns its output whatever the status.
pub fn run(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} {}", args.join(" ")))
}

/// Runs a command and returns trimmed stdout; fails with stderr on a non-zero exit.
pub fn run_ok(program: &str, args: &[&str]) -> Result<String> {
    let out = run(program, args)?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `program args…` with `input` on stdin; fails with stderr on a non-zero exit.
pub fn run_with_stdin(program: &str, args: &[&str], input: &str) -> Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Panics unless the host routes `addr` through `dev`: test traffic must never leave the
/// machine through anything but the test veth.
pub fn assert_route_via(addr: &str, dev: &str) {
    let route = run_ok("ip", &["route", "get", addr]).expect("ip route get");
    assert!(
        route
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w == ["dev", dev]),
        "refusing to send test traffic to {addr}: route is {route:?}, expected dev {dev}"
    );
}

/// Panics unless `addr` is one of the host's own addresses (traffic stays on this machine).
pub fn assert_route_local(addr: &str) {
    let route = run_ok("ip", &["route", "get", addr]).expect("ip route get");
    assert!(
        route.starts_with("local "),
        "{addr} is not a local address of this host: {route:?}"
    );
}

/// The primary IPv4 address of the interface holding the default route (the uplink).
pub fn uplink_ipv4() -> Result<String> {
    let default = run_ok("ip", &["-4", "route", "show", "default"])?;
    let words: Vec<&str> = default.split_whitespace().collect();
    let dev = words
        .windows(2)
        .find(|w| w[0] == "dev")
        .map(|w| w[1])
        .context("no default route device")?;
    let addrs = run_ok("ip", &["-4", "-o", "addr", "show", "dev", dev])?;
    addrs
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .map(str::to_string)
        .context("uplink has no IPv4 address")
}

/// The bounded listener: replies `TAG orig=ADDR:PORT peer=IP` (SO_ORIGINAL_DST, `none` without
/// NAT; the address the connection came from) to every connection, prints `ready` once
/// listening, and exits after LIFE seconds.
const LISTENER_PY: &str = r#"
import socket, sys, time
tag, host, port, life = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((host, port)); s.listen(16); s.settimeout(0.5)
print("ready", flush=True)

def orig(c):
    try:
        raw = c.getsockopt(socket.SOL_IP, 80, 16)
        return "%s:%d" % (socket.inet_ntoa(raw[4:8]), int.from_bytes(raw[2:4], "big"))
    except OSError:
        pass
    try:
        raw = c.getsockopt(41, 80, 28)
        return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, raw[8:24]), int.from_bytes(raw[2:4], "big"))
    except OSError:
        return "none"

end = time.time() + life
while time.time() < end:
    try:
        c, peer = s.accept()
    except socket.timeout:
        continue
    try:
        who = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        c.sendall(("%s orig=%s peer=%s\n" % (tag, orig(c), who)).encode())
        # Half-close, then read what the client sent until its EOF: closing with unread input
        # makes the kernel answer with a RST, which can discard the reply still in flight (a
        # relaying proxy then forwards nothing).
        c.shutdown(socket.SHUT_WR)
        c.settimeout(1)
        while c.recv(4096):
            pass
    except OSError:
        pass
    finally:
        c.close()
"#;

/// A bounded DNS responder on UDP port 53: answers every A query with [`DNS_ANSWER`], other
/// types with an empty answer; prints `ready` once bound, exits after LIFE seconds.
const DNS_PY: &str = r#"
import socket, sys, time
life = float(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53)); s.settimeout(0.5)
print("ready", flush=True)
end = time.time() + life
while time.time() < end:
    try:
        q, peer = s.recvfrom(512)
    except socket.timeout:
        continue
    i = 12
    while i < len(q) and q[i] != 0:
        i += q[i] + 1
    if i + 5 > len(q):
        continue
    is_a = q[i + 1:i + 3] == b"\x00\x01"
    hdr = q[:2] + b"\x81\x80" + q[4:6] + (b"\x00\x01" if is_a else b"\x00\x00") + b"\x00\x00\x00\x00"
    ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([203, 0, 113, 7]) if is_a else b""
    s.sendto(hdr + q[12:i + 5] + ans, peer)
"#;

/// The address every A query to a [`Listener::dns`] responder resolves to.
pub const DNS_ANSWER: &str = "203.0.113.7";

/// A running bounded listener; killed on drop.
pub struct Listener {
    child: Child,
}

impl Listener {
    /// Starts a listener tagged `tag` on `bind`:`port`, inside `netns` when given; returns once
    /// it listens. It exits by itself after `life_secs`.
    pub fn start(
        netns: Option<&str>,
        tag: &str,
        bind: &str,
        port: u16,
        life_secs: u32,
    ) -> Result<Self> {
        let port_s = port.to_string();
        let life = life_secs.to_string();
        let what = format!("listener {tag} on {bind}:{port}");
        Self::spawn(
            netns,
            &["-c", LISTENER_PY, tag, bind, &port_s, &life],
            &what,
        )
    }

    /// Starts the DNS responder on UDP port 53, inside `netns` when given.
    pub fn dns(netns: Option<&str>, life_secs: u32) -> Result<Self> {
        let life = life_secs.to_string();
        Self::spawn(netns, &["-c", DNS_PY, &life], "dns responder")
    }

    /// Runs `python3 PY_ARGS…` (in `netns` when given) and waits for its `ready` line.
    fn spawn(netns: Option<&str>, py_args: &[&str], what: &str) -> Result<Self> {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "python3"]).args(py_args);
                c
            }
            None => {
                let mut c = Command::new("python3");
                c.args(py_args);
                c
            }
        };
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdout = child.stdout.take().context("listener stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what} did not start");
        }
        Ok(Listener { child })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fd99::1/64` on the host veth and `fd99::2/64` inside `lanhost` (an IPv6 ULA LAN host), and
/// `2001:db8:99::2` inside `lanhost` routed through the veth (an IPv6 "internet" host);
/// removed on drop.
pub struct LanhostV6;

impl LanhostV6 {
    pub fn add() -> Result<Self> {
        let guard = LanhostV6;
        let host = format!("{LAN_VETH_V6}/64");
        let peer = format!("{LANHOST_V6}/64");
        run_ok("ip", &["addr", "replace", &host, "dev", LAN_VETH, "nodad"])?;
        run_ok(
            "ip",
            &[
                "-n", LANHOST_NS, "addr", "replace", &peer, "dev", "lan1", "nodad",
            ],
        )?;
        run_ok(
            "ip",
            &[
                "-n",
                LANHOST_NS,
                "-6",
                "route",
                "replace",
                "default",
                "via",
                LAN_VETH_V6,
            ],
        )?;
        // The on-link route normally comes with the address; make it explicit so the route
        // through the peer below never races it.
        run_ok(
            "ip",
            &["-6", "route", "replace", "fd99::/64", "dev", LAN_VETH],
        )?;
        let public = format!("{PUBLIC_V6}/128");
        run_ok(
            "ip",
            &[
                "-n", LANHOST_NS, "addr", "replace", &public, "dev", "lan1", "nodad",
            ],
        )?;
        run_ok(
            "ip",
            &[
                "-6", "route", "replace", &public, "via", LANHOST_V6, "dev", LAN_VETH,
            ],
        )?;
        Ok(guard)
    }
}

impl Drop for LanhostV6 {
    fn drop(&mut self) {
        let public = format!("{PUBLIC_V6}/128");
        let _ = run(
            "ip",
            &[
                "-6", "route", "del", &public, "via", LANHOST_V6, "dev", LAN_VETH,
            ],
        );
        let _ = run(
            "ip",
            &["-n", LANHOST_NS, "addr", "del", &public, "dev", "lan1"],
        );
        let _ = run(
            "ip",
            &[
                "-n",
                LANHOST_NS,
                "-6",
                "route",
                "del",
                "default",
                "via",
                LAN_VETH_V6,
            ],
        );
        let _ = run(
            "ip",
            &[
                "-n",
                LANHOST_NS,
                "addr",
                "del",
                &format!("{LANHOST_V6}/64"),
                "dev",
                "lan1",
            ],
        );
        let _ = run(
            "ip",
            &["addr", "del", &format!("{LAN_VETH_V6}/64"), "dev", LAN_VETH],
        );
        let _ = run("ip", &["-6", "route", "del", "fd99::/64", "dev", LAN_VETH]);
    }
}

/// A route from the host to `lanhost` for a test "internet" address or range that is in no
/// deny list (in 192.88.99.0/24, the 6to4 relay prefix, like [`PUBLIC4`]), checked with
/// [`assert_route_via`]; removed on drop. Traffic to it stays on the test veth.
pub struct RouteToLanhost(String);

impl RouteToLanhost {
    pub fn add(dest: &str) -> Result<Self> {
        run_ok(
            "ip",
            &["route", "replace", dest, "via", LAN4, "dev", LAN_VETH],
        )?;
        let guard = RouteToLanhost(dest.to_string());
        let first = dest.split('/').next().unwrap_or(dest);
        assert_route_via(first, LAN_VETH);
        Ok(guard)
    }
}

impl Drop for RouteToLanhost {
    fn drop(&mut self) {
        let _ = run("ip", &["route", "del", &self.0, "via", LAN4]);
    }
}

/// Sixty-four more "internet" test hosts: every address of [`PUBLIC_RANGE4`] is local inside
/// `lanhost` (a `local` route, so one listener on 0.0.0.0 answers on all of them) and routed
/// there from the host ([`RouteToLanhost`]). The range sits below the on-link test network
/// (192.88.99.128/25). Both routes go on drop.
pub struct PublicRange {
    route: Option<RouteToLanhost>,
}

/// The range [`PublicRange`] routes to `lanhost`.
pub const PUBLIC_RANGE4: &str = "192.88.99.64/26";

impl PublicRange {
    pub fn add() -> Result<Self> {
        let mut range = PublicRange { route: None };
        let local = ["route", "replace", "local", PUBLIC_RANGE4, "dev", "lo"];
        run_ok("ip", &[&["-n", LANHOST_NS][..], &local].concat())?;
        range.route = Some(RouteToLanhost::add(PUBLIC_RANGE4)?);
        assert_route_via("192.88.99.127", LAN_VETH);
        Ok(range)
    }
}

impl Drop for PublicRange {
    fn drop(&mut self) {
        self.route.take();
        let local = ["route", "del", "local", PUBLIC_RANGE4, "dev", "lo"];
        let _ = run("ip", &[&["-n", LANHOST_NS][..], &local].concat());
    }
}

/// An extra address on a host interface (e.g. a source address for a proxy); removed on drop.
pub struct HostAddress {
    cidr: String,
    dev: String,
}

impl HostAddress {
    pub fn add(cidr: &str, dev: &str) -> Result<Self> {
        run_ok("ip", &["addr", "replace", cidr, "dev", dev, "nodad"])?;
        Ok(HostAddress {
            cidr: cidr.into(),
            dev: dev.into(),
        })
    }
}

impl Drop for HostAddress {
    fn drop(&mut self) {
        let _ = run("ip", &["addr", "del", &self.cidr, "dev", &self.dev]);
    }
}

/// An nft table inside a netns counting arriving packets per named match; removed on drop.
pub struct NsCounter {
    netns: String,
    table: String,
}

impl NsCounter {
    /// Installs one counting rule per `(name, match)` (nft match syntax, fixed test text), run
    /// at prerouting before anything else in `netns`.
    pub fn install(netns: &str, table: &str, matches: &[(&str, &str)]) -> Result<Self> {
        let rules: String = matches
            .iter()
            .map(|(name, m)| format!("    {m} counter comment \"{name}\"\n"))
            .collect();
        let text = format!(
            "table inet {table} {{\n  chain count {{ type filter hook prerouting priority -300; policy accept;\n{rules}  }}\n}}\n"
        );
        let _ = run(
            "ip",
            &[
                "netns", "exec", netns, "nft", "delete", "table", "inet", table,
            ],
        );
        run_with_stdin("ip", &["netns", "exec", netns, "nft", "-f", "-"], &text)?;
        Ok(NsCounter {
            netns: netns.to_string(),
            table: table.to_string(),
        })
    }

    /// Packets counted so far by the rule `name`.
    pub fn packets(&self, name: &str) -> Result<u64> {
        let listing = run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &self.netns,
                "nft",
                "-j",
                "list",
                "table",
                "inet",
                &self.table,
            ],
        )?;
        let json: serde_json::Value = serde_json::from_str(&listing)?;
        rule_counter(&json, name).with_context(|| format!("no counter named {name}"))
    }
}

impl Drop for NsCounter {
    fn drop(&mut self) {
        let _ = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.netns,
                "nft",
                "delete",
                "table",
                "inet",
                &self.table,
            ],
        );
    }
}

/// Packet count of the rule commented `comment` in an `nft -j list` output.
pub fn rule_counter(listing: &serde_json::Value, comment: &str) -> Option<u64> {
    listing["nftables"]
        .as_array()?
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter(|r| r.get("comment").and_then(|c| c.as_str()) == Some(comment))
        .flat_map(|r| r["expr"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| {
            e.get("counter")
                .and_then(|c| c.get("packets"))
                .and_then(|p| p.as_u64())
        })
        .reduce(|a, b| a + b)
}

/// The table every golden batch of the compiler (`alca-ruleset/tests/golden`) names.
pub use alca_ruleset::golden_cases::GOLDEN_TABLE;

/// Every golden batch of the compiler (alca-ruleset/tests/golden) on a bridge, but `delete`.
pub const GOLDEN_CASES: [&str; 13] = [
    "default",
    "allow_all",
    "allow_all_proxy",
    "allow_rules",
    "dns",
    "flowtable_guard",
    "proxy_v4",
    "proxy_v6",
    "onlink",
    "internet",
    "internet_none",
    "internet_proxy",
    "internet_lan_open",
];

/// The text of the compiler's golden batch `name` (its nft JSON).
pub fn golden(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../alca-ruleset/tests/golden");
    std::fs::read_to_string(format!("{dir}/{name}.json")).expect("golden batch")
}

/// The compiled ruleset of golden case `name`, acting on `table` instead of [`GOLDEN_TABLE`]
/// (what the daemon's netlink writer takes; [`golden`] is its nft JSON).
pub fn golden_ruleset(name: &str, table: &str) -> alca_ruleset::Ruleset {
    alca_ruleset::golden_cases::case(name)
        .expect("a golden case")
        .for_table(table)
}

/// A batch `text` naming [`GOLDEN_TABLE`], for `table` instead.
pub fn for_table(text: &str, table: &str) -> serde_json::Value {
    serde_json::from_str(&text.replace(GOLDEN_TABLE, table)).expect("batch JSON")
}

/// A network namespace of a test's own, for nft experiments that must see no other table;
/// deleted (with its tables) on drop.
pub struct ScratchNs {
    name: String,
}

impl ScratchNs {
    /// Creates `name` afresh (a leftover of an earlier run is deleted first).
    pub fn create(name: &str) -> Result<Self> {
        let _ = run("ip", &["netns", "delete", name]);
        run_ok("ip", &["netns", "add", name])?;
        Ok(ScratchNs {
            name: name.to_string(),
        })
    }

    /// `nft ARGS` inside the namespace; its stdout.
    pub fn nft(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["netns", "exec", &self.name, "nft"];
        all.extend_from_slice(args);
        run_ok("ip", &all)
    }

    /// `nft -j -f -` of `batch` inside the namespace.
    pub fn nft_batch(&self, batch: &serde_json::Value) -> Result<()> {
        let args = ["netns", "exec", &self.name, "nft", "-j", "-f", "-"];
        run_with_stdin("ip", &args, &batch.to_string())
    }

    /// `nft -j list table inet NAME` inside the namespace.
    pub fn list_table(&self, name: &str) -> Result<serde_json::Value> {
        Ok(serde_json::from_str(
            &self.nft(&["-j", "list", "table", "inet", name])?,
        )?)
    }

    /// Runs `f` on a thread that has entered the namespace (nothing else runs there).
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let netns = std::fs::File::open(format!("/run/netns/{}", self.name))?;
        std::thread::spawn(move || {
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| anyhow::anyhow!("entering the scratch namespace: {e}"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread in the scratch namespace panicked"))?
    }
}

impl Drop for ScratchNs {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "delete", &self.name]);
    }
}

/// A directly connected network in public space, as a campus or enterprise LAN looks to the
/// host: the test bridge [`ONLINK_BRIDGE`] (not a container bridge) holds
/// [`ONLINK_HOST4`]/25 and [`ONLINK_HOST6`]/64, and its veth port leads into the netns
/// [`ONLINK_NS`] where [`ONLINK_PEER4`] and [`ONLINK_PEER6`] live. The prefixes are not in any
/// fixed deny list (192.88.99.128/25 is in the deprecated 6to4 relay prefix, 2001:db8:77::/64
/// is documentation space), so only the daemon's on-link detection denies them. Traffic to
/// them is routed to the test bridge (checked with [`assert_route_via`]); removed on drop.
pub struct OnlinkNet;

/// The netns of the on-link test network.
pub const ONLINK_NS: &str = "alca-e2e-onlink";
/// The host's bridge to it.
pub const ONLINK_BRIDGE: &str = "tonl0";
/// The host's addresses on it, and its prefixes.
pub const ONLINK_HOST4: &str = "192.88.99.129";
pub const ONLINK_NET4: &str = "192.88.99.128/25";
pub const ONLINK_HOST6: &str = "2001:db8:77::1";
pub const ONLINK_NET6: &str = "2001:db8:77::/64";
/// The test host inside [`ONLINK_NS`].
pub const ONLINK_PEER4: &str = "192.88.99.130";
pub const ONLINK_PEER6: &str = "2001:db8:77::2";

impl OnlinkNet {
    pub fn up() -> Result<Self> {
        let _ = run("ip", &["netns", "del", ONLINK_NS]);
        let _ = run("ip", &["link", "del", ONLINK_BRIDGE]);
        let net = OnlinkNet;
        let steps: [&[&str]; 12] = [
            &["netns", "add", ONLINK_NS],
            &["link", "add", ONLINK_BRIDGE, "type", "bridge"],
            &[
                "link", "add", "tonl1", "type", "veth", "peer", "name", "onl1",
            ],
            &["link", "set", "tonl1", "master", ONLINK_BRIDGE],
            &["link", "set", "onl1", "netns", ONLINK_NS],
            &[
                "addr",
                "add",
                &format!("{ONLINK_HOST4}/25"),
                "dev",
                ONLINK_BRIDGE,
            ],
            &[
                "-6",
                "addr",
                "add",
                &format!("{ONLINK_HOST6}/64"),
                "dev",
                ONLINK_BRIDGE,
                "nodad",
            ],
            &["link", "set", "tonl1", "up"],
            &["link", "set", ONLINK_BRIDGE, "up"],
            &[
                "-n",
                ONLINK_NS,
                "addr",
                "add",
                &format!("{ONLINK_PEER4}/25"),
                "dev",
                "onl1",
            ],
            &[
                "-n",
                ONLINK_NS,
                "-6",
                "addr",
                "add",
                &format!("{ONLINK_PEER6}/64"),
                "dev",
                "onl1",
                "nodad",
            ],
            &["-n", ONLINK_NS, "link", "set", "onl1", "up"],
        ];
        for args in steps {
            run_ok("ip", args)?;
        }
        run_ok("ip", &["-n", ONLINK_NS, "link", "set", "lo", "up"])?;
        Ok(net)
    }
}

impl Drop for OnlinkNet {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", ONLINK_NS]);
        let _ = run("ip", &["link", "del", ONLINK_BRIDGE]);
    }
}
