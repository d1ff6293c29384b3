//! The host's own address for `${alca:HOST_IP}`: the primary address of the default-route interface.

use std::net::IpAddr;

/// Why the host address could not be found.
#[derive(Debug, thiserror::Error)]
#[error("cannot determine the host IP for ${{alca:HOST_IP}}: {0}")]
pub struct HostIpError(pub String);

/// Returns the primary IPv4 address of the interface holding the default route.
pub fn host_ip() -> Result<IpAddr, HostIpError> {
    Err(HostIpError("not implemented yet".into()))
}
