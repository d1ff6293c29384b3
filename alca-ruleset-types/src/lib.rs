//! The closed typed ruleset: every table, set, chain, rule, match and statement the compiler
//! (`alca-ruleset`) can emit, and nothing else. Its own crate, with no application types and no
//! I/O, because both sides speak it: the compiler builds a [`Ruleset`], `alca-ruleset` encodes
//! it as nft JSON (`nft -c`, the goldens, the tests' `nft -j -f`), and the kernel writer
//! (`alca-kernel`) encodes the same value as nf_tables netlink messages. A shape the writer does
//! not know cannot be built: adding one is a new variant here, and every `match` over it in
//! both encoders then fails to compile until it is written.
//!
//! Every object lives in the `inet` family (the only one the compiler uses), so none carries a
//! family field.

use std::net::SocketAddr;

use ipnet::IpNet;

/// One atomic batch: the commands run in order, all or none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub commands: Vec<Command>,
}

/// One command of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `add table inet NAME`: creates the table, or leaves an existing one as it is.
    AddTable(String),
    /// `delete table inet NAME`.
    DeleteTable(String),
    AddSet(Set),
    AddChain(Chain),
    AddRule(Rule),
}

impl Command {
    /// The table the command acts on.
    pub fn table(&self) -> &str {
        match self {
            Command::AddTable(t) | Command::DeleteTable(t) => t,
            Command::AddSet(s) => &s.table,
            Command::AddChain(c) => &c.table,
            Command::AddRule(r) => &r.table,
        }
    }

    fn table_mut(&mut self) -> &mut String {
        match self {
            Command::AddTable(t) | Command::DeleteTable(t) => t,
            Command::AddSet(s) => &mut s.table,
            Command::AddChain(c) => &mut c.table,
            Command::AddRule(r) => &mut r.table,
        }
    }
}

impl Ruleset {
    /// The same batch acting on table `name` instead (tests load one compiled ruleset twice,
    /// under two names, to compare two ways of loading it).
    pub fn for_table(&self, name: &str) -> Ruleset {
        let mut out = self.clone();
        for c in &mut out.commands {
            *c.table_mut() = name.to_string();
        }
        out
    }

    /// The sets created by the batch.
    pub fn sets(&self) -> impl Iterator<Item = &Set> {
        self.commands.iter().filter_map(|c| match c {
            Command::AddSet(s) => Some(s),
            _ => None,
        })
    }

    /// The chains created by the batch.
    pub fn chains(&self) -> impl Iterator<Item = &Chain> {
        self.commands.iter().filter_map(|c| match c {
            Command::AddChain(c) => Some(c),
            _ => None,
        })
    }

    /// The rules added by the batch, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.commands.iter().filter_map(|c| match c {
            Command::AddRule(r) => Some(r),
            _ => None,
        })
    }
}

/// IPv4 or IPv6: which header (`ip`/`ip6`) a field is read from, which `meta nfproto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    /// `V6` when `v6`.
    pub fn of(v6: bool) -> IpFamily {
        if v6 {
            IpFamily::V6
        } else {
            IpFamily::V4
        }
    }
}

/// A transport protocol a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4Proto {
    Tcp,
    Udp,
}

/// A named set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub table: String,
    pub name: String,
    pub key: SetKey,
    /// `flags interval`: elements are addresses and prefixes.
    pub interval: bool,
    /// `flags timeout`: elements may expire.
    pub timeout_flag: bool,
    /// Most elements the set holds.
    pub size: Option<u32>,
    /// Seconds an element lives unless it says otherwise.
    pub timeout_secs: Option<u32>,
    /// Each element carries a counter.
    pub counter: bool,
    /// The elements created with the set (`None`: none given).
    pub elements: Option<Vec<Element>>,
}

impl Set {
    /// A set with no flags, size, timeout, counter or elements.
    pub fn new(table: &str, name: &str, key: SetKey) -> Set {
        Set {
            table: table.to_string(),
            name: name.to_string(),
            key,
            interval: false,
            timeout_flag: false,
            size: None,
            timeout_secs: None,
            counter: false,
            elements: None,
        }
    }
}

/// The key type of a named set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKey {
    /// `type uid`.
    Uid,
    /// `type ipv4_addr` / `ipv6_addr`.
    Addr(IpFamily),
    /// `type ipv4_addr . inet_proto . inet_service` (or `ipv6_addr …`): a [`DestKey`].
    Dest(IpFamily),
}

/// An element of a named set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Uid(u32),
    /// An address (full-length prefix) or a prefix, of an interval address set.
    Net(IpNet),
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub table: String,
    pub name: String,
    /// `None`: a regular chain, reached only by jumps.
    pub base: Option<BaseChain>,
}

/// Where a base chain hooks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: i32,
    pub policy: Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    Filter,
    Nat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

/// A base chain's policy: every chain of ours lets through what its rules do not decide (the
/// refusals are rules, counted and loud).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Accept,
}

/// A rule: its statements in order, and a comment `nft list` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub table: String,
    pub chain: String,
    pub stmts: Vec<Stmt>,
    pub comment: Option<String>,
}

/// One statement of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    Match(Match),
    /// An anonymous counter.
    Counter,
    Accept,
    Drop,
    /// `jump CHAIN`.
    Jump(String),
    Reject(Reject),
    /// `dnat ip to ADDR:PORT` / `dnat ip6 to [ADDR]:PORT`.
    Dnat(SocketAddr),
    /// `update KEY @SET`: adds the packet's key to the set or refreshes its timeout (dynset).
    Update {
        key: DestKey,
        set: String,
    },
}

/// How a rule refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// `reject with tcp reset` (the rule must match TCP first).
    TcpReset,
    /// `reject with icmpx admin-prohibited`.
    AdminProhibited,
}

/// `ip daddr . meta l4proto . th dport` (or `ip6 daddr …`): the key of the observation and
/// grant sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestKey(pub IpFamily);

/// A transport header whose destination port a rule reads: `tcp`/`udp` (which imply the
/// protocol) or `th` (any transport, no implied protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortHeader {
    Tcp,
    Udp,
    Th,
}

/// A connection tracking state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtState {
    Established,
    Related,
    New,
}

/// An ICMPv6 type a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Type {
    NeighborSolicit,
    NeighborAdvert,
}

/// An interface type a rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfType {
    Loopback,
}

/// A match: every one the compiler writes is an equality (or a membership) test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `meta iifname NAME`.
    Iifname(String),
    /// `meta oiftype TYPE`.
    Oiftype(IfType),
    /// `meta nfproto ipv4|ipv6`.
    Nfproto(IpFamily),
    /// `meta l4proto P`.
    L4proto(L4Proto),
    /// `meta l4proto { P, … }`.
    L4protoIn(Vec<L4Proto>),
    /// `ip daddr NET` / `ip6 daddr NET`: an address, or a prefix; the family is the net's.
    Daddr(IpNet),
    /// `ip daddr @SET` / `ip6 daddr @SET`.
    DaddrInSet(IpFamily, String),
    /// `tcp|udp|th dport PORT`.
    Dport(PortHeader, u16),
    /// `ip6 hoplimit N`.
    Ip6Hoplimit(u8),
    /// `icmpv6 type { T, … }`.
    Icmpv6TypeIn(Vec<Icmpv6Type>),
    /// `ct state { S, … }` (the packet's state is one of them).
    CtStateIn(Vec<CtState>),
    /// `fib daddr type local`: the destination is one of this host's (namespace's) addresses.
    FibDaddrLocal,
    /// `KEY @SET` with a [`DestKey`].
    DestInSet(DestKey, String),
}
