//! The one y/N question on the terminal: every prompt of `alca` (trust, rebuild, cleanup,
//! the helper offer, `network-helper install/uninstall`) asks through here, so all accept the
//! same answers.

use std::io::{IsTerminal, Write};

/// Whether stdin is a terminal (prompts and `-t` only then).
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks a yes/no question on the terminal; anything but `y`/`yes` (any case) is no, and so is
/// a failed read.
pub fn confirm(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    is_yes(&answer)
}

/// Pure part of [`confirm`]: whether one typed answer means yes.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `network-helper install` accepted `y/Y/yes/Yes` and `up` any case of `y/yes`: one rule.
    #[test]
    fn yes_in_any_case_and_nothing_else() {
        for yes in ["y", "Y", "yes", "Yes", "YES", " y\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "ye", "y es", "sure"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
