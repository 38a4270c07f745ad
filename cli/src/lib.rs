//! `xskdbg-cli`: how the project's binaries (`xskdbg`, `xskdbg-tracegen`,
//! `xskdbg-vm`) start and end, written once.
//!
//! - The command line is parsed by clap, which also sets the exit code of a
//!   usage error (2) and of `--help`/`--version` (0).
//! - An error prints once, on one line, prefixed with the program name, each
//!   cause once ([`error_text`]), and exits 2 (usage or input error; the
//!   binaries return their other codes themselves).
//! - A closed stdout (`| head`) is no error: the program exits quietly with 0.

use std::io::{self, Write};
use std::process::ExitCode;

/// Parses the command line as `P` and runs `run` on it; see the crate docs
/// for the exit codes.
pub fn main<P: clap::Parser>(run: impl FnOnce(P) -> anyhow::Result<ExitCode>) -> ExitCode {
    let args = P::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => fail(P::command().get_name(), &e),
    }
}

/// Prints `e` as `<program>: <error>` on stderr and returns exit code 2, or
/// returns 0 without a word when `e` is a closed pipe.
pub fn fail(program: &str, e: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(e) {
        return ExitCode::SUCCESS;
    }
    // Not eprintln!: a closed stderr must not turn into a panic.
    let _ = writeln!(io::stderr(), "{program}: {}", error_text(e));
    ExitCode::from(2)
}

/// Whether any cause of `e` is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes on one line, each cause once: library errors
/// often print their source in their own message too, which `{:#}` would
/// repeat (`cannot read x: No such file: No such file`).
pub fn error_text(e: &anyhow::Error) -> String {
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
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = io::Error::new(io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(io).context("cannot read x: No such file");
        assert_eq!(error_text(&e), "cannot read x: No such file");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&e), "outer: inner");
    }

    #[test]
    fn a_closed_pipe_anywhere_in_the_chain_is_quiet() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("cannot write the trace to stdout");
        assert!(is_broken_pipe(&e));
        assert_eq!(fail("t", &e), ExitCode::SUCCESS);
        let e = anyhow::anyhow!("bad input");
        assert!(!is_broken_pipe(&e));
        assert_eq!(fail("t", &e), ExitCode::from(2));
    }
}
