//! `alca init git+<clone-url>[#[commit][:dir]]` and `alca init --update`: copy shared
//! `.alca.*.toml` preset files from a git repository into the project, as the Go original does.
//!
//! Fetching uses the `git` command (shallow fetch into `~/.alcatraz/cache-presets/…`). Each copied
//! file starts with `# Alcatraz Preset Source: git+<url>#<commit>:<path>`, as in the original.
//! Config loading never touches the network; it only sees the copied files.
//!
//! The agent writes the workspace, so `--update` never trusts those comment lines: the list
//! of managed files and their sources is kept outside the workspace
//! (`$XDG_STATE_HOME/alcatraz/presets/`), every source is re-validated by [`parse_spec`]
//! (an allow-listed scheme, a host, no option-like URL), `git fetch` gets `--` before the URL,
//! a preset path must stay inside the checkout (symlinks included), and a file is replaced
//! by rename, so a symlink planted at its name is replaced, not followed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context};

use crate::trust::store;

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

/// URL schemes a preset may be fetched with (the Go original's https, http and ssh, plus the
/// git protocol and local `file://` repositories). Anything else could be a git transport
/// helper (`ext::`) or an option.
const SCHEMES: [&str; 5] = ["https", "http", "ssh", "git", "file"];

/// Parses `git+<clone-url>[#[commit][:dir]]`. The same parser checks `init`'s argument and
/// every source `--update` refreshes.
pub fn parse_spec(spec: &str) -> anyhow::Result<PresetSpec> {
    let form = "expected git+<clone-url>[#[commit][:dir]], e.g. git+https://example.org/team/presets.git#:backend";
    let rest = spec
        .strip_prefix("git+")
        .ok_or_else(|| anyhow!("preset {spec:?} is not a git preset; {form}"))?;
    if spec.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("preset {spec:?} contains white space or a control character; {form}");
    }
    let (url, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let Some((scheme, after)) = url.split_once("://") else {
        bail!("preset {spec:?} has no clone URL with a scheme; {form}");
    };
    if !SCHEMES.contains(&scheme) {
        bail!(
            "preset {spec:?}: the scheme {scheme:?} is not one of {}; {form}",
            SCHEMES.join(", ")
        );
    }
    let host = after.split('/').next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if (scheme != "file" && host.is_empty()) || after.trim_matches('/').is_empty() {
        bail!("preset {spec:?} has no host or repository path; {form}");
    }
    let (commit, dir) = fragment.split_once(':').unwrap_or((fragment, ""));
    let hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !commit.is_empty() && (!(4..=64).contains(&commit.len()) || !hex) {
        bail!("preset {spec:?}: {commit:?} is not a commit hash; {form}");
    }
    if dir.contains(':') || dir.split('/').any(|c| c == ".." || c.starts_with('-')) {
        bail!("preset {spec:?}: the directory must be a plain path inside the repository; {form}");
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
            &[
                "fetch",
                "-q",
                "--depth",
                "1",
                "--",
                url,
                commit.unwrap_or("HEAD"),
            ],
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
    let mut managed = ManagedList::load(cwd);
    for name in names {
        let dest = cwd.join(&name);
        if dest.symlink_metadata().is_ok() {
            println!("Skipped {name}: it already exists (delete it to fetch it again, or run `alca init --update`)");
            continue;
        }
        let path = if spec.dir.is_empty() {
            name.clone()
        } else {
            format!("{}/{name}", spec.dir)
        };
        let content = read_inside(&repo, &path)?;
        write_preset(cwd, &name, &with_source(&content, &spec.url, &head, &path))?;
        managed
            .files
            .insert(name.clone(), format!("git+{}#{head}:{path}", spec.url));
        println!("Fetched {name} (reference it with extends or includes in .alca.toml)");
    }
    managed.save(cwd)
}

/// The preset files `alca init` fetched into one project, with their sources; kept outside
/// the workspace so `--update` never acts on a source the agent wrote.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct ManagedList {
    /// Local file name → `git+<url>#<commit>:<path>`.
    files: BTreeMap<String, String>,
}

