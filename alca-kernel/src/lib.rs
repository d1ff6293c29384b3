//! nf_tables over netlink, byte by byte: the message writer, the reader of the kernel's
//! answers and the one-transaction batch. `nft` 1.0.6 reads every table into its cache before
//! it runs anything (O(all projects) per run), so the calls that must not grow with the
//! number of projects talk to the kernel here instead: the table-name dump
//! ([`crate::table_names`]), the set-element batches ([`set_elements`]) and the
//! project rulesets ([`ruleset`]).

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

pub mod conntrack;
pub mod events;
pub mod iface_guard;
pub mod nft_text;
mod rule;
pub mod ruleset;
pub mod set_elements;
pub mod table_dump;
pub mod table_names;
pub mod tables;

pub use rule::Unsupported;

use nix::sys::socket::{setsockopt, sockopt};
use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

/// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type, and the resource
/// id of a batch.
const SUBSYS_NFTABLES: u16 = 10;
const NFTABLES: u16 = SUBSYS_NFTABLES << 8;
/// nf_tables message types (`NFT_MSG_*`).
pub(crate) const NEW_TABLE: u16 = NFTABLES;
pub(crate) const GET_TABLE: u16 = NFTABLES + 1;
pub(crate) const DEL_TABLE: u16 = NFTABLES + 2;
pub(crate) const NEW_CHAIN: u16 = NFTABLES + 3;
pub(crate) const DEL_CHAIN: u16 = NFTABLES + 5;
pub(crate) const NEW_RULE: u16 = NFTABLES + 6;
pub(crate) const DEL_RULE: u16 = NFTABLES + 8;
pub(crate) const NEW_SET: u16 = NFTABLES + 9;
pub(crate) const DEL_SET: u16 = NFTABLES + 11;
pub(crate) const NEW_SET_ELEM: u16 = NFTABLES + 12;
pub(crate) const DEL_SET_ELEM: u16 = NFTABLES + 14;
/// `NFT_TABLE_F_OWNER`: only the netlink socket that created the table may change or delete it
/// (`nft flush ruleset` by anyone else passes it by), and the table goes when that socket
/// closes, unless it also has `NFT_TABLE_F_PERSIST` (kernel >= 6.9): then it stays, orphaned
/// (owner flag cleared), until someone deletes it or a new owner re-creates it.
pub(crate) const TABLE_F_OWNER: u32 = 2;
pub(crate) const TABLE_F_PERSIST: u32 = 4;
/// `NFTA_TABLE_NAME` and `NFTA_TABLE_FLAGS`.
pub(crate) const TABLE_NAME: u16 = 1;
pub(crate) const TABLE_FLAGS: u16 = 2;
/// `NFNL_MSG_BATCH_BEGIN` / `_END`.
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 1;
pub(crate) const NLM_F_ACK: u16 = 4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
/// `NLA_F_NESTED`, and the mask of an attribute's type.
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
/// `NFPROTO_INET` and `AF_UNSPEC`.
pub(crate) const FAMILY_INET: u8 = 1;
const FAMILY_UNSPEC: u8 = 0;
/// `struct nlmsghdr` + `struct nfgenmsg`.
pub(crate) const HEADERS: usize = 16 + 4;
/// `NFTA_LIST_ELEM` (an item of a nested list: rule expressions, set elements) and
/// `NFTA_DATA_VALUE`.
pub(crate) const LIST_ELEM: u16 = 1;
const DATA_VALUE: u16 = 1;
/// `NFTA_SET_ELEM_KEY`, `_FLAGS`, `_TIMEOUT` and `_USERDATA`.
const ELEM_KEY: u16 = 1;
const ELEM_FLAGS: u16 = 3;
pub(crate) const ELEM_TIMEOUT: u16 = 4;
const ELEM_USERDATA: u16 = 6;
/// Bounds the datagrams one answer may take, against a misbehaving kernel.
const MAX_DATAGRAMS: usize = 100_000;

/// An attribute to be written: a value, or a nest of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attr {
    Bytes(u16, Vec<u8>),
    Nest(u16, Vec<Attr>),
}

impl Attr {
    /// A NUL-terminated string.
    pub fn string(kind: u16, value: &str) -> Attr {
        Attr::Bytes(kind, [value.as_bytes(), &[0]].concat())
    }

