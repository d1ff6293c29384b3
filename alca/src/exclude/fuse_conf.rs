//! The one root step the Linux view needs: `user_allow_other` in `/etc/fuse.conf`, so a view
//! mounted by an ordinary user can carry `allow_other` and the container runtime (root) and
//! the container's users can reach it. Called by `alca network-helper install`.

use std::io;
use std::path::Path;

/// The system FUSE configuration file.
pub const FUSE_CONF: &str = "/etc/fuse.conf";
const OPTION: &str = "user_allow_other";

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
    updated.push_str("# added by alca: lets alca's filtered views use allow_other\n");
    updated.push_str(OPTION);
    updated.push('\n');
    std::fs::write(conf, updated)?;
    Ok(true)
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
    fn missing_file_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("fuse.conf");
        assert!(!user_allow_other_enabled(&conf).expect("read"));
        assert!(enable_user_allow_other(&conf).expect("enable"));
        assert!(user_allow_other_enabled(&conf).expect("read"));
    }
}
