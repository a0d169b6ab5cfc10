//! `ferry inspect`. Being written: see issue "Guest inspection".
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct InspectArgs {}

pub fn run(_args: InspectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ferry inspect is not built yet")
}
