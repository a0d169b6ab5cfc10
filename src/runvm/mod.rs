//! `ferry run` and `ferry validate`. Being written: see issue "KVM runtime".
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {}

#[derive(clap::Args)]
pub struct ValidateArgs {}

pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ferry run is not built yet")
}

pub fn validate(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ferry validate is not built yet")
}
