//! One rule of a compiled batch as the kernel's expressions, the way `nft` 1.0.6 writes them:
//! the loads, compares and lookups of each match (with the protocol dependencies `nft` adds
//! in the `inet` family: `meta nfproto` before an `ip`/`ip6` field, `meta l4proto` before a
//! `tcp`/`udp`/`icmpv6` one), then the statements. It knows exactly the grammar
//! `alca_ruleset` emits; anything else is [`Unsupported`], never a guess.

use std::net::IpAddr;

use serde_json::Value;

use super::{Attr, LIST_ELEM};

/// A shape of the JSON batch this encoder does not write (the caller then runs `nft`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no netlink encoding for {0}")]
pub struct Unsupported(pub String);

pub fn unsupported(what: &Value) -> Unsupported {
    Unsupported(what.to_string().chars().take(160).collect())
}

/// The single `{key: value}` entry of a batch object (`{verb: {kind: object}}`, a statement).
pub fn single_entry(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    (map.len() == 1)
        .then(|| map.iter().next())
        .flatten()
        .map(|(k, v)| (k.as_str(), v))
}

/// `NFTA_EXPR_NAME`, `NFTA_EXPR_DATA`, `NFTA_DATA_VERDICT`.
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const DATA_VERDICT: u16 = 2;
/// `NFT_REG_VERDICT` and `NFT_REG_1`: the verdict register, the first data register.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;
/// `NFT_REG32_00`: 32-bit register numbers start here.
const REG32_00: u32 = 8;
/// `NFPROTO_IPV4`/`_IPV6`.
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

/// Where a rule's set lookups and updates find their set.
pub trait SetIds {
    /// The batch id of the named set `name` (created earlier in the batch).
    fn named(&self, name: &str) -> Option<u32>;
    /// Creates an anonymous constant set in the batch, before the rule; its id.
    fn anonymous(&mut self, set: AnonSet) -> u32;
}

/// An anonymous constant set (`{ tcp, udp }`) a rule looks up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonSet {
    pub key_type: u32,
    pub key_len: u32,
    /// What `nft` stores for its own listing (key byte order, `typeof`).
    pub userdata: &'static [u8],
    pub keys: Vec<Vec<u8>>,
}

/// A field a match or a set key loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Meta { key: u32, len: u32 },
    Payload(Payload),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Payload {
    base: u32,
    offset: u32,
    len: u32,
    /// The `meta nfproto` this field needs, and then the `meta l4proto`.
    nfproto: Option<u8>,
    l4proto: Option<u8>,
}

/// `NFT_META_*` keys and `NFT_PAYLOAD_*_HEADER` bases.
const META_IIFNAME: u32 = 6;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const NETWORK: u32 = 1;
const TRANSPORT: u32 = 2;

fn field(expr: &Value) -> Result<Field, Unsupported> {
    if let Some(key) = expr["meta"]["key"].as_str() {
        let (key, len) = match key {
            "iifname" => (META_IIFNAME, 16),
            "nfproto" => (META_NFPROTO, 1),
            "l4proto" => (META_L4PROTO, 1),
            _ => return Err(unsupported(expr)),
        };
        return Ok(Field::Meta { key, len });
    }
    let p = &expr["payload"];
    let (proto, name) = (p["protocol"].as_str(), p["field"].as_str());
    let at = |base, offset, len, nfproto, l4proto| {
        Ok(Field::Payload(Payload {
            base,
            offset,
            len,
            nfproto,
            l4proto,
        }))
    };
    let v4 = Some(NFPROTO_IPV4);
    let v6 = Some(NFPROTO_IPV6);
    match (proto, name) {
        (Some("ip"), Some("daddr")) => at(NETWORK, 16, 4, v4, None),
        (Some("ip6"), Some("daddr")) => at(NETWORK, 24, 16, v6, None),
        (Some("ip6"), Some("hoplimit")) => at(NETWORK, 7, 1, v6, None),
        (Some("th"), Some("dport")) => at(TRANSPORT, 2, 2, None, None),
        (Some("tcp"), Some("dport")) => at(TRANSPORT, 2, 2, None, Some(IPPROTO_TCP)),
        (Some("udp"), Some("dport")) => at(TRANSPORT, 2, 2, None, Some(IPPROTO_UDP)),
        (Some("icmpv6"), Some("type")) => at(TRANSPORT, 0, 1, v6, Some(IPPROTO_ICMPV6)),
        _ => Err(unsupported(expr)),
    }
}

