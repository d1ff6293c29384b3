//! The argv `alca run` executes in the container: the user's arguments directly, or, with a
//! `commands.enter` wrapper, `sh -c "<enter text> 'arg' …"` with POSIX shell quoting so the
//! arguments reach the program unchanged whatever they contain.

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

/// The argv for `alca run`, as the Go original builds it (internal/cli/run.go): without an
/// enter command the arguments run directly; with one, `sh -c` runs the enter text byte for
/// byte (a trailing newline ends a statement, so `enter = "\n. ~/.bashrc\n"` runs the
/// command after sourcing), a space, then the quoted arguments.
pub fn run_argv(enter: Option<&str>, args: &[String]) -> Vec<String> {
    match enter {
        Some(enter) if !enter.is_empty() => {
            let quoted: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
            vec![
                "sh".into(),
                "-c".into(),
                format!("{enter} {}", quoted.join(" ")),
            ]
        }
        _ => args.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use proptest::prelude::*;

    use super::*;

    /// Expected values from the Go original's internal/cli/run_test.go (TestShellQuote).
    #[test]
    fn quotes_awkward_strings() {
        assert_eq!(sh_quote("hello"), "'hello'");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("it's a 'test'"), "'it'\\''s a '\\''test'\\'''");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote(r#"say "hello""#), r#"'say "hello"'"#);
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Go internal/cli/run.go: `execCmd = args` without enter, else
    /// `sh -c (enter + " " + quoted args)` with the enter text unchanged.
    #[test]
    fn argv_with_and_without_enter() {
        let args = strings(&["echo", "a b"]);
        assert_eq!(run_argv(None, &args), args);
        assert_eq!(run_argv(Some(""), &args), args);
        assert_eq!(
            run_argv(Some("mise exec --"), &args),
            strings(&["sh", "-c", "mise exec -- 'echo' 'a b'"])
        );
        // docs/config/fields.md's `enter = """\n. ~/.bashrc\n"""`: the newline is kept.
        assert_eq!(
            run_argv(Some("\n. ~/.bashrc\n"), &args),
            strings(&["sh", "-c", "\n. ~/.bashrc\n 'echo' 'a b'"])
        );
    }

    /// Go test_integration/test_enter.sh (test_run_enter_command): a newline-terminated enter
    /// runs before the command, and the command's output appears (here through a real `sh`).
    #[test]
    fn newline_terminated_enter_runs_the_command() {
        let args = strings(&["sh", "-c", "echo $ALCA_TEST"]);
        let argv = run_argv(Some("\nexport ALCA_TEST=integration\n"), &args);
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "integration\n");
        // Go integration configs use `enter = "\ntrue\n"`.
        let argv = run_argv(Some("\ntrue\n"), &strings(&["echo", "hello"]));
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("sh runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    }

    /// Round trip through a real POSIX shell: `printf '%s\0'` prints each argument as received.
    fn round_trip(args: &[String]) -> Vec<String> {
        let mut all = strings(&["printf", "%s\\0"]);
        all.extend(args.iter().cloned());
        let argv = run_argv(Some(":;"), &all);
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("sh runs");
        let text = String::from_utf8(out.stdout).expect("utf8");
        let mut got: Vec<String> = text.split('\0').map(String::from).collect();
        got.pop();
        got
    }

    #[test]
    fn shell_receives_arguments_verbatim() {
        let args = strings(&["a b", "'", "$HOME", "`id`", "\\n", "*", "x\ny"]);
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
