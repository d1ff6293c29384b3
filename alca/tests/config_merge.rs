//! `extends` / `includes`: three-layer merge, within-array priority, globs, env vars,
//! relative paths, diamonds (allowed), cycles (rejected with the chain) and command append.

mod config_support;

use alca::config::Caps;
use config_support::{assert_has, Project};

/// Order in which the files' `workdir_exclude` entries (one per file, named after it) appear:
/// arrays append in merge order, so this is the layer order from lowest to highest priority.
fn layer_order(p: &Project) -> Vec<String> {
    p.ok().config.workdir_exclude
}

fn file(name: &str, extra: &str) -> String {
    format!("workdir_exclude = [\"{name}\"]\nimage = \"{name}\"\n{extra}\n")
}

#[test]
fn extends_self_wins_and_arrays_append() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file("A", "extends = [\".alca.base.toml\"]\nmounts = [\"a:/a\"]"),
    );
    p.write(
        ".alca.base.toml",
        &file(
            "B",
            "workdir = \"/w\"\nmounts = [\"b:/b\"]\n[resources]\nmemory = \"2g\"",
        ),
    );
    let c = p.ok().config;
    assert_eq!(c.image, "A");
    assert_eq!(c.workdir, "/w");
    assert_eq!(c.resources.memory.as_deref(), Some("2g"));
    let targets: Vec<&str> = c.mounts.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(targets, ["/b", "/a"]);
    assert_eq!(
        c.sources,
        vec![p.path(".alca.base.toml"), p.path(".alca.toml")]
    );
}

#[test]
fn includes_win_over_the_declaring_file() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file("A", "includes = [\".alca.local.toml\"]"),
    );
    p.write(".alca.local.toml", &file("L", ""));
    assert_eq!(p.ok().config.image, "L");
    assert_eq!(layer_order(&p), ["A", "L"]);
}

#[test]
fn three_layer_merge() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file(
            "A",
            "extends = [\".alca.base.toml\"]\nincludes = [\".alca.local.toml\"]",
        ),
    );
    p.write(
        ".alca.base.toml",
        &file("BASE", "[resources]\ncpus = 1\nmemory = \"1g\""),
    );
    p.write(".alca.local.toml", &file("LOCAL", "[resources]\ncpus = 16"));
    let c = p.ok().config;
    assert_eq!(c.image, "LOCAL");
    assert_eq!(c.resources.cpus, Some(16.0));
    assert_eq!(c.resources.memory.as_deref(), Some("1g"));
    assert_eq!(c.workdir_exclude, ["BASE", "A", "LOCAL"]);
}

/// The AGD-033 example: A → [B, C, D]; D → [E, F]; F → [G], all with one `directive`.
fn chain(directive: &str) -> Project {
    let p = Project::new();
    let refs = |list: &[&str]| format!("{directive} = {list:?}");
    p.write(
        ".alca.toml",
        &file("A", &refs(&["b.toml", "c.toml", "d.toml"])),
    );
    p.write("d.toml", &file("D", &refs(&["e.toml", "f.toml"])));
    p.write("f.toml", &file("F", &refs(&["g.toml"])));
    for leaf in ["B", "C", "E", "G"] {
        p.write(&format!("{}.toml", leaf.to_lowercase()), &file(leaf, ""));
    }
    p
}

#[test]
fn extends_priority_follows_the_go_original_example() {
    let p = chain("extends");
    assert_eq!(layer_order(&p), ["G", "F", "E", "D", "C", "B", "A"]);
    assert_eq!(p.ok().config.image, "A");
}

#[test]
fn includes_priority_follows_the_go_original_example() {
    let p = chain("includes");
    assert_eq!(layer_order(&p), ["A", "B", "C", "D", "E", "F", "G"]);
    assert_eq!(p.ok().config.image, "G");
}

#[test]
fn globs_are_sorted_and_may_match_nothing() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file("A", "includes = [\"./.alca.*.toml\", \"none/*.toml\"]"),
    );
    p.write(".alca.b.local.toml", &file("B", ""));
    p.write(".alca.a.local.toml", &file("AL", ""));
    assert_eq!(layer_order(&p), ["A", "AL", "B"]);
    let p = Project::with(&file("A", "includes = [\"./.alca.*.toml\"]"));
    assert_eq!(layer_order(&p), ["A"]);
}

