//! The names the CLI, the shipped OCI hook file and the daemon's hook mode agree on for
//! rootless containers (docs/rootless.md): a container created with [`ANNOTATION`] makes
//! Podman run `alca-netd --oci-hook` at its `createRuntime` stage (every start, after its
//! namespaces exist and before its command runs), which asks the daemon to apply the project's
//! held rules inside the new network namespace; a failing hook fails the start.

/// The annotation naming the container's project (its id); the hook file matches on it.
pub const ANNOTATION: &str = "io.github.alcatraz.project";
/// The argument that makes `alca-netd` act as the hook.
pub const HOOK_FLAG: &str = "--oci-hook";
/// Where the hook file goes: the hooks directory Podman reads by default, also for rootless
/// users (Podman 4.3 rootless does not read `/etc/containers/oci/hooks.d`).
pub const HOOK_FILE: &str = "/usr/share/containers/oci/hooks.d/io.github.alcatraz.netns.json";
