//! `xskdbg`: the command-line front end of the toolkit.
//!
//! Each subcommand lives in `cmd/<name>.rs` with its own `Args` and `run`;
//! this file only parses the command line; `xskdbg-cli` maps results to exit
//! codes (0 clean, 1 findings, 2 usage or input error). `soak`, `probes` and
//! `record` need the default `kernel` feature (BPF skeletons: clang, bpftool,
//! kernel BTF at build time); without it the other commands still build.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Did my application or the kernel put the same UMEM frame in two places?
#[derive(Parser)]
#[command(name = "xskdbg", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rebuild every descriptor's history from an ftrace trace and name the culprit.
    // Boxed: its filters make it the largest variant by far.
    Analyze(Box<cmd::analyze::Args>),
    /// Check tracefs, BTF, probe backends, XDP features, veth queues and privileges.
    Doctor(cmd::doctor::Args),
    /// Run a real AF_XDP forwarder under load with the recorder (and probes), optionally injecting a fault.
    #[cfg(feature = "kernel")]
    Soak(cmd::soak::Args),
    /// Attach, list, inspect or remove the kernel-side probes.
    #[cfg(feature = "kernel")]
    Probes(cmd::probes::Args),
    /// Record a trace: prepare the buffer, attach probes, run a command, save the trace and analyze it.
    #[cfg(feature = "kernel")]
    Record(cmd::record::Args),
}

fn main() -> ExitCode {
    xskdbg_cli::main(|cli: Cli| match cli.command {
        Command::Analyze(args) => cmd::analyze::run(*args),
        Command::Doctor(args) => cmd::doctor::run(args),
        #[cfg(feature = "kernel")]
        Command::Soak(args) => cmd::soak::run(args),
        #[cfg(feature = "kernel")]
        Command::Probes(args) => cmd::probes::run(args),
        #[cfg(feature = "kernel")]
        Command::Record(args) => cmd::record::run(args),
    })
}
