//! Interface checks over rtnetlink: the bridge a spec names must be a bridge if it exists, so
//! a caller cannot aim a project's rules at some other interface.

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};

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

/// Looks up an interface by name with one netlink dump.
pub async fn link_kind(name: &str) -> Result<LinkKind, LinkError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| LinkError::Netlink(e.to_string()))?;
    let task = tokio::spawn(connection);
    let mut links = handle.link().get().execute();
    let mut found = LinkKind::Absent;
    loop {
        match links.try_next().await {
            Ok(Some(link)) if link_name(&link) == Some(name) => {
                found = kind_of(&link);
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                task.abort();
                return Err(LinkError::Netlink(e.to_string()));
            }
        }
    }
    task.abort();
    Ok(found)
}

/// Accepts an absent interface or a bridge; refuses anything else.
pub async fn check_bridge(name: &str) -> Result<(), LinkError> {
    match link_kind(name).await? {
        LinkKind::Absent | LinkKind::Bridge => Ok(()),
        LinkKind::Other(kind) => Err(LinkError::NotABridge {
            name: name.to_string(),
            kind,
        }),
    }
}

fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

fn kind_of(link: &LinkMessage) -> LinkKind {
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
        assert!(check_bridge("alca-zz-none").await.is_ok());
    }
}
