//! Configs a user switching from the Go original already has keep loading with the Go
//! original's meaning (issue #16). Each expectation names the Go test or doc it comes from.

mod config_support;

use alca::config::{Caps, PortProto};
use alca_contract::lan::{Proto, Target};
use alca_contract::LanEntry;
use config_support::{assert_has, Project};

/// Go internal/config/config.go: `Network.Ports` (`toml:"ports"` under `[network]`) and
/// docs/config/fields.md "network.ports": `ports = ["8080:80", ...]` inside `[network]`.
#[test]
fn network_ports_are_published() {
    let p = Project::with(
        "image = \"a\"\n[network]\nports = [\"8080:80\", { port = 53, hostPort = 5353, protocol = \"udp\" }]\n",
    );
    let l = p.ok();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let ports = l.config.ports;
    assert_eq!(ports.len(), 2);
    assert_eq!(
        (ports[0].host_port, ports[0].container_port),
        (Some(8080), 80)
    );
    assert_eq!(ports[0].proto, PortProto::Tcp);
    assert_eq!(
        (ports[1].host_port, ports[1].proto),
        (Some(5353), PortProto::Udp)
    );
}

/// Both places are read; the same host port in both is an error naming both, and an invalid
/// `[network] ports` entry is refused at load (Go: ValidatePorts → "network: …").
#[test]
fn network_ports_conflicts_and_errors() {
    let p =
        Project::with("image = \"a\"\nports = [\"9000:90\"]\n[network]\nports = [\"8080:80\"]\n");
    assert_eq!(p.ok().config.ports.len(), 2);
    let p =
        Project::with("image = \"a\"\nports = [\"8080:80\"]\n[network]\nports = [\"8080:81\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: network.ports[0]: host port 8080 is already published by ports[0] in <root>/.alca.toml; use a different host port or remove one of the entries"
    );
    let p = Project::with("image = \"a\"\n[network]\nports = [\"99999:80\"]\n");
    assert_has(&p.err_rel(), "<root>/.alca.toml: network.ports[0]:");
}

/// Go internal/config/config.go rawToConfig (AGD-026): "Empty Caps means no caps field was in
/// config - apply secure defaults" → drop ALL, add CHOWN DAC_OVERRIDE FOWNER KILL SETUID SETGID.
/// The trust summary lists exactly those six, not every capability.
#[test]
fn empty_caps_table_is_the_secure_default() {
    for body in ["[caps]\n", "caps = {}\n", "[caps]\ndrop = []\nadd = []\n"] {
        let p = Project::with(&format!("image = \"a\"\n{body}"));
        let c = p.ok().config;
        assert_eq!(c.caps, Caps::default(), "{body}");
        let summary = alca::trust::summary(&c);
        assert!(
            summary.contains(
                &"caps: adds capabilities CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID"
                    .to_string()
            ),
            "{summary:?}"
        );
    }
}

/// Go internal/network/shared/rule.go ParseLANAccessRule (AGD-028): "192.168.1.100:*" → all
/// ports, all protocols; "192.168.1.100:8080" → TCP default; "[2001:db8::/32]:*".
#[test]
fn lan_access_port_wildcard_and_tcp_default() {
    let p = Project::with(
        "image = \"a\"\n[network]\nlan-access = [\"10.99.0.3:*\", \"tcp://10.0.0.0/8:*\", \"[2001:db8::/32]:*\", \"10.99.0.2:18080\"]\n",
    );
    let lan = p.ok().config.network.lan_access;
    let allow = |net: &str, proto, port| LanEntry::Allow {
        target: Target::Net(net.parse().unwrap()),
        proto,
        port,
    };
    assert_eq!(lan[0], allow("10.99.0.3/32", None, None));
    assert_eq!(lan[1], allow("10.0.0.0/8", Some(Proto::Tcp), None));
    assert_eq!(lan[2], allow("2001:db8::/32", None, None));
    assert_eq!(lan[3], allow("10.99.0.2/32", Some(Proto::Tcp), Some(18080)));
}

/// Go internal/config/config.go: `if cfg.Network.Proxy != ""` (an empty proxy is no proxy);
/// internal/config/includes_test.go TestMergeCommandValue_EmptyOverlay: an empty overlay
/// command keeps "base-cmd".
#[test]
fn empty_strings_are_unset() {
    // Go TestLoadConfig_HooksEmpty: no hooks → empty; an empty string is the same.
    let p = Project::with("image = \"a\"\n[hooks]\npost_up = \"\"\npre_down = \"\"\n");
    let h = p.ok().config.hooks;
    assert_eq!((h.post_up, h.pre_down), (None, None));
    let p = Project::with("image = \"a\"\n[network]\nproxy = \"\"\n");
    let c = p.ok().config;
    assert_eq!(c.network.proxy, None);
    assert_eq!(c.network.proxy_raw, None);
    let p = Project::with(
        "image = \"a\"\nincludes = [\".alca.local.toml\"]\n[commands]\nup = \"base-cmd\"\nenter = \"\"\n",
    );
    p.write(".alca.local.toml", "[commands]\nup = \"\"\n");
    let c = p.ok().config;
    assert_eq!(c.commands.up.as_deref(), Some("base-cmd"));
    assert_eq!(c.commands.enter, None);
}

/// Go internal/config/config.go `envVarPattern` `^\$\{([a-zA-Z_][a-zA-Z0-9_-]*)\}$` and
/// os.Expand for paths: `${MY-VAR}`; an `[envs.X]` table without `value` is `EnvValue{}`
/// (an empty value).
#[test]
fn hyphenated_references_and_env_tables_without_value() {
    let mut p = Project::with(
        "image = \"a\"\nmounts = [\"${MY-VAR}:/data\"]\n[envs]\nA = \"${MY-VAR}\"\n[envs.B]\noverride_on_enter = true\n",
    );
    p.set_env("MY-VAR", "/srv/my");
    let c = p.ok().config;
    assert_eq!(c.envs["A"].value, "/srv/my");
    assert_eq!(c.envs["B"].value, "");
    assert!(c.envs["B"].override_on_enter);
    assert_eq!(c.mounts[0].source, std::path::PathBuf::from("/srv/my"));
}

/// Go internal/config/mount_test.go TestParseMount: "too many parts" `/a:/b:/c:/d` →
/// ErrInvalidMountFormat; "invalid option" `/host:/container:rw` → ErrInvalidMountOption.
#[test]
fn mounts_the_original_refuses() {
    let p = Project::with("image = \"a\"\nmounts = [\"/a:/b:/c:/d\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: mounts[0]: \"/a:/b:/c:/d\" is not a mount: it has more than three \":\"-separated parts; write it as \"source:target\" or \"source:target:ro\"; for a path that holds \":\" use the table form {source, target}"
    );
    let p = Project::with("image = \"a\"\nmounts = [\"/h:/c:rw\"]\n");
    assert_eq!(
        p.err_rel(),
        "<root>/.alca.toml: mounts[0]: \"rw\" in \"/h:/c:rw\" is not a mount option; use \"source:target:ro\" for a read-only mount, or \"source:target\" (read-write)"
    );
    // TestParseMount "empty source" / "empty target".
    for m in [":/container", "/host:"] {
        let p = Project::with(&format!("image = \"a\"\nmounts = [\"{m}\"]\n"));
        assert_has(&p.err_rel(), "is not a mount;");
    }
}
