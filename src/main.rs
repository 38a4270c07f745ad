//! `xskdbg`: the command-line front end of the toolkit.
//!
//! Each subcommand lives in `cmd/<name>.rs` with its own `Args` and `run`;
//! this file only parses the command line and maps results to exit codes
//! (0 clean, 1 findings, 2 usage or input error).

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
    Analyze(cmd::analyze::Args),
    /// Check tracefs, BTF, probe backends, XDP features, veth queues and privileges.
    Doctor(cmd::doctor::Args),
    /// Run a real AF_XDP forwarder under load with the recorder (and probes), optionally injecting a fault.
    Soak(cmd::soak::Args),
    /// Attach, list, inspect or remove the kernel-side probes.
    Probes(cmd::probes::Args),
    /// Record a trace: prepare the buffer, attach probes, run a command, save the trace and analyze it.
    Record(cmd::record::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout with exit 0; usage errors get 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Soak(args) => cmd::soak::run(args),
        Command::Probes(args) => cmd::probes::run(args),
        Command::Record(args) => cmd::record::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xskdbg: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, each cause once: library errors
/// often print their source in their own message too, which `{:#}` would
/// repeat (`cannot read x: No such file: No such file`).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.contains(&c) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(io).context("cannot read x: No such file");
        assert_eq!(error_text(&e), "cannot read x: No such file");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&e), "outer: inner");
    }
}