#[test]
fn a_glob_that_matches_the_declaring_file_skips_it() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file("A", "includes = [\"*.toml\", \".*.toml\"]"),
    );
    p.write("x.toml", &file("X", ""));
    assert_eq!(layer_order(&p), ["A", "X"]);
}

#[test]
fn literal_paths_must_exist() {
    let p = Project::with(&file("A", "includes = [\"missing.toml\"]"));
    let e = p.err_rel();
    assert_has(
        &e,
        "<root>/.alca.toml: includes[0]: <root>/missing.toml cannot be opened: ",
    );
    assert_has(
        &e,
        "; fix the path (relative paths start at this file's directory) or remove the entry",
    );
}

#[test]
fn env_vars_and_home_in_paths() {
    let mut p = Project::new();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("base.toml"), file("SHARED", "")).unwrap();
    p.set_env("ALCA_CONF_DIR", &shared.path().display().to_string());
    p.write(
        ".alca.toml",
        &file(
            "A",
            "extends = [\"${ALCA_CONF_DIR}/base.toml\", \"$ALCA_CONF_DIR/*.toml\"]",
        ),
    );
    assert_eq!(layer_order(&p), ["SHARED", "A"]);
    let p = Project::with(&file("A", "extends = [\"${ALCA_UNSET_DIR}/base.toml\"]"));
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: extends[0]: undefined environment variable: $ALCA_UNSET_DIR; set the variable or change the path"
    );
}

#[test]
fn paths_are_relative_to_the_declaring_file() {
    let p = Project::new();
    p.write(".alca.toml", &file("A", "extends = [\"conf/team.toml\"]"));
    p.write(
        "conf/team.toml",
        &file(
            "T",
            "extends = [\"../shared/base.toml\"]\nmounts = [\"cache:/cache\"]",
        ),
    );
    p.write(
        "shared/base.toml",
        &file("S", "[[mounts]]\nsource = \".\"\ntarget = \"/shared\""),
    );
    let c = p.ok().config;
    assert_eq!(c.workdir_exclude, ["S", "T", "A"]);
    assert_eq!(c.mounts[0].source, p.path("shared"));
    assert_eq!(c.mounts[1].source, p.path("conf/cache"));
}

#[test]
fn diamonds_are_not_cycles_and_count_once() {
    // A extends [B, C]; B and C both extend D (which declares a mount).
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file("A", "extends = [\"b.toml\", \"c.toml\"]"),
    );
    p.write("b.toml", &file("B", "extends = [\"d.toml\"]"));
    p.write("c.toml", &file("C", "extends = [\"d.toml\"]"));
    p.write("d.toml", &file("D", "mounts = [\"d:/d\"]"));
    let c = p.ok().config;
    assert_eq!(c.workdir_exclude, ["D", "C", "B", "A"]);
    assert_eq!(c.mounts.len(), 1);
    // The same with includes on both sides of the diamond.
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file("A", "includes = [\"b.toml\", \"c.toml\"]"),
    );
    p.write("b.toml", &file("B", "includes = [\"d.toml\"]"));
    p.write("c.toml", &file("C", "includes = [\"d.toml\"]"));
    p.write("d.toml", &file("D", "mounts = [\"d:/d\"]"));
    // D is included by both B and C, so it sits above both.
    assert_eq!(layer_order(&p), ["A", "B", "C", "D"]);
}

#[test]
fn cycles_are_rejected_with_the_chain() {
    let p = Project::new();
    p.write(".alca.toml", &file("A", "includes = [\"b.toml\"]"));
    p.write("b.toml", &file("B", "extends = [\"c.toml\"]"));
    p.write("c.toml", &file("C", "includes = [\".alca.toml\"]"));
    assert_eq!(
        p.err_rel(),
        "<root>/c.toml: includes[0]: circular reference: <root>/.alca.toml -> <root>/b.toml -> <root>/c.toml -> <root>/.alca.toml; remove one of the references in this chain"
    );
    let p = Project::with(&file("A", "extends = [\".alca.toml\"]"));
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: extends[0]: circular reference: <root>/.alca.toml -> <root>/.alca.toml",
    );
}

