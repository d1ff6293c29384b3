//! The one root check of `alca` (and of the end-to-end suites, which call it): the effective
//! uid from `geteuid`, never a spawned `id -u`.

/// Whether this process runs with root's effective uid.
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}
