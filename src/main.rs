//! `ferry`: carry VMware and Xen virtual machines over to KVM.

mod argv;
mod batch;
mod convert;
mod image_choices;
mod img;
mod inspect;
mod output;
mod progress;
mod runvm;
mod signals;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ferry", version, about = "Carry VMware and Xen virtual machines over to KVM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Disk image tools, qemu-img-like: info, convert, compare, check, map.
    Img(img::ImgArgs),
    /// Convert a guest: read its config and disks, rewrite it for KVM, write the output.
    Convert(Box<convert::ConvertArgs>),
    /// Inspect a guest's disks: partitions, filesystems, operating systems.
    Inspect(inspect::InspectArgs),
    /// Boot a converted guest on Ferry's own KVM runtime.
    Run(runvm::RunArgs),
    /// Boot a converted guest and check it reaches its milestones.
    Validate(runvm::ValidateArgs),
    /// Many guests from one manifest: run, plan, validate, report.
    Batch(batch::BatchArgs),
    /// Print shell completions.
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Write man pages into a directory.
    #[command(hide = true)]
    Man { dir: std::path::PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(argv::normalize(std::env::args_os()));
    if matches!(cli.command, Command::Convert(_)) || matches!(&cli.command, Command::Img(a) if a.writes()) {
        signals::remove_temps_on_signal();
    }
    let result = match cli.command {
        Command::Img(args) => img::run(args),
        Command::Convert(args) => convert::run(*args),
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => runvm::run(args),
        Command::Validate(args) => runvm::validate(args),
        Command::Batch(args) => batch::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => write_man(&dir),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferry: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line: a cause whose text the line already holds (an OS
/// error a message quotes) is not repeated, and control characters are escaped.
pub(crate) fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    ferry_formats::model::one_line(&line)
}

fn write_man(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    Ok(ExitCode::SUCCESS)
}