impl ManagedList {
    fn dir() -> Option<PathBuf> {
        store::store_dir().and_then(|d| d.parent().map(|p| p.join("presets")))
    }

    fn load(cwd: &Path) -> ManagedList {
        Self::dir()
            .and_then(|d| fs::read_to_string(store::record_path(&d, cwd)).ok())
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save(&self, cwd: &Path) -> anyhow::Result<()> {
        let dir = Self::dir().ok_or_else(|| anyhow!("HOME is not set; set it to use presets"))?;
        store::create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let json = serde_json::to_vec_pretty(self)?;
        store::write_atomic(&dir, &store::record_path(&dir, cwd), &json)
            .with_context(|| format!("writing the managed preset list in {}", dir.display()))
    }
}

/// Reads `rel` from the checkout `repo`, refusing anything that resolves outside it (an
/// absolute or `..` path, or a symlink in the preset repository) or is not a regular file.
fn read_inside(repo: &Path, rel: &str) -> anyhow::Result<String> {
    let outside =
        || anyhow!("preset path {rel:?} leaves the repository checkout; it is not copied");
    if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
        return Err(outside());
    }
    let root = repo.canonicalize()?;
    let path = repo.join(rel).canonicalize().map_err(|_| outside())?;
    if !path.starts_with(&root) || !path.is_file() {
        return Err(outside());
    }
    fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Writes the preset file `name` in `cwd` by rename (never through a symlink planted there).
fn write_preset(cwd: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !is_preset_name(name) || name.contains('/') {
        bail!("{name:?} is not a preset file name");
    }
    let dest = cwd.join(name);
    store::write_atomic(cwd, &dest, text.as_bytes())
        .with_context(|| format!("writing {}", dest.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("writing {}", dest.display()))
}

/// A managed file: its local name and its validated source.
struct Managed {
    name: String,
    url: String,
    path: String,
}

/// Reads the source line from the leading comment block of a file (only to tell the user a
/// file with one is not managed on this machine).
fn source_of(text: &str) -> Option<&str> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(SOURCE_MARKER))
}

/// `alca init --update`: refreshes every preset file `alca init` fetched into `cwd` on this
/// machine, from the sources recorded then (outside the workspace).
pub fn update(cwd: &Path) -> anyhow::Result<()> {
    let list = ManagedList::load(cwd);
    for name in preset_files(cwd)? {
        let text = fs::read_to_string(cwd.join(&name)).unwrap_or_default();
        if !list.files.contains_key(&name) && source_of(&text).is_some() {
            eprintln!(
                "alca: warning: {name} names a preset source but was not fetched by `alca init` \
                 on this machine, so it is left unchanged; fetch it with `alca init git+…` to \
                 manage it"
            );
        }
    }
    let mut by_repo: BTreeMap<String, Vec<Managed>> = BTreeMap::new();
    for (name, source) in &list.files {
        let spec = parse_spec(source).with_context(|| format!("the recorded source of {name}"))?;
        by_repo.entry(spec.url.clone()).or_default().push(Managed {
            name: name.clone(),
            url: spec.url,
            path: spec.dir,
        });
    }
    let mut updated = ManagedList::default();
    for (url, files) in by_repo {
        let (repo, head) = match fetch_repo(&url, None) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("alca: warning: {e:#}; keeping the current copies");
                continue;
            }
        };
        for m in files {
            if refresh(cwd, &repo, &head, &m)? {
                updated
                    .files
                    .insert(m.name.clone(), format!("git+{}#{head}:{}", m.url, m.path));
            }
        }
    }
    let mut list = list;
    list.files.extend(updated.files);
    list.save(cwd)
}

