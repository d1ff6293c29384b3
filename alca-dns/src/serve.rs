//! Binding the resolver: UDP and TCP on the same port of the project network's gateway
//! address, so the daemon can send every DNS packet of the project's containers there.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use crate::handler::ResolverHandler;
use crate::sink::AllowSink;

/// How long a TCP client may stay idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest TCP answer buffered.
const TCP_BUFFER: usize = 65_535;
/// Attempts at finding a port free for both UDP and TCP.
const BIND_ATTEMPTS: usize = 16;

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
    let (udp, tcp) = bind_pair(ip, port).await?;
    let addr = udp.local_addr()?;
    let mut server = Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, TCP_BUFFER);
    Ok(Listening { addr, server })
}

async fn bind_pair(ip: IpAddr, port: u16) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..BIND_ATTEMPTS {
        let udp = UdpSocket::bind((ip, port)).await?;
        let bound = udp.local_addr()?.port();
        match TcpListener::bind((ip, bound)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Only a port the kernel picked may be tried again.
            Err(e) if port == 0 && e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
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
