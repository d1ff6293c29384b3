//! The container's main process (PID 1, the keep-alive) comes from the host, read-only, never
//! from the image (issue #21 "no agent code at restart").
//!
//! The agent is root in its container and can replace anything in the image: `/bin/sleep`, the
//! dynamic loader, libc. The runtime runs the main process again at every start it makes by
//! itself (restart policy after a crash or a reboot, `docker restart`, podman-restart.service)
//! without asking alca, so an image keep-alive would run agent code with whatever network the
//! host has at that moment. A *static* host binary, bind-mounted read-only, loads nothing from
//! the image, and the runtime mounts it again over whatever the agent left at the target at
//! each start; the container then runs no agent code until `alca run` (which checks the rules
//! first) starts some.
//!
//! Candidates, in order: `catatonit -P` (podman's own pause process: reaps, exits on SIGTERM;
//! Debian/Fedora package `catatonit`, static), then a static `busybox sleep infinity`
//! (`busybox-static`; the `sleep` applet runs in-process, nothing is executed). Docker's own
//! `docker-init` (tini) is static too but always executes a child taken from the image, so it
//! cannot be the whole keep-alive. A dynamically linked binary is refused: it would load the
//! image's loader. On macOS the runtime's VM cannot run host binaries: there the image's
//! `sleep` stays, and `up` says so (docs/boot.md).

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::BindMount;

/// Where the keep-alive is mounted in every container (a directory the image never has).
pub const MOUNT_DIR: &str = "/.alca";

/// One host binary that can keep a container alive by itself, and how to call it.
struct Candidate {
    host: &'static str,
    /// File name under [`MOUNT_DIR`]: busybox picks its applet from it.
    name: &'static str,
    args: &'static [&'static str],
}

const CANDIDATES: [Candidate; 5] = [
    Candidate {
        host: "/usr/bin/catatonit",
        name: "catatonit",
        args: &["-P"],
    },
    Candidate {
        host: "/usr/libexec/podman/catatonit",
        name: "catatonit",
        args: &["-P"],
    },
    Candidate {
        host: "/bin/busybox",
        name: "busybox",
        args: &["sleep", "infinity"],
    },
    Candidate {
        host: "/usr/bin/busybox",
        name: "busybox",
        args: &["sleep", "infinity"],
    },
    Candidate {
        host: "/usr/sbin/busybox",
        name: "busybox",
        args: &["sleep", "infinity"],
    },
];

/// The keep-alive a container gets: a read-only host binary, or (macOS only) the image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepAlive {
    Host {
        /// The binary's real path on the host.
        source: PathBuf,
        /// Its path inside the container (the entrypoint).
        target: String,
        args: Vec<String>,
    },
    /// The image's `sleep infinity` (hosts whose runtime runs in a VM).
    Image,
}

/// What `up` records in its drift snapshot for the keep-alive kind this host gives.
pub fn snapshot_text() -> &'static str {
    if cfg!(target_os = "linux") {
        "host, read-only"
    } else {
        "image"
    }
}

impl KeepAlive {
    /// The keep-alive of this host: on Linux the first usable candidate, or an error naming
    /// the packages that provide one (no container is created without it).
    pub fn find() -> anyhow::Result<KeepAlive> {
        if !cfg!(target_os = "linux") {
            return Ok(KeepAlive::Image);
        }
        let mut refused = Vec::new();
        for c in &CANDIDATES {
            if !Path::new(c.host).exists() {
                continue;
            }
            match usable(Path::new(c.host)) {
                Ok(source) => {
                    return Ok(KeepAlive::Host {
                        source,
                        target: format!("{MOUNT_DIR}/{}", c.name),
                        args: c.args.iter().map(|a| a.to_string()).collect(),
                    })
                }
                Err(why) => refused.push(format!("{} ({why})", c.host)),
            }
        }
        let seen = if refused.is_empty() {
            String::new()
        } else {
            format!(" Not usable: {}.", refused.join(", "))
        };
        anyhow::bail!(
            "no static keep-alive binary on this host: the container's main process must come \
             from the host, read-only, or the agent could replace it and run at the next \
             restart.{seen} Fix: install catatonit (`sudo apt install catatonit`, `sudo dnf \
             install catatonit`) or busybox-static (`sudo apt install busybox-static`)"
        )
    }

    /// The read-only bind mount the container needs for it.
    pub fn mount(&self) -> Option<BindMount> {
        match self {
            KeepAlive::Host { source, target, .. } => Some(BindMount {
                source: source.clone(),
                target: target.clone(),
                readonly: true,
                recursive: false,
            }),
            KeepAlive::Image => None,
        }
    }