    /// A 32-bit value in network byte order (nf_tables' convention).
    pub fn u32_be(kind: u16, value: u32) -> Attr {
        Attr::Bytes(kind, value.to_be_bytes().to_vec())
    }

    pub fn u64_be(kind: u16, value: u64) -> Attr {
        Attr::Bytes(kind, value.to_be_bytes().to_vec())
    }

    /// `value` as `NFTA_DATA_VALUE` inside a nest of `kind`.
    pub fn data(kind: u16, value: Vec<u8>) -> Attr {
        Attr::Nest(kind, vec![Attr::Bytes(DATA_VALUE, value)])
    }
}

/// One element of a set's element list: its flags, timeout and user data when given, and key.
pub(crate) fn set_element(
    key: Vec<u8>,
    flags: u32,
    timeout_ms: Option<u64>,
    userdata: Option<&[u8]>,
) -> Attr {
    let mut attrs = Vec::new();
    if flags != 0 {
        attrs.push(Attr::u32_be(ELEM_FLAGS, flags));
    }
    if let Some(ms) = timeout_ms {
        attrs.push(Attr::u64_be(ELEM_TIMEOUT, ms));
    }
    attrs.push(Attr::data(ELEM_KEY, key));
    if let Some(u) = userdata {
        attrs.push(Attr::Bytes(ELEM_USERDATA, u.to_vec()));
    }
    Attr::Nest(LIST_ELEM, attrs)
}

/// One netlink message being written: header, `nfgenmsg`, then attributes.
pub(crate) struct Message {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Message {
    /// A message of `kind` for `family`; the length is filled in by [`Message::finish`].
    pub fn new(kind: u16, flags: u16, seq: u32, family: u8) -> Self {
        Self::with_resource(kind, flags, seq, family, 0)
    }

    fn with_resource(kind: u16, flags: u16, seq: u32, family: u8, resource: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        buf.extend_from_slice(&[family, 0]); // family, NFNETLINK_V0
        buf.extend_from_slice(&resource.to_be_bytes());
        Message {
            buf,
            nests: Vec::new(),
        }
    }

    /// An attribute holding `value` as is.
    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    /// Writes `attr` (and everything nested in it).
    pub fn attr(&mut self, attr: &Attr) -> &mut Self {
        match attr {
            Attr::Bytes(kind, value) => self.bytes(*kind, value),
            Attr::Nest(kind, inner) => {
                self.open(*kind);
                for a in inner {
                    self.attr(a);
                }
                self.close()
            }
        }
    }

    /// A NUL-terminated string attribute.
    pub fn string(&mut self, kind: u16, value: &str) -> &mut Self {
        self.attr(&Attr::string(kind, value))
    }

