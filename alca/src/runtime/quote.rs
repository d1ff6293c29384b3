//! POSIX shell quoting for `alca run`: the user's arguments reach the program unchanged,
//! whatever they contain, after passing through `sh -c "<enter prefix> 'arg' …"`.

/// Wraps `s` in single quotes; an embedded `'` becomes `'\''`.
pub fn sh_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The `sh -c` script for `alca run`: the `commands.enter` prefix (when set) followed by the
/// quoted arguments; without a prefix the command replaces the shell (`exec`), so signals and
/// the exit code reach it directly.
pub fn run_script(enter: Option<&str>, args: &[String]) -> String {
    let quoted: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    let prefix = match enter.map(str::trim) {
        Some(p) if !p.is_empty() => p,
        _ => "exec",
    };
    format!("{prefix} {}", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn quotes_awkward_strings() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn script_with_and_without_prefix() {
        let args = vec!["echo".to_string(), "a b".to_string()];
        assert_eq!(run_script(None, &args), "exec 'echo' 'a b'");
        assert_eq!(
            run_script(Some("mise exec --"), &args),
            "mise exec -- 'echo' 'a b'"
        );
        assert_eq!(run_script(Some("  "), &args), "exec 'echo' 'a b'");
    }

    /// Round trip through a real POSIX shell: `printf '%s\0'` prints each argument as received.
    fn round_trip(args: &[String]) -> Vec<String> {
        let mut all = vec!["printf".to_string(), "%s\\0".to_string()];
        all.extend(args.iter().cloned());
        let out = Command::new("sh")
            .arg("-c")
            .arg(run_script(None, &all))
            .output()
            .expect("sh runs");
        let text = String::from_utf8(out.stdout).expect("utf8");
        let mut got: Vec<String> = text.split('\0').map(String::from).collect();
        got.pop();
        got
    }

    #[test]
    fn shell_receives_arguments_verbatim() {
        let args: Vec<String> = ["a b", "'", "$HOME", "`id`", "\\n", "*", "x\ny"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(round_trip(&args), args);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_printable_argument_survives(arg in "[ -~\n\t]{1,20}") {
            let args = vec![arg];
            prop_assert_eq!(round_trip(&args), args);
        }
    }
}
