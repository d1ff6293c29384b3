//! Every `.alca.toml` field: accepted forms, defaults, and the exact error text of each
//! rejected form (file, dotted field path and fix).

mod config_support;

use std::net::IpAddr;
use std::path::PathBuf;

use alca::config::{Caps, PortProto, RuntimeChoice, DEFAULT_CAPS_ADD, DEFAULT_WORKDIR};
use alca_contract::LanEntry;
use config_support::{assert_has, Project};

#[test]
fn minimal_config_gets_the_defaults() {
    let p = Project::with("image = \"alpine:latest\"\n");
    let l = p.ok();
    let c = l.config;
    assert!(l.warnings.is_empty());
    assert_eq!(c.image, "alpine:latest");
    assert_eq!(c.workdir, DEFAULT_WORKDIR);
    assert_eq!(c.runtime, RuntimeChoice::Auto);
    assert_eq!(c.caps, Caps::default());
    assert_eq!(c.caps.drop, ["ALL"]);
    assert!(c.mounts.is_empty() && c.ports.is_empty() && c.envs.is_empty());
    assert_eq!(c.commands.up, None);
    assert_eq!(c.sources, vec![p.path(".alca.toml")]);
    assert!(!c.network.allows_everything());
}

#[test]
fn image_is_required() {
    let p = Project::with("workdir = \"/w\"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: image: no container image is set in this file or the files it extends or includes; add a line such as image = \"alpine:latest\""
    );
    let p = Project::with("image = \" \"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: image: the value is empty; set a container image such as \"alpine:latest\""
    );
    let p = Project::with("image = 3\n");
    assert_has(&p.err_rel(), "<root>/.alca.toml: image: invalid type: integer `3`, expected a string; change the value to the expected form");
}

#[test]
fn workdir_must_be_absolute() {
    let p = Project::with("image = \"a\"\nworkdir = \"/src/\"\n");
    assert_eq!(p.ok().config.workdir, "/src");
    let p = Project::with("image = \"a\"\nworkdir = \"src\"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: workdir: \"src\" is not an absolute path; write the container path starting with \"/\" (e.g. \"/workspace\")"
    );
    let p = Project::with("image = \"a\"\nworkdir = \"/a/../b\"\n");
    assert_has(&p.err(), "workdir: \"/a/../b\" contains \"..\"");
}

#[test]
fn runtime_values() {
    for (v, want) in [
        ("auto", RuntimeChoice::Auto),
        ("docker", RuntimeChoice::Docker),
        ("podman", RuntimeChoice::Podman),
    ] {
        let p = Project::with(&format!("image = \"a\"\nruntime = \"{v}\"\n"));
        assert_eq!(p.ok().config.runtime, want);
    }
    let p = Project::with("image = \"a\"\nruntime = \"lxc\"\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: runtime: unknown variant `lxc`, expected one of `auto`, `docker`, `podman`",
    );
}

#[test]
fn workdir_exclude_patterns() {
    let p = Project::with("image = \"a\"\nworkdir_exclude = [\"**/.env\", \"secrets/\"]\n");
    assert_eq!(p.ok().config.workdir_exclude, ["**/.env", "secrets/"]);
    let p = Project::with("image = \"a\"\nworkdir_exclude = [\"ok\", \"\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: workdir_exclude[1]: empty exclude pattern; remove it or write a pattern such as \"**/.env\""
    );
}

#[test]
fn mounts_string_form_expands_and_resolves() {
    let p = Project::with(
        "image = \"a\"\nmounts = [\"~/.gitconfig:/root/.gitconfig:ro\", \"$DATA/x:/x\", \"${DATA}:/data\", \"cache:/cache\", \"../up:/up\"]\n",
    );
    let m = p.ok().config.mounts;
    assert_eq!(m[0].source, PathBuf::from("/home/tester/.gitconfig"));
    assert_eq!(m[0].target, "/root/.gitconfig");
    assert!(m[0].readonly);
    assert_eq!(m[1].source, PathBuf::from("/srv/data/x"));
    assert_eq!(m[2].source, PathBuf::from("/srv/data"));
    assert_eq!(m[3].source, p.path("cache"));
    assert!(!m[3].readonly);
    assert_eq!(m[4].source, p.root().parent().unwrap().join("up"));
}

