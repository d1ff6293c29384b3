//! Binding the resolver: UDP and TCP on the same port of the project network's gateway
//! address, so the daemon can send every DNS packet of the project's containers there.
//!
//! [`bind_before_up`] binds with `IP_FREEBIND`: Podman (netavark) creates a network's bridge
//! and puts the gateway address on it only when the first container starts, after `up`
//! applied the rules naming the resolver. Until the address exists nothing reaches the
//! resolver (DNS fails, closed); once it does, the bound sockets receive. Everywhere else
//! [`bind`] refuses an address the host does not have, so a wrong one is an error at `up`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_server::Server;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

use crate::handler::ResolverHandler;
use crate::sink::AllowSink;

/// How long a TCP client may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest TCP answer buffered.
const TCP_BUFFER: usize = 65_535;
/// Attempts at finding a port free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 16;
/// Pending TCP connections (tokio's `TcpListener::bind` uses the same).
const TCP_BACKLOG: i32 = 1024;

/// A bound resolver.
pub struct Listening<S: AllowSink> {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    server: Server<ResolverHandler<S>>,
}

/// Binds UDP and TCP on `ip:port` (`port` 0: a free port both protocols share).
pub async fn bind<S: AllowSink>(
    ip: IpAddr,
    port: u16,
    handler: ResolverHandler<S>,
) -> std::io::Result<Listening<S>> {
    bind_with(ip, port, handler, false).await
}

/// [`bind`] on an address the host may not have yet (the gateway of a Podman network whose
/// first container has not started).
pub async fn bind_before_up<S: AllowSink>(
    ip: IpAddr,
    port: u16,
    handler: ResolverHandler<S>,
) -> std::io::Result<Listening<S>> {
    bind_with(ip, port, handler, true).await
}

async fn bind_with<S: AllowSink>(
    ip: IpAddr,
    port: u16,
    handler: ResolverHandler<S>,
    freebind: bool,
) -> std::io::Result<Listening<S>> {
    let (udp, tcp) = bind_pair(ip, port, freebind).await?;
    let addr = udp.local_addr()?;
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, TCP_BUFFER);
    Ok(Listening { addr, server })
}

async fn bind_pair(
    ip: IpAddr,
    port: u16,
    freebind: bool,
) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = bind_udp(SocketAddr::new(ip, port), freebind)?;
        let bound = udp.local_addr()?.port();
        match bind_tcp(SocketAddr::new(ip, bound), freebind) {
            Ok(tcp) => return Ok((udp, tcp)),
            // Only a port the kernel picked may be tried again.
            Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// A non-blocking socket of `kind` for `addr`; with `freebind`, one that may bind before the
/// address is up (`IP_FREEBIND`).
fn socket_for(addr: SocketAddr, kind: Type, freebind: bool) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, None)?;
    match (freebind, addr.is_ipv4()) {
        (false, _) => {}
        (true, true) => socket.set_freebind_v4(true)?,
        (true, false) => socket.set_freebind_v6(true)?,
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_udp(addr: SocketAddr, freebind: bool) -> std::io::Result<UdpSocket> {
    let socket = socket_for(addr, Type::DGRAM, freebind)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

fn bind_tcp(addr: SocketAddr, freebind: bool) -> std::io::Result<TcpListener> {
    let socket = socket_for(addr, Type::STREAM, freebind)?;
    // As tokio's own `TcpListener::bind`: a restarted resolver can take its port again.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

impl<S: AllowSink> Listening<S> {
    /// Serves until [`Listening::stop`] is called from another task (or the sockets fail).
    pub async fn run(mut self) -> std::io::Result<()> {
        self.server
            .block_until_done()
            .await
            .map_err(std::io::Error::other)
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> impl Fn() + Send + Sync + 'static {
        let token = self.server.shutdown_token().clone();
        move || token.cancel()
    }
}
