//! One rule of a typed [`Ruleset`](alca_ruleset_types::Ruleset) as the kernel's expressions,
//! the way `nft` 1.0.6 writes them: the loads, compares and lookups of each match (with the
//! protocol dependencies `nft` adds in the `inet` family: `meta nfproto` before an `ip`/`ip6`
//! field, `meta l4proto` before a `tcp`/`udp`/`icmpv6` one), then the statements. Every shape
//! the compiler can emit is a variant of the closed types, so each has an encoding here (a new
//! variant does not compile until it gets one); what is left for [`Unsupported`] are values the
//! kernel encoding cannot carry (a set no earlier command created, an interface name of
//! another length, a TCP reset without a TCP match), refused, never guessed.

use std::net::IpAddr;

use ipnet::IpNet;

use alca_ruleset_types::{
    CtState, DestKey, Icmpv6Type, IfType, IpFamily, L4Proto, Match, PortHeader, Reject, Stmt,
};

use super::{Attr, LIST_ELEM};

/// A value of the ruleset that has no netlink encoding; nothing of the batch is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no netlink encoding for {0}")]
pub struct Unsupported(pub String);

pub(crate) fn unsupported(what: impl std::fmt::Debug) -> Unsupported {
    Unsupported(format!("{what:?}").chars().take(160).collect())
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
const META_OIFTYPE: u32 = 9;
/// `ARPHRD_LOOPBACK`, the `iface_type` of a loopback device.
const ARPHRD_LOOPBACK: u16 = 772;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
const NETWORK: u32 = 1;
const TRANSPORT: u32 = 2;

fn payload(base: u32, offset: u32, len: u32, nfproto: Option<u8>, l4proto: Option<u8>) -> Field {
    Field::Payload(Payload {
        base,
        offset,
        len,
        nfproto,
        l4proto,
    })
}

fn nfproto_of(family: IpFamily) -> u8 {
    match family {
        IpFamily::V4 => NFPROTO_IPV4,
        IpFamily::V6 => NFPROTO_IPV6,
    }
}

fn ipproto_of(proto: L4Proto) -> u8 {
    match proto {
        L4Proto::Tcp => IPPROTO_TCP,
        L4Proto::Udp => IPPROTO_UDP,
    }
}

/// `ip daddr` / `ip6 daddr`.
fn daddr(family: IpFamily) -> Field {
    match family {
        IpFamily::V4 => payload(NETWORK, 16, 4, Some(NFPROTO_IPV4), None),
        IpFamily::V6 => payload(NETWORK, 24, 16, Some(NFPROTO_IPV6), None),
    }
}

/// `tcp|udp|th dport`.
fn dport(header: PortHeader) -> Field {
    let l4proto = match header {
        PortHeader::Tcp => Some(IPPROTO_TCP),
        PortHeader::Udp => Some(IPPROTO_UDP),
        PortHeader::Th => None,
    };
    payload(TRANSPORT, 2, 2, None, l4proto)
}

fn meta_field(key: u32) -> Field {
    let len = match key {
        META_IIFNAME => 16,
        META_OIFTYPE => 2,
        _ => 1,
    };
    Field::Meta { key, len }
}

/// The fields of a [`DestKey`]: `ip daddr . meta l4proto . th dport`.
fn dest_fields(DestKey(family): DestKey) -> [Field; 3] {
    [
        daddr(family),
        meta_field(META_L4PROTO),
        dport(PortHeader::Th),
    ]
}

/// The expressions of one rule, built in order.
struct Rule<'a> {
    exprs: Vec<Attr>,
    /// The protocols earlier matches of this rule established.
    nfproto: Option<u8>,
    l4proto: Option<u8>,
    sets: &'a mut dyn SetIds,
}

