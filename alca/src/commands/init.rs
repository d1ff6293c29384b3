//! `alca init`: writes a new `.alca.toml` from a template (never overwriting one), keeps alca's
//! local files out of git, and dispatches the `git+URL` preset flow.

pub mod preset;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::InitArgs;
use crate::config::CONFIG_FILE;

/// Template names and their file contents, in the order shown to users.
pub const TEMPLATES: [(&str, &str); 4] = [
    ("alpine", include_str!("../../templates/alpine.toml")),
    (
        "debian-slim",
        include_str!("../../templates/debian-slim.toml"),
    ),
    (
        "debian-mise",
        include_str!("../../templates/debian-mise.toml"),
    ),
    ("nix", include_str!("../../templates/nix.toml")),
];

/// Template used when `--template` is not given.
pub const DEFAULT_TEMPLATE: &str = "alpine";

/// Entries `alca init` makes sure `.gitignore` contains.
pub const GITIGNORE_ENTRIES: [&str; 4] = [
    ".alca/",
    ".alca.local.toml",
    ".alca.*.local.toml",
    ".alca.mounts/",
];

/// Why `alca init` could not do its work; messages name the path or value and the fix.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("unknown template {name:?}; valid templates: {}", template_names().join(", "))]
    UnknownTemplate { name: String },
    #[error("{} already exists; edit it, or delete it to start over", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The names of all templates.
pub fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|(n, _)| *n).collect()
}

/// The contents of template `name`.
pub fn template(name: &str) -> Result<&'static str, InitError> {
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| InitError::UnknownTemplate { name: name.into() })
}

/// Writes `<dir>/.alca.toml` from template `name`; refuses to replace an existing file.
pub fn write_config(dir: &Path, name: &str) -> Result<PathBuf, InitError> {
    let text = template(name)?;
    let path = dir.join(CONFIG_FILE);
    let mut file = match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(InitError::Exists { path })
        }
        Err(e) => return Err(io_err(&path)(e)),
    };
    file.write_all(text.as_bytes()).map_err(io_err(&path))?;
    Ok(path)
}

/// Appends the missing [`GITIGNORE_ENTRIES`] to `<dir>/.gitignore` (created when absent),
/// keeping its content; returns the entries that were added.
pub fn update_gitignore(dir: &Path) -> Result<Vec<&'static str>, InitError> {
    let path = dir.join(".gitignore");
    let existing = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(&path)(e)),
    };
    let present: Vec<&str> = existing.lines().map(str::trim).collect();
    let missing: Vec<&'static str> = GITIGNORE_ENTRIES
        .iter()
        .copied()
        .filter(|e| !present.contains(e))
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# alca (Alcatraz) local files\n");
    for entry in &missing {
        text.push_str(entry);
        text.push('\n');
    }
    fs::write(&path, text).map_err(io_err(&path))?;
    Ok(missing)
}

/// Runs `alca init` in the current directory.
pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    match (&args.preset, args.update) {
        (Some(_), _) | (None, true) if args.template.is_some() => {
            anyhow::bail!(
                "--template cannot be combined with a preset or --update; run them separately"
            )
        }
        (Some(spec), _) => preset::fetch(&cwd, spec)?,
        (None, true) => preset::update(&cwd)?,
        (None, false) => init_template(&cwd, args.template.as_deref().unwrap_or(DEFAULT_TEMPLATE))?,
    }
    Ok(ExitCode::SUCCESS)
}

fn init_template(dir: &Path, name: &str) -> Result<(), InitError> {
    let path = write_config(dir, name)?;
    println!("Created {} from the {name} template", path.display());
    let added = update_gitignore(dir)?;
    if !added.is_empty() {
        println!("Added {} to .gitignore", added.join(", "));
    }
    // The user just created it: approved, so a non-interactive `alca up` follows.
    match crate::lifecycle::trust_gate::approve_initial(dir) {
        Ok(()) => println!("Approved it on this machine (edits later are reviewed by `alca up`)"),
        Err(e) => {
            eprintln!("alca: warning: the new config is not approved yet ({e:#}); run `alca trust`")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::SCHEMA_URL;

    #[test]
    fn every_template_has_the_schema_line_and_loads() {
        for (name, text) in TEMPLATES {
            assert!(
                text.starts_with(&format!("#:schema {SCHEMA_URL}\n")),
                "{name}"
            );
            let dir = tempfile::tempdir().unwrap();
            write_config(dir.path(), name).unwrap();
            let loaded = crate::config::load(dir.path()).unwrap();
            assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
            assert!(!loaded.config.image.is_empty());
        }
    }

    /// Go internal/config/generator.go GetTemplateConfig: every template sets
    /// `IS_SANDBOX = "1"` and hides `.env` (WorkdirExclude); alpine runs
    /// `apk add --no-cache mise` … `mise trust -a` / `mise install` with the mise, extra-bin and
    /// extra-scripts mounts, and its enter sources ~/.profile.
    #[test]
    fn templates_hide_secrets_and_mark_the_sandbox() {
        for (name, _) in TEMPLATES {
            let dir = tempfile::tempdir().unwrap();
            write_config(dir.path(), name).unwrap();
            let c = crate::config::load(dir.path()).unwrap().config;
            assert_eq!(c.envs["IS_SANDBOX"].value, "1", "{name}");
            for pattern in ["**/.env", "**/.env.*"] {
                assert!(
                    c.workdir_exclude.iter().any(|p| p == pattern),
                    "{name} hides {pattern}"
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), "alpine").unwrap();
        let c = crate::config::load(dir.path()).unwrap().config;
        let up = c.commands.up.unwrap();
        for step in ["apk add --no-cache mise", "mise trust -a", "mise install"] {
            assert!(up.contains(step), "{step}");
        }
        let targets: Vec<&str> = c.mounts.iter().map(|m| m.target.as_str()).collect();
        assert_eq!(
            targets,
            ["/root/.local/share/mise", "/extra-bin", "/extra-scripts"]
        );
        // The enter text ends in a newline so `alca run CMD` runs CMD after the profile.
        assert!(c.commands.enter.unwrap().ends_with(". ~/.profile\n"));
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CONFIG_FILE), "mine").unwrap();
        let err = write_config(dir.path(), "nix").unwrap_err().to_string();
        assert!(
            err.ends_with(".alca.toml already exists; edit it, or delete it to start over"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap(),
            "mine"
        );
    }

    #[test]
    fn unknown_template_lists_valid_ones() {
        let err = template("ubuntu").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown template \"ubuntu\"; valid templates: alpine, debian-slim, debian-mise, nix"
        );
    }

    #[test]
    fn gitignore_is_appended_once_and_keeps_content() {
        let dir = tempfile::tempdir().unwrap();
        let gi = dir.path().join(".gitignore");
        fs::write(&gi, "target\n.alca/").unwrap();
        assert_eq!(update_gitignore(dir.path()).unwrap().len(), 3);
        assert!(update_gitignore(dir.path()).unwrap().is_empty());
        let text = fs::read_to_string(&gi).unwrap();
        assert!(text.starts_with("target\n.alca/\n"), "{text}");
        for e in GITIGNORE_ENTRIES {
            assert_eq!(text.lines().filter(|l| *l == e).count(), 1, "{e}");
        }
    }

    #[test]
    fn gitignore_is_created_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(update_gitignore(dir.path()).unwrap().len(), 4);
        assert!(dir.path().join(".gitignore").is_file());
    }
}
