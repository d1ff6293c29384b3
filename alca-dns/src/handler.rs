//! The resolver's request handler: the policy check, the upstream question, the daemon's
//! allow and only then the answer to the container.

use std::net::SocketAddr;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Message, Metadata, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::DNSClass;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use crate::answer::{chained_addresses, updates};
use crate::policy::Policy;
use crate::query_log::{Event, Outcome, QueryLog};
use crate::sink::AllowSink;
use crate::upstream;

/// Everything one project's resolver needs.
pub struct ResolverHandler<S> {
    /// The project id the daemon knows the allow sets by.
    pub project: String,
    pub policy: Policy,
    pub upstreams: Vec<SocketAddr>,
    pub sink: S,
    pub log: QueryLog,
}

/// What the container gets.
enum Reply {
    Code(ResponseCode),
    Answer(Message),
}

impl<S: AllowSink> ResolverHandler<S> {
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
            self.policy.entries_for(&name)
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
        for update in updates(&self.project, &entries, &addrs) {
            if let Err(e) = self.sink.allow(update).await {
                return fail(e.to_string());
            }
        }
        Reply::Answer(answer)
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
