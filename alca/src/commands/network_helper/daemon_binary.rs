//! Which `alca-netd` binary `network-helper install` installs (natively or into the helper
//! container), and whether a native daemon is already installed: what `install`, the
//! container mode and `uninstall` all need, kept apart so none of them depends on another.

use std::path::{Path, PathBuf};

use alca_contract::shipped::{DAEMON_PATH, FILES};
use anyhow::{bail, Context};

use super::package::PACKAGED_DAEMON;

/// Environment variable naming the `alca-netd` binary to install.
pub const NETD_BIN_ENV: &str = "ALCA_NETD_BIN";

/// The daemon binary to install: `$ALCA_NETD_BIN`, else `alca-netd` next to this executable,
/// else the packaged one (`../libexec/alca-netd`).
pub fn source_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(NETD_BIN_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{NETD_BIN_ENV}={}: no such file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot find the running alca executable")?;
    let mut candidate = exe.with_file_name("alca-netd");
    if !candidate.is_file() && Path::new(PACKAGED_DAEMON).is_file() {
        candidate = PathBuf::from(PACKAGED_DAEMON);
    }
    if !candidate.is_file() {
        bail!(
            "alca-netd was not found next to {} ; install it alongside alca \
             (`cargo install --path alca-netd`) or set {NETD_BIN_ENV}=/path/to/alca-netd",
            exe.display()
        );
    }
    Ok(candidate)
}

/// The user to add to the group: `--user`, else the one who ran sudo.
/// Whether the daemon is installed on the system bus (by `install` or by a package).
pub fn native_installed() -> bool {
    [DAEMON_PATH, PACKAGED_DAEMON, FILES[1].path]
        .iter()
        .any(|p| Path::new(p).exists())
}
