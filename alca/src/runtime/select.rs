//! Choosing the runtime for `runtime = auto|docker|podman`.
//!
//! Like the Go original, `auto` prefers Podman on Linux, but rootful runtimes first: rootless
//! runtimes route container traffic through user-space networking that never crosses host
//! nftables. Rootless Podman is isolated by rules inside each container's own namespace
//! (docs/rootless.md), so it is used when nothing rootful is there; rootless Docker (the same
//! rules, applied right after its start, as it has neither `init` nor OCI hooks) last.

use crate::config::RuntimeChoice;

use super::{CliRuntime, Runtime, RuntimeKind};

/// The chosen runtime and a one-line reason to show the user.
pub struct Selection {
    pub runtime: Box<dyn Runtime>,
    pub reason: String,
}

/// What probing one runtime found: `Ok(rootless)` or why it is unusable.
pub type ProbeResult = Result<bool, String>;

/// Probes the runtimes the choice allows and picks one (see [`decide`]).
pub fn select(choice: RuntimeChoice, isolation_required: bool) -> anyhow::Result<Selection> {
    let mut probed: Vec<(RuntimeKind, CliRuntime)> = Vec::new();
    let mut probe = |kind: RuntimeKind| -> ProbeResult {
        let rt = CliRuntime::probe(kind).map_err(|e| e.to_string())?;
        let rootless = rt.rootless();
        probed.push((kind, rt));
        Ok(rootless)
    };
    let (kind, reason) =
        decide(choice, isolation_required, &mut probe).map_err(|e| anyhow::anyhow!(e))?;
    let runtime = probed
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, rt)| rt)
        .ok_or_else(|| anyhow::anyhow!("{kind} was chosen but not probed"))?;
    Ok(Selection {
        runtime: Box::new(runtime),
        reason,
    })
}

/// The runtime recorded for an existing container: no start-up query (whether it is rootless
/// is asked only if needed); an unreachable daemon fails the first call on the container.
pub fn connect(kind: RuntimeKind) -> Box<dyn Runtime> {
    Box::new(CliRuntime::attach(kind))
}

/// Every runtime reachable on this machine, for `list` and `cleanup`.
pub fn available() -> Vec<Box<dyn Runtime>> {
    RuntimeKind::ALL
        .iter()
        .filter_map(|k| CliRuntime::probe(*k).ok())
        .map(|rt| Box::new(rt) as Box<dyn Runtime>)
        .collect()
}

/// The selection rules, free of I/O: `probe` reports each runtime it is asked about.
pub fn decide(
    choice: RuntimeChoice,
    isolation_required: bool,
    probe: &mut dyn FnMut(RuntimeKind) -> ProbeResult,
) -> Result<(RuntimeKind, String), String> {
    match choice {
        RuntimeChoice::Docker => explicit(RuntimeKind::Docker, probe),
        RuntimeChoice::Podman => explicit(RuntimeKind::Podman, probe),
        RuntimeChoice::Auto => auto(isolation_required, probe),
    }
}

fn explicit(
    kind: RuntimeKind,
    probe: &mut dyn FnMut(RuntimeKind) -> ProbeResult,
) -> Result<(RuntimeKind, String), String> {
    let name = kind.binary();
    match probe(kind) {
        Err(why) => Err(format!(
            "runtime = \"{name}\" in .alca.toml, but {kind} is unavailable: {why}"
        )),
        Ok(rootless) => Ok((
            kind,
            format!("{} (runtime = \"{name}\")", label(kind, rootless)),
        )),
    }
}

fn auto(
    isolation_required: bool,
    probe: &mut dyn FnMut(RuntimeKind) -> ProbeResult,
) -> Result<(RuntimeKind, String), String> {
    let podman = probe(RuntimeKind::Podman);
    if podman == Ok(false) {
        return Ok((
            RuntimeKind::Podman,
            "rootful Podman (auto: Podman is preferred on Linux)".into(),
        ));
    }
    let docker = probe(RuntimeKind::Docker);
    if docker == Ok(false) {
        return Ok((RuntimeKind::Docker, "Docker (auto)".into()));
    }
    if podman == Ok(true) && isolation_required {
        let why = "auto, no rootful runtime; rules inside the container's namespace";
        return Ok((RuntimeKind::Podman, format!("rootless Podman ({why})")));
    }
    if docker == Ok(true) && isolation_required {
        let why = "auto, no rootful runtime nor Podman; rules inside the container's namespace";
        return Ok((RuntimeKind::Docker, format!("rootless Docker ({why})")));
    }
    if !isolation_required {
        for (kind, result) in [
            (RuntimeKind::Docker, &docker),
            (RuntimeKind::Podman, &podman),
        ] {
            if *result == Ok(true) {
                let why = "auto, no network isolation needed";
                return Ok((kind, format!("{} ({why})", label(kind, true))));
            }
        }
    }
    Err(auto_failure(&podman, &docker))
}