#[test]
fn mounts_table_form() {
    let p = Project::with(
        "image = \"a\"\n[[mounts]]\nsource = \".\"\ntarget = \"/src\"\nreadonly = true\nexclude = [\"**/.env\", \"**/*.key\"]\n",
    );
    let m = &p.ok().config.mounts[0];
    assert_eq!(m.source, p.root());
    assert_eq!(m.target, "/src");
    assert!(m.readonly);
    assert_eq!(m.exclude, ["**/.env", "**/*.key"]);
}

#[test]
fn mount_errors() {
    let cases = [
        ("mounts = [\"nocolon\"]", "<root>/.alca.toml: mounts[0]: \"nocolon\" is not a mount; write it as \"source:target\" or \"source:target:ro\" (e.g. \"~/.gitconfig:/root/.gitconfig:ro\")"),
        ("mounts = [\"a:/a\", \"b:rel\"]", "<root>/.alca.toml: mounts[1].target: \"rel\" is not an absolute path; write the container path starting with \"/\" (e.g. \"/workspace\")"),
        ("mounts = [\"$NOPE/x:/x\"]", "<root>/.alca.toml: mounts[0].source: undefined environment variable: $NOPE; set the variable in the host environment or change the path"),
        ("mounts = [\".:/workspace\"]", "<root>/.alca.toml: mounts[0].target: \"/workspace\" is the workdir, which is already the project mount; remove this mount; to hide paths from the project mount use workdir_exclude"),
        ("mounts = [\"a:/x\", \"b:/x/\"]", "<root>/.alca.toml: mounts[1].target: \"/x\" is already the target of mounts[0] in <root>/.alca.toml; give each mount its own container path or remove one of them"),
        ("[[mounts]]\nsource = \"\"\ntarget = \"/x\"", "<root>/.alca.toml: mounts[0].source: the host path is empty; set it to a host directory or file (relative paths start at this file's directory)"),
        ("[[mounts]]\nsource = \"a\"\ntarget = \"/x\"\nexclude = [\"\"]", "<root>/.alca.toml: mounts[0].exclude[0]: empty exclude pattern"),
    ];
    for (body, want) in cases {
        let p = Project::with(&format!("image = \"a\"\n{body}\n"));
        assert_has(&p.err_rel(), want);
    }
    let p = Project::with("image = \"a\"\n[[mounts]]\nsource = \"a\"\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: mounts[0]: missing field `target`",
    );
    let p = Project::with("image = \"a\"\nmounts = [1]\n");
    assert_has(&p.err_rel(), "mounts[0]: invalid type: integer `1`, expected a mount: a string \"source:target[:ro]\" or a table {source, target, readonly, exclude}");
}

#[test]
fn mount_on_a_custom_workdir_is_rejected() {
    let p = Project::with(
        "image = \"a\"\nworkdir = \"/src\"\nmounts = [\".:/src\", \".:/workspace\"]\n",
    );
    assert_has(&p.err_rel(), "mounts[0].target: \"/src\" is the workdir");
}

#[test]
fn commands_string_and_table() {
    let p = Project::with(
        "image = \"a\"\n[commands]\nup = \"apk add git\"\n[commands.enter]\ncommand = \"mise exec --\"\n",
    );
    let c = p.ok().config.commands;
    assert_eq!(c.up.as_deref(), Some("apk add git"));
    assert_eq!(c.enter.as_deref(), Some("mise exec --"));
    let p = Project::with("image = \"a\"\n[commands]\nup = \"  \"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: commands.up: the command is only whitespace; remove the key, leave it empty, or give a shell command"
    );
    let p = Project::with("image = \"a\"\n[commands.enter]\nappend = true\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: commands.enter: missing field `command`",
    );
    let p = Project::with("image = \"a\"\n[commands]\nup = [\"a\"]\n");
    assert_has(&p.err_rel(), "commands.up: invalid type: sequence, expected a command: a string or a table {command, append}");
}

