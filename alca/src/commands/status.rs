//! `alca status`: container state, config drift per field, network rules and file exclusion
//! of the project around the current directory. Exits 0 (problems are shown) except when the
//! config fails to load: then the error goes to stderr and it exits 1, as the Go original's
//! `status` ("failed to load config: …").

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, CONFIG_FILE};
use crate::drift::{self, Snapshot};
use crate::lifecycle::trust_gate;
use crate::lifecycle::{find_container, load_config, moved_message, recorded_kind, Project};
use crate::network::guard_select::connect_guard;
use crate::network::netspec_build::{self, isolation_required};
use crate::network::proxy_check;
use crate::project::{self, State};
use crate::runtime::ContainerInfo;
use crate::trust::Verdict;

pub fn run() -> anyhow::Result<ExitCode> {
    let root = match project::find_root_from_cwd() {
        Ok(r) => r,
        Err(e) => {
            println!("Status: Not initialized");
            println!("{e}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    println!("Status: Initialized");
    println!("Config: {}", root.join(CONFIG_FILE).display());
    let config = match load_config(&root) {
        Ok(c) => c,
        Err(e) => return Err(e.context("failed to load config")),
    };
    let config = Some(config);
    let state = match State::load(&root) {
        Ok(s) => s,
        Err(e) => {
            println!("State: {e}");
            None
        }
    };
    let Some(state) = state else {
        println!("Container: Not created");
        println!();
        println!("Run 'alca up' to create and start the container.");
        return Ok(ExitCode::SUCCESS);
    };
    println!("Project ID: {}", state.id);
    container_section(&state, &root, config.as_ref());
    if let Some(config) = &config {
        trust_section(&root, config);
        network_section(config, &state, &root);
        exclusion_section(&root, config);
    }
    Ok(ExitCode::SUCCESS)
}

fn container_section(state: &State, root: &Path, config: Option<&Config>) {
    let runtime = state.runtime.as_deref().unwrap_or("(none yet)");
    println!("Runtime: {runtime}");
    let info = match find_container(state) {
        Ok(Some((_, info))) => info,
        Ok(None) => None,
        Err(e) => {
            println!("Container: unknown ({e:#})");
            return;
        }
    };
    let Some(info) = info else {
        println!("Container: Not created");
        println!("Run 'alca up' to create and start the container.");
        return;
    };
    print_container(&info, root);
    if let Some(config) = config {
        print_drift(state, config);
    }
}

fn print_container(info: &ContainerInfo, root: &Path) {
    let state = match info.state {
        crate::runtime::ContainerState::Running => "Running".to_string(),
        crate::runtime::ContainerState::Stopped => "Stopped".to_string(),
        ref other => other.to_string(),
    };
    println!("Container: {state}");
    println!("  Name:  {}", info.name);
    println!("  Image: {}", info.image);
    if let Some(msg) = moved_message(info, root) {
        println!("  Warning: {msg}");
    }
}

fn print_drift(state: &State, config: &Config) {
    let Some(kind) = recorded_kind(state) else {
        return;
    };
    let Some(saved) = state.config.as_ref().and_then(Snapshot::from_value) else {
        return;
    };
    let changes = drift::diff(&saved, &Snapshot::of(config, kind.binary()));
    if changes.is_empty() {
        println!("Configuration: up to date");
        return;
    }
    println!("Configuration has changed since the container was created:");
    for c in &changes {
        println!("  {c}");
    }
    println!("Run 'alca up -f' to rebuild with the new configuration.");
}

fn trust_section(root: &Path, config: &Config) {
    let project = Project {
        root: root.to_path_buf(),
        config: config.clone(),
    };
    match trust_gate::verdict(&project) {
        Ok(Verdict::Trusted) => println!("Config trust: Trusted"),
        Ok(Verdict::Narrowed) => println!("Config trust: Trusted (narrowed since approval)"),
        Ok(Verdict::New) => {
            println!("Config trust: Not approved on this machine (run 'alca trust')")
        }
        Ok(Verdict::Widened(changes)) => {
            println!("Config trust: Changed, needs approval (run 'alca trust'):");
            for c in changes {
                println!("  {c}");
            }
        }
        Err(e) => println!("Config trust: unknown ({e:#})"),
    }
}

fn network_section(config: &Config, state: &State, root: &Path) {
    if !isolation_required(config) {
        println!("Network isolation: off (network.lan-access = [\"*\"])");
        println!("Rules applied: No (none needed)");
        return;
    }
    println!("Network isolation: required");
    match connect_guard().rules_line(&state.id) {
        Ok(line) => println!("Rules applied: {line}"),
        Err(e) => println!("Rules applied: No ({e:#})"),
    }
    // Seeing isolation (SPEC §9): the last `alca network verify` or `up` quick check.
    match crate::lifecycle::isolation_check::last_result(root) {
        Some(report) => println!("Network verify: {}", report.summary()),
        None => println!("Network verify: never run (`alca network verify`)"),
    }
    internet_section(config, state, root);
    proxy_section(config, state);
}

/// `internet-access`: the configured mode, whether the resolver runs, and the daemon's view
/// (applied mode and the addresses in the allow sets).
fn internet_section(config: &Config, state: &State, root: &Path) {
    use alca_contract::internet::InternetAccess;
    let mode = match &config.network.internet_access {
        InternetAccess::Everything => {
            println!("Internet: open (internet-access = [\"*\"])");
            return;
        }
        InternetAccess::Only(list) if list.is_empty() => "none (internet-access = [])".to_string(),
        InternetAccess::Only(_) => {
            format!("only {}", config.network.internet_access_raw.join(", "))
        }
    };
    println!("Internet: {mode}");
    let guard = crate::network::guard_select::connect_guard();
    let running = guard.resolver_address(root, &state.id).is_some();
    println!(
        "DNS resolver: {}",
        if running {
            "running"
        } else {
            "not running (run `alca up`)"
        }
    );
    match guard.internet_status(&state.id) {
        Ok(s) => println!(
            "Internet rules: {} ({} allowed addresses in the sets)",
            s.mode, s.elements
        ),
        Err(e) => println!("Internet rules: unknown ({e:#})"),
    }
}

/// Whether a proxy listens on the configured address of this host, where container TCP is sent.
fn proxy_section(config: &Config, state: &State) {
    let host_ip = || {
        let gateways = match find_container(state) {
            Ok(Some((runtime, _))) => runtime
                .network(&state.container_name())
                .ok()
                .flatten()
                .map(|n| n.gateways)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        netspec_build::gateway_host_ip(&gateways)
    };
    let proxy = match netspec_build::proxy_address(config, &host_ip) {
        Ok(Some(addr)) => addr,
        Ok(None) => return,
        Err(e) => {
            println!("Proxy: unknown ({e})");
            return;
        }
    };
    for line in proxy_check::status_lines(proxy, &proxy_check::check(proxy)) {
        println!("{line}");
    }
}

fn exclusion_section(root: &Path, config: &Config) {
    let patterns =
        config.workdir_exclude.len() + config.mounts.iter().map(|m| m.exclude.len()).sum::<usize>();
    if patterns == 0 {
        println!("File exclusion: none configured");
    } else {
        println!("File exclusion: {patterns} pattern(s) configured");
    }
    if patterns > 0 || crate::exclude::project_views::ALWAYS_VIEW {
        for line in crate::exclude::project_views::status_lines(root, config) {
            println!("  {line}");
        }
    }
    for warning in crate::exclude::tracked::warnings(root, &config.workdir_exclude) {
        println!("  Warning: {warning}");
    }
    println!("Git: {}", crate::trust::git_config::status_line(root));
}
