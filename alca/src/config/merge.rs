//! Pairwise merge of checked layers, as documented by the Go original: tables merge deeply,
//! arrays append, a scalar set in the overlay wins, and `commands.*.append = true` appends the
//! overlay command to the inherited one (space-separated).

use super::fields::{caps, internet};
use super::layer::{CommandLayer, Layer};

/// Merges `overlay` on top of `base`.
pub fn merge(base: Layer, overlay: Layer) -> Layer {
    let mut out = base;
    set(&mut out.image, overlay.image);
    set(&mut out.workdir, overlay.workdir);
    out.workdir_exclude.extend(overlay.workdir_exclude);
    set(&mut out.runtime, overlay.runtime);
    out.mounts.extend(overlay.mounts);
    out.up = command(out.up, overlay.up);
    out.enter = command(out.enter, overlay.enter);
    set(&mut out.memory, overlay.memory);
    set(&mut out.cpus, overlay.cpus);
    out.envs.extend(overlay.envs);
    out.caps = caps::merge(out.caps, overlay.caps);
    out.ports.extend(overlay.ports);
    out.lan_access.extend(overlay.lan_access);
    set(&mut out.proxy, overlay.proxy);
    out.internet_access = match (out.internet_access, overlay.internet_access) {
        (Some(b), Some(o)) => Some(internet::merge_internet_access(b, o)),
        (b, o) => o.or(b),
    };
    out.dns_upstream = match (out.dns_upstream, overlay.dns_upstream) {
        (Some(mut b), Some(o)) => {
            for a in o {
                if !b.contains(&a) {
                    b.push(a);
                }
            }
            Some(b)
        }
        (b, o) => o.or(b),
    };
    set(&mut out.dns_ttl_floor, overlay.dns_ttl_floor);
    set(&mut out.post_up, overlay.post_up);
    set(&mut out.pre_down, overlay.pre_down);
    out.sources.extend(overlay.sources);
    out
}

fn set<T>(slot: &mut Option<T>, overlay: Option<T>) {
    if overlay.is_some() {
        *slot = overlay;
    }
}

/// Only the overlay's `append` flag counts; the result keeps the base's flag so a chain of
/// appends stays relative to whatever the stack below provides.
fn command(base: Option<CommandLayer>, overlay: Option<CommandLayer>) -> Option<CommandLayer> {
    match (base, overlay) {
        (b, None) => b,
        (Some(b), Some(o)) if o.append => Some(CommandLayer {
            command: format!("{} {}", b.command, o.command),
            append: b.append,
        }),
        (_, o) => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(c: &str, append: bool) -> Option<CommandLayer> {
        Some(CommandLayer {
            command: c.into(),
            append,
        })
    }

    #[test]
    fn append_uses_only_the_overlay_flag() {
        assert_eq!(
            command(cmd("nix develop", false), cmd("bash", true)),
            cmd("nix develop bash", false)
        );
        assert_eq!(command(cmd("a", true), cmd("b", false)), cmd("b", false));
        assert_eq!(command(None, cmd("b", true)), cmd("b", true));
        assert_eq!(command(cmd("a", false), None), cmd("a", false));
    }

    #[test]
    fn scalars_win_and_lists_append() {
        let base = Layer {
            image: Some("a".into()),
            workdir_exclude: vec!["x".into()],
            memory: Some("1g".into()),
            ..Layer::default()
        };
        let overlay = Layer {
            image: Some("b".into()),
            workdir_exclude: vec!["y".into()],
            ..Layer::default()
        };
        let m = merge(base, overlay);
        assert_eq!(m.image.as_deref(), Some("b"));
        assert_eq!(m.memory.as_deref(), Some("1g"));
        assert_eq!(m.workdir_exclude, ["x", "y"]);
    }
}
