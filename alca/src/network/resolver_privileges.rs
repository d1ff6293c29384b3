//! The resolver of a project root runs (rootful Podman is driven by `sudo alca up`): DNS
//! parsing never runs as root, so once the resolver holds what only root could get it drops
//! to the unprivileged `nobody` before it reads a single DNS message.
//!
//! What it keeps from root: its system-bus connection, authenticated as uid 0 when it was
//! opened (the bus records the peer's credentials at connect), which is what lets it update the
//! allow sets of a project root owns (and which it narrowed to that project's resolver calls
//! before this drop: `NetdSink::connect`), and its sockets on the gateway. The process is made
//! non-dumpable, so no other process of `nobody` can ptrace it or take the connection's file
//! descriptor through `/proc`. Its state directory is handed to `nobody` so the query log can
//! be written and rotated.

use std::path::Path;

use anyhow::{bail, Context};
use nix::unistd::{Gid, Uid, User};

/// The account the resolver of a root-owned project runs as.
pub const RESOLVER_USER: &str = "nobody";

/// When running as root: gives `state_dir` and the query logs in it to [`RESOLVER_USER`], then
/// drops every privilege to that user (groups, gid, uid) and stays non-dumpable. Not root:
/// nothing to do. Fails closed: an error means the resolver does not serve.
pub fn drop_root(state_dir: &Path, logs: &[&Path]) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let user = User::from_name(RESOLVER_USER)
        .context("cannot read the user database")?
        .with_context(|| {
            format!("the DNS resolver runs as {RESOLVER_USER:?} when root starts it, and this host has no such user")
        })?;
    if user.uid.is_root() {
        bail!("{RESOLVER_USER:?} is uid 0 on this host: the resolver will not run as root");
    }
    // lchown: a symlink planted in the directory is never followed.
    for path in std::iter::once(state_dir).chain(logs.iter().copied()) {
        match std::os::unix::fs::lchown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw())) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot hand {} to {RESOLVER_USER}", path.display()))
            }
        }
    }
    become_user(user.uid, user.gid)
}

/// Groups, then gid, then uid (the order in which each step is still allowed), checked after.
fn become_user(uid: Uid, gid: Gid) -> anyhow::Result<()> {
    nix::unistd::setgroups(&[]).context("cannot drop the supplementary groups")?;
    nix::unistd::setresgid(gid, gid, gid).context("cannot change the group")?;
    nix::unistd::setresuid(uid, uid, uid).context("cannot change the user")?;
    if nix::unistd::geteuid().is_root() || nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("the resolver could not give up root");
    }
    nix::sys::prctl::set_dumpable(false).context("cannot make the resolver non-dumpable")?;
    Ok(())
}