#[test]
fn resources() {
    let p = Project::with("image = \"a\"\n[resources]\nmemory = \"4g\"\ncpus = 2\n");
    let r = p.ok().config.resources;
    assert_eq!(r.memory.as_deref(), Some("4g"));
    assert_eq!(r.cpus, Some(2.0));
    let p = Project::with("image = \"a\"\n[resources]\ncpus = 0.5\nmemory = \"512m\"\n");
    assert_eq!(p.ok().config.resources.cpus, Some(0.5));
    let p = Project::with("image = \"a\"\n[resources]\nmemory = \"4 gigs\"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: resources.memory: \"4 gigs\" is not a memory size; write a number with an optional unit b, k, m, g or t (e.g. \"512m\", \"4g\")"
    );
    let p = Project::with("image = \"a\"\n[resources]\nmemory = \"1m\"\n");
    assert_has(
        &p.err_rel(),
        "resources.memory: \"1m\" is below the 6m minimum",
    );
    let p = Project::with("image = \"a\"\n[resources]\ncpus = -1\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: resources.cpus: -1 is not a usable CPU count; use a positive number such as 2 or 0.5"
    );
    let p = Project::with("image = \"a\"\n[resources]\ncpus = \"2\"\n");
    assert_has(
        &p.err_rel(),
        "resources.cpus: invalid type: string \"2\", expected f64",
    );
}

#[test]
fn envs_static_reference_and_table() {
    let mut p = Project::with(
        "image = \"a\"\n[envs]\nSTATIC = \"1\"\nTOKEN = \"${MY_TOKEN}\"\nUNSET = \"${NOT_SET_ANYWHERE}\"\nEDITOR = { value = \"${EDITOR}\", override_on_enter = true }\n",
    );
    p.set_env("MY_TOKEN", "s3cret").set_env("EDITOR", "vim");
    let e = p.ok().config.envs;
    assert_eq!(e["STATIC"].value, "1");
    assert!(!e["STATIC"].override_on_enter);
    assert_eq!(e["TOKEN"].value, "s3cret");
    assert_eq!(e["TOKEN"].template, "${MY_TOKEN}");
    assert_eq!(e["UNSET"].value, "");
    assert_eq!(e["EDITOR"].value, "vim");
    assert!(e["EDITOR"].override_on_enter);
}

#[test]
fn env_errors() {
    let p = Project::with("image = \"a\"\n[envs]\nGREETING = \"hello${NAME}\"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: envs.GREETING: \"hello${NAME}\" mixes text with a ${...} reference; use either a static value or exactly \"${HOST_VAR}\" (no text around it)"
    );
    let p = Project::with("image = \"a\"\n[envs]\n\"MY-VAR\" = \"x\"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: envs.MY-VAR: \"MY-VAR\" is not a valid environment variable name; use letters, digits and underscores, not starting with a digit (e.g. MY_TOKEN)"
    );
    let p = Project::with("image = \"a\"\n[envs]\nX = { value = \"${A\" }\n");
    assert_has(&p.err_rel(), "envs.X.value: \"${A\" mixes text");
    let p = Project::with("image = \"a\"\n[envs]\nX = 1\n");
    assert_has(
        &p.err_rel(),
        "envs.X: invalid type: integer `1`, expected an environment value",
    );
}

#[test]
fn caps_array_adds_to_defaults() {
    let p = Project::with("image = \"a\"\ncaps = [\"NET_BIND_SERVICE\", \"cap_sys_ptrace\"]\n");
    let c = p.ok().config.caps;
    assert_eq!(c.drop, ["ALL"]);
    let mut want: Vec<&str> = DEFAULT_CAPS_ADD.to_vec();
    want.extend(["NET_BIND_SERVICE", "SYS_PTRACE"]);
    assert_eq!(c.add, want);
}

#[test]
fn caps_table_is_verbatim() {
    let p = Project::with("image = \"a\"\n[caps]\ndrop = [\"NET_RAW\", \"MKNOD\"]\n");
    let c = p.ok().config.caps;
    assert_eq!(c.drop, ["NET_RAW", "MKNOD"]);
    assert!(c.add.is_empty());
    let p = Project::with("image = \"a\"\n[caps]\ndrop = [\"ALL\"]\nadd = [\"CAP_CHOWN\"]\n");
    assert_eq!(p.ok().config.caps.add, ["CHOWN"]);
}

#[test]
fn caps_errors() {
    let p = Project::with("image = \"a\"\ncaps = [\"CHOWN\", \"NET_RAWW\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: caps[1]: \"NET_RAWW\" is not a Linux capability; use a name from `man 7 capabilities` such as \"NET_BIND_SERVICE\" (the CAP_ prefix is optional) or \"ALL\""
    );
    let p = Project::with("image = \"a\"\n[caps]\nadd = [\"root\"]\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: caps.add[0]: \"root\" is not a Linux capability",
    );
    let p = Project::with("image = \"a\"\ncaps = \"ALL\"\n");
    assert_has(&p.err_rel(), "caps: invalid type: string \"ALL\", expected capabilities: an array of names to add to the defaults or a table {drop, add}");
}