/// The expressions of one rule, built in order.
struct Rule<'a> {
    exprs: Vec<Attr>,
    /// The protocols earlier matches of this rule established.
    nfproto: Option<u8>,
    l4proto: Option<u8>,
    sets: &'a mut dyn SetIds,
}

/// The expressions of a rule whose statements are `stmts` (JSON, as the compiler wrote them).
pub fn expressions(stmts: &[Value], sets: &mut dyn SetIds) -> Result<Vec<Attr>, Unsupported> {
    let mut rule = Rule {
        exprs: Vec::new(),
        nfproto: None,
        l4proto: None,
        sets,
    };
    for stmt in stmts {
        rule.statement(stmt)?;
    }
    Ok(rule.exprs)
}

pub fn expr(name: &str, attrs: Vec<Attr>) -> Attr {
    Attr::Nest(
        LIST_ELEM,
        vec![Attr::string(EXPR_NAME, name), Attr::Nest(EXPR_DATA, attrs)],
    )
}

/// `meta KEY` into register `reg`.
pub fn meta(key: u32, reg: u32) -> Attr {
    expr("meta", vec![Attr::u32_be(2, key), Attr::u32_be(1, reg)])
}

/// Register `reg` AND `mask` (XOR zero), in place.
pub fn bitwise(reg: u32, mask: Vec<u8>) -> Attr {
    let len = mask.len() as u32;
    expr(
        "bitwise",
        vec![
            Attr::u32_be(1, reg),
            Attr::u32_be(2, reg),
            Attr::u32_be(3, len),
            Attr::data(4, mask),
            Attr::data(5, vec![0; len as usize]),
        ],
    )
}

/// Register `reg` compared (`op`) with `value`.
pub fn cmp(reg: u32, op: u32, value: Vec<u8>) -> Attr {
    expr(
        "cmp",
        vec![
            Attr::u32_be(1, reg),
            Attr::u32_be(2, op),
            Attr::data(3, value),
        ],
    )
}

/// `reg` as nft numbers it: a whole 128-bit register where one starts, else a 32-bit one.
fn register(reg32: u32) -> u32 {
    if reg32.is_multiple_of(4) {
        REG_1 + reg32 / 4
    } else {
        REG32_00 + reg32
    }
}

