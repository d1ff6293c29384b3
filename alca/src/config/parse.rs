//! Reading one config file into a [`RawConfig`]: TOML syntax, `${alca:…}` token placement,
//! typed deserialization with field paths in errors, and unknown keys collected as warnings.

use std::path::Path;

use alca_contract::lan::HOST_IP_TOKEN;
use serde::Deserialize;

use super::raw::RawConfig;
use super::ConfigError;

/// Prefix of every alca token; only network settings may contain one.
const TOKEN_PREFIX: &str = "${alca:";

/// One parsed file plus the unknown keys found in it (already worded as warnings).
#[derive(Debug)]
pub struct ParsedFile {
    pub raw: RawConfig,
    pub warnings: Vec<String>,
}

/// Reads and parses `file`.
pub fn read_file(file: &Path) -> Result<ParsedFile, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigError::file(
            file,
            format!("cannot read the config file: {e}"),
            "check that the file exists and is readable",
        )
    })?;
    parse_str(file, &text)
}

/// Parses config `text` that was read from `file` (the name is used in messages only).
pub fn parse_str(file: &Path, text: &str) -> Result<ParsedFile, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        ConfigError::file(
            file,
            format!("invalid TOML: {}", e.to_string().trim_end()),
            "fix the syntax at the position shown",
        )
    })?;
    check_tokens(file, "", &toml::Value::Table(table.clone()))?;
    let mut warnings = Vec::new();
    let raw = deserialize(file, table, &mut warnings)?;
    Ok(ParsedFile { raw, warnings })
}

fn deserialize(
    file: &Path,
    table: toml::Table,
    warnings: &mut Vec<String>,
) -> Result<RawConfig, ConfigError> {
    let value = toml::Value::Table(table);
    let mut track = serde_path_to_error::Track::new();
    let result = {
        let mut on_unknown = |path: serde_ignored::Path| {
            warnings.push(format!(
                "{}: unknown key `{}` is ignored; remove it or check its spelling",
                file.display(),
                ignored_path(&path)
            ));
        };
        let ignored = serde_ignored::Deserializer::new(value, &mut on_unknown);
        RawConfig::deserialize(serde_path_to_error::Deserializer::new(ignored, &mut track))
    };
    result.map_err(|e| {
        let path = track.path().to_string();
        let field = if path == "." {
            "(top level)".to_string()
        } else {
            path
        };
        ConfigError::at(
            file,
            &field,
            e.message().trim_end(),
            "change the value to the expected form (see alca-config.schema.json)",
        )
    })
}

/// Formats a serde_ignored path as `a.b[0].c`.
fn ignored_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// Rejects `${alca:…}` tokens outside `network.lan-access` and `network.proxy`.
fn check_tokens(file: &Path, path: &str, value: &toml::Value) -> Result<(), ConfigError> {
    if path.starts_with("network.lan-access") || path == "network.proxy" {
        return Ok(());
    }
    match value {
        toml::Value::String(s) if s.contains(TOKEN_PREFIX) => Err(ConfigError::at(
            file,
            path,
            format!("{s:?} contains an alca token, which is only resolved in network.lan-access and network.proxy"),
            format!("remove it (valid tokens: {HOST_IP_TOKEN}, only in network.lan-access and network.proxy)"),
        )),
        toml::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_tokens(file, &format!("{path}[{i}]"), v)),
        toml::Value::Table(t) => t.iter().try_for_each(|(k, v)| {
            let child = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            check_tokens(file, &child, v)
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ParsedFile, ConfigError> {
        parse_str(Path::new("/p/.alca.toml"), text)
    }

    #[test]
    fn unknown_keys_warn_with_their_path() {
        let p = parse("image = \"a\"\nimagee = 1\n[network]\nlan_access = []\n[[mounts]]\nsource = \".\"\ntarget = \"/x\"\nro = true\n").unwrap();
        let all = p.warnings.join("\n");
        assert!(all.contains("unknown key `imagee`"), "{all}");
        assert!(all.contains("unknown key `network.lan_access`"), "{all}");
        assert!(all.contains("unknown key `mounts[0].ro`"), "{all}");
        assert!(all.starts_with("/p/.alca.toml: "), "{all}");
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let e = parse("image = \"a\"\nmounts = [\"a:/b\", 3]\n")
            .unwrap_err()
            .0;
        assert!(e.starts_with("/p/.alca.toml: mounts[1]: "), "{e}");
        assert!(e.contains("a mount: a string"), "{e}");
        let e = parse("[resources]\ncpus = \"two\"\n").unwrap_err().0;
        assert!(e.contains("resources.cpus: invalid type"), "{e}");
        let e = parse("runtime = \"lxc\"\n").unwrap_err().0;
        assert!(e.contains("runtime: unknown variant `lxc`"), "{e}");
        assert!(e.contains("podman"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_file_and_position() {
        let e = parse("image = \n").unwrap_err().0;
        assert!(e.starts_with("/p/.alca.toml: invalid TOML"), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn alca_tokens_only_in_network_settings() {
        assert!(parse("image = \"a\"\n[network]\nlan-access = [\"${alca:HOST_IP}:80\"]\nproxy = \"${alca:HOST_IP}:3128\"\n").is_ok());
        let e = parse("image = \"a\"\n[envs]\nX = \"${alca:HOST_IP}\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("envs.X: "), "{e}");
        assert!(e.contains("valid tokens: ${alca:HOST_IP}"), "{e}");
        let e = parse("mounts = [\"${alca:FOO}:/x\"]\n").unwrap_err().0;
        assert!(e.contains("mounts[0]: "), "{e}");
    }
}