#[test]
fn ports_string_and_table_forms() {
    let p = Project::with(
        "image = \"a\"\nports = [\"8080\", \"3001:3000\", \"127.0.0.1:5432:5432\", \"53:53/udp\", { port = 80, hostPort = 8081, hostIp = \"::1\", protocol = \"tcp\" }, { port = 9000 }]\n",
    );
    let ports = p.ok().config.ports;
    let got: Vec<(Option<IpAddr>, Option<u16>, u16, PortProto)> = ports
        .iter()
        .map(|p| (p.host_ip, p.host_port, p.container_port, p.proto))
        .collect();
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    let v6: IpAddr = "::1".parse().unwrap();
    assert_eq!(
        got,
        vec![
            (None, Some(8080), 8080, PortProto::Tcp),
            (None, Some(3001), 3000, PortProto::Tcp),
            (Some(lo), Some(5432), 5432, PortProto::Tcp),
            (None, Some(53), 53, PortProto::Udp),
            (Some(v6), Some(8081), 80, PortProto::Tcp),
            (None, Some(9000), 9000, PortProto::Tcp),
        ]
    );
}

#[test]
fn port_errors() {
    let cases = [
        ("ports = [\"http\"]", "<root>/.alca.toml: ports[0]: \"http\" in \"http\" is not a port number from 1 to 65535; write it as \"8080\", \"8080:80\", \"127.0.0.1:8080:80\" or \"8080:80/udp\""),
        ("ports = [\"80:80/sctp\"]", "<root>/.alca.toml: ports[0]: protocol \"sctp\" is not supported; use \"tcp\" or \"udp\""),
        ("ports = [\"localhost:80:80\"]", "<root>/.alca.toml: ports[0]: \"localhost\" is not an IP address; write a host address such as \"127.0.0.1\" or \"::1\" (hostnames are not allowed)"),
        ("ports = [{ port = 0 }]", "<root>/.alca.toml: ports[0].port: port 0 is not allowed; use a port from 1 to 65535"),
        ("ports = [{ port = 80, protocol = \"icmp\" }]", "<root>/.alca.toml: ports[0].protocol: protocol \"icmp\" is not supported"),
        ("ports = [{ port = 80, hostIp = \"x\" }]", "<root>/.alca.toml: ports[0].hostIp: \"x\" is not an IP address"),
        ("ports = [\"8080:80\", \"8080:81\"]", "<root>/.alca.toml: ports[1]: host port 8080 is already published by ports[0] in <root>/.alca.toml; use a different host port or remove one of the entries"),
        ("ports = [{ port = 70000 }]", "<root>/.alca.toml: ports[0].port: invalid value: integer `70000`, expected u16"),
    ];
    for (body, want) in cases {
        let p = Project::with(&format!("image = \"a\"\n{body}\n"));
        assert_has(&p.err_rel(), want);
    }
}

#[test]
fn lan_access_and_proxy_parse_at_load() {
    let p = Project::with(
        "image = \"a\"\n[network]\nlan-access = [\"10.99.0.2\", \"192.168.1.0/24\", \"tcp://10.0.0.5:5432\", \"*://${alca:HOST_IP}:8080\", \"[fd00::1]:80\"]\nproxy = \"${alca:HOST_IP}:1080\"\n",
    );
    let n = p.ok().config.network;
    assert_eq!(n.lan_access.len(), 5);
    assert_eq!(n.lan_access_raw[3], "*://${alca:HOST_IP}:8080");
    assert!(n.lan_access.iter().all(|e| *e != LanEntry::Everything));
    assert!(n.proxy.is_some_and(|p| p.needs_host_ip() && p.port == 1080));
    assert_eq!(n.proxy_raw.as_deref(), Some("${alca:HOST_IP}:1080"));
    let p = Project::with("image = \"a\"\n[network]\nlan-access = [\"*\"]\n");
    assert!(p.ok().config.network.allows_everything());
}

