//! The helper-container flavour of `network-helper install|uninstall` (the default on macOS,
//! `--container` on Linux): builds or loads the `alcatraz-network-helper` image, runs it
//! privileged in the runtime's VM (or host) and removes it with every `alca-` table.
//!
//! No sudo: the container runtime is the privilege here, as it already is for `alca up`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alca_contract::helper_protocol::{
    image_ref, CONTAINER_NAME, IMAGE_REPO, LABEL, PLATFORM_ENV, STATE_VOLUME,
};
use anyhow::{bail, Context};

use super::system::confirm;
use crate::cli::HelperArgs;
use crate::network::helper_container_guard::{container_state, HelperGuard, HELPER_RUNTIME};

/// LaunchAgent that starts the helper again whenever the runtime's VM comes back (macOS).
const LAUNCH_AGENT: &str =
    include_str!("../../../../launchd/io.github.alcatraz.network-helper.plist");
/// The agent's label (also its file name under `~/Library/LaunchAgents`).
const LAUNCH_AGENT_LABEL: &str = "io.github.alcatraz.network-helper";
/// Where `nft` lives in the image (the daemon looks there first).
const IMAGE_NFT: &str = "usr/sbin/nft";
/// Where `alca-netd` lives in the image.
const IMAGE_NETD: &str = "usr/sbin/alca-netd";
/// The projects' DNS resolver (`network.internet-access`), found next to `alca-netd`.
const RESOLVER_BIN: &str = "alca-dns-resolver";

