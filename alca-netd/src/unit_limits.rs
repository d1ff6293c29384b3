//! The daemon runs with exactly what its systemd unit grants, whatever started it: before any
//! thread exists, `--foreground`/bus activation and `--reapply` keep only the capabilities their
//! unit's `CapabilityBoundingSet=` lists, in the bounding, permitted, effective, inheritable and
//! ambient sets (as systemd does for a root service). Under systemd this changes nothing; under
//! D-Bus activation without systemd, and in the e2e suites, the unit's promise is then the one
//! that runs and is tested. `RestrictAddressFamilies=` needs seccomp and is not emulated.
//!
//! Written by hand rather than with the `caps` crate: two syscalls (`PR_CAPBSET_DROP`,
//! `capset`) and the kernel's fixed list of names do not justify a new dependency of a root daemon.

use std::io;

/// Capability names by number (`include/uapi/linux/capability.h`).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities a unit's `CapabilityBoundingSet=` lines grant, as a bit mask.
pub fn unit_capabilities(unit: &str) -> Result<u64, String> {
    let mut mask = 0u64;
    let mut seen = false;
    for value in unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CapabilityBoundingSet="))
    {
        seen = true;
        for name in value.split_whitespace() {
            let bit = NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| format!("CapabilityBoundingSet: unknown capability {name:?}"))?;
            mask |= 1 << bit;
        }
    }
    if !seen {
        return Err("the unit has no CapabilityBoundingSet= line".into());
    }
    Ok(mask)
}

/// The names of the capabilities in `mask`, in kernel order.
pub fn names(mask: u64) -> Vec<&'static str> {
    (0..NAMES.len())
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| NAMES[bit])
        .collect()
}

/// Keeps only the capabilities of `unit` in every set of this (still single-threaded) process.
pub fn restrict_to_unit(unit: &str) -> io::Result<u64> {
    let keep =
        unit_capabilities(unit).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?
        .trim()
        .parse::<u32>()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    for cap in 0..=last.min(63) {
        if keep & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments only.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) } != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
    }
    // SAFETY: prctl with integer arguments only.
    let cleared = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if cleared != 0 {
        return Err(io::Error::last_os_error());
    }
    capset(keep)?;
    Ok(keep)
}

/// `capset(2)`, version 3: permitted = effective = `mask`, inheritable = none.
fn capset(mask: u64) -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let word = |shift: u32| Data {
        effective: (mask >> shift) as u32,
        permitted: (mask >> shift) as u32,
        inheritable: 0,
    };
    let data = [word(0), word(32)];
    // SAFETY: both pointers point at live, correctly laid out structs for the call's duration.
    let res = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if res != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alca_contract::shipped::{SYSTEMD_REAPPLY, SYSTEMD_SERVICE};

    #[test]
    fn the_shipped_units_name_known_capabilities() {
        for unit in [SYSTEMD_SERVICE, SYSTEMD_REAPPLY] {
            let mask = unit_capabilities(unit).expect("parses");
            assert!(names(mask).contains(&"CAP_NET_ADMIN"), "{unit}");
        }
    }

    #[test]
    fn unknown_names_and_missing_lines_are_errors() {
        assert_eq!(
            unit_capabilities("CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_PTRACE\n"),
            Ok((1 << 12) | (1 << 19))
        );
        assert!(unit_capabilities("CapabilityBoundingSet=CAP_NOPE\n").is_err());
        assert!(unit_capabilities("[Service]\n").is_err());
    }
}
