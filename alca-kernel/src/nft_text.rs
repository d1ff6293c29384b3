//! The kernel writer's nf_tables messages as text, exactly the way `nft --debug=netlink` prints
//! the messages it sends (libnftnl's text of each set, element list, chain and rule). With the
//! recordings of `nft -c --debug=netlink` for every golden ruleset (`tests/fixtures/`, made by
//! `tests/record-fixtures.sh`), `tests/nft_fixtures.rs` holds the writer to what nft sends
//! without root, expression by expression. Read-only and for comparison: it renders what it
//! knows and marks anything else (`[ ? … ]`), so an unknown attribute shows up as a difference
//! rather than vanishing.
//!
//! Written by hand: no crate prints nf_tables netlink the way libnftnl does, and the test
//! compares with libnftnl's own text.

use std::fmt::Write;

use crate::{attributes, HEADERS, NEW_CHAIN, NEW_RULE, NEW_SET, NEW_SET_ELEM};

/// The text of `messages`, one after the other; tables (which nft does not print) print
/// nothing.
pub fn render(messages: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for m in messages {
        let kind = u16::from_ne_bytes([m[4], m[5]]);
        let attrs = m.get(HEADERS..).and_then(attributes).unwrap_or_default();
        let text = match kind {
            NEW_SET => set(&attrs),
            NEW_SET_ELEM => elements(&attrs),
            NEW_CHAIN => chain(&attrs),
            NEW_RULE => rule(&attrs),
            _ => String::new(),
        };
        out.push_str(&text);
    }
    out
}

type Attrs<'a> = [(u16, &'a [u8])];

fn get<'a>(attrs: &Attrs<'a>, kind: u16) -> Option<&'a [u8]> {
    attrs.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
}

fn nested<'a>(attrs: &Attrs<'a>, kind: u16) -> Vec<(u16, &'a [u8])> {
    get(attrs, kind).and_then(attributes).unwrap_or_default()
}

fn string(attrs: &Attrs, kind: u16) -> String {
    let bytes = get(attrs, kind).unwrap_or_default();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn u32_be(attrs: &Attrs, kind: u16) -> Option<u32> {
    Some(u32::from_be_bytes(get(attrs, kind)?.try_into().ok()?))
}

/// Data as libnftnl prints it: 32-bit words in host order, `0x%.8x ` each (the last word
/// zero-padded).
fn words(data: &[u8], prefix: &str) -> String {
    data.chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            format!("{prefix}{:08x} ", u32::from_ne_bytes(w))
        })
        .collect()
}

/// The `NFTA_DATA_VALUE` inside the data nest `kind`.
fn data(attrs: &Attrs, kind: u16) -> Vec<u8> {
    get(&nested(attrs, kind), 1).unwrap_or_default().to_vec()
}

/// User data, printable characters as they are, anything else as `\xHH`.
fn userdata(bytes: &[u8]) -> String {
    let mut out = String::from("  userdata = { ");
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push_str(" }");
    out
}

/// `NAME TABLE FLAGS [timeout MSms] [size N]`.
fn set(attrs: &Attrs) -> String {
    let mut out = format!(
        "{} {} {:x}",
        string(attrs, 2),
        string(attrs, 1),
        u32_be(attrs, 3).unwrap_or(0)
    );
    if let Some(ms) = get(attrs, 11).and_then(|v| v.try_into().ok()) {
        let _ = write!(out, " timeout {}ms", u64::from_be_bytes(ms));
    }
    if let Some(size) = u32_be(&nested(attrs, 9), 1) {
        let _ = write!(out, " size {size}");
    }
    out.push('\n');
    out
}

/// `NAME TABLE 0`, then each element: its key words, flags and user data.
fn elements(attrs: &Attrs) -> String {
    let mut out = format!("{} {} 0\n", string(attrs, 2), string(attrs, 1));
    for (_, element) in nested(attrs, 3) {
        let e = attributes(element).unwrap_or_default();
        let key = data(&e, 1);
        let flags = u32_be(&e, 3).unwrap_or(0);
        let _ = write!(out, "\telement {} : {flags} [end]", words(&key, ""));
        if let Some(u) = get(&e, 6) {
            out.push_str(&userdata(u));
        }
    }
    out.push('\n');
    out
}

