//! The system files that make the daemon reachable (bus policy, activation, polkit, systemd),
//! embedded so `alca network-helper install` can write them without a package manager.

/// D-Bus bus policy: root may own the name, anyone may call (polkit decides).
pub const BUS_POLICY: &str = include_str!("../../dbus/io.github.alcatraz.Netd1.conf");
/// D-Bus system-bus activation file.
pub const BUS_ACTIVATION: &str = include_str!("../../dbus/io.github.alcatraz.Netd1.service");
/// Introspection XML of the interface (checked against the code by a unit test).
pub const INTROSPECTION: &str = include_str!("../../dbus/io.github.alcatraz.Netd1.xml");
/// systemd unit of the daemon.
pub const SYSTEMD_SERVICE: &str = include_str!("../../systemd/alca-netd.service");
/// systemd unit re-applying rules after nftables.service (re)loads.
pub const SYSTEMD_REAPPLY: &str = include_str!("../../systemd/alca-netd-reapply.service");
/// polkit actions `io.github.alcatraz.netd.apply` / `.remove` / `.read`.
pub const POLKIT_ACTIONS: &str = include_str!("../../polkit/io.github.alcatraz.netd.policy");
/// OCI hook (Podman's hooks.d): `alca-netd --oci-hook` at `createRuntime` of every container
/// carrying [`crate::oci_hook::ANNOTATION`] (a rootless project's).
pub const OCI_HOOK: &str = include_str!("../../oci/io.github.alcatraz.netns.json");
/// polkit rule granting group `alcatraz` the three actions without a password.
pub const POLKIT_RULE: &str = include_str!("../../polkit/50-alcatraz.rules");

/// Where the daemon binary is installed (root-owned).
pub const DAEMON_PATH: &str = "/usr/local/libexec/alcatraz/alca-netd";
/// Group whose members may apply rules without a password.
pub const GROUP: &str = "alcatraz";
/// Root of the daemon's saved state (install creates it, uninstall removes it).
pub const STATE_DIR: &str = "/var/lib/alcatraz";

/// One shipped file and where it goes.
#[derive(Debug, Clone, Copy)]
pub struct ShippedFile {
    pub path: &'static str,
    pub contents: &'static str,
    /// Only written when systemd is PID 1.
    pub systemd_only: bool,
}

/// Every file `install` writes besides the binary.
pub const FILES: &[ShippedFile] = &[
    ShippedFile {
        path: "/etc/dbus-1/system.d/io.github.alcatraz.Netd1.conf",
        contents: BUS_POLICY,
        systemd_only: false,
    },
    ShippedFile {
        path: "/usr/share/dbus-1/system-services/io.github.alcatraz.Netd1.service",
        contents: BUS_ACTIVATION,
        systemd_only: false,
    },
    ShippedFile {
        path: "/usr/share/dbus-1/interfaces/io.github.alcatraz.Netd1.xml",
        contents: INTROSPECTION,
        systemd_only: false,
    },
    ShippedFile {
        path: "/usr/share/polkit-1/actions/io.github.alcatraz.netd.policy",
        contents: POLKIT_ACTIONS,
        systemd_only: false,
    },
    ShippedFile {
        path: "/etc/polkit-1/rules.d/50-alcatraz.rules",
        contents: POLKIT_RULE,
        systemd_only: false,
    },
    ShippedFile {
        path: crate::oci_hook::HOOK_FILE,
        contents: OCI_HOOK,
        systemd_only: false,
    },
    ShippedFile {
        path: "/etc/systemd/system/alca-netd.service",
        contents: SYSTEMD_SERVICE,
        systemd_only: true,
    },
    ShippedFile {
        path: "/etc/systemd/system/alca-netd-reapply.service",
        contents: SYSTEMD_REAPPLY,
        systemd_only: true,
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{ACTION_APPLY, ACTION_REMOVE, BUS_NAME};

    /// The files name the same bus name, binary, actions and group as the code.
    #[test]
    fn shipped_files_agree_with_the_code() {
        assert!(BUS_ACTIVATION.contains(&format!("Name={BUS_NAME}\n")));
        assert!(BUS_ACTIVATION.contains(&format!("Exec={DAEMON_PATH}\n")));
        assert!(BUS_ACTIVATION.contains("User=root\n"));
        assert!(BUS_ACTIVATION.contains("SystemdService=alca-netd.service\n"));
        assert!(BUS_POLICY.contains(&format!("<allow own=\"{BUS_NAME}\"/>")));
        assert!(SYSTEMD_SERVICE.contains(&format!("BusName={BUS_NAME}\n")));
        assert!(SYSTEMD_SERVICE.contains(&format!("ExecStart={DAEMON_PATH}")));
        assert!(SYSTEMD_REAPPLY.contains(&format!("ExecStart={DAEMON_PATH} --reapply")));
        for action in [ACTION_APPLY, ACTION_REMOVE] {
            assert!(POLKIT_ACTIONS.contains(&format!("<action id=\"{action}\">")));
            assert!(POLKIT_RULE.contains(&format!("\"{action}\"")));
        }
        assert!(POLKIT_RULE.contains(&format!("isInGroup(\"{GROUP}\")")));
        assert!(INTROSPECTION.contains(&format!("<interface name=\"{BUS_NAME}\">")));
    }

    /// The hook file runs the installed daemon as the hook, on the annotation the CLI sets, at
    /// the stage that precedes the container's command.
    #[test]
    fn the_oci_hook_runs_the_daemon_on_the_project_annotation() {
        use crate::oci_hook::{ANNOTATION, HOOK_FLAG};
        let hook: serde_json::Value = serde_json::from_str(OCI_HOOK).unwrap();
        assert_eq!(hook["version"], "1.0.0");
        assert_eq!(hook["hook"]["path"], DAEMON_PATH);
        assert_eq!(hook["hook"]["args"][1], HOOK_FLAG);
        assert_eq!(hook["stages"], serde_json::json!(["createRuntime"]));
        let key = format!("^{}$", ANNOTATION.replace('.', "\\."));
        assert_eq!(hook["when"]["annotations"][&key], ".+");
        assert!(FILES
            .iter()
            .any(|f| f.contents == OCI_HOOK && !f.systemd_only));
    }

    /// The macOS LaunchAgent (not embedded: the helper container is not built yet) keeps the
    /// helper container of SPEC §3 running.
    #[test]
    fn launch_agent_starts_the_helper_container() {
        let plist = include_str!("../../launchd/io.github.alcatraz.network-helper.plist");
        assert!(plist.contains("<string>io.github.alcatraz.network-helper</string>"));
        assert!(plist.contains("docker start alcatraz-network-helper"));
        assert!(plist.contains("<key>RunAtLoad</key>\n  <true/>"));
        assert!(plist.contains("<key>StartInterval</key>\n  <integer>60</integer>"));
    }

    /// Only root may own the name; the default policy only allows sending to it.
    #[test]
    fn bus_policy_grants_ownership_to_root_only() {
        let root = BUS_POLICY.find("<policy user=\"root\">").unwrap();
        let default = BUS_POLICY.find("<policy context=\"default\">").unwrap();
        let own = BUS_POLICY.find("allow own=").unwrap();
        assert!(root < own && own < default);
        assert_eq!(BUS_POLICY.matches("allow own=").count(), 1);
    }
}
