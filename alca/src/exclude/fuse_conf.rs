//! The one root step the Linux view needs: `user_allow_other` in `/etc/fuse.conf`, so a view
//! mounted by an ordinary user can carry `allow_other` and the container runtime (root) and
//! the container's users can reach it. Called by `alca network-helper install`, undone by
//! `uninstall` (only the line it added, found by its marker comment).

use std::io;
use std::path::Path;

/// The system FUSE configuration file.
pub const FUSE_CONF: &str = "/etc/fuse.conf";
const OPTION: &str = "user_allow_other";
/// The comment written above the line alca adds: it marks the line as alca's to remove.
const MARKER: &str = "# added by alca: lets alca's filtered views use allow_other";

/// Whether `conf` already enables `user_allow_other` (a missing file does not).
pub fn user_allow_other_enabled(conf: &Path) -> io::Result<bool> {
    match std::fs::read_to_string(conf) {
        Ok(text) => Ok(has_option(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Adds `user_allow_other` to `conf` (creating it if needed); returns false when it was
/// already there. Other lines are kept as they are.
pub fn enable_user_allow_other(conf: &Path) -> io::Result<bool> {
    let text = match std::fs::read_to_string(conf) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if has_option(&text) {
        return Ok(false);
    }
    let mut updated = text;
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(MARKER);
    updated.push('\n');
    updated.push_str(OPTION);
    updated.push('\n');
    write_replacing(conf, &updated)?;
    Ok(true)
}

/// Removes the `user_allow_other` line [`enable_user_allow_other`] added (with its marker);
/// a line the administrator wrote stays. Returns whether something was removed.
pub fn disable_user_allow_other(conf: &Path) -> io::Result<bool> {
    let text = match std::fs::read_to_string(conf) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines
        .windows(2)
        .position(|w| w[0] == MARKER && w[1].trim() == OPTION)
    else {
        return Ok(false);
    };
    let mut kept: Vec<&str> = lines[..at].to_vec();
    kept.extend_from_slice(&lines[at + 2..]);
    let mut updated = kept.join("\n");
    if !updated.is_empty() {
        updated.push('\n');
    }
    write_replacing(conf, &updated)?;
    Ok(true)
}

/// Writes `text` to a sibling temporary file and renames it over `conf` (never half a file),
/// keeping the file's mode (0644 for a new one).
fn write_replacing(conf: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(conf)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let name = conf.file_name().unwrap_or_default().to_string_lossy();
    let tmp = conf.with_file_name(format!(".{name}.alca-tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, conf)
}

fn has_option(text: &str) -> bool {
    text.lines().any(|l| l.trim() == OPTION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enables_once_and_keeps_other_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("fuse.conf");
        std::fs::write(&conf, "#user_allow_other\nmount_max = 10").expect("write");
        assert!(
            !user_allow_other_enabled(&conf).expect("read"),
            "a comment is not the option"
        );
        assert!(enable_user_allow_other(&conf).expect("enable"));
        assert!(
            !enable_user_allow_other(&conf).expect("again"),
            "idempotent"
        );
        let text = std::fs::read_to_string(&conf).expect("read");
        assert!(
            text.starts_with("#user_allow_other\nmount_max = 10\n"),
            "{text}"
        );
        assert_eq!(text.matches("\nuser_allow_other\n").count(), 1);
        assert!(user_allow_other_enabled(&conf).expect("read"));
    }

    #[test]
    fn disable_removes_only_the_line_alca_added() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("fuse.conf");
        let original = "#user_allow_other\nmount_max = 10\n";
        std::fs::write(&conf, original).expect("write");
        assert!(!disable_user_allow_other(&conf).expect("nothing to remove"));
        assert!(enable_user_allow_other(&conf).expect("enable"));
        assert!(disable_user_allow_other(&conf).expect("disable"));
        assert_eq!(std::fs::read_to_string(&conf).expect("read"), original);
        assert!(!user_allow_other_enabled(&conf).expect("read"));
        // The administrator's own line is not alca's to remove.
        std::fs::write(&conf, "user_allow_other\n").expect("write");
        assert!(!disable_user_allow_other(&conf).expect("kept"));
        assert!(user_allow_other_enabled(&conf).expect("read"));
    }

    #[test]
    fn missing_file_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("fuse.conf");
        assert!(!user_allow_other_enabled(&conf).expect("read"));
        assert!(enable_user_allow_other(&conf).expect("enable"));
        assert!(user_allow_other_enabled(&conf).expect("read"));
    }
}
