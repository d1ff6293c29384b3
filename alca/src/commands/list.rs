//! `alca list`: a table of every alca container in every runtime reachable on this machine.

use std::process::ExitCode;

use crate::runtime::select::available;
use crate::runtime::ContainerInfo;

pub fn run() -> anyhow::Result<ExitCode> {
    let mut all: Vec<ContainerInfo> = Vec::new();
    for runtime in available() {
        match runtime.list() {
            Ok(found) => all.extend(found),
            Err(e) => eprintln!(
                "alca: warning: cannot list {} containers: {e}",
                runtime.kind()
            ),
        }
    }
    if all.is_empty() {
        println!("No Alcatraz containers found.");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&all));
    Ok(ExitCode::SUCCESS)
}

/// The table: one row per container, columns padded to their widest cell.
pub fn table(containers: &[ContainerInfo]) -> String {
    let header = [
        "NAME",
        "STATUS",
        "RUNTIME",
        "PROJECT ID",
        "PROJECT PATH",
        "CREATED",
    ];
    let mut rows: Vec<[String; 6]> = vec![header.map(String::from)];
    for c in containers {
        rows.push([
            c.name.clone(),
            c.state.to_string(),
            c.runtime.to_string(),
            c.project_id().unwrap_or("-").chars().take(12).collect(),
            c.project_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(unknown)".into()),
            c.created.chars().take(19).collect(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::runtime::{ContainerState, RuntimeKind};

    use super::*;

    #[test]
    fn table_aligns_and_shortens() {
        let c = ContainerInfo {
            runtime: RuntimeKind::Podman,
            name: "alca-0123456789ab".into(),
            id: "x".into(),
            state: ContainerState::Running,
            image: "busybox".into(),
            created: "2026-11-23T19:40:46.361132462Z".into(),
            labels: BTreeMap::from([
                ("alca.project.id".into(), "0123456789abcdef".into()),
                ("alca.project.path".into(), "/p".into()),
            ]),
            pid: None,
        };
        let t = table(&[c]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME               STATUS"));
        assert!(lines[1].contains("running  Podman   0123456789ab  /p"));
        assert!(lines[1].ends_with("2026-11-23T19:40:46"));
    }
}
