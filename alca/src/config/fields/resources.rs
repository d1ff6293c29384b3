//! `resources.memory` (docker syntax: `512m`, `4g`, `1.5g`, `1073741824`) and
//! `resources.cpus` (a positive number).

use crate::config::error::Origin;
use crate::config::ConfigError;

/// Smallest memory limit docker accepts (6 MiB).
pub const MIN_MEMORY_BYTES: f64 = 6.0 * 1024.0 * 1024.0;

/// Checks a memory limit and returns it trimmed.
pub fn memory(raw: &str, origin: &Origin) -> Result<String, ConfigError> {
    let s = raw.trim();
    let bytes = memory_bytes(s).ok_or_else(|| {
        origin.err(
            format!("{raw:?} is not a memory size"),
            "write a number with an optional unit b, k, m, g or t (e.g. \"512m\", \"4g\")",
        )
    })?;
    if bytes < MIN_MEMORY_BYTES {
        return Err(origin.err(
            format!("{raw:?} is below the 6m minimum of the container runtimes"),
            "use at least \"6m\"",
        ));
    }
    Ok(s.to_string())
}

/// Parses `<number>[unit][i][b]` (case-insensitive) into bytes, like docker's `RAMInBytes`.
pub fn memory_bytes(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let mult = match unit.trim_start() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = n * mult as f64;
    bytes.is_finite().then_some(bytes)
}

/// Checks a CPU limit.
pub fn cpus(n: f64, origin: &Origin) -> Result<f64, ConfigError> {
    if n.is_finite() && n > 0.0 && n <= 4096.0 {
        return Ok(n);
    }
    Err(origin.err(
        format!("{n} is not a usable CPU count"),
        "use a positive number such as 2 or 0.5",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn o(f: &str) -> Origin {
        Origin::new(Path::new("/p/.alca.toml"), f)
    }

    #[test]
    fn memory_forms() {
        for ok in [
            "512m",
            "4g",
            "4G",
            "1.5g",
            "16gb",
            "1073741824",
            "6m",
            "8192k",
        ] {
            assert!(memory(ok, &o("resources.memory")).is_ok(), "{ok}");
        }
        assert_eq!(memory_bytes("1k"), Some(1024.0));
    }

    #[test]
    fn memory_errors() {
        let e = memory("lots", &o("resources.memory")).unwrap_err().0;
        assert!(
            e.contains("resources.memory: \"lots\" is not a memory size"),
            "{e}"
        );
        assert!(memory("4x", &o("m")).is_err());
        assert!(memory("-1g", &o("m")).is_err());
        assert!(memory(".5g", &o("m")).is_err());
        let e = memory("100k", &o("resources.memory")).unwrap_err().0;
        assert!(e.contains("minimum"), "{e}");
    }

    #[test]
    fn cpu_limits() {
        assert_eq!(cpus(0.5, &o("resources.cpus")).unwrap(), 0.5);
        let e = cpus(0.0, &o("resources.cpus")).unwrap_err().0;
        assert!(
            e.contains("resources.cpus: 0 is not a usable CPU count"),
            "{e}"
        );
        assert!(cpus(f64::NAN, &o("c")).is_err());
        assert!(cpus(-2.0, &o("c")).is_err());
    }
}
