//! One daemon per helper container: the container's main process (`--container`) answers
//! every request on a unix socket ([`SOCKET_PATH`], root only), and `alca-netd request` (what
//! `docker exec` runs) only carries one request there and the reply back. State that lives in
//! memory — the time-boxed grants, the projects' resolvers and their channels — is then the
//! same for every request, as it is for the D-Bus daemon.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alca_contract::errors::NetdError;
use alca_contract::helper_protocol::{HelperReply, MAX_ENVELOPE_BYTES, SOCKET_PATH};

use crate::daemon::Daemon;
use crate::helper_resolvers::HelperResolvers;

/// Requests answered at once at most; more are refused (`LimitReached`).
const MAX_CONCURRENT: usize = 16;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `request` waits for the answer (a resolver's start may take 20 s).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Binds [`SOCKET_PATH`] (a stale one from before a restart is replaced), mode 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Answers requests on `listener`, each on a thread of its own, until the process ends.
pub fn serve(listener: UnixListener, daemon: Arc<Daemon>, resolvers: Arc<HelperResolvers>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONCURRENT {
            busy.fetch_sub(1, Ordering::SeqCst);
            let reply: HelperReply = NetdError::LimitReached(format!(
                "{MAX_CONCURRENT} requests are being answered; try again"
            ))
            .into();
            let _ = write_reply(&mut conn, &reply);
            continue;
        }
        let (daemon, resolvers, busy) = (
            Arc::clone(&daemon),
            Arc::clone(&resolvers),
            Arc::clone(&busy),
        );
        let spawned = std::thread::Builder::new()
            .name("helper-request".into())
            .spawn(move || {
                answer(&mut conn, &daemon, &resolvers);
                busy.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot answer a request: {e}");
        }
    }
}

fn answer(conn: &mut UnixStream, daemon: &Arc<Daemon>, resolvers: &HelperResolvers) {
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    let mut input = Vec::new();
    let limit = MAX_ENVELOPE_BYTES as u64 + 1;
    let reply = match conn.take(limit).read_to_end(&mut input) {
        Ok(_) => handle_here(daemon, resolvers, &input),
        Err(e) => NetdError::invalid(format!("cannot read the request: {e}")).into(),
    };
    let _ = write_reply(conn, &reply);
}

/// One request, with the host's on-link networks read again first and the bridge checked
/// over rtnetlink (both need a runtime of their own on this thread).
fn handle_here(daemon: &Arc<Daemon>, resolvers: &HelperResolvers, input: &[u8]) -> HelperReply {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return NetdError::Internal(format!("cannot start a runtime: {e}")).into(),
    };
    if let Err(e) = runtime.block_on(crate::onlink::refresh(daemon)) {
        tracing::error!("cannot read the host's on-link networks: {e}");
    }
    let check_bridge = |name: &str| {
        runtime
            .block_on(crate::bridge_links::check_bridge(name))
            .map_err(|e| e.to_string())
    };
    crate::helper_container::handle(daemon, resolvers, input, &check_bridge)
}

fn write_reply(conn: &mut UnixStream, reply: &HelperReply) -> std::io::Result<()> {
    let text = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    conn.write_all(&text)
}

/// `alca-netd request`: carries `input` to the container's daemon and returns its reply.
pub fn forward(input: &[u8]) -> HelperReply {
    match try_forward(Path::new(SOCKET_PATH), input) {
        Ok(reply) => reply,
        Err(e) => NetdError::Internal(format!(
            "the helper's daemon does not answer on {SOCKET_PATH} ({e}): it is the container's \
             main process; see `docker logs alcatraz-network-helper`, or run `alca \
             network-helper install` again"
        ))
        .into(),
    }
}

fn try_forward(path: &Path, input: &[u8]) -> std::io::Result<HelperReply> {
    let mut conn = UnixStream::connect(path)?;
    conn.set_read_timeout(Some(REPLY_TIMEOUT))?;
    conn.write_all(input)?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut out = Vec::new();
    conn.read_to_end(&mut out)?;
    serde_json::from_slice(&out).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::test_support::Recorder;
    use alca_contract::helper_protocol::HelperRequest;

    #[test]
    fn one_daemon_answers_every_forwarded_request() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Arc::new(Daemon::new(
            Box::new(Recorder::default()),
            Store::new(dir.path().join("state")),
        ));
        let resolvers = Arc::new(HelperResolvers::new(
            Arc::clone(&daemon),
            "/nonexistent",
            dir.path().join("dns"),
        ));
        let path = dir.path().join("run/helper.sock");
        let listener = bind(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::thread::spawn(move || serve(listener, daemon, resolvers));
        let version = serde_json::to_vec(&HelperRequest::Version).unwrap();
        assert_eq!(
            try_forward(&path, &version).unwrap(),
            HelperReply::Version(env!("CARGO_PKG_VERSION").into())
        );
        let reply = try_forward(&path, b"{").unwrap();
        assert!(matches!(reply, HelperReply::Error { .. }), "{reply:?}");
        assert!(try_forward(&dir.path().join("absent.sock"), &version).is_err());
    }
}