/// `inet (null) (null) use 0`, with `type T hook H prio P packets 0 bytes 0` for a base chain
/// (nft prints the chain before it names it).
fn chain(attrs: &Attrs) -> String {
    let mut out = String::from("inet (null) (null) use 0");
    let hook = nested(attrs, 4);
    if let (Some(num), Some(prio)) = (u32_be(&hook, 1), get(&hook, 2)) {
        let hook = ["prerouting", "input", "forward", "output", "postrouting"]
            .get(num as usize)
            .copied()
            .unwrap_or("?");
        let prio = i32::from_be_bytes(prio.try_into().unwrap_or_default());
        let _ = write!(
            out,
            " type {} hook {hook} prio {prio} packets 0 bytes 0",
            string(attrs, 7)
        );
    }
    out.push('\n');
    out
}

/// `inet TABLE CHAIN`, one line per expression, then the user data (or an empty line).
fn rule(attrs: &Attrs) -> String {
    let mut out = format!("inet {} {}\n", string(attrs, 1), string(attrs, 2));
    for (_, e) in nested(attrs, 4) {
        let e = attributes(e).unwrap_or_default();
        let _ = writeln!(out, "  [ {} ]", expression(&string(&e, 1), &nested(&e, 2)));
    }
    match get(attrs, 7) {
        Some(u) => {
            out.push_str(&userdata(u));
            out.push('\n');
        }
        None => out.push('\n'),
    }
    out
}

fn reg(attrs: &Attrs, kind: u16) -> u32 {
    u32_be(attrs, kind).unwrap_or(u32::MAX)
}

fn expression(name: &str, a: &Attrs) -> String {
    match name {
        "meta" => {
            let key = match u32_be(a, 2) {
                Some(6) => "iifname",
                Some(9) => "oiftype",
                Some(15) => "nfproto",
                Some(16) => "l4proto",
                _ => "?",
            };
            format!("meta load {key} => reg {}", reg(a, 1))
        }
        "cmp" => {
            let op = ["eq", "neq", "lt", "lte", "gt", "gte"]
                .get(reg(a, 2) as usize)
                .copied()
                .unwrap_or("?");
            format!("cmp {op} reg {} {}", reg(a, 1), words(&data(a, 3), "0x"))
                .trim_end()
                .to_string()
        }
        "payload" => {
            let base = ["link", "network", "transport"]
                .get(reg(a, 2) as usize)
                .copied()
                .unwrap_or("?");
            format!(
                "payload load {}b @ {base} header + {} => reg {}",
                reg(a, 4),
                reg(a, 3),
                reg(a, 1)
            )
        }
        "bitwise" => format!(
            "bitwise reg {} = ( reg {} & {}) ^ {}",
            reg(a, 2),
            reg(a, 1),
            words(&data(a, 4), "0x"),
            words(&data(a, 5), "0x").trim_end()
        ),
        "immediate" => {
            let value = nested(a, 2);
            let verdict = nested(&value, 2);
            let text = match get(&verdict, 1).and_then(|c| c.try_into().ok()) {
                Some(code) => match i32::from_be_bytes(code) {
                    1 => "accept".to_string(),
                    0 => "drop".to_string(),
                    -3 => format!("jump -> {}", string(&verdict, 2)),
                    other => format!("? verdict {other}"),
                },
                None => words(get(&value, 1).unwrap_or_default(), "0x")
                    .trim_end()
                    .to_string(),
            };
            format!("immediate reg {} {text}", reg(a, 1))
        }
        "lookup" => format!("lookup reg {} set {}", reg(a, 2), string(a, 1)),
        "ct" if u32_be(a, 2) == Some(0) => format!("ct load state => reg {}", reg(a, 1)),
        "fib" if (u32_be(a, 3), u32_be(a, 2)) == (Some(2), Some(3)) => {
            format!("fib daddr type => reg {}", reg(a, 1))
        }
        "reject" => format!(
            "reject type {} code {}",
            reg(a, 1),
            get(a, 2).and_then(|c| c.first()).copied().unwrap_or(0)
        ),
        "dynset" if u32_be(a, 3) == Some(1) => {
            format!("dynset update reg_key {} set {}", reg(a, 4), string(a, 1))
        }
        "nat" if u32_be(a, 1) == Some(1) => {
            let family = match u32_be(a, 2) {
                Some(2) => "ip",
                Some(10) => "ip6",
                _ => "?",
            };
            format!(
                "nat dnat {family} addr_min reg {} proto_min reg {} flags 0x{:x}",
                reg(a, 3),
                reg(a, 5),
                reg(a, 7)
            )
        }
        "counter" => "counter pkts 0 bytes 0".to_string(),
        other => format!("? {other}"),
    }
}