/// Runs `docker ARGS`; a failure carries its stderr.
fn runtime(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(HELPER_RUNTIME)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {HELPER_RUNTIME}"))?;
    if !out.status.success() {
        bail!(
            "{HELPER_RUNTIME} {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Which VM the runtime runs in, from `docker info`: `orbstack`, `docker-desktop` or `linux`.
pub fn platform_of(operating_system: &str) -> &'static str {
    let os = operating_system.to_ascii_lowercase();
    if os.contains("orbstack") {
        "orbstack"
    } else if os.contains("docker desktop") {
        "docker-desktop"
    } else {
        "linux"
    }
}

fn detect_platform() -> anyhow::Result<&'static str> {
    let os = runtime(&["info", "--format", "{{.OperatingSystem}}"]).context(
        "the helper container needs a running Docker engine (Docker Desktop, OrbStack or dockerd)",
    )?;
    Ok(platform_of(&os))
}

/// Whether the helper container exists (running or not).
pub fn installed() -> bool {
    container_state().is_some()
}

fn plan(platform: &str, archive: Option<&Path>) -> Vec<String> {
    let image = image_ref();
    let mut plan = vec![match archive {
        Some(a) => format!("Load image {image} from {}", a.display()),
        None => {
            format!("Build image {image} from this machine's alca-netd, alca-dns-resolver and nft")
        }
    }];
    plan.push(format!(
        "Run container {CONTAINER_NAME} (--privileged --pid=host --net=host --restart=always, \
         state in volume {STATE_VOLUME}, platform {platform})"
    ));
    if cfg!(target_os = "macos") {
        plan.push(format!("Install LaunchAgent {LAUNCH_AGENT_LABEL}"));
    }
    plan
}

/// `network-helper install` in container mode.
pub fn install(args: &HelperArgs, netd: Option<PathBuf>) -> anyhow::Result<()> {
    if super::daemon_binary::native_installed() {
        bail!(
            "the native network helper (alca-netd on the system bus) is installed; both would \
             manage the same alca- tables. Run `sudo alca network-helper uninstall` first"
        );
    }
    let platform = detect_platform()?;
    let archive = args.image_archive.clone();
    println!("This will install the Alcatraz network helper container:");
    if !confirm(args.yes, &plan(platform, archive.as_deref()))? {
        println!("Installation cancelled.");
        return Ok(());
    }
    println!();
    match &archive {
        Some(path) => load_image(path)?,
        None => build_image(netd.as_deref())?,
    }
    run_container(platform)?;
    let version = wait_for_helper()?;
    println!("Helper container: running (alca-netd {version}, platform {platform})");
    if cfg!(target_os = "macos") {
        install_launch_agent()?;
    }
    println!();
    println!("Network helper installed successfully. `alca up` needs no sudo.");
    Ok(())
}

/// `network-helper image --output PATH`: builds the image here and saves it for another machine
/// (a Mac of the same CPU architecture, whose runtime VM runs it).
pub fn save_image(output: &Path) -> anyhow::Result<()> {
    let netd = std::env::var_os(super::daemon_binary::NETD_BIN_ENV).map(PathBuf::from);
    build_image(netd.as_deref())?;
    let path = output.to_string_lossy();
    runtime(&["save", "-o", &path, &image_ref()])?;
    println!("Saved {} to {path}", image_ref());
    Ok(())
}

fn load_image(archive: &Path) -> anyhow::Result<()> {
    let path = archive.to_string_lossy();
    runtime(&["load", "-i", &path])?;
    runtime(&["image", "inspect", &image_ref()]).with_context(|| {
        format!(
            "{path} does not contain {}; use the archive of this alca version",
            image_ref()
        )
    })?;
    println!("Loaded image {} from {path}", image_ref());
    Ok(())
}

/// Builds the image without a registry: a root filesystem holding `alca-netd`, `nft` and
/// their shared libraries (as `ldd` lists them), imported with `docker import`.
fn build_image(netd: Option<&Path>) -> anyhow::Result<()> {
    if !cfg!(target_os = "linux") {
        bail!(
            "cannot build the helper image on this system: pass --image-archive with the \
             {IMAGE_REPO} image archive of this release (built on Linux by packaging/build.sh)"
        );
    }
    let netd = match netd {
        Some(p) => p.to_path_buf(),
        None => super::daemon_binary::source_binary()?,
    };
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .context("nft was not found: install nftables (apt-get install nftables)")?;
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let root = work.path().join("rootfs");
    copy_with_libraries(&netd, &root, IMAGE_NETD)?;
    // The resolver is a binary of its own, not the daemon: it parses DNS, and runs in the
    // helper only as an unprivileged uid the daemon starts it as.
    let resolver = netd.with_file_name(RESOLVER_BIN);
    if resolver.is_file() {
        let at = alca_contract::helper_protocol::IMAGE_RESOLVER.trim_start_matches('/');
        copy_with_libraries(&resolver, &root, at)?;
    } else {
        println!(
            "Note: {} was not found, so the helper cannot run the DNS resolver of \
             network.internet-access lists (build it with `cargo build -p alca-dns`)",
            resolver.display()
        );
    }
    copy_with_libraries(nft, &root, IMAGE_NFT)?;
    for etc in ["etc/protocols", "etc/services"] {
        let host = Path::new("/").join(etc);
        if host.is_file() {
            copy_into(&host, &root.join(etc))?;
        }
    }
    fs::create_dir_all(root.join("var/lib/alcatraz"))?;
    fs::create_dir_all(root.join("proc"))?;
    let tarball = work.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .context("cannot run tar")?;
    if !status.success() {
        bail!("tar could not pack the helper's root filesystem");
    }
    let tarball = tarball.to_string_lossy();
    let previous = runtime(&["image", "inspect", "--format", "{{.Id}}", &image_ref()]).ok();
    let label = format!("LABEL {LABEL}");
    runtime(&[
        "import",
        "--change",
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "--change",
        &label,
        "--change",
        "ENTRYPOINT [\"/usr/sbin/alca-netd\"]",
        "--change",
        "CMD [\"--container\"]",
        &tarball,
        &image_ref(),
    ])?;
    let built = runtime(&["image", "inspect", "--format", "{{.Id}}", &image_ref()]).ok();
    if let Some(old) = previous.filter(|old| Some(old) != built.as_ref()) {
        // The tag moved to the new build: do not leave the old one dangling.
        let _ = runtime(&["image", "rm", &old]);
    }
    println!("Built image {} from {}", image_ref(), netd.display());
    Ok(())
}

/// Copies `binary` to `root/at` and every shared library it loads to the same path under `root`.
fn copy_with_libraries(binary: &Path, root: &Path, at: &str) -> anyhow::Result<()> {
    copy_into(binary, &root.join(at))?;
    for lib in shared_libraries(binary)? {
        let target = root.join(lib.strip_prefix("/").unwrap_or(&lib));
        if !target.exists() {
            copy_into(&lib, &target)?;
        }
    }
    Ok(())
}

fn copy_into(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("cannot copy {} into the helper image", from.display()))
}

