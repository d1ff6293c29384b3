//! `alca init git+<clone-url>[#[commit][:dir]]` and `alca init --update`: copy shared
//! `.alca.*.toml` preset files from a git repository into the project, as the Go original does.
//!
//! Fetching uses the `git` command (shallow fetch into `~/.alcatraz/cache-presets/…`). Each copied
//! file starts with `# Alcatraz Preset Source: git+<url>#<commit>:<path>`, which `--update` reads
//! to refresh it. Config loading never touches the network; it only sees the copied files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};

/// Marker of the line recording where a preset file came from.
pub const SOURCE_MARKER: &str = "# Alcatraz Preset Source: ";

/// A parsed `git+URL#commit:dir` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetSpec {
    /// Clone URL without the `git+` prefix.
    pub url: String,
    pub commit: Option<String>,
    /// Directory inside the repository to scan (repository root when empty).
    pub dir: String,
}

/// Parses `git+<clone-url>[#[commit][:dir]]`.
pub fn parse_spec(spec: &str) -> anyhow::Result<PresetSpec> {
    let form = "expected git+<clone-url>[#[commit][:dir]], e.g. git+https://example.org/team/presets.git#:backend";
    let rest = spec
        .strip_prefix("git+")
        .ok_or_else(|| anyhow!("preset {spec:?} is not a git preset; {form}"))?;
    let (url, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    if !url.contains("://") || url.ends_with("://") {
        bail!("preset {spec:?} has no clone URL with a scheme; {form}");
    }
    let (commit, dir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !commit.is_empty() && (!(4..=64).contains(&commit.len()) || !hex) {
        bail!("preset {spec:?}: {commit:?} is not a commit hash; {form}");
    }
    if dir.split('/').any(|c| c == "..") {
        bail!("preset {spec:?}: the directory must stay inside the repository; {form}");
    }
    Ok(PresetSpec {
        url: url.to_string(),
        commit: (!commit.is_empty()).then(|| commit.to_string()),
        dir: dir.trim_matches('/').to_string(),
    })
}

/// `~/.alcatraz/cache-presets/<host>/<protocol>/<credentials>/<repo path>` for a clone URL.
pub fn cache_dir(home: &Path, url: &str) -> PathBuf {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (creds, host) = authority.rsplit_once('@').unwrap_or(("", authority));
    let mut dir = home.join(".alcatraz").join("cache-presets");
    dir.push(match host {
        "" | "." | ".." => "-".to_string(),
        h => h.replace(
            |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "-",
        ),
    });
    dir.push(sanitize(&format!("git+{scheme}")));
    dir.push(sanitize(creds));
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        dir.push(sanitize(seg));
    }
    dir
}

fn sanitize(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git; install git to use presets")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Fetches `commit` (or the default branch head) into the cache; returns the cache and commit.
fn fetch_repo(url: &str, commit: Option<&str>) -> anyhow::Result<(PathBuf, String)> {
    let home = std::env::var_os("HOME")
        .ok_or_else(|| anyhow!("HOME is not set; set it to use presets"))?;
    let cache = cache_dir(Path::new(&home), url);
    if !cache.join(".git").is_dir() {
        fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        git(&cache, &["init", "-q"])?;
    }
    let have = commit
        .is_some_and(|c| git(&cache, &["cat-file", "-e", &format!("{c}^{{commit}}")]).is_ok());
    if !have {
        git(
            &cache,
            &["fetch", "-q", "--depth", "1", url, commit.unwrap_or("HEAD")],
        )
        .with_context(|| format!("fetching preset repository {url} failed"))?;
    }
    let target = if have {
        commit.unwrap_or("FETCH_HEAD")
    } else {
        "FETCH_HEAD"
    };
    git(&cache, &["checkout", "-q", "--detach", target])?;
    let head = git(&cache, &["rev-parse", "HEAD"])?;
    Ok((cache, head))
}

fn is_preset_name(name: &str) -> bool {
    name.starts_with(".alca.")
        && name.len() > ".alca..toml".len()
        && (name.ends_with(".toml") || name.ends_with(".toml.example"))
}

/// Preset files directly inside `dir`, sorted by name.
fn preset_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_preset_name(n))
        .collect();
    names.sort();
    Ok(names)
}

/// File content with the source line first (replacing any source line already there).
fn with_source(content: &str, url: &str, commit: &str, path: &str) -> String {
    let body: Vec<&str> = content
        .lines()
        .filter(|l| !l.starts_with(SOURCE_MARKER))
        .collect();
    format!(
        "{SOURCE_MARKER}git+{url}#{commit}:{path}\n{}\n",
        body.join("\n")
    )
}