    /// `--entrypoint` (none for the image's) and the command after the image.
    pub fn entrypoint_and_command(&self) -> (Option<String>, Vec<String>) {
        match self {
            KeepAlive::Host { target, args, .. } => (Some(target.clone()), args.clone()),
            KeepAlive::Image => (None, vec!["sleep".into(), "infinity".into()]),
        }
    }

    /// A line for `up` when the keep-alive is the image's.
    pub fn warning(&self) -> Option<&'static str> {
        match self {
            KeepAlive::Image => Some(
                "the container's keep-alive is the image's `sleep` on this host (its runtime \
                 runs in a VM): the agent can replace it and run at the next restart by the \
                 runtime, see docs/boot.md",
            ),
            KeepAlive::Host { .. } => None,
        }
    }
}

/// The real path of `path` when it is a root-owned, not group/other-writable, statically
/// linked ELF executable.
fn usable(path: &Path) -> Result<PathBuf, String> {
    let real = fs::canonicalize(path).map_err(|e| e.to_string())?;
    let meta = fs::metadata(&real).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err("not owned by root or writable by others".into());
    }
    if meta.mode() & 0o111 == 0 {
        return Err("not executable".into());
    }
    let mut head = Vec::new();
    fs::File::open(&real)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|e| e.to_string())?;
    match elf_interpreter(&head) {
        Some(false) => Ok(real),
        Some(true) => Err("dynamically linked: it would load the image's libraries".into()),
        None => Err("not an ELF executable".into()),
    }
}

const PT_INTERP: u32 = 3;

/// Whether the ELF image starting with `head` names a program interpreter (is dynamically
/// linked); `None` when `head` is not a readable ELF header with its program headers.
/// Written here rather than with an ELF crate: only `PT_INTERP` is needed, ~20 lines.
fn elf_interpreter(head: &[u8]) -> Option<bool> {
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match head.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = *head.get(5)? == 1;
    let uint = |at: usize, n: usize| -> Option<u64> {
        let bytes = head.get(at..at + n)?;
        let mut v = 0u64;
        for i in 0..n {
            let b = if little { bytes[n - 1 - i] } else { bytes[i] };
            v = v << 8 | u64::from(b);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (uint(0x20, 8)?, uint(0x36, 2)?, uint(0x38, 2)?)
    } else {
        (uint(0x1c, 4)?, uint(0x2a, 2)?, uint(0x2c, 2)?)
    };
    if phnum == 0 || phentsize < 4 {
        return None;
    }
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).ok()?;
        if uint(at, 4)? == u64::from(PT_INTERP) {
            return Some(true);
        }
    }
    Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ELF header with one program header of type `ptype`.
    fn elf64(ptype: u32) -> Vec<u8> {
        let mut h = vec![0u8; 0x40 + 0x38];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        h[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        h[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        h[0x40..0x44].copy_from_slice(&ptype.to_le_bytes());
        h
    }

    #[test]
    fn only_static_elf_binaries_qualify() {
        assert_eq!(elf_interpreter(&elf64(1)), Some(false), "PT_LOAD only");
        assert_eq!(elf_interpreter(&elf64(PT_INTERP)), Some(true));
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
        assert_eq!(elf_interpreter(&elf64(1)[..0x30]), None, "cut short");
    }

    #[test]
    fn host_binaries_on_this_machine_are_judged_by_their_linking() {
        // The test machine has a dynamically linked `/bin/ls`.
        let ls = usable(Path::new("/bin/ls"));
        assert!(ls.is_err_and(|e| e.contains("dynamically linked")));
    }

    #[test]
    fn a_host_keep_alive_is_a_read_only_mount_and_the_entrypoint() {
        let k = KeepAlive::Host {
            source: "/bin/busybox".into(),
            target: "/.alca/busybox".into(),
            args: vec!["sleep".into(), "infinity".into()],
        };
        let m = k.mount().unwrap();
        assert!(m.readonly && !m.recursive);
        assert_eq!(m.target, "/.alca/busybox");
        let (entry, cmd) = k.entrypoint_and_command();
        assert_eq!(entry.as_deref(), Some("/.alca/busybox"));
        assert_eq!(cmd, ["sleep", "infinity"]);
        assert!(k.warning().is_none());
        assert!(KeepAlive::Image.mount().is_none());
        assert!(KeepAlive::Image.warning().is_some());
    }
}