#[test]
fn network_errors() {
    let p = Project::with("image = \"a\"\n[network]\nlan-access = [\"10.0.0.1\", \"nas.local\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: network.lan-access[1]: \"nas.local\" is not an IP address or CIDR (hostnames are not allowed; use an IP address); write \"*\", an IP, a CIDR, IP:port, tcp://IP:port or ${alca:HOST_IP}:port"
    );
    let p = Project::with("image = \"a\"\n[network]\nlan-access = [\"${alca:GATEWAY}:80\"]\n");
    assert_has(&p.err_rel(), "network.lan-access[0]: unknown token \"${alca:GATEWAY}\"; the only valid token is ${alca:HOST_IP}");
    let p = Project::with("image = \"a\"\n[network]\nproxy = \"proxy.corp:3128\"\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: network.proxy: \"proxy.corp:3128\" names a host, but the proxy must \
         be an IP address; write the proxy's address as IP:port, [IPv6]:port or \
         ${alca:HOST_IP}:port (for a proxy on this host), e.g. \"${alca:HOST_IP}:3128\"",
    );
    let p = Project::with("image = \"a\"\n[network]\nlan-access = \"*\"\n");
    assert_has(
        &p.err_rel(),
        "network.lan-access: invalid type: string \"*\", expected a sequence",
    );
}

#[test]
fn alca_tokens_elsewhere_are_rejected_with_the_valid_list() {
    let p = Project::with("image = \"a\"\n[hooks]\npost_up = \"curl ${alca:HOST_IP}\"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: hooks.post_up: \"curl ${alca:HOST_IP}\" contains an alca token, which is only resolved in network.lan-access and network.proxy; remove it (valid tokens: ${alca:HOST_IP}, only in network.lan-access and network.proxy)"
    );
}

#[test]
fn hooks() {
    let p = Project::with(
        "image = \"a\"\n[hooks]\npost_up = \"docker run -d sidecar\"\npre_down = \"docker rm -f sidecar\"\n",
    );
    let h = p.ok().config.hooks;
    assert_eq!(h.post_up.as_deref(), Some("docker run -d sidecar"));
    assert_eq!(h.pre_down.as_deref(), Some("docker rm -f sidecar"));
    let p = Project::with("image = \"a\"\n[hooks]\npre_down = \"  \"\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: hooks.pre_down: the value is empty; remove the key or give a host command"
    );
}

#[test]
fn unknown_keys_are_warnings_with_their_path() {
    let p = Project::with(
        "image = \"a\"\nimgae = \"b\"\n[network]\nlan_access = [\"*\"]\n[[mounts]]\nsource = \".\"\ntarget = \"/x\"\nread_only = true\n[envs]\nA = { value = \"1\", override = true }\n",
    );
    let l = p.ok();
    let w: Vec<String> = l
        .warnings
        .iter()
        .map(|w| w.replace(&p.root().display().to_string(), "<root>"))
        .collect();
    assert_eq!(
        w,
        [
            "<root>/.alca.toml: unknown key `envs.A.override` is ignored; remove it or check its spelling",
            "<root>/.alca.toml: unknown key `imgae` is ignored; remove it or check its spelling",
            "<root>/.alca.toml: unknown key `mounts[0].read_only` is ignored; remove it or check its spelling",
            "<root>/.alca.toml: unknown key `network.lan_access` is ignored; remove it or check its spelling",
        ]
    );
    assert!(!l.config.network.allows_everything());
}

#[test]
fn syntax_and_file_errors() {
    let p = Project::with("image = \"a\n");
    let e = p.err_rel();
    assert_has(
        &e,
        "<root>/.alca.toml: invalid TOML: TOML parse error at line 1",
    );
    assert_has(&e, "; fix the syntax at the position shown");
    let p = Project::new();
    let e = p.err_rel();
    assert_has(&e, ".alca.toml: cannot open the config file: ");
    assert_has(&e, "; run `alca init` or check the path");
}

#[test]
fn the_container_root_is_not_a_target() {
    let p = Project::with("image = \"a\"\nmounts = [\"x:/\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: mounts[0].target: \"/\" is the container's root directory; choose a directory such as \"/workspace\""
    );
    let p = Project::with("image = \"a\"\nworkdir = \"//\"\n");
    assert_has(
        &p.err_rel(),
        "<root>/.alca.toml: workdir: \"/\" is the container's root directory",
    );
}
