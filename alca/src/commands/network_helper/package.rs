//! What the `.deb`/`.rpm` packages install, so `install`, `status` and `uninstall` work with
//! the package's files instead of writing their own copies over them.

use std::path::Path;

/// The packaged daemon (`packaging/build.sh`).
pub const PACKAGED_DAEMON: &str = "/usr/libexec/alca-netd";
/// The packaged bus policy.
pub const PACKAGED_BUS_POLICY: &str = "/usr/share/dbus-1/system.d/io.github.alcatraz.Netd1.conf";
/// The packaged activation file (same place as the one `install` writes).
pub const PACKAGED_ACTIVATION: &str =
    "/usr/share/dbus-1/system-services/io.github.alcatraz.Netd1.service";

/// Whether a package installed the daemon.
pub fn packaged() -> bool {
    Path::new(PACKAGED_DAEMON).is_file()
}

/// Files without which the packaged daemon cannot be reached.
pub fn core_files() -> [&'static str; 3] {
    [PACKAGED_DAEMON, PACKAGED_BUS_POLICY, PACKAGED_ACTIVATION]
}
