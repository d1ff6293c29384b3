//! Resolution of `extends` / `includes` into one ordered list of config files.
//!
//! Layer order (lowest priority first) for a file F:
//! `layers(extends[last]) … layers(extends[0]), F, layers(includes[0]) … layers(includes[last])`,
//! which reproduces the Go original's pairwise merges. A file reached twice (a diamond) is kept
//! once: the final order is a topological order of "extended file < extending file < included
//! file" that otherwise follows first appearance in the list above. Only a reference back into
//! the current chain is a cycle.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::env::{expand_path, EnvSource};
use super::parse::{read_file, ParsedFile};
use super::ConfigError;

/// Upper bound on distinct files, so hostile glob trees cannot exhaust memory.
pub const MAX_FILES: usize = 128;

/// The files of a config, in merge order (lowest priority first), each parsed once.
#[derive(Debug)]
pub struct FileSet {
    pub order: Vec<PathBuf>,
    pub parsed: HashMap<PathBuf, ParsedFile>,
}

/// Resolves the full file set starting at `root_file`.
pub fn resolve(root_file: &Path, env: &dyn EnvSource) -> Result<FileSet, ConfigError> {
    let root = canonical(root_file).map_err(|e| {
        ConfigError::file(
            root_file,
            format!("cannot open the config file: {e}"),
            "run `alca init` or check the path",
        )
    })?;
    let mut walker = Walker {
        env,
        parsed: HashMap::new(),
        memo: HashMap::new(),
        stack: Vec::new(),
        below: Vec::new(),
    };
    let flat = walker.layers(&root)?;
    Ok(FileSet {
        order: topo_order(&flat, &walker.below),
        parsed: walker.parsed,
    })
}

struct Walker<'a> {
    env: &'a dyn EnvSource,
    parsed: HashMap<PathBuf, ParsedFile>,
    memo: HashMap<PathBuf, Vec<PathBuf>>,
    stack: Vec<PathBuf>,
    /// `(lower, higher)` pairs: an extended file is below its extender, an included file above.
    below: Vec<(PathBuf, PathBuf)>,
}

/// Which directive a reference came from.
#[derive(Clone, Copy)]
enum Directive {
    Extends,
    Includes,
}

impl Directive {
    fn name(self) -> &'static str {
        match self {
            Directive::Extends => "extends",
            Directive::Includes => "includes",
        }
    }
}

impl Walker<'_> {
    fn layers(&mut self, file: &Path) -> Result<Vec<PathBuf>, ConfigError> {
        if let Some(done) = self.memo.get(file) {
            return Ok(done.clone());
        }
        self.parse_once(file)?;
        self.stack.push(file.to_path_buf());
        let (extends, includes) = {
            let raw = &self.parsed[file].raw;
            (raw.extends.clone(), raw.includes.clone())
        };
        let mut out = Vec::new();
        let ext = self.expand_refs(file, Directive::Extends, &extends)?;
        for target in ext.iter().rev() {
            out.extend(self.follow(file, target)?);
            self.below.push((target.path.clone(), file.to_path_buf()));
        }
        out.push(file.to_path_buf());
        for target in self.expand_refs(file, Directive::Includes, &includes)? {
            out.extend(self.follow(file, &target)?);
            self.below.push((file.to_path_buf(), target.path));
        }
        self.stack.pop();
        let out = dedup_keep_first(out);
        self.memo.insert(file.to_path_buf(), out.clone());
        Ok(out)
    }

    fn parse_once(&mut self, file: &Path) -> Result<(), ConfigError> {
        if !self.parsed.contains_key(file) {
            if self.parsed.len() >= MAX_FILES {
                return Err(ConfigError::file(
                    file,
                    format!("more than {MAX_FILES} config files are extended or included"),
                    "narrow the extends/includes globs",
                ));
            }
            let parsed = read_file(file)?;
            self.parsed.insert(file.to_path_buf(), parsed);
        }
        Ok(())
    }

    /// Recurses into `target` (referenced by `from` as `field`), refusing cycles.
    fn follow(&mut self, from: &Path, target: &Ref) -> Result<Vec<PathBuf>, ConfigError> {
        if let Some(pos) = self.stack.iter().position(|p| *p == target.path) {
            let mut chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            chain.push(target.path.display().to_string());
            return Err(ConfigError::at(
                from,
                &target.field,
                format!("circular reference: {}", chain.join(" -> ")),
                "remove one of the references in this chain",
            ));
        }
        self.layers(&target.path)
    }

    fn expand_refs(
        &self,
        from: &Path,
        directive: Directive,
        entries: &[String],
    ) -> Result<Vec<Ref>, ConfigError> {
        let dir = from.parent().unwrap_or(Path::new("/"));
        let mut refs = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let field = format!("{}[{i}]", directive.name());
            for path in expand_entry(from, &field, dir, entry, self.env)? {
                refs.push(Ref {
                    field: field.clone(),
                    path,
                });
            }
        }
        Ok(refs)
    }
}