/// The absolute paths `ldd` resolves for `binary` (none for a static binary).
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd")?;
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// `libx.so => /lib/libx.so (0x…)` and `/lib64/ld-linux-x86-64.so.2 (0x…)` lines.
pub fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn run_container(platform: &str) -> anyhow::Result<()> {
    if installed() {
        runtime(&["rm", "-f", CONTAINER_NAME])?;
        println!("Removed the previous {CONTAINER_NAME} container (saved rules are kept)");
    }
    let mut result = docker_run(platform, &["--privileged"]);
    if let Err(e) = &result {
        if e.to_string().contains("apply caps") {
            // The engine's own capability set is reduced (it runs in a sandbox or CI container)
            // and cannot grant every capability: ask only for those alca-netd uses.
            println!(
                "This Docker engine cannot grant --privileged; running the helper with only \
                 {} instead",
                MINIMAL_CAPS.join(", ")
            );
            let caps: Vec<String> = MINIMAL_CAPS
                .iter()
                .map(|c| format!("--cap-add={c}"))
                .collect();
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            result = docker_run(platform, &caps);
        }
    }
    if let Err(e) = result {
        if platform == "docker-desktop" {
            bail!(
                "{e}\nDocker Desktop's Enhanced Container Isolation blocks --pid=host and \
                 --net=host, which the helper needs: turn it off, or use OrbStack"
            );
        }
        return Err(e);
    }
    println!("Started container {CONTAINER_NAME}");
    Ok(())
}

/// What alca-netd needs when `--privileged` is not available: nftables and netlink, `setns`,
/// and opening PID 1's namespace.
const MINIMAL_CAPS: [&str; 3] = ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"];

fn docker_run(platform: &str, privileges: &[&str]) -> anyhow::Result<String> {
    let volume = format!("{STATE_VOLUME}:/var/lib/alcatraz");
    let env = format!("{PLATFORM_ENV}={platform}");
    let mut args = vec!["run", "-d", "--name", CONTAINER_NAME, "--label", LABEL];
    args.extend_from_slice(privileges);
    let image = image_ref();
    args.extend([
        "--pid=host",
        "--net=host",
        "--restart=always",
        "-e",
        &env,
        "-v",
        &volume,
        &image,
    ]);
    let result = runtime(&args);
    if result.is_err() {
        // A failed `run` may leave a created container behind.
        let _ = runtime(&["rm", "-f", CONTAINER_NAME]);
    }
    result
}

/// Waits (bounded) until the helper answers; fails with its log otherwise.
fn wait_for_helper() -> anyhow::Result<String> {
    let guard = HelperGuard::new();
    let mut last = String::new();
    for _ in 0..40 {
        match guard.version() {
            Ok(v) => return Ok(v),
            Err(e) => last = e.message(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let logs = runtime(&["logs", "--tail", "20", CONTAINER_NAME]).unwrap_or_default();
    bail!("the helper container does not answer: {last}\n{logs}")
}

fn launch_agent_path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home)
        .join("Library/LaunchAgents")
        .join(format!("{LAUNCH_AGENT_LABEL}.plist")))
}

