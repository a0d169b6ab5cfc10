//! `ferry convert`: the whole pipeline. Being written: see issues "VM descriptions" and "Linux guests".
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ConvertArgs {}

pub fn run(_args: ConvertArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ferry convert is not built yet")
}