/// `alca init git+…`: copies the preset files of the repository into `cwd`.
pub fn fetch(cwd: &Path, spec: &str) -> anyhow::Result<()> {
    let spec = parse_spec(spec)?;
    if spec.url.split_once("://").is_some_and(|(_, r)| {
        r.split('/')
            .next()
            .is_some_and(|a| a.contains('@') && a.contains(':'))
    }) {
        eprintln!("alca: warning: the URL contains credentials; they are stored in the copied files' source line");
    }
    let (repo, head) = fetch_repo(&spec.url, spec.commit.as_deref())?;
    let dir = repo.join(&spec.dir);
    let names = preset_files(&dir)?;
    if names.is_empty() {
        bail!(
            "no .alca.*.toml files in {:?} of {}; check the #:dir part of the preset",
            spec.dir,
            spec.url
        );
    }
    for name in names {
        let dest = cwd.join(&name);
        if dest.exists() {
            println!("Skipped {name}: it already exists (delete it to fetch it again, or run `alca init --update`)");
            continue;
        }
        let path = if spec.dir.is_empty() {
            name.clone()
        } else {
            format!("{}/{name}", spec.dir)
        };
        let content = fs::read_to_string(dir.join(&name))?;
        fs::write(&dest, with_source(&content, &spec.url, &head, &path))
            .with_context(|| format!("writing {}", dest.display()))?;
        println!("Fetched {name} (reference it with extends or includes in .alca.toml)");
    }
    Ok(())
}

/// A managed file: its local path and the parsed source line.
struct Managed {
    local: PathBuf,
    url: String,
    path: String,
}

/// Reads the source line from the leading comment block of a file.
fn source_of(text: &str) -> Option<(String, String)> {
    let line = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(SOURCE_MARKER))?;
    let rest = line.trim().strip_prefix("git+")?;
    let (url, fragment) = rest.split_once('#')?;
    let (_commit, path) = fragment.split_once(':')?;
    Some((url.to_string(), path.to_string()))
}

/// `alca init --update`: refreshes every preset file in `cwd` that carries a source line.
pub fn update(cwd: &Path) -> anyhow::Result<()> {
    let mut by_repo: BTreeMap<String, Vec<Managed>> = BTreeMap::new();
    for name in preset_files(cwd)? {
        let local = cwd.join(&name);
        let Some((url, path)) = fs::read_to_string(&local)
            .ok()
            .as_deref()
            .and_then(source_of)
        else {
            continue;
        };
        by_repo
            .entry(url.clone())
            .or_default()
            .push(Managed { local, url, path });
    }
    for (url, files) in by_repo {
        let (repo, head) = match fetch_repo(&url, None) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("alca: warning: {e:#}; keeping the current copies");
                continue;
            }
        };
        for m in files {
            refresh(&repo, &head, &m)?;
        }
    }
    Ok(())
}

fn refresh(repo: &Path, head: &str, m: &Managed) -> anyhow::Result<()> {
    let src = repo.join(&m.path);
    let name = m
        .local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(content) = fs::read_to_string(&src) else {
        eprintln!(
            "alca: warning: {} no longer exists in {}; {name} left unchanged",
            m.path, m.url
        );
        return Ok(());
    };
    fs::write(&m.local, with_source(&content, &m.url, head, &m.path))
        .with_context(|| format!("writing {}", m.local.display()))?;
    println!("Updated {name} to {}", &head[..head.len().min(12)]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let s = parse_spec("git+https://github.com/myorg/presets.git#a1b2c3d:backend").unwrap();
        assert_eq!(s.url, "https://github.com/myorg/presets.git");
        assert_eq!(s.commit.as_deref(), Some("a1b2c3d"));
        assert_eq!(s.dir, "backend");
        let s = parse_spec("git+https://gitlab.com/group/sub/configs#:alcatraz").unwrap();
        assert_eq!((s.commit, s.dir.as_str()), (None, "alcatraz"));
        let s = parse_spec("git+ssh://git@github.com/myorg/p.git").unwrap();
        assert_eq!((s.commit, s.dir.as_str()), (None, ""));
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "https://x/y",
            "git+x/y",
            "git+https://x/y#zz",
            "git+https://x/y#:../etc",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
        let e = parse_spec("github:org/repo").unwrap_err().to_string();
        assert!(e.contains("expected git+<clone-url>"), "{e}");
    }

    #[test]
    fn cache_dirs_follow_the_go_layout() {
        let h = Path::new("/h");
        assert_eq!(
            cache_dir(h, "https://github.com/myorg/presets.git"),
            Path::new("/h/.alcatraz/cache-presets/github.com/git-https/-/myorg/presets-git")
        );
        assert_eq!(
            cache_dir(h, "https://user:pass@gitea.company.com/team/presets"),
            Path::new(
                "/h/.alcatraz/cache-presets/gitea.company.com/git-https/user-pass/team/presets"
            )
        );
    }

    #[test]
    fn source_line_round_trips() {
        let text = with_source(
            "# Alcatraz Preset Source: git+old#1:x\nimage = \"a\"\n",
            "file:///r",
            "abc",
            "d/.alca.x.toml",
        );
        assert!(
            text.starts_with("# Alcatraz Preset Source: git+file:///r#abc:d/.alca.x.toml\nimage"),
            "{text}"
        );
        assert_eq!(text.matches(SOURCE_MARKER).count(), 1);
        assert_eq!(
            source_of(&text),
            Some(("file:///r".into(), "d/.alca.x.toml".into()))
        );
        assert_eq!(
            source_of("image = 1\n# Alcatraz Preset Source: git+a#b:c\n"),
            None
        );
    }
}