/// The expressions of a rule whose statements are `stmts`.
pub(crate) fn expressions(stmts: &[Stmt], sets: &mut dyn SetIds) -> Result<Vec<Attr>, Unsupported> {
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

pub(crate) fn expr(name: &str, attrs: Vec<Attr>) -> Attr {
    Attr::Nest(
        LIST_ELEM,
        vec![Attr::string(EXPR_NAME, name), Attr::Nest(EXPR_DATA, attrs)],
    )
}

/// `meta KEY` into register `reg`.
pub(crate) fn meta(key: u32, reg: u32) -> Attr {
    expr("meta", vec![Attr::u32_be(2, key), Attr::u32_be(1, reg)])
}

/// Register `reg` AND `mask` (XOR zero), in place.
pub(crate) fn bitwise(reg: u32, mask: Vec<u8>) -> Attr {
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
pub(crate) fn cmp(reg: u32, op: u32, value: Vec<u8>) -> Attr {
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

    fn statement(&mut self, stmt: &Stmt) -> Result<(), Unsupported> {
        match stmt {
            Stmt::Match(m) => return self.matches(m),
            Stmt::Reject(r) => return self.reject(*r),
            Stmt::Update { key, set } => return self.update(*key, set),
            Stmt::Dnat(to) => self.dnat(to.ip(), to.port()),
            Stmt::Accept => self.verdict(1, None),
            Stmt::Drop => self.verdict(0, None),
            Stmt::Jump(chain) => self.verdict(-3, Some(chain)),
            Stmt::Counter => self.push("counter", vec![]),
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

    /// A lookup of register 1 in the named set `name`.
    fn lookup_named(&mut self, name: &str) -> Result<(), Unsupported> {
        let id = self.named_set(name)?;
        self.lookup(name, id);
        Ok(())
    }

    fn named_set(&self, name: &str) -> Result<u32, Unsupported> {
        self.sets.named(name).ok_or_else(|| {
            Unsupported(format!(
                "a reference to set {name}, which no earlier command creates"
            ))
        })
    }

    fn matches(&mut self, m: &Match) -> Result<(), Unsupported> {
        match m {
            Match::CtStateIn(states) => self.ct_state_in(states),
            Match::FibDaddrLocal => self.fib_local(),
            Match::DestInSet(key, set) => {
                self.load_concat(&dest_fields(*key))?;
                self.lookup_named(set)
            }
            Match::DaddrInSet(family, set) => {
                self.load(daddr(*family), REG_1)?;
                self.lookup_named(set)
            }
            // A match on the protocol itself establishes it for the fields after it.
            Match::Nfproto(family) => self.depend(META_NFPROTO, nfproto_of(*family)),
            Match::L4proto(proto) => self.depend(META_L4PROTO, ipproto_of(*proto)),
            Match::L4protoIn(protos) => {
                let keys = protos.iter().map(|p| vec![ipproto_of(*p)]).collect();
                self.in_anonymous_set(meta_field(META_L4PROTO), l4proto_set(keys))
            }
            Match::Icmpv6TypeIn(types) => {
                let keys = types
                    .iter()
                    .map(|t| match t {
                        Icmpv6Type::NeighborSolicit => vec![135],
                        Icmpv6Type::NeighborAdvert => vec![136],
                    })
                    .collect();
                let icmpv6_type =
                    payload(TRANSPORT, 0, 1, Some(NFPROTO_IPV6), Some(IPPROTO_ICMPV6));
                self.in_anonymous_set(icmpv6_type, icmpv6_type_set(keys))
            }
            Match::Iifname(name) => {
                // The name and its NUL, for the bridge names the spec allows (15 bytes,
                // where nft's encoding was checked).
                if name.len() != 15 {
                    return Err(unsupported(m));
                }
                let value = [name.as_bytes(), &[0]].concat();
                self.load_cmp(meta_field(META_IIFNAME), value)
            }
            // nft's `iface_type` is in host byte order.
            Match::Oiftype(IfType::Loopback) => self.load_cmp(
                meta_field(META_OIFTYPE),
                ARPHRD_LOOPBACK.to_ne_bytes().to_vec(),
            ),
            Match::Daddr(net) => self.daddr(*net),
            Match::Dport(header, port) => {
                self.load_cmp(dport(*header), port.to_be_bytes().to_vec())
            }
            Match::Ip6Hoplimit(n) => {
                self.load_cmp(payload(NETWORK, 7, 1, Some(NFPROTO_IPV6), None), vec![*n])
            }
        }
    }

    /// `FIELD == value`.
    fn load_cmp(&mut self, field: Field, value: Vec<u8>) -> Result<(), Unsupported> {
        self.load(field, REG_1)?;
        self.cmp(0, value);
        Ok(())
    }

    /// `FIELD == { … }`: the anonymous set first in the batch, then its lookup.
    fn in_anonymous_set(&mut self, field: Field, set: AnonSet) -> Result<(), Unsupported> {
        self.load(field, REG_1)?;
        let id = self.sets.anonymous(set);
        self.lookup("__set%d", id);
        Ok(())
    }

    /// `ip daddr NET` / `ip6 daddr NET`: the address, or the prefix.
    fn daddr(&mut self, net: IpNet) -> Result<(), Unsupported> {
        let family = IpFamily::of(matches!(net, IpNet::V6(_)));
        let field = daddr(family);
        if net.prefix_len() == net.max_prefix_len() {
            return self.load_cmp(field, ip_bytes(net.addr()));
        }
        self.prefix(field, net.network(), usize::from(net.prefix_len()))
    }

    /// Loads the fields of a set key into consecutive registers, every dependency first (a
    /// dependency's match uses register 1, where the first field goes).
    fn load_concat(&mut self, fields: &[Field]) -> Result<(), Unsupported> {
        for &f in fields {
            self.dependencies(f)?;
        }
        let mut reg32 = 0;
        for &f in fields {
            self.load_only(f, register(reg32));
            reg32 += width(f).div_ceil(4);
        }
        Ok(())
    }

    /// `ADDR/LEN`: a shorter load when the prefix ends on a byte, else a mask.
    fn prefix(&mut self, field: Field, addr: IpAddr, bits: usize) -> Result<(), Unsupported> {
        let bytes = ip_bytes(addr);
        let Field::Payload(payload) = field else {
            return Err(unsupported((addr, bits)));
        };
        if bytes.len() as u32 != payload.len || bits > bytes.len() * 8 {
            return Err(unsupported((addr, bits)));
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
    fn ct_state_in(&mut self, states: &[CtState]) -> Result<(), Unsupported> {
        let bits = states.iter().fold(0u32, |bits, state| {
            bits | match state {
                CtState::Established => 2,
                CtState::Related => 4,
                CtState::New => 8,
            }
        });
        // NFT_CT_STATE, into register 1; the state is a host-order 32-bit value.
        self.push("ct", vec![Attr::u32_be(2, 0), Attr::u32_be(1, REG_1)]);
        self.bitwise(bits.to_ne_bytes().to_vec());
        self.cmp(1, vec![0; 4]);
        Ok(())
    }

    /// `fib daddr type local`.
    fn fib_local(&mut self) -> Result<(), Unsupported> {
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

    fn reject(&mut self, reject: Reject) -> Result<(), Unsupported> {
        // NFT_REJECT_TCP_RST needs a TCP packet: the compiler always matches it first.
        let (kind, code) = match reject {
            Reject::TcpReset if self.l4proto == Some(IPPROTO_TCP) => (1, 0),
            Reject::TcpReset => {
                return Err(Unsupported(
                    "a TCP reset in a rule that does not match TCP".into(),
                ))
            }
            // NFT_REJECT_ICMPX_UNREACH with NFT_REJECT_ICMPX_ADMIN_PROHIBITED.
            Reject::AdminProhibited => (2, 3),
        };
        self.push(
            "reject",
            vec![Attr::u32_be(1, kind), Attr::Bytes(2, vec![code])],
        );
        Ok(())
    }

    /// `update KEY @set`.
    fn update(&mut self, key: DestKey, set: &str) -> Result<(), Unsupported> {
        self.load_concat(&dest_fields(key))?;
        let id = self.named_set(set)?;
        // NFT_DYNSET_OP_UPDATE.
        self.push(
            "dynset",
            vec![
                Attr::u32_be(4, REG_1),
                Attr::u32_be(3, 1),
                Attr::string(1, set),
                Attr::u32_be(2, id),
            ],
        );
        Ok(())
    }

    /// `dnat ip|ip6 to ADDR:PORT`.
    fn dnat(&mut self, addr: IpAddr, port: u16) {
        let family = match addr {
            IpAddr::V4(_) => NFPROTO_IPV4,
            IpAddr::V6(_) => NFPROTO_IPV6,
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

/// The anonymous set of `meta l4proto { … }`, with what nft stores alongside.
fn l4proto_set(keys: Vec<Vec<u8>>) -> AnonSet {
    AnonSet {
        key_type: 12, // inet_proto
        key_len: 1,
        userdata: b"\x00\x04\x01\x00\x00\x00\x03\x0e\x00\x04\x09\x00\x00\x00\x01\x06\x00\x04\x10\x00\x00\x00",
        keys,
    }
}

/// The anonymous set of `icmpv6 type { … }`, with what nft stores alongside.
fn icmpv6_type_set(keys: Vec<Vec<u8>>) -> AnonSet {
    AnonSet {
        key_type: 29, // icmpv6_type
        key_len: 1,
        userdata: b"\x00\x04\x02\x00\x00\x00\x03\x14\x00\x04\x07\x00\x00\x00\x01\x0c\x00\x04\x0e\x00\x00\x00\x01\x04\x01\x00\x00\x00",
        keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn is(m: Match) -> Stmt {
        Stmt::Match(m)
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    /// The names of the expressions of `stmts`.
    fn names(stmts: &[Stmt]) -> Vec<String> {
        let exprs = expressions(stmts, &mut Ids::default()).unwrap();
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
    fn the_loopback_device_type_is_a_two_byte_host_order_compare() {
        let stmts = [is(Match::Oiftype(IfType::Loopback)), Stmt::Accept];
        assert_eq!(names(&stmts), ["meta", "cmp", "immediate"]);
        let exprs = expressions(&stmts, &mut Ids::default()).unwrap();
        let bytes = format!("{:?}", exprs[1]);
        let want = format!("{:?}", 772u16.to_ne_bytes().to_vec());
        assert!(bytes.contains(&want[1..want.len() - 1]), "{bytes}");
    }

    #[test]
    fn protocol_fields_get_their_dependency_once() {
        let rule = [
            is(Match::Daddr(net("10.99.0.3/32"))),
            is(Match::Dport(PortHeader::Tcp, 22)),
            is(Match::DaddrInSet(IpFamily::V4, "deny4".into())),
            Stmt::Accept,
        ];
        assert_eq!(
            names(&rule),
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
        let rule = [
            is(Match::L4proto(L4Proto::Tcp)),
            is(Match::Dport(PortHeader::Tcp, 22)),
            is(Match::Dport(PortHeader::Th, 53)),
        ];
        assert_eq!(
            names(&rule),
            ["meta", "cmp", "payload", "cmp", "payload", "cmp"]
        );
    }

    #[test]
    fn prefixes_load_fewer_bytes_or_mask() {
        let on_byte = [is(Match::Daddr(net("192.168.1.0/24")))];
        let exprs = expressions(&on_byte, &mut Ids::default()).unwrap();
        let cmp = format!("{:?}", exprs.last().unwrap());
        assert!(cmp.contains("[192, 168, 1]"), "{cmp}");
        let off_byte = [is(Match::Daddr(net("172.16.0.0/12")))];
        assert_eq!(
            names(&off_byte),
            ["meta", "cmp", "payload", "bitwise", "cmp"]
        );
        let exprs = expressions(&off_byte, &mut Ids::default()).unwrap();
        let mask = format!("{:?}", exprs[3]);
        assert!(mask.contains("[255, 240, 0, 0]"), "{mask}");
    }

    #[test]
    fn a_key_loads_every_dependency_before_its_first_field() {
        let rule = [is(Match::DestInSet(DestKey(IpFamily::V4), "deny4".into()))];
        assert_eq!(
            names(&rule),
            ["meta", "cmp", "payload", "meta", "payload", "lookup"]
        );
    }

    #[test]
    fn concatenated_keys_fill_consecutive_registers() {
        assert_eq!((register(0), register(1), register(2)), (1, 9, 10));
        // An IPv6 address takes a whole register; the next field starts the second one.
        assert_eq!((register(4), register(5)), (2, 13));
    }

    /// Shapes outside the compiler's grammar (`ip saddr`, `!=`, `log`, `masquerade`) cannot be
    /// written at all now (the types are closed); what is left are values without an encoding.
    #[test]
    fn values_without_an_encoding_are_refused_not_guessed() {
        let mut ids = Ids::default();
        for stmt in [
            is(Match::DaddrInSet(IpFamily::V4, "nosuchset".into())),
            Stmt::Reject(Reject::TcpReset), // no TCP match before it
            is(Match::Iifname("eth0".into())),
        ] {
            assert!(
                expressions(std::slice::from_ref(&stmt), &mut ids).is_err(),
                "{stmt:?}"
            );
        }
    }
}
