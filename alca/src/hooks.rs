//! Host hooks (`hooks.post_up`, `hooks.pre_down`): shell commands run on the host, in the
//! project directory, with the project's identity in the environment.

use std::path::Path;
use std::process::{Command, Stdio};

/// Which hook is running (for messages and `ALCA_HOOK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PostUp,
    PreDown,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::PostUp => "post_up",
            Hook::PreDown => "pre_down",
        }
    }
}

/// What the hook knows about the project.
#[derive(Debug, Clone)]
pub struct HookContext<'a> {
    pub project_dir: &'a Path,
    pub container: &'a str,
    pub project_id: &'a str,
}

/// Why a hook failed; the message names the hook and the command.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hooks.{hook} ({command:?}) could not be started: {source}")]
    Spawn {
        hook: &'static str,
        command: String,
        source: std::io::Error,
    },
    #[error("hooks.{hook} ({command:?}) failed with {status}")]
    Failed {
        hook: &'static str,
        command: String,
        status: String,
    },
}

/// Runs `sh -c <command>` in the project directory. With `quiet`, the hook's stdout is
/// discarded (its stderr always shows, so failures can be understood).
pub fn run(hook: Hook, command: &str, ctx: &HookContext, quiet: bool) -> Result<(), HookError> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(ctx.project_dir)
        .env("ALCA_HOOK", hook.name())
        .env("ALCA_PROJECT_DIR", ctx.project_dir)
        .env("ALCA_CONTAINER", ctx.container)
        .env("ALCA_PROJECT_ID", ctx.project_id)
        .stdin(Stdio::null())
        .stdout(if quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        })
        .status()
        .map_err(|source| HookError::Spawn {
            hook: hook.name(),
            command: command.to_string(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            hook: hook.name(),
            command: command.to_string(),
            status: status.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &Path) -> HookContext<'_> {
        HookContext {
            project_dir: dir,
            container: "alca-0123456789ab",
            project_id: "0123456789abcdef",
        }
    }

    #[test]
    fn runs_in_the_project_dir_with_context() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = "printf '%s %s' \"$ALCA_HOOK\" \"$ALCA_CONTAINER\" > marker";
        run(Hook::PostUp, cmd, &ctx(dir.path()), true).unwrap();
        let got = std::fs::read_to_string(dir.path().join("marker")).unwrap();
        assert_eq!(got, "post_up alca-0123456789ab");
    }

    #[test]
    fn failure_names_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(Hook::PreDown, "exit 3", &ctx(dir.path()), true).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("hooks.pre_down"), "{msg}");
        assert!(msg.contains("exit status: 3"), "{msg}");
    }
}