fn label(kind: RuntimeKind, rootless: bool) -> String {
    match (kind, rootless) {
        (_, true) => format!("rootless {kind}"),
        (RuntimeKind::Podman, false) => "rootful Podman".into(),
        (RuntimeKind::Docker, false) => "Docker".into(),
    }
}

fn describe(result: &ProbeResult) -> String {
    match result {
        Ok(true) => "available but rootless".into(),
        Ok(false) => "available".into(),
        Err(why) => why.clone(),
    }
}

fn auto_failure(podman: &ProbeResult, docker: &ProbeResult) -> String {
    let mut msg = format!(
        "no usable container runtime (runtime = \"auto\"): Podman: {}; Docker: {}",
        describe(podman),
        describe(docker)
    );
    msg.push_str(". Install and start Docker or Podman");
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(podman: ProbeResult, docker: ProbeResult) -> impl FnMut(RuntimeKind) -> ProbeResult {
        move |k| match k {
            RuntimeKind::Podman => podman.clone(),
            RuntimeKind::Docker => docker.clone(),
        }
    }

    fn pick(
        choice: RuntimeChoice,
        iso: bool,
        podman: ProbeResult,
        docker: ProbeResult,
    ) -> Result<RuntimeKind, String> {
        decide(choice, iso, &mut fixed(podman, docker)).map(|(k, _)| k)
    }

    const DOWN: fn() -> ProbeResult = || Err("not installed".into());

    #[test]
    fn auto_prefers_rootful_podman() {
        assert_eq!(
            pick(RuntimeChoice::Auto, true, Ok(false), Ok(false)),
            Ok(RuntimeKind::Podman)
        );
    }

    #[test]
    fn auto_skips_rootless_podman_for_docker() {
        assert_eq!(
            pick(RuntimeChoice::Auto, true, Ok(true), Ok(false)),
            Ok(RuntimeKind::Docker)
        );
        assert_eq!(
            pick(RuntimeChoice::Auto, false, Ok(true), Ok(false)),
            Ok(RuntimeKind::Docker)
        );
    }

    #[test]
    fn auto_uses_rootless_podman_when_nothing_rootful_is_there() {
        assert_eq!(
            pick(RuntimeChoice::Auto, false, Ok(true), DOWN()),
            Ok(RuntimeKind::Podman)
        );
        assert_eq!(
            pick(RuntimeChoice::Auto, true, Ok(true), DOWN()),
            Ok(RuntimeKind::Podman)
        );
        // Rootless Docker last: rules in its containers' namespaces too.
        assert_eq!(
            pick(RuntimeChoice::Auto, true, DOWN(), Ok(true)),
            Ok(RuntimeKind::Docker)
        );
        assert_eq!(
            pick(RuntimeChoice::Auto, true, Ok(true), Ok(true)),
            Ok(RuntimeKind::Podman)
        );
    }

    #[test]
    fn auto_with_nothing_installed_explains() {
        let err = pick(RuntimeChoice::Auto, false, DOWN(), DOWN()).unwrap_err();
        assert!(err.contains("Install and start Docker or Podman"), "{err}");
    }

    #[test]
    fn explicit_rootless_runtimes_are_used_with_isolation() {
        for iso in [true, false] {
            assert_eq!(
                pick(RuntimeChoice::Podman, iso, Ok(true), Ok(false)),
                Ok(RuntimeKind::Podman)
            );
            assert_eq!(
                pick(RuntimeChoice::Docker, iso, Ok(false), Ok(true)),
                Ok(RuntimeKind::Docker)
            );
        }
    }

    #[test]
    fn explicit_docker_never_falls_back() {
        let err = pick(RuntimeChoice::Docker, false, Ok(false), DOWN()).unwrap_err();
        assert!(err.contains("runtime = \"docker\""), "{err}");
    }
}