#[test]
fn command_append_follows_the_documented_example() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\".alca.local.toml\"]\n[commands.up]\ncommand = \"nix develop\"\n",
    );
    p.write(
        ".alca.local.toml",
        "[commands.up]\ncommand = \"bash\"\nappend = true\n",
    );
    assert_eq!(
        p.ok().config.commands.up.as_deref(),
        Some("nix develop bash")
    );
}

#[test]
fn command_append_only_the_overlay_flag_counts() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nextends = [\"base.toml\"]\n[commands]\nenter = { command = \"--\", append = true }\nup = \"mine\"\n",
    );
    p.write(
        "base.toml",
        "[commands]\nenter = { command = \"mise exec\", append = true }\nup = \"theirs\"\n",
    );
    let c = p.ok().config.commands;
    assert_eq!(c.enter.as_deref(), Some("mise exec --"));
    assert_eq!(c.up.as_deref(), Some("mine"));
}

#[test]
fn envs_and_caps_merge() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\"local.toml\"]\ncaps = [\"NET_BIND_SERVICE\"]\n[envs]\nA = \"1\"\nB = \"2\"\n",
    );
    p.write(
        "local.toml",
        "caps = [\"SYS_PTRACE\"]\n[envs]\nB = \"local\"\n",
    );
    let c = p.ok().config;
    assert_eq!(c.envs["A"].value, "1");
    assert_eq!(c.envs["B"].value, "local");
    assert_eq!(c.caps.add[6..], ["NET_BIND_SERVICE", "SYS_PTRACE"]);
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\"local.toml\"]\ncaps = [\"NET_RAW\"]\n",
    );
    p.write(
        "local.toml",
        "[caps]\ndrop = [\"ALL\"]\nadd = [\"CHOWN\"]\n",
    );
    assert_eq!(
        p.ok().config.caps,
        Caps {
            drop: vec!["ALL".into()],
            add: vec!["CHOWN".into()]
        }
    );
}

#[test]
fn errors_and_warnings_name_the_file_they_come_from() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\".alca.local.toml\"]\n",
    );
    p.write(".alca.local.toml", "[resources]\nmemory = \"huge\"\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.local.toml: resources.memory: \"huge\" is not a memory size",
    );
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\".alca.local.toml\"]\n",
    );
    p.write(".alca.local.toml", "colour = \"blue\"\n");
    let w = p
        .ok()
        .warnings
        .join("\n")
        .replace(&p.root().display().to_string(), "<root>");
    assert_eq!(
        w,
        "<root>/.alca.local.toml: unknown key `colour` is ignored; remove it or check its spelling"
    );
}

#[test]
fn duplicate_targets_across_files_name_both_files() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nextends = [\"base.toml\"]\nmounts = [\"x:/data\"]\n",
    );
    p.write("base.toml", "mounts = [\"y:/data\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: mounts[0].target: \"/data\" is already the target of mounts[0] in <root>/base.toml; give each mount its own container path or remove one of them"
    );
}

#[test]
fn workdir_from_an_overlay_is_checked_against_base_mounts() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nmounts = [\"src:/src\"]\nincludes = [\"local.toml\"]\n",
    );
    p.write("local.toml", "workdir = \"/src\"\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: mounts[0].target: \"/src\" is the workdir",
    );
}

#[test]
fn lan_access_appends_and_proxy_overrides() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\"local.toml\"]\n[network]\nlan-access = [\"10.99.0.2\"]\nproxy = \"10.99.0.2:3128\"\n",
    );
    p.write(
        "local.toml",
        "[network]\nlan-access = [\"198.51.100.2:80\"]\nproxy = \"${alca:HOST_IP}:1080\"\n",
    );
    let n = p.ok().config.network;
    assert_eq!(n.lan_access_raw, ["10.99.0.2", "198.51.100.2:80"]);
    assert_eq!(n.proxy_raw.as_deref(), Some("${alca:HOST_IP}:1080"));
}

