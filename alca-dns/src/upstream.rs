//! Asking the upstream servers (the host's resolvers, or `network.dns-upstream`): the query goes
//! to each server in turn over UDP, falling back to TCP when the answer is truncated.
//!
//! The transport is written here on tokio sockets rather than taken from `hickory-net`'s client:
//! the resolver needs the upstream's whole message (every section and its response code) from one
//! given server with a tight, bounded wait, and the client's multiplexer, retry and EDNS layers
//! add nothing to that. Every byte is still encoded and decoded by `hickory-proto`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_server::proto::op::{Message, MessageType, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

/// How long one server gets to answer (per transport).
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest UDP answer read (EDNS payloads are at most this in practice).
const UDP_BUFFER: usize = 4096;

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no upstream DNS server is configured")]
    NoServers,
    #[error("the query cannot be encoded: {0}")]
    Encode(String),
    #[error("{server}: {detail}")]
    Server { server: SocketAddr, detail: String },
}

/// Sends `query` to `servers` in order and returns the first answer that parses and matches
/// the query's id (any response code: NXDOMAIN is an answer).
pub async fn ask(servers: &[SocketAddr], query: &Message) -> Result<Message, UpstreamError> {
    ask_within(servers, query, SERVER_TIMEOUT).await
}

/// [`ask`], giving each server `wait` per transport.
pub async fn ask_within(
    servers: &[SocketAddr],
    query: &Message,
    wait: Duration,
) -> Result<Message, UpstreamError> {
    let bytes = query
        .to_vec()
        .map_err(|e| UpstreamError::Encode(e.to_string()))?;
    let mut last = UpstreamError::NoServers;
    for &server in servers {
        let fail = |detail: String| UpstreamError::Server { server, detail };
        match ask_udp(server, &bytes, query, wait).await {
            Ok(answer) if !answer.metadata.truncation => return Ok(answer),
            Ok(_) => match ask_tcp(server, &bytes, query, wait).await {
                Ok(answer) => return Ok(answer),
                Err(e) => last = fail(format!("TCP after a truncated UDP answer: {e}")),
            },
            Err(e) => last = fail(e),
        }
    }
    Err(last)
}

async fn ask_udp(
    server: SocketAddr,
    bytes: &[u8],
    query: &Message,
    wait: Duration,
) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(bytes).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; UDP_BUFFER];
    let answer = async {
        loop {
            let n = socket.recv(&mut buf).await.map_err(|e| e.to_string())?;
            // A stray or forged datagram is skipped; only our id counts.
            if let Some(answer) = matching(&buf[..n], query) {
                return Ok(answer);
            }
        }
    };
    timeout(wait, answer)
        .await
        .map_err(|_| format!("no UDP answer within {} s", wait.as_secs_f32()))?
}

/// Sends `query` to `server` over TCP only (a client that needs TCP, such as a test).
pub async fn ask_over_tcp(server: SocketAddr, query: &Message) -> Result<Message, UpstreamError> {
    let bytes = query
        .to_vec()
        .map_err(|e| UpstreamError::Encode(e.to_string()))?;
    ask_tcp(server, &bytes, query, SERVER_TIMEOUT)
        .await
        .map_err(|detail| UpstreamError::Server { server, detail })
}

async fn ask_tcp(
    server: SocketAddr,
    bytes: &[u8],
    query: &Message,
    wait: Duration,
) -> Result<Message, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let len = u16::try_from(bytes.len()).map_err(|_| "query too long".to_string())?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(bytes);
        stream.write_all(&framed).await.map_err(|e| e.to_string())?;
        let n = usize::from(stream.read_u16().await.map_err(|e| e.to_string())?);
        let mut buf = vec![0u8; n];
        stream
            .read_exact(&mut buf)
            .await
            .map_err(|e| e.to_string())?;
        matching(&buf, query).ok_or_else(|| "the answer does not match the query".to_string())
    };
    timeout(wait, exchange)
        .await
        .map_err(|_| format!("no TCP answer within {} s", wait.as_secs_f32()))?
}

/// The answer in `bytes`, when it parses and answers `query` (same id and question).
fn matching(bytes: &[u8], query: &Message) -> Option<Message> {
    let m = Message::from_vec(bytes).ok()?;
    (m.metadata.id == query.metadata.id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == query.queries.len()
        && m.queries.iter().zip(&query.queries).all(same_question))
    .then_some(m)
}

/// Same type, class and name (any case, with or without the final dot).
fn same_question((a, b): (&Query, &Query)) -> bool {
    let key = |q: &Query| {
        let mut n = q.name.to_lowercase();
        n.set_fqdn(true);
        n.to_string()
    };
    a.query_type == b.query_type && a.query_class == b.query_class && key(a) == key(b)
}
