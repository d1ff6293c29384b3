//! Interface checks over rtnetlink: the bridge a spec names must be a bridge if it exists, so
//! a caller cannot aim a project's rules at some other interface; and a network namespace the
//! daemon is asked to probe from must hang off the project's bridge.

use std::fs::File;
use std::os::fd::AsRawFd;

use futures::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::nsid::{NsidAttribute, NsidMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::Handle;

/// What an interface name currently refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkKind {
    /// No such interface (podman creates its bridge only when a container starts).
    Absent,
    Bridge,
    /// Any other interface, with its kind when the kernel reports one (`veth`, `dummy`, …).
    Other(String),
}

/// Why an interface could not be checked or is unacceptable.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot read network interfaces: {0}")]
    Netlink(String),
    #[error("bridge: interface {name:?} exists but is a {kind} device, not a bridge")]
    NotABridge { name: String, kind: String },
}

/// An rtnetlink handle; its connection task ends when this is dropped, on every path.
pub(crate) struct Netlink {
    pub(crate) handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Netlink {
    pub(crate) fn connect() -> Result<Netlink, LinkError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| LinkError::Netlink(e.to_string()))?;
        let task = tokio::spawn(connection);
        Ok(Netlink { handle, task })
    }
}

impl Netlink {
    /// Every interface, in one dump.
    pub(crate) async fn links(&self) -> Result<Vec<LinkMessage>, LinkError> {
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(netlink_error)
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn netlink_error(e: rtnetlink::Error) -> LinkError {
    LinkError::Netlink(e.to_string())
}

/// Looks up an interface by name with one netlink dump.
pub async fn link_kind(name: &str) -> Result<LinkKind, LinkError> {
    let netlink = Netlink::connect()?;
    let mut links = netlink.handle.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(netlink_error)? {
        if link_name(&link) == Some(name) {
            return Ok(kind_of(&link));
        }
    }
    Ok(LinkKind::Absent)
}

/// Accepts an absent interface or a bridge (and says whether the bridge exists); refuses
/// anything else.
pub async fn check_bridge(name: &str) -> Result<bool, LinkError> {
    match link_kind(name).await? {
        LinkKind::Absent => Ok(false),
        LinkKind::Bridge => Ok(true),
        LinkKind::Other(kind) => Err(LinkError::NotABridge {
            name: name.to_string(),
            kind,
        }),
    }
}

/// Whether the network namespace `netns` is plugged into `bridge` of the daemon's own
/// namespace: one of the bridge's ports is a veth whose other end lives in `netns` (the
/// kernel's id of that namespace, asked by file descriptor, is the port's link namespace id).
pub async fn netns_on_bridge(netns: &File, bridge: &str) -> Result<bool, LinkError> {
    let fd = u32::try_from(netns.as_raw_fd()).map_err(|e| LinkError::Netlink(e.to_string()))?;
    on_bridge(NsidAttribute::Fd(fd), bridge).await
}

/// Whether process `pid` lives in a network namespace plugged into `bridge`, asked of the
/// kernel by pid (`RTM_GETNSID` with `NETNSA_PID`): nothing of the process is opened.
pub async fn pid_on_bridge(pid: u32, bridge: &str) -> Result<bool, LinkError> {
    on_bridge(NsidAttribute::Pid(pid), bridge).await
}

async fn on_bridge(which: NsidAttribute, bridge: &str) -> Result<bool, LinkError> {
    let netlink = Netlink::connect()?;
    let links = netlink.links().await?;
    let ports = bridge_port_namespaces(&links, bridge);
    if ports.is_empty() {
        return Ok(false);
    }
    Ok(namespace_id(netlink.handle.clone(), which)
        .await?
        .is_some_and(|id| ports.contains(&id)))
}

/// The link namespace ids of the ports of `bridge` (veths whose peer is in another namespace).
fn bridge_port_namespaces(links: &[LinkMessage], bridge: &str) -> Vec<i32> {
    let Some(index) = links
        .iter()
        .find(|l| link_name(l) == Some(bridge))
        .map(|l| l.header.index)
    else {
        return Vec::new();
    };
    let controller = |l: &LinkMessage| {
        l.attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Controller(i) if *i == index))
    };
    links
        .iter()
        .filter(|l| controller(l))
        .filter_map(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::LinkNetNsId(id) if *id >= 0 => Some(*id),
                _ => None,
            })
        })
        .collect()
}

/// The id this namespace knows a namespace by (`RTM_GETNSID` by file descriptor or by pid),
/// if any.
async fn namespace_id(mut handle: Handle, which: NsidAttribute) -> Result<Option<i32>, LinkError> {
    let mut message = NsidMessage::default();
    message.attributes.push(which);
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(message));
    request.header.flags = NLM_F_REQUEST;
    let mut replies = handle.request(request).map_err(netlink_error)?;
    while let Some(reply) = replies.next().await {
        match reply.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) => {
                return Ok(m.attributes.iter().find_map(|a| match a {
                    NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                    _ => None,
                }));
            }
            NetlinkPayload::Error(e) => return Err(LinkError::Netlink(e.to_string())),
            _ => {}
        }
    }
    Ok(None)
}

pub(crate) fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

pub(crate) fn kind_of(link: &LinkMessage) -> LinkKind {
    let kind = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.clone()),
            _ => None,
        }),
        _ => None,
    });
    match kind {
        Some(InfoKind::Bridge) => LinkKind::Bridge,
        Some(other) => LinkKind::Other(other.to_string().to_lowercase()),
        None => LinkKind::Other("plain (no link kind)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn loopback_is_not_a_bridge_and_absent_names_pass() {
        assert!(matches!(link_kind("lo").await.unwrap(), LinkKind::Other(_)));
        assert!(matches!(
            check_bridge("lo").await,
            Err(LinkError::NotABridge { .. })
        ));
        assert_eq!(link_kind("alca-zz-none").await.unwrap(), LinkKind::Absent);
        assert!(!check_bridge("alca-zz-none").await.unwrap());
    }
}
