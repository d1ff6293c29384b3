//! `alca-netd`: the minimal root daemon that applies per-project nftables isolation.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("alca-netd: not built yet")
}