/// Rewrites one managed file from the checkout; false when the source is gone.
fn refresh(cwd: &Path, repo: &Path, head: &str, m: &Managed) -> anyhow::Result<bool> {
    let content = match read_inside(repo, &m.path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "alca: warning: {} in {}: {e:#}; {} left unchanged",
                m.path, m.url, m.name
            );
            return Ok(false);
        }
    };
    write_preset(cwd, &m.name, &with_source(&content, &m.url, head, &m.path))?;
    println!("Updated {} to {}", m.name, &head[..head.len().min(12)]);
    Ok(true)
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

    /// issue #16: the Go original's `TestParsePresetURL_MalformedFragments` and
    /// `TestParsePresetURL_ErrorCases` (internal/preset/url_test.go): refused before any fetch.
    #[test]
    fn malformed_urls_are_refused_as_in_the_go_original() {
        for bad in [
            "git+https://host/repo#::",          // "double colon"
            "git+https://host/repo#: ",          // "colon then space"
            "git+https://host/repo#xyz:dir",     // "non-hex commit hash"
            "git+https://host/repo#abc 123:dir", // "commit with space"
            "https://github.com/myorg/presets",  // "missing git+ prefix"
            "",                                  // "empty string"
            "git+",                              // "git+ with no URL"
            "git+https:///path/only",            // "git+ with missing host"
        ] {
            assert!(parse_spec(bad).is_err(), "{bad:?} must be refused");
        }
        for good in [
            "git+https://host/repo#",                        // "empty fragment"
            "git+https://host/repo#a1b2c3d",                 // "valid commit only"
            "git+https://host/repo#:backend",                // "valid dir only"
            "git+https://host/repo#a1b2c3d:backend/sub",     // "valid both"
            "git+https://git.example.com:8443/team/presets", // TestParsePresetURL_PortInURL
            "git+http://github.com/myorg/presets",           // TestParsePresetURL_Protocol "http"
            "git+file:///srv/presets",
        ] {
            assert!(parse_spec(good).is_ok(), "{good:?} must be accepted");
        }
    }

    /// issue #22 item 4: what an agent could write in a source line.
    #[test]
    fn option_like_urls_and_paths_outside_the_checkout_are_refused() {
        for bad in [
            "git+--upload-pack=touch /tmp/x://h/p",
            "git+--upload-pack=sh://h/p",
            "git+ext::sh -c touch% /tmp/x://h/p",
            "git+ext://h/p",
            "git+https://h/p#:../../etc",
            "git+https://h/p#:--upload-pack=x",
            "git+https://h/p#abc1:../.ssh/id_ed25519",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad:?} must be refused");
        }
        let repo = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        fs::write(outside.path(), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), repo.path().join(".alca.l.toml")).unwrap();
        fs::write(repo.path().join(".alca.ok.toml"), "x = 1\n").unwrap();
        let abs = outside.path().display().to_string();
        for rel in [abs.as_str(), "../x", ".alca.l.toml"] {
            assert!(read_inside(repo.path(), rel).is_err(), "{rel}");
        }
        assert_eq!(
            read_inside(repo.path(), ".alca.ok.toml").unwrap(),
            "x = 1\n"
        );
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
            "abcd",
            "d/.alca.x.toml",
        );
        assert!(
            text.starts_with("# Alcatraz Preset Source: git+file:///r#abcd:d/.alca.x.toml\nimage"),
            "{text}"
        );
        assert_eq!(text.matches(SOURCE_MARKER).count(), 1);
        assert_eq!(source_of(&text), Some("git+file:///r#abcd:d/.alca.x.toml"));
        let back = parse_spec(source_of(&text).unwrap()).unwrap();
        assert_eq!(
            (back.url.as_str(), back.dir.as_str()),
            ("file:///r", "d/.alca.x.toml")
        );
        assert_eq!(
            source_of("image = 1\n# Alcatraz Preset Source: git+a#b:c\n"),
            None
        );
    }
}
