//! Who is calling and may they: the caller's uid from the bus daemon, and polkit's verdict on
//! the caller's *system bus name* (taken from the message header, never our own PID).

use std::collections::HashMap;

use zbus::message::Header;
use zbus::names::BusName;
use zbus::Connection;
use zbus_polkit::policykit1::{AuthorityProxy, CheckAuthorizationFlags, Subject};

use alca_contract::bus::ACTION_READ;
use alca_contract::errors::NetdError;

fn internal(what: &str) -> impl FnOnce(zbus::Error) -> NetdError + '_ {
    move |e| NetdError::Internal(format!("{what}: {e}"))
}

/// The unix uid of the connection that sent `header`, as the bus daemon knows it.
pub async fn caller_uid(conn: &Connection, header: &Header<'_>) -> Result<u32, NetdError> {
    let sender = header
        .sender()
        .ok_or_else(|| NetdError::NotAuthorized("the call has no sender".into()))?;
    let dbus = zbus::fdo::DBusProxy::new(conn)
        .await
        .map_err(internal("cannot reach the bus daemon"))?;
    dbus.get_connection_unix_user(BusName::Unique(sender.clone()))
        .await
        .map_err(|e| NetdError::Internal(format!("cannot find the caller's uid: {e}")))
}

/// Asks polkit whether the sender may perform `action`. Root is always allowed.
pub async fn authorize(
    conn: &Connection,
    header: &Header<'_>,
    caller: u32,
    action: &str,
) -> Result<(), NetdError> {
    if caller == 0 {
        return Ok(());
    }
    let subject = Subject::new_for_message_header(header)
        .map_err(|e| NetdError::NotAuthorized(format!("cannot identify the caller: {e}")))?;
    let authority = AuthorityProxy::new(conn)
        .await
        .map_err(internal("cannot reach polkit"))?;
    // Reads never ask for a password: a flood of them must not pop up dialogs.
    let flags = if action == ACTION_READ {
        CheckAuthorizationFlags::empty()
    } else {
        CheckAuthorizationFlags::ALLOW_USER_INTERACTION
    };
    let result = authority
        .check_authorization(&subject, action, &HashMap::new(), flags, "")
        .await
        .map_err(internal("polkit check failed"))?;
    if result.is_authorized {
        return Ok(());
    }
    Err(NetdError::NotAuthorized(format!(
        "polkit does not allow uid {caller} to perform {action} (is the user in group `alcatraz`?)"
    )))
}
