//! `alca network verify [--local-only] [--plan]` and `alca network log [-f]`: what the user
//! sees of isolation (SPEC §9). The checking itself, shared with `up`'s quick check, is
//! [`crate::lifecycle::isolation_check`]; here are the command lines, the printed report and
//! the denied-connection log.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use alca_contract::probe::Key;
use anyhow::bail;

use crate::cli::NetworkCommand;
use crate::lifecycle::isolation_check::{
    matrix_of, now_secs, open_running, save_result, verify_running, ProbeFrom, Report,
};
use crate::lifecycle::Project;
use crate::network::guard_select::connect_guard;
use crate::network::matrix::Target;
use crate::network::{denied_log, netspec_build};
use crate::project::State;

/// `-f` polls this often.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

pub fn run(cmd: NetworkCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        NetworkCommand::Verify { local_only, plan } => verify_command(local_only, plan),
        NetworkCommand::Log { follow } => log_command(follow),
        NetworkCommand::Allow {
            entry,
            duration,
            list,
            revoke,
        } => {
            use crate::commands::network_allow::{run, AllowRequest};
            run(match (entry, list, revoke) {
                (Some(entry), _, true) => AllowRequest::Revoke { entry },
                (Some(entry), false, false) => AllowRequest::Grant { entry, duration },
                _ => AllowRequest::List,
            })
        }
    }
}

fn verify_command(local_only: bool, plan: bool) -> anyhow::Result<ExitCode> {
    let project = Project::open()?;
    let Some(running) = open_running(&project)? else {
        println!("Network isolation is off (network.lan-access = [\"*\"]): nothing to verify");
        return Ok(ExitCode::SUCCESS);
    };
    let targets = matrix_of(&running, local_only);
    if plan {
        for line in plan_lines(&targets) {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let report = verify_running(&running, &targets, ProbeFrom::Container)?;
    print_report(&report);
    save_result(&running.root, &report);
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--plan`: one tab-separated line per target: label, protocol, address, port, expected,
/// local/remote.
fn plan_lines(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .map(|t| {
            let (proto, addr, port) = match t.key {
                Some(k) => (k.proto.to_string(), k.addr.to_string(), k.port.to_string()),
                None => ("dns".into(), "resolver".into(), "53".into()),
            };
            let place = if t.local { "local" } else { "remote" };
            format!(
                "{}\t{proto}\t{addr}\t{port}\t{}\t{place}",
                t.label, t.expect
            )
        })
        .collect()
}

fn print_report(report: &Report) {
    for p in &report.problems {
        println!("HOLE  {p}");
    }
    for row in &report.rows {
        let mark = if row.ok() { "ok  " } else { "FAIL" };
        println!(
            "{mark}  {:<36} {:<44} {:<10} (expected {}) {}",
            row.label, row.destination, row.observed, row.expected, row.detail
        );
    }
    if let Some(tool) = &report.missing_tool {
        println!(
            "The image has no `{tool}`: verify needs sh, nc (with -w) and nslookup in the container"
        );
    }
    println!("Network verify: {}", report.summary());
}

/// `alca network log [-f]`.
fn log_command(follow: bool) -> anyhow::Result<ExitCode> {
    let project = Project::open()?;
    let Some(state) = State::load(&project.root)? else {
        bail!("the project has no container yet: run `alca up` first");
    };
    if !netspec_build::isolation_required(&project.config) {
        println!("Network isolation is off (network.lan-access = [\"*\"]): nothing is denied");
        return Ok(ExitCode::SUCCESS);
    }
    let internet_list = crate::network::internet_spec::restricted(&project.config);
    let guard = connect_guard();
    if internet_list {
        print_refused_names(&guard.query_events(&project.root, &state.id)?);
    }
    let entries = guard.denied(&state.id)?;
    println!("{}", denied_log::HEADER);
    let mut shown: HashMap<Key, u64> = HashMap::new();
    print_changed(&mut shown, &entries, internet_list);
    if entries.is_empty() && !follow {
        println!("(no denied connections recorded)");
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Polls until interrupted; memory stays bounded by the log's own size.
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let entries = guard.denied(&state.id)?;
        print_changed(&mut shown, &entries, internet_list);
    }
}

/// The names the project's resolver refused (`internet-access`), before the connections.
fn print_refused_names(events: &[alca_dns::query_log::Event]) {
    println!("{}", crate::network::refused_names::HEADER);
    let lines = crate::network::refused_names::lines(events);
    if lines.is_empty() {
        println!("(no refused names recorded)");
    }
    for l in lines {
        println!("{l}");
    }
    println!();
}

fn print_changed(
    shown: &mut HashMap<Key, u64>,
    entries: &[alca_contract::probe::Denied],
    internet_list: bool,
) {
    let now = now_secs();
    let mut out = std::io::stdout().lock();
    for d in denied_log::changed(shown, entries) {
        let _ = writeln!(out, "{}", denied_log::line(d, now, internet_list));
    }
    let _ = out.flush();
    // Only what is still in the log is remembered: the map never outgrows the log.
    *shown = entries.iter().map(|d| (d.key, d.packets)).collect();
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use alca_contract::Proto;

    use crate::network::matrix::{Method, Reach};

    use super::*;

    #[test]
    fn the_plan_is_one_tab_separated_line_per_target() {
        let targets = [
            Target {
                label: "private 10/8".into(),
                key: Some(Key {
                    addr: IpAddr::from([10, 255, 255, 254]),
                    proto: Proto::Tcp,
                    port: 80,
                }),
                method: Method::Tcp,
                expect: Reach::Blocked,
                local: false,
            },
            Target {
                label: "own resolver".into(),
                key: None,
                method: Method::Dns {
                    name: "example.test".into(),
                },
                expect: Reach::Allowed,
                local: true,
            },
        ];
        let lines = plan_lines(&targets);
        assert_eq!(lines.len(), 2);
        let first: Vec<&str> = lines[0].split('\t').collect();
        assert_eq!(
            first,
            [
                "private 10/8",
                "tcp",
                "10.255.255.254",
                "80",
                &Reach::Blocked.to_string(),
                "remote"
            ]
        );
        let second: Vec<&str> = lines[1].split('\t').collect();
        assert_eq!(&second[1..4], ["dns", "resolver", "53"]);
        assert_eq!(second[5], "local");
    }
}