    /// Opens a nested attribute; everything written until [`Message::close`] goes inside.
    pub fn open(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn close(&mut self) -> &mut Self {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    /// The finished message (every nest closed, length set).
    pub fn finish(mut self) -> Vec<u8> {
        while !self.nests.is_empty() {
            self.close();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The messages of one datagram as (type, whole message); an error if one is cut short.
pub(crate) fn messages(mut data: &[u8]) -> io::Result<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while data.len() >= 16 {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < 16 || len > data.len() {
            return Err(garbled());
        }
        out.push((u16::from_ne_bytes([data[4], data[5]]), &data[..len]));
        data = data.get(align(len)..).unwrap_or_default();
    }
    Ok(out)
}

/// The (negated) errno of an `NLMSG_ERROR` message: 0 for an acknowledgement.
pub(crate) fn error_code(message: &[u8]) -> io::Result<i32> {
    let b = message.get(16..20).ok_or_else(garbled)?;
    Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// The attributes of a message body as (type without flags, value).
pub(crate) fn attributes(mut data: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        out.push((kind, data.get(4..len)?));
        data = data.get(align(len.max(4))..)?;
    }
    Some(out)
}

pub(crate) fn garbled() -> io::Error {
    io::Error::other("garbled nf_tables netlink answer")
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// A netlink socket to nf_tables in the calling thread's network namespace.
pub(crate) fn socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Sends a dump request and hands each answer message to `each` until the dump is done.
pub(crate) fn dump(request: &[u8], each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    answers(request, true, each)
}

/// Sends a request for one object and hands its answer to `each` (an error as an error).
pub(crate) fn request(request: &[u8], each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    answers(request, false, each)
}

fn answers(request: &[u8], dump: bool, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
    let socket = socket()?;
    socket.send(request, 0)?;
    for _ in 0..MAX_DATAGRAMS {
        let mut datagram = Vec::with_capacity(1 << 16);
        socket.recv(&mut datagram, 0)?;
        for (kind, message) in messages(&datagram)? {
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => match error_code(message)? {
                    0 => return Ok(()),
                    code => return Err(io::Error::from_raw_os_error(-code)),
                },
                _ => each(kind, message),
            }
        }
        if !dump {
            return Ok(());
        }
    }
    Err(io::Error::other("the dump did not end"))
}

/// Wraps `messages` (numbered 1..=n) in one batch; the last one asks for an acknowledgement.
pub(crate) fn batch(messages: &[Vec<u8>]) -> Vec<u8> {
    let end_seq = messages.len() as u32 + 1;
    let begin = Message::with_resource(
        BATCH_BEGIN,
        NLM_F_REQUEST,
        0,
        FAMILY_UNSPEC,
        SUBSYS_NFTABLES,
    );
    let end = Message::with_resource(
        BATCH_END,
        NLM_F_REQUEST,
        end_seq,
        FAMILY_UNSPEC,
        SUBSYS_NFTABLES,
    );
    let mut out = begin.finish();
    for m in messages {
        out.extend_from_slice(m);
    }
    if let Some(last) = messages.last() {
        let flags = out.len() - last.len() + 6;
        let asked = u16::from_ne_bytes([out[flags], out[flags + 1]]) | NLM_F_ACK;
        out[flags..flags + 2].copy_from_slice(&asked.to_ne_bytes());
    }
    out.extend_from_slice(&end.finish());
    out
}

/// A netlink socket to nf_tables kept open for the daemon's whole life: closing a socket right
/// after a commit makes the kernel first finish that commit's cleanup (an RCU grace period,
/// ~10 ms here), and the tables the daemon creates owned ([`tables::TableOwner`]) belong to this one
/// socket (its port id), so it is never closed or replaced while the daemon runs, not even
/// after a refused batch (whose answers are read to the end). Opened on first use, in the
/// namespace of the thread using it then (the daemon's own: it enters its namespace before
/// anything else runs).
#[derive(Default)]
pub struct Connection {
    socket: Mutex<Option<Socket>>,
    /// The socket's netlink port id once open (0 before): events it caused carry it.
    port: AtomicU32,
}

impl Connection {
    /// [`transact`] on this connection's socket.
    pub fn transact(&self, messages: &[Vec<u8>]) -> io::Result<()> {
        let mut slot = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            let (socket, port) = batch_socket()?;
            self.port.store(port, Ordering::Relaxed);
            *slot = Some(socket);
        }
        let socket = slot.as_ref().ok_or_else(garbled)?;
        transact_on(socket, messages)
    }

    /// The port id of the socket (0 until the first transaction opened it): the owner of the
    /// tables this connection created, and the sender of the events they caused.
    pub fn port(&self) -> u32 {
        self.port.load(Ordering::Relaxed)
    }
}

/// Runs `messages` as one nf_tables transaction, all of them or none, on a socket of its own.
pub fn transact(messages: &[Vec<u8>]) -> io::Result<()> {
    transact_on(&batch_socket()?.0, messages)
}

/// A socket whose answers echo only the header of their message (`NETLINK_CAP_ACK`), and its
/// port id.
fn batch_socket() -> io::Result<(Socket, u32)> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    let port = socket.bind_auto()?.port_number();
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.set_cap_ack(true)?;
    Ok((socket, port))
}

/// The kernel handles a batch inside the `send` itself, so by the time it returns every answer
/// is queued on the socket: they are read without waiting. A message that fails is answered
/// with its error whatever its flags, and then the kernel has applied none of the batch; the
/// last message asks for an acknowledgement, so success is one answer, not silence.
fn transact_on(socket: &Socket, messages: &[Vec<u8>]) -> io::Result<()> {
    let batch = batch(messages);
    // The whole batch goes in one datagram, which must fit the send buffer.
    ensure_buffer(socket, batch.len())?;
    // None are left: every earlier batch was read to the end. Should one be, it is not this
    // batch's answer.
    let _ = pending_answers(socket);
    socket.send(&batch, 0)?;
    let acked = pending_answers(socket)?;
    if acked != usize::from(!messages.is_empty()) {
        return Err(io::Error::other(format!(
            "nf_tables answered a batch of {} messages with {acked} acknowledgements",
            messages.len()
        )));
    }
    Ok(())
}

/// Reads every answer queued on `socket`, to the end (the socket outlives a refused batch): the
/// acknowledgements, or the first error.
fn pending_answers(socket: &Socket) -> io::Result<usize> {
    let mut acked = 0;
    let mut first_error = None;
    for _ in 0..MAX_DATAGRAMS {
        let mut datagram = Vec::with_capacity(1 << 16);
        match socket.recv(&mut datagram, libc::MSG_DONTWAIT) {
            Ok(_) => match count_acks(&datagram) {
                Ok(n) => acked += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return first_error.map_or(Ok(acked), Err)
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("nf_tables answers did not end"))
}

/// Grows the send buffer to `needed` bytes (and some slack): past the system's cap when
/// allowed (the daemon is root), else as far as the cap lets it.
fn ensure_buffer(socket: &Socket, needed: usize) -> io::Result<()> {
    let size = needed + (64 << 10);
    if setsockopt(socket, sockopt::SndBufForce, &size).is_err() {
        setsockopt(socket, sockopt::SndBuf, &size)?;
    }
    Ok(())
}

/// The acknowledgements in one datagram of answers; the first error as an error.
fn count_acks(datagram: &[u8]) -> io::Result<usize> {
    let mut acked = 0;
    for (kind, message) in messages(datagram)? {
        if kind == NLMSG_ERROR {
            match error_code(message)? {
                0 => acked += 1,
                code => return Err(io::Error::from_raw_os_error(-code)),
            }
        }
    }
    Ok(acked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_sized() {
        let mut m = Message::new(NEW_SET_ELEM, NLM_F_REQUEST, 7, FAMILY_INET);
        m.string(1, "ab")
            .open(3)
            .open(1)
            .bytes(1, &[9])
            .close()
            .close();
        let bytes = m.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(bytes[0..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        let attrs = attributes(&bytes[HEADERS..]).unwrap();
        assert_eq!(attrs[0], (1, &b"ab\0"[..]));
        let (kind, nest) = attrs[1];
        assert_eq!(kind, 3);
        let inner = attributes(nest).unwrap();
        assert_eq!(attributes(inner[0].1).unwrap(), [(1, &[9u8][..])]);
    }

    #[test]
    fn a_batch_is_framed_for_nf_tables() {
        let message = |seq| Message::new(DEL_SET_ELEM, NLM_F_REQUEST, seq, FAMILY_INET).finish();
        let framed = batch(&[message(1), message(2)]);
        let parts = messages(&framed).unwrap();
        let kinds: Vec<u16> = parts.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [BATCH_BEGIN, DEL_SET_ELEM, DEL_SET_ELEM, BATCH_END]);
        // The batch's resource id names the nf_tables subsystem, in network byte order.
        assert_eq!(&parts[0].1[18..20], &[0, 10]);
        assert_eq!(parts[1].1, &message(1)[..]);
        // Only the last message asks for an acknowledgement.
        let flags = |m: &[u8]| u16::from_ne_bytes([m[6], m[7]]);
        assert_eq!(flags(parts[1].1), NLM_F_REQUEST);
        assert_eq!(flags(parts[2].1), NLM_F_REQUEST | NLM_F_ACK);
    }

    #[test]
    fn answers_count_acks_and_stop_at_an_error() {
        let answer = |code: i32| {
            let mut m = Message::new(NLMSG_ERROR, 0, 1, 0).finish();
            m.truncate(16);
            m.extend_from_slice(&code.to_ne_bytes());
            m.extend_from_slice(&[0; 16]);
            let len = m.len() as u32;
            m[0..4].copy_from_slice(&len.to_ne_bytes());
            m
        };
        assert_eq!(count_acks(&[answer(0), answer(0)].concat()).unwrap(), 2);
        let err = count_acks(&[answer(0), answer(-2)].concat()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(2));
        let mut cut = answer(0);
        cut[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(count_acks(&[answer(0), cut].concat()).is_err());
    }
}
