//! A tiny authoritative DNS server for test names (`.test`, RFC 6761) with fixed records: the
//! upstream of the resolver's own tests, of the end-to-end tests (run inside a test network
//! namespace) and of the bench. Never a product path.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

/// The zone: records by lowercase name (with the final dot).
#[derive(Debug, Clone, Default)]
pub struct Zone {
    records: HashMap<Name, Vec<Record>>,
}

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }

    /// Adds an A or AAAA record.
    pub fn addr(mut self, name: &str, ip: IpAddr, ttl: u32) -> Zone {
        let data = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        self.push(name, ttl, data);
        self
    }

    /// Adds a CNAME record.
    pub fn cname(mut self, name: &str, target: &str, ttl: u32) -> Zone {
        let target = fqdn(target);
        self.push(name, ttl, RData::CNAME(CNAME(target)));
        self
    }

    fn push(&mut self, name: &str, ttl: u32, data: RData) {
        let name = fqdn(name);
        let record = Record::from_rdata(name.clone(), ttl, data);
        self.records.entry(name).or_default().push(record);
    }

    /// The answer records for `name`/`qtype`, following CNAMEs inside the zone; `None` when
    /// the name does not exist.
    fn answer(&self, name: &Name, qtype: RecordType) -> Option<Vec<Record>> {
        let mut out = Vec::new();
        let mut current = name.to_lowercase();
        for _ in 0..8 {
            let records = self.records.get(&current)?;
            let cname = records.iter().find_map(|r| match &r.data {
                RData::CNAME(t) if qtype != RecordType::CNAME => Some((r.clone(), t.0.clone())),
                _ => None,
            });
            match cname {
                Some((r, target)) => {
                    out.push(r);
                    current = target.to_lowercase();
                }
                None => {
                    out.extend(records.iter().filter(|r| r.record_type() == qtype).cloned());
                    return Some(out);
                }
            }
        }
        Some(out)
    }
}

fn fqdn(name: &str) -> Name {
    let mut n = Name::from_ascii(name).unwrap_or_default().to_lowercase();
    n.set_fqdn(true);
    n
}

/// What the zone server saw: every question, in order.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    count: Arc<AtomicUsize>,
    names: Arc<Mutex<Vec<String>>>,
}

impl Seen {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn names(&self) -> Vec<String> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

struct ZoneHandler {
    zone: Zone,
    seen: Seen,
}

#[async_trait::async_trait]
impl RequestHandler for ZoneHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let Ok(info) = request.request_info() else {
            metadata.response_code = ResponseCode::FormErr;
            return send(
                &mut response_handle,
                builder.build_no_records(metadata),
                metadata,
            )
            .await;
        };
        let name = Name::from(info.query.name().clone());
        self.seen.count.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut names) = self.seen.names.lock() {
            names.push(name.to_string());
        }
        match self.zone.answer(&name, info.query.query_type()) {
            Some(records) => {
                let response = builder.build(
                    metadata,
                    records.iter(),
                    std::iter::empty(),
                    std::iter::empty(),
                    std::iter::empty(),
                );
                send(&mut response_handle, response, metadata).await
            }
            None => {
                metadata.response_code = ResponseCode::NXDomain;
                send(
                    &mut response_handle,
                    builder.build_no_records(metadata),
                    metadata,
                )
                .await
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    metadata: Metadata,
) -> ResponseInfo {
    handle.send_response(response).await.unwrap_or_else(|_| {
        ResponseInfo::from(hickory_server::proto::op::Header {
            metadata,
            counts: Default::default(),
        })
    })
}

/// A running zone server.
pub struct ZoneServer {
    pub addr: SocketAddr,
    pub seen: Seen,
    server: Server<ZoneHandler>,
}

impl ZoneServer {
    /// Serves `zone` on `addr` (port 0: any free port; UDP and TCP share it).
    pub async fn start(addr: SocketAddr, zone: Zone) -> std::io::Result<ZoneServer> {
        let udp = UdpSocket::bind(addr).await?;
        let addr = udp.local_addr()?;
        let tcp = TcpListener::bind(addr).await?;
        let seen = Seen::default();
        let mut server = Server::new(ZoneHandler {
            zone,
            seen: seen.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65_535);
        Ok(ZoneServer { addr, seen, server })
    }

    /// Serves until the process ends (for a standalone test server).
    pub async fn run(mut self) -> std::io::Result<()> {
        self.server
            .block_until_done()
            .await
            .map_err(std::io::Error::other)
    }

    pub async fn stop(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}