/// A resolved reference: the canonical file and the field that named it.
struct Ref {
    field: String,
    path: PathBuf,
}

/// Expands one `extends`/`includes` entry: env vars, `~`, relative path, glob.
fn expand_entry(
    from: &Path,
    field: &str,
    dir: &Path,
    entry: &str,
    env: &dyn EnvSource,
) -> Result<Vec<PathBuf>, ConfigError> {
    let expanded = expand_path(entry, env)
        .map_err(|e| ConfigError::at(from, field, e, "set the variable or change the path"))?;
    let joined = dir.join(&expanded);
    if !is_glob(&expanded) {
        let path = canonical(&joined).map_err(|e| {
            ConfigError::at(
                from,
                field,
                format!("{} cannot be opened: {e}", joined.display()),
                "fix the path (relative paths start at this file's directory) or remove the entry",
            )
        })?;
        return Ok(vec![path]);
    }
    glob_files(from, field, &joined)
}

fn glob_files(from: &Path, field: &str, pattern: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let text = pattern.to_string_lossy();
    let paths = glob::glob(&text).map_err(|e| {
        ConfigError::at(
            from,
            field,
            format!("invalid glob pattern {text:?}: {e}"),
            "use only *, ? and [...] as wildcards",
        )
    })?;
    let mut out: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .filter_map(|p| canonical(&p).ok())
        .filter(|p| p != from)
        .collect();
    out.sort();
    Ok(out)
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn canonical(p: &Path) -> std::io::Result<PathBuf> {
    let c = std::fs::canonicalize(p)?;
    if c.is_file() {
        Ok(c)
    } else {
        Err(std::io::Error::other("not a regular file"))
    }
}

/// Orders `flat` (already free of duplicates) so every `(lower, higher)` pair holds, choosing
/// among the files that may come next the one that appears first in `flat`. Contradictory
/// pairs (possible when extends and includes point in opposite directions) are broken in
/// `flat` order.
fn topo_order(flat: &[PathBuf], below: &[(PathBuf, PathBuf)]) -> Vec<PathBuf> {
    let mut done = vec![false; flat.len()];
    let pos = |p: &PathBuf| flat.iter().position(|f| f == p);
    let edges: Vec<(usize, usize)> = below
        .iter()
        .filter_map(|(lo, hi)| Some((pos(lo)?, pos(hi)?)))
        .collect();
    let mut out = Vec::with_capacity(flat.len());
    while out.len() < flat.len() {
        let ready = |i: usize| {
            !edges
                .iter()
                .any(|&(lo, hi)| hi == i && lo != i && !done[lo])
        };
        let next = (0..flat.len())
            .find(|&i| !done[i] && ready(i))
            .or_else(|| (0..flat.len()).find(|&i| !done[i]));
        let Some(i) = next else { break };
        done[i] = true;
        out.push(flat[i].clone());
    }
    out
}

fn dedup_keep_first(list: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|p| seen.insert(p.clone()))
        .collect()
}
