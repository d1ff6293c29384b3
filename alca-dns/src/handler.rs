//! The resolver's request handler: the policy check, the upstream question, the daemon's
//! allow and only then the answer to the container.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Message, Metadata, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::DNSClass;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::sync::Mutex;

use crate::answer::{chained_addresses, updates};
use crate::policy::Policy;
use crate::query_log::{Event, Outcome, QueryLog};
use crate::sink::{AllowSink, SinkError};
use crate::upstream;

/// Least time between two refreshes of the entries from the daemon.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Most time the resolver follows entries without asking the daemon (a revoked grant stops
/// being forwarded within this time; the daemon refuses its addresses at once anyway).
const MAX_ENTRIES_AGE: Duration = Duration::from_secs(10);

/// Everything one project's resolver needs.
pub struct ResolverHandler<S> {
    /// The project id the daemon knows the allow sets by.
    project: String,
    policy: Policy,
    upstreams: Vec<SocketAddr>,
    sink: S,
    log: QueryLog,
    /// When the entries were last read from the daemon; held while they are being read.
    last_refresh: Mutex<Option<Instant>>,
}

/// What the container gets.
enum Reply {
    Code(ResponseCode),
    Answer(Message),
}

impl<S: AllowSink> ResolverHandler<S> {
    pub fn new(
        project: String,
        policy: Policy,
        upstreams: Vec<SocketAddr>,
        sink: S,
        log: QueryLog,
    ) -> Self {
        ResolverHandler {
            project,
            policy,
            upstreams,
            sink,
            log,
            last_refresh: Mutex::new(None),
        }
    }

    /// The entries allowing `name`. A name the current entries refuse is checked once more
    /// against the daemon's entries (at most once per [`REFRESH_INTERVAL`]), so a grant from
    /// `alca network allow` works at the next query; entries older than [`MAX_ENTRIES_AGE`]
    /// are refreshed before they allow anything. One refresh at a time: a query that arrives
    /// while one runs (the A and AAAA questions of one lookup come together) waits for it and
    /// is judged by its result, never by the entries it is replacing.
    async fn entries_for(&self, name: &str) -> Vec<u16> {
        let entries = self.policy.entries_for(name);
        let fresh = |last: &Option<Instant>| last.is_some_and(|t| t.elapsed() < MAX_ENTRIES_AGE);
        if !entries.is_empty() && self.last_refresh.try_lock().is_ok_and(|l| fresh(&l)) {
            return entries;
        }
        let mut last = self.last_refresh.lock().await;
        let entries = self.policy.entries_for(name);
        let due = last.is_none_or(|t| t.elapsed() >= REFRESH_INTERVAL);
        if (!entries.is_empty() && fresh(&last)) || !due {
            return entries;
        }
        *last = Some(Instant::now());
        match self.sink.entries(&self.project).await {
            Ok(Some(fresh)) => self.policy.replace(fresh),
            // No list any more: the daemon has nothing to add addresses to; refuse.
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot refresh the entries: {e}"),
        }
        self.policy.entries_for(name)
    }

    async fn resolve(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::Code(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Reply::Code(ResponseCode::FormErr);
        };
        let query = info.query.original().clone();
        let name = query.name.to_string();
        let qtype = query.query_type.to_string();
        let entries = if query.query_class == DNSClass::IN {
            self.entries_for(&name).await
        } else {
            Vec::new()
        };
        if entries.is_empty() {
            self.log
                .record(&Event::now(Outcome::Refused, &name, &qtype, None));
            return Reply::Code(ResponseCode::Refused);
        }
        let fail = |reason: String| {
            tracing::warn!("{name} {qtype}: {reason}");
            self.log
                .record(&Event::now(Outcome::Failed, &name, &qtype, Some(reason)));
            Reply::Code(ResponseCode::ServFail)
        };
        let answer = match upstream::ask(&self.upstreams, &forwarded(&query)).await {
            Ok(a) => a,
            Err(e) => return fail(format!("no upstream answer: {e}")),
        };
        let addrs = chained_addresses(&query.name, &answer);
        let Err(refused) = self.allow(&entries, &addrs).await else {
            return Reply::Answer(answer);
        };
        // The daemon refuses the index of a grant that ended or was revoked; the name may be
        // granted again under a new index meanwhile. Read the entries again and retry once
        // with them: the same name granted anew works at once, and a name nothing allows any
        // more is refused (and logged), not failed.
        let SinkError::Refused(_) = refused else {
            return fail(refused.to_string());
        };
        let Some(fresh) = self.reread_entries(&name).await else {
            return fail(refused.to_string());
        };
        if fresh.is_empty() {
            self.log
                .record(&Event::now(Outcome::Refused, &name, &qtype, None));
            return Reply::Code(ResponseCode::Refused);
        }
        if fresh == entries {
            return fail(refused.to_string());
        }
        match self.allow(&fresh, &addrs).await {
            Ok(()) => Reply::Answer(answer),
            Err(e) => fail(e.to_string()),
        }
    }

    /// Sends the addresses the entries allow to the sink, one update per entry.
    async fn allow(&self, entries: &[u16], addrs: &[(IpAddr, u32)]) -> Result<(), SinkError> {
        for update in updates(&self.project, entries, addrs) {
            self.sink.allow(update).await?;
        }
        Ok(())
    }

    /// The entries allowing `name` after reading them from the daemon again (not rate
    /// limited: it follows a refusal the daemon already answered); `None` when they cannot be
    /// read.
    async fn reread_entries(&self, name: &str) -> Option<Vec<u16>> {
        match self.sink.entries(&self.project).await {
            Ok(Some(fresh)) => self.policy.replace(fresh),
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("cannot refresh the entries: {e}");
                return None;
            }
        }
        *self.last_refresh.lock().await = Some(Instant::now());
        Some(self.policy.entries_for(name))
    }
}

/// The question sent upstream: the container's question only, with a fresh random id (never
/// the container's own message, so nothing else it carried is passed on).
fn forwarded(query: &Query) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(query.clone());
    m
}

#[async_trait::async_trait]
impl<S: AllowSink> RequestHandler for ResolverHandler<S> {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.resolve(request).await;
        let builder = MessageResponseBuilder::from_message_request(request);
        let sent = match &reply {
            Reply::Code(code) => {
                response_handle
                    .send_response(builder.error_msg(&request.metadata, *code))
                    .await
            }
            Reply::Answer(answer) => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.recursion_available = true;
                metadata.response_code = answer.metadata.response_code;
                let response = builder.build(
                    metadata,
                    answer.answers.iter(),
                    answer.authorities.iter(),
                    std::iter::empty(),
                    answer.additionals.iter(),
                );
                response_handle.send_response(response).await
            }
        };
        sent.unwrap_or_else(|e| {
            tracing::debug!("cannot send the answer: {e}");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_server::proto::op::Header {
                metadata,
                counts: Default::default(),
            })
        })
    }
}