fn install_launch_agent() -> anyhow::Result<()> {
    let path = launch_agent_path()?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&path, LAUNCH_AGENT).with_context(|| format!("cannot write {}", path.display()))?;
    let p = path.to_string_lossy();
    let _ = Command::new("launchctl").args(["unload", &p]).output();
    let loaded = Command::new("launchctl").args(["load", "-w", &p]).status();
    if !loaded.is_ok_and(|s| s.success()) {
        bail!("wrote {p} but launchctl could not load it");
    }
    println!("Installed LaunchAgent {p}");
    Ok(())
}

fn uninstall_plan() -> Vec<String> {
    let mut plan = vec![
        "Delete every nftables table named alca-… (through the helper)".to_string(),
        format!("Remove container {CONTAINER_NAME}, volume {STATE_VOLUME} and image {IMAGE_REPO}"),
    ];
    if cfg!(target_os = "macos") {
        plan.push(format!("Remove LaunchAgent {LAUNCH_AGENT_LABEL}"));
    }
    plan
}

/// `network-helper uninstall` of the container: rules, container, volume, images, agent.
pub fn uninstall(args: &HelperArgs) -> anyhow::Result<bool> {
    println!("This will remove the network helper container and all Alcatraz network rules:");
    if !confirm(args.yes, &uninstall_plan())? {
        println!("Uninstallation cancelled.");
        return Ok(false);
    }
    println!();
    if cfg!(target_os = "macos") {
        if let Ok(path) = launch_agent_path() {
            let p = path.to_string_lossy();
            let _ = Command::new("launchctl").args(["unload", &p]).output();
            if fs::remove_file(&path).is_ok() {
                println!("Removed LaunchAgent {p}");
            }
        }
    }
    if container_state().as_deref() == Some("false") {
        runtime(&["start", CONTAINER_NAME])?;
    }
    let tables = HelperGuard::new()
        .purge()
        .map_err(|e| anyhow::anyhow!("cannot remove the alca- tables: {}", e.message()))?;
    for table in tables {
        println!("Deleted nftables table inet {table}");
    }
    runtime(&["rm", "-f", CONTAINER_NAME])?;
    println!("Removed container {CONTAINER_NAME}");
    if runtime(&["volume", "inspect", STATE_VOLUME]).is_ok() {
        runtime(&["volume", "rm", STATE_VOLUME])?;
        println!("Removed volume {STATE_VOLUME}");
    }
    let filter = format!("reference={IMAGE_REPO}");
    let images = runtime(&[
        "images",
        "--filter",
        &filter,
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])?;
    for image in images.lines().filter(|l| !l.is_empty()) {
        runtime(&["image", "rm", image])?;
        println!("Removed image {image}");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_vm_from_docker_info() {
        assert_eq!(platform_of("OrbStack"), "orbstack");
        assert_eq!(platform_of("Docker Desktop"), "docker-desktop");
        assert_eq!(platform_of("Debian GNU/Linux 12 (bookworm)"), "linux");
    }

    #[test]
    fn reads_library_paths_from_ldd() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibnftables.so.1 => /lib/x86_64-linux-gnu/libnftables.so.1 (0x00007f)\n\
                   \tlibgone.so => not found\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(out),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libnftables.so.1"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n").is_empty());
    }

    #[test]
    fn the_launch_agent_starts_the_helper_at_login_and_periodically() {
        assert!(LAUNCH_AGENT.contains(&format!("<string>{LAUNCH_AGENT_LABEL}</string>")));
        assert!(LAUNCH_AGENT.contains(&format!("start {CONTAINER_NAME}")));
        assert!(LAUNCH_AGENT.contains("<key>RunAtLoad</key>"));
        assert!(LAUNCH_AGENT.contains("<key>StartInterval</key>"));
    }
}
