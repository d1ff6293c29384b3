//! The named D-Bus errors of `io.github.alcatraz.Netd1`, shared by the daemon (which returns
//! them) and the client proxy (which decodes them back into the same type).

/// The transport error inside [`NetdError::ZBus`], for callers that do not depend on zbus.
pub use zbus::Error as TransportError;

/// Prefix of every error name the daemon returns.
pub const ERROR_PREFIX: &str = "io.github.alcatraz.Netd1.Error";

/// A failed call. Each variant becomes the D-Bus error `io.github.alcatraz.Netd1.Error.<Variant>`
/// with the string as its human-readable message.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "io.github.alcatraz.Netd1.Error")]
pub enum NetdError {
    /// A transport or bus error (on the client side: the daemon or bus is unreachable).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// polkit refused the caller (not in group `alcatraz`, no admin authentication).
    NotAuthorized(String),
    /// The request failed to decode or validate; nothing was changed.
    InvalidRequest(String),
    /// The project belongs to another user.
    NotOwner(String),
    /// nftables refused the transaction; the previous rules are still in place.
    ApplyFailed(String),
    /// A quota or rate limit of the caller (or of the host) was reached; nothing was changed.
    LimitReached(String),
    /// The daemon could not read or write its own state.
    Internal(String),
}

impl NetdError {
    /// A refused request, with the reason as its message.
    pub fn invalid(reason: impl std::fmt::Display) -> Self {
        NetdError::InvalidRequest(reason.to_string())
    }

    /// The message without the error name, for user-facing output.
    pub fn message(&self) -> String {
        match self {
            NetdError::ZBus(e) => e.to_string(),
            NetdError::NotAuthorized(m)
            | NetdError::InvalidRequest(m)
            | NetdError::NotOwner(m)
            | NetdError::ApplyFailed(m)
            | NetdError::LimitReached(m)
            | NetdError::Internal(m) => m.clone(),
        }
    }
}
