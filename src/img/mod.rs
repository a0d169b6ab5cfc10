//! `ferry img`: qemu-img-like verbs. Being written: see issue "Foundation".
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ImgArgs {}

pub fn run(_args: ImgArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ferry img is not built yet")
}
