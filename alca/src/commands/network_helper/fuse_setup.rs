//! The host steps file isolation needs, done by `install` (both flavours; and by the packages'
//! post-install through the hidden `fuse-setup`) and undone exactly by `uninstall` (and the
//! packages' pre-removal through `fuse-revert`): `user_allow_other` in `/etc/fuse.conf`, and
//! `/dev/fuse` opened to group `alcatraz` where the machine left it root-only.

use std::path::Path;

use alca_contract::shipped::GROUP;
use anyhow::Context;
use nix::unistd::Group;

use crate::exclude::fuse_conf::{disable_user_allow_other, enable_user_allow_other, FUSE_CONF};
use crate::exclude::fuse_device::{self, Reverted, FUSE_DEVICE, RECORD};

/// The plan's lines for [`apply`].
pub fn plan() -> Vec<String> {
    vec![
        format!("Enable user_allow_other in {FUSE_CONF} (filtered views of workdir_exclude)"),
        format!("Open {FUSE_DEVICE} to group {GROUP} if the machine left it root-only"),
    ]
}

/// The plan's lines for [`revert`].
pub fn revert_plan() -> Vec<String> {
    vec![format!(
        "Undo what install changed in {FUSE_CONF} and on {FUSE_DEVICE}"
    )]
}

/// Enables `user_allow_other` and opens the device to the group (which must exist unless the
/// device is already open to every user); prints
/// each change.
pub fn apply() -> anyhow::Result<()> {
    let conf = Path::new(FUSE_CONF);
    if enable_user_allow_other(conf).with_context(|| format!("cannot update {FUSE_CONF}"))? {
        println!("Enabled user_allow_other in {FUSE_CONF}");
    } else {
        println!("{FUSE_CONF} already enables user_allow_other");
    }
    let device = Path::new(FUSE_DEVICE);
    if !device.exists() {
        println!(
            "{FUSE_DEVICE} does not exist (fuse module not loaded): workdir_exclude needs \
             `modprobe fuse`, then this install again"
        );
        return Ok(());
    }
    if fuse_device::open_to_all(device) {
        println!("{FUSE_DEVICE} is already open to every user");
        return Ok(());
    }
    let gid = Group::from_name(GROUP)
        .with_context(|| format!("cannot look up group {GROUP}"))?
        .with_context(|| format!("group {GROUP} does not exist"))?
        .gid
        .as_raw();
    match fuse_device::open_to_group(device, gid, Path::new(RECORD))
        .with_context(|| format!("cannot open {FUSE_DEVICE} to group {GROUP}"))?
    {
        Some((before, after)) => println!(
            "Opened {FUSE_DEVICE} to group {GROUP}: mode {:04o} group {} -> mode {:04o} group \
             {GROUP} (until reboot; the original is recorded in {RECORD})",
            before.mode, before.gid, after.mode
        ),
        None => println!("{FUSE_DEVICE} is already open to group {GROUP}"),
    }
    Ok(())
}

/// Undoes [`apply`]: only the fuse.conf line it added, and the device only if it is still as
/// install left it.
pub fn revert() -> anyhow::Result<()> {
    let conf = Path::new(FUSE_CONF);
    if disable_user_allow_other(conf).with_context(|| format!("cannot update {FUSE_CONF}"))? {
        println!("Removed the user_allow_other line alca added to {FUSE_CONF}");
    }
    let device = Path::new(FUSE_DEVICE);
    if !device.exists() {
        let _ = std::fs::remove_file(RECORD);
        return Ok(());
    }
    match fuse_device::revert(device, Path::new(RECORD))
        .with_context(|| format!("cannot put {FUSE_DEVICE} back"))?
    {
        Reverted::Nothing => {}
        Reverted::Restored(a) => println!(
            "Put {FUSE_DEVICE} back to mode {:04o} group {}",
            a.mode, a.gid
        ),
        Reverted::ChangedSince(a) => println!(
            "Left {FUSE_DEVICE} as it is (mode {:04o} group {}): it changed after install",
            a.mode, a.gid
        ),
    }
    Ok(())
}