#[test]
fn contradictory_directions_still_load_deterministically() {
    // X extends Y, Y extends Z, X includes Z: Z must be both below Y and above X.
    let p = Project::new();
    p.write(
        ".alca.toml",
        &file("X", "extends = [\"y.toml\"]\nincludes = [\"z.toml\"]"),
    );
    p.write("y.toml", &file("Y", "extends = [\"z.toml\"]"));
    p.write("z.toml", &file("Z", ""));
    assert_eq!(layer_order(&p), ["Z", "Y", "X"]);
}

#[test]
fn too_many_files_are_refused() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\"many/*.toml\"]\n",
    );
    for i in 0..200 {
        p.write(&format!("many/{i:03}.toml"), "");
    }
    assert_has(
        &p.err_rel(),
        "more than 128 config files are extended or included; narrow the extends/includes globs",
    );
}

#[test]
fn a_symlinked_directory_loop_ends_in_an_error() {
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\"sub/.alca.toml\"]\n",
    );
    std::os::unix::fs::symlink(".", p.root().join("sub")).unwrap();
    let e = p.err_rel();
    assert_has(
        &e,
        "circular reference: <root>/.alca.toml -> <root>/.alca.toml",
    );
}

#[test]
fn internet_access_appends_a_star_opens_and_the_dns_settings_merge() {
    use alca_contract::internet::{InternetAccess, DEFAULT_TTL_FLOOR_SECS};
    let p = Project::new();
    p.write(
        ".alca.toml",
        "image = \"a\"\nincludes = [\"local.toml\"]\n[network]\ninternet-access = [\"github.com\"]\ndns-upstream = [\"192.0.2.53\"]\ndns-ttl-floor = 5\n",
    );
    p.write(
        "local.toml",
        "[network]\ninternet-access = [\"*.wild.test:443\", \"github.com\"]\ndns-upstream = [\"[2001:db8::53]:5353\"]\n",
    );
    let n = p.ok().config.network;
    assert_eq!(n.internet_access_raw, ["github.com", "*.wild.test:443"]);
    let InternetAccess::Only(entries) = &n.internet_access else {
        panic!("a list: {:?}", n.internet_access);
    };
    assert_eq!(entries.len(), 2);
    assert_eq!(
        n.dns_upstream,
        [
            "192.0.2.53:53".parse().unwrap(),
            "[2001:db8::53]:5353".parse().unwrap()
        ]
    );
    assert_eq!(n.dns_ttl_floor, 5, "a scalar set in one file is kept");

    p.write("local.toml", "[network]\ninternet-access = [\"*\"]\n");
    let n = p.ok().config.network;
    assert_eq!(n.internet_access, InternetAccess::Everything);
    assert_eq!(n.internet_access_raw, ["*"]);

    p.write(".alca.toml", "image = \"a\"\n");
    let n = p.ok().config.network;
    assert_eq!(n.internet_access, InternetAccess::Everything, "the default");
    assert!(n.dns_upstream.is_empty());
    assert_eq!(n.dns_ttl_floor, DEFAULT_TTL_FLOOR_SECS);

    p.write(
        ".alca.toml",
        "image = \"a\"\n[network]\ninternet-access = []\n",
    );
    let n = p.ok().config.network;
    assert_eq!(
        n.internet_access,
        InternetAccess::Only(vec![]),
        "[] is no internet"
    );
}

#[test]
fn internet_access_errors_name_the_file_the_field_and_the_fix() {
    let p = Project::new();
    p.write(".alca.toml", "image = \"a\"\nincludes = [\"local.toml\"]\n");
    p.write(
        "local.toml",
        "[network]\ninternet-access = [\"ok.test\", \"bad name.test\"]\n",
    );
    let e = p.err_rel();
    assert!(
        e.contains(
            "local.toml: network.internet-access[1]: \"bad name.test\" is not a domain name"
        ),
        "{e}"
    );
    assert!(
        e.contains("write [\"*\"] (open internet), [] (no internet)"),
        "{e}"
    );
    p.write("local.toml", "[network]\ndns-ttl-floor = -1\n");
    let e = p.err_rel();
    assert!(
        e.contains("local.toml: network.dns-ttl-floor: -1 is not a number"),
        "{e}"
    );
    p.write("local.toml", "[network]\ndns-upstream = [\"dns.google\"]\n");
    let e = p.err_rel();
    assert!(e.contains("local.toml: network.dns-upstream[0]: "), "{e}");
}