impl Rule<'_> {
    fn push(&mut self, name: &str, attrs: Vec<Attr>) {
        self.exprs.push(expr(name, attrs));
    }

    fn statement(&mut self, stmt: &Value) -> Result<(), Unsupported> {
        let (kind, body) = single_entry(stmt).ok_or_else(|| unsupported(stmt))?;
        match kind {
            "match" => return self.matches(body),
            "reject" => return self.reject(body),
            "set" => return self.update(body),
            "dnat" => return self.dnat(body),
            "accept" => self.verdict(1, None),
            "drop" => self.verdict(0, None),
            "jump" => {
                let chain = body["target"].as_str().ok_or_else(|| unsupported(stmt))?;
                self.verdict(-3, Some(chain));
            }
            "counter" if body.is_null() => self.push("counter", vec![]),
            _ => return Err(unsupported(stmt)),
        }
        Ok(())
    }

    /// `immediate` into the verdict register (`NF_ACCEPT` 1, `NF_DROP` 0, `NFT_JUMP` -3).
    fn verdict(&mut self, code: i32, chain: Option<&str>) {
        let mut verdict = vec![Attr::Bytes(1, code.to_be_bytes().to_vec())];
        if let Some(chain) = chain {
            verdict.push(Attr::string(2, chain));
        }
        let value = Attr::Nest(2, vec![Attr::Nest(DATA_VERDICT, verdict)]);
        self.push("immediate", vec![Attr::u32_be(1, REG_VERDICT), value]);
    }

    /// The loads of `field` into `reg`, after the dependencies it needs.
    fn load(&mut self, field: Field, reg: u32) -> Result<(), Unsupported> {
        self.dependencies(field)?;
        self.load_only(field, reg);
        Ok(())
    }

    /// The `meta nfproto`/`meta l4proto` matches `field` needs (they use register 1).
    fn dependencies(&mut self, field: Field) -> Result<(), Unsupported> {
        if let Field::Payload(p) = field {
            if let Some(nfproto) = p.nfproto {
                self.depend(META_NFPROTO, nfproto)?;
            }
            if let Some(l4proto) = p.l4proto {
                self.depend(META_L4PROTO, l4proto)?;
            }
        }
        Ok(())
    }

    fn load_only(&mut self, field: Field, reg: u32) {
        match field {
            Field::Meta { key, .. } => self.exprs.push(meta(key, reg)),
            Field::Payload(p) => {
                self.push(
                    "payload",
                    vec![
                        Attr::u32_be(1, reg),
                        Attr::u32_be(2, p.base),
                        Attr::u32_be(3, p.offset),
                        Attr::u32_be(4, p.len),
                    ],
                );
            }
        }
    }

    /// `meta KEY == value` unless the rule already established it.
    fn depend(&mut self, key: u32, value: u8) -> Result<(), Unsupported> {
        let known = if key == META_NFPROTO {
            &mut self.nfproto
        } else {
            &mut self.l4proto
        };
        match *known {
            Some(v) if v == value => Ok(()),
            Some(_) => Err(Unsupported(format!(
                "a rule needing two protocols of key {key}"
            ))),
            None => {
                *known = Some(value);
                self.push("meta", vec![Attr::u32_be(2, key), Attr::u32_be(1, REG_1)]);
                self.cmp(0, vec![value]);
                Ok(())
            }
        }
    }

    fn cmp(&mut self, op: u32, value: Vec<u8>) {
        self.exprs.push(cmp(REG_1, op, value));
    }

    fn lookup(&mut self, set: &str, id: u32) {
        let attrs = vec![
            Attr::u32_be(2, REG_1),
            Attr::string(1, set),
            Attr::u32_be(4, id),
        ];
        self.push("lookup", attrs);
    }

    /// A lookup of register 1 in the named set `@name` of `reference`.
    fn lookup_named(&mut self, reference: &Value) -> Result<(), Unsupported> {
        let (name, id) = self.named_set(reference)?;
        self.lookup(&name, id);
        Ok(())
    }

    fn named_set(&self, reference: &Value) -> Result<(String, u32), Unsupported> {
        let name = reference
            .as_str()
            .and_then(|r| r.strip_prefix('@'))
            .ok_or_else(|| unsupported(reference))?;
        let id = self
            .sets
            .named(name)
            .ok_or_else(|| unsupported(reference))?;
        Ok((name.to_string(), id))
    }

    fn matches(&mut self, m: &Value) -> Result<(), Unsupported> {
        let (left, op, right) = (&m["left"], m["op"].as_str(), &m["right"]);
        if left["ct"]["key"] == "state" && op == Some("in") {
            return self.ct_state_in(right);
        }
        if op != Some("==") {
            return Err(unsupported(m));
        }
        if left.get("fib").is_some() {
            return self.fib_local(left, right);
        }
        if let Some(fields) = left["concat"].as_array() {
            self.load_concat(fields)?;
            return self.lookup_named(right);
        }
        let field = field(left)?;
        if right.as_str().is_some_and(|r| r.starts_with('@')) {
            self.load(field, REG_1)?;
            return self.lookup_named(right);
        }
        if let Some(members) = right["set"].as_array() {
            self.load(field, REG_1)?;
            let set = anonymous_set(field, members).ok_or_else(|| unsupported(m))?;
            let id = self.sets.anonymous(set);
            self.lookup("__set%d", id);
            return Ok(());
        }
        if let Some(prefix) = right.get("prefix") {
            return self.prefix(field, prefix);
        }
        let value = value(field, right).ok_or_else(|| unsupported(m))?;
        // A match on the protocol itself establishes it for the fields after it.
        if let Field::Meta { key, .. } = field {
            if key == META_NFPROTO || key == META_L4PROTO {
                return self.depend(key, value[0]);
            }
        }
        self.load(field, REG_1)?;
        self.cmp(0, value);
        Ok(())
    }

    /// Loads the fields of a set key into consecutive registers, every dependency first (a
    /// dependency's match uses register 1, where the first field goes).
    fn load_concat(&mut self, fields: &[Value]) -> Result<(), Unsupported> {
        let fields: Vec<Field> = fields.iter().map(field).collect::<Result<_, _>>()?;
        for &f in &fields {
            self.dependencies(f)?;
        }
        let mut reg32 = 0;
        for f in fields {
            self.load_only(f, register(reg32));
            reg32 += width(f).div_ceil(4);
        }
        Ok(())
    }

    /// `ADDR/LEN`: a shorter load when the prefix ends on a byte, else a mask.
    fn prefix(&mut self, field: Field, prefix: &Value) -> Result<(), Unsupported> {
        let addr: IpAddr = prefix["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| unsupported(prefix))?;
        let bits = prefix["len"].as_u64().ok_or_else(|| unsupported(prefix))? as usize;
        let bytes = ip_bytes(addr);
        let Field::Payload(payload) = field else {
            return Err(unsupported(prefix));
        };
        if bytes.len() as u32 != payload.len || bits > bytes.len() * 8 {
            return Err(unsupported(prefix));
        }
        if bits > 0 && bits.is_multiple_of(8) {
            let len = bits / 8;
            let short = Payload {
                len: len as u32,
                ..payload
            };
            self.load(Field::Payload(short), REG_1)?;
            self.cmp(0, bytes[..len].to_vec());
            return Ok(());
        }
        let mask: Vec<u8> = (0..bytes.len())
            .map(|i| {
                let on = bits.saturating_sub(i * 8).min(8);
                (0xffu16 << (8 - on)) as u8
            })
            .collect();
        let masked: Vec<u8> = bytes.iter().zip(&mask).map(|(b, m)| b & m).collect();
        self.load(field, REG_1)?;
        self.bitwise(mask);
        self.cmp(0, masked);
        Ok(())
    }

    fn bitwise(&mut self, mask: Vec<u8>) {
        self.exprs.push(bitwise(REG_1, mask));
    }

    /// `ct state { established, related }`: a mask of the state bits, then `!= 0`.
    fn ct_state_in(&mut self, states: &Value) -> Result<(), Unsupported> {
        let mut bits = 0u32;
        for state in states.as_array().ok_or_else(|| unsupported(states))? {
            bits |= match state.as_str() {
                Some("invalid") => 1,
                Some("established") => 2,
                Some("related") => 4,
                Some("new") => 8,
                Some("untracked") => 64,
                _ => return Err(unsupported(state)),
            };
        }
        // NFT_CT_STATE, into register 1; the state is a host-order 32-bit value.
        self.push("ct", vec![Attr::u32_be(2, 0), Attr::u32_be(1, REG_1)]);
        self.bitwise(bits.to_ne_bytes().to_vec());
        self.cmp(1, vec![0; 4]);
        Ok(())
    }

    /// `fib daddr type local`.
    fn fib_local(&mut self, left: &Value, right: &Value) -> Result<(), Unsupported> {
        let fib = &left["fib"];
        if fib["result"] != "type" || fib["flags"] != serde_json::json!(["daddr"]) {
            return Err(unsupported(left));
        }
        if right != "local" {
            return Err(unsupported(right));
        }
        // NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE; then RTN_LOCAL in host order.
        self.push(
            "fib",
            vec![
                Attr::u32_be(3, 2),
                Attr::u32_be(2, 3),
                Attr::u32_be(1, REG_1),
            ],
        );
        self.cmp(0, 2u32.to_ne_bytes().to_vec());
        Ok(())
    }

    fn reject(&mut self, body: &Value) -> Result<(), Unsupported> {
        // NFT_REJECT_TCP_RST needs a TCP packet: the compiler always matches it first.
        let (kind, code) = match (body["type"].as_str(), body["expr"].as_str()) {
            (Some("tcp reset"), None) if self.l4proto == Some(IPPROTO_TCP) => (1, 0),
            // NFT_REJECT_ICMPX_UNREACH with NFT_REJECT_ICMPX_ADMIN_PROHIBITED.
            (Some("icmpx"), Some("admin-prohibited")) => (2, 3),
            _ => return Err(unsupported(body)),
        };
        self.push(
            "reject",
            vec![Attr::u32_be(1, kind), Attr::Bytes(2, vec![code])],
        );
        Ok(())
    }

    /// `update KEY @set`.
    fn update(&mut self, body: &Value) -> Result<(), Unsupported> {
        let fields = body["elem"]["concat"]
            .as_array()
            .filter(|_| body["op"] == "update")
            .ok_or_else(|| unsupported(body))?;
        self.load_concat(fields)?;
        let (name, id) = self.named_set(&body["set"])?;
        // NFT_DYNSET_OP_UPDATE.
        self.push(
            "dynset",
            vec![
                Attr::u32_be(4, REG_1),
                Attr::u32_be(3, 1),
                Attr::string(1, &name),
                Attr::u32_be(2, id),
            ],
        );
        Ok(())
    }

    /// `dnat ip|ip6 to ADDR:PORT`.
    fn dnat(&mut self, body: &Value) -> Result<(), Unsupported> {
        let addr: IpAddr = body["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| unsupported(body))?;
        let port = body["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| unsupported(body))?;
        let family = match (body["family"].as_str(), addr) {
            (Some("ip"), IpAddr::V4(_)) => NFPROTO_IPV4,
            (Some("ip6"), IpAddr::V6(_)) => NFPROTO_IPV6,
            _ => return Err(unsupported(body)),
        };
        for (reg, value) in [
            (REG_1, ip_bytes(addr)),
            (REG_2, port.to_be_bytes().to_vec()),
        ] {
            self.push(
                "immediate",
                vec![Attr::u32_be(1, reg), Attr::data(2, value)],
            );
        }
        // NFT_NAT_DNAT; NF_NAT_RANGE_PROTO_SPECIFIED.
        self.push(
            "nat",
            vec![
                Attr::u32_be(1, 1),
                Attr::u32_be(2, u32::from(family)),
                Attr::u32_be(3, REG_1),
                Attr::u32_be(5, REG_2),
                Attr::u32_be(7, 2),
            ],
        );
        Ok(())
    }
}

/// Bytes a field takes in a register.
fn width(field: Field) -> u32 {
    match field {
        Field::Meta { len, .. } => len,
        Field::Payload(p) => p.len,
    }
}

fn ip_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The bytes `field == value` compares with.
fn value(field: Field, value: &Value) -> Option<Vec<u8>> {
    match field {
        Field::Meta { key, .. } => {
            let text = value.as_str()?;
            match key {
                // The name and its NUL, for the bridge names the spec allows (15 bytes,
                // where nft's encoding was checked).
                META_IIFNAME if text.len() == 15 => Some([text.as_bytes(), &[0]].concat()),
                META_NFPROTO => match text {
                    "ipv4" => Some(vec![NFPROTO_IPV4]),
                    "ipv6" => Some(vec![NFPROTO_IPV6]),
                    _ => None,
                },
                META_L4PROTO => l4proto(text).map(|p| vec![p]),
                _ => None,
            }
        }
        Field::Payload(p) => match (p.len, value) {
            (4 | 16, Value::String(text)) => {
                let bytes = ip_bytes(text.parse().ok()?);
                (bytes.len() as u32 == p.len).then_some(bytes)
            }
            (2, Value::Number(n)) => Some(u16::try_from(n.as_u64()?).ok()?.to_be_bytes().to_vec()),
            (1, Value::Number(n)) => Some(vec![u8::try_from(n.as_u64()?).ok()?]),
            _ => None,
        },
    }
}

fn l4proto(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(IPPROTO_TCP),
        "udp" => Some(IPPROTO_UDP),
        _ => None,
    }
}

/// The anonymous set of `field == { members }`, with what nft stores alongside: the sets the
/// compiler writes are `meta l4proto { tcp, udp }` and `icmpv6 type { nd-… }`.
fn anonymous_set(field: Field, members: &[Value]) -> Option<AnonSet> {
    let names = || members.iter().map(Value::as_str);
    match field {
        Field::Meta {
            key: META_L4PROTO, ..
        } => Some(AnonSet {
            key_type: 12, // inet_proto
            key_len: 1,
            userdata: b"\x00\x04\x01\x00\x00\x00\x03\x0e\x00\x04\x09\x00\x00\x00\x01\x06\x00\x04\x10\x00\x00\x00",
            keys: names()
                .map(|n| l4proto(n?).map(|p| vec![p]))
                .collect::<Option<_>>()?,
        }),
        Field::Payload(p) if p.l4proto == Some(IPPROTO_ICMPV6) && p.offset == 0 => Some(AnonSet {
            key_type: 29, // icmpv6_type
            key_len: 1,
            userdata: b"\x00\x04\x02\x00\x00\x00\x03\x14\x00\x04\x07\x00\x00\x00\x01\x0c\x00\x04\x0e\x00\x00\x00\x01\x04\x01\x00\x00\x00",
            keys: names()
                .map(|n| match n? {
                    "nd-neighbor-solicit" => Some(vec![135]),
                    "nd-neighbor-advert" => Some(vec![136]),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Default)]
    struct Ids {
        anonymous: Vec<AnonSet>,
    }

    impl SetIds for Ids {
        fn named(&self, name: &str) -> Option<u32> {
            (name == "deny4").then_some(2)
        }
        fn anonymous(&mut self, set: AnonSet) -> u32 {
            self.anonymous.push(set);
            100 + self.anonymous.len() as u32
        }
    }

    /// The names of the expressions of `stmts`.
    fn names(stmts: Value) -> Vec<String> {
        let exprs = expressions(stmts.as_array().unwrap(), &mut Ids::default()).unwrap();
        exprs
            .iter()
            .map(|e| match e {
                Attr::Nest(_, inner) => match &inner[0] {
                    Attr::Bytes(_, name) => String::from_utf8_lossy(&name[..name.len() - 1]).into(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn protocol_fields_get_their_dependency_once() {
        let ip = json!({"payload": {"protocol": "ip", "field": "daddr"}});
        let tcp = json!({"payload": {"protocol": "tcp", "field": "dport"}});
        let rule = json!([
            {"match": {"left": ip, "op": "==", "right": "10.99.0.3"}},
            {"match": {"left": tcp, "op": "==", "right": 22}},
            {"match": {"left": ip, "op": "==", "right": "@deny4"}},
            {"accept": null}
        ]);
        assert_eq!(
            names(rule),
            [
                "meta",
                "cmp",
                "payload",
                "cmp", // nfproto ipv4, then ip daddr
                "meta",
                "cmp",
                "payload",
                "cmp", // l4proto tcp, then tcp dport
                "payload",
                "lookup",
                "immediate"
            ]
        );
        // `th dport` needs no dependency; an explicit `meta l4proto tcp` counts as one.
        let rule = json!([
            {"match": {"left": {"meta": {"key": "l4proto"}}, "op": "==", "right": "tcp"}},
            {"match": {"left": tcp, "op": "==", "right": 22}},
            {"match": {"left": {"payload": {"protocol": "th", "field": "dport"}}, "op": "==", "right": 53}}
        ]);
        assert_eq!(
            names(rule),
            ["meta", "cmp", "payload", "cmp", "payload", "cmp"]
        );
    }

    #[test]
    fn prefixes_load_fewer_bytes_or_mask() {
        let ip = json!({"payload": {"protocol": "ip", "field": "daddr"}});
        let on_byte = json!([{"match": {"left": ip, "op": "==", "right": {"prefix": {"addr": "192.168.1.0", "len": 24}}}}]);
        let exprs = expressions(on_byte.as_array().unwrap(), &mut Ids::default()).unwrap();
        let cmp = format!("{:?}", exprs.last().unwrap());
        assert!(cmp.contains("[192, 168, 1]"), "{cmp}");
        let off_byte = json!([{"match": {"left": ip, "op": "==", "right": {"prefix": {"addr": "172.16.0.0", "len": 12}}}}]);
        assert_eq!(
            names(off_byte.clone()),
            ["meta", "cmp", "payload", "bitwise", "cmp"]
        );
        let exprs = expressions(off_byte.as_array().unwrap(), &mut Ids::default()).unwrap();
        let mask = format!("{:?}", exprs[3]);
        assert!(mask.contains("[255, 240, 0, 0]"), "{mask}");
    }

    #[test]
    fn a_key_loads_every_dependency_before_its_first_field() {
        let key = json!({"concat": [
            {"payload": {"protocol": "ip", "field": "daddr"}},
            {"payload": {"protocol": "tcp", "field": "dport"}}
        ]});
        let rule = json!([{"match": {"left": key, "op": "==", "right": "@deny4"}}]);
        assert_eq!(
            names(rule),
            ["meta", "cmp", "meta", "cmp", "payload", "payload", "lookup"]
        );
    }

    #[test]
    fn concatenated_keys_fill_consecutive_registers() {
        assert_eq!((register(0), register(1), register(2)), (1, 9, 10));
        // An IPv6 address takes a whole register; the next field starts the second one.
        assert_eq!((register(4), register(5)), (2, 13));
    }

    #[test]
    fn anything_else_is_unsupported_not_guessed() {
        let mut ids = Ids::default();
        for stmt in [
            json!({"match": {"left": {"payload": {"protocol": "ip", "field": "saddr"}}, "op": "==", "right": "1.2.3.4"}}),
            json!({"match": {"left": {"meta": {"key": "l4proto"}}, "op": "!=", "right": "tcp"}}),
            json!({"match": {"left": {"payload": {"protocol": "ip", "field": "daddr"}}, "op": "==", "right": "@nosuchset"}}),
            json!({"log": {"prefix": "x"}}),
            json!({"reject": {"type": "tcp reset"}}), // no TCP match before it
            json!({"masquerade": null}),
        ] {
            assert!(
                expressions(std::slice::from_ref(&stmt), &mut ids).is_err(),
                "{stmt}"
            );
        }
    }
}
