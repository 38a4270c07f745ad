//! `xskdbg doctor`: preflight checks, one line each (ok / warning / error) with what to do.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use xskdbg_doctor::{Check, Level, Options};

/// Check this machine (and optionally one device) before debugging AF_XDP.
///
/// Reports tracefs, BTF, which probe backends the kernel allows (fentry,
/// kprobe, tracefs kprobe events, tp_btf tracepoints), the XDP features of
/// IFACE (netdev genl family, Linux 6.3+), veth rx/tx queue counts against the
/// peer (ENOSPC), ifindex collisions across network namespaces, kernels known
/// to carry the veth race, and missing capabilities. Exit status: 0 when
/// nothing is an error, 1 when some check is an error.
#[derive(clap::Args)]
pub struct Args {
    /// Device to check (XDP features, veth queue counts).
    iface: Option<String>,
    /// Named network namespace (`ip netns`) the device lives in.
    #[arg(long)]
    netns: Option<String>,
    /// Print the checks as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the checks and prints them.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let checks = xskdbg_doctor::run(&Options {
        iface: args.iface,
        netns: args.netns,
    });
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &checks)?;
        writeln!(out)?;
    } else {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        for c in &checks {
            print_check(&mut out, c, color)?;
        }
    }
    let worst = checks.iter().map(|c| c.level).max().unwrap_or(Level::Ok);
    Ok(if worst == Level::Error {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_check(out: &mut impl Write, c: &Check, color: bool) -> std::io::Result<()> {
    let (on, off) = match (color, c.level) {
        (false, _) => ("", ""),
        (true, Level::Ok) => ("\x1b[32m", "\x1b[0m"),
        (true, Level::Warning) => ("\x1b[33m", "\x1b[0m"),
        (true, Level::Error) => ("\x1b[31m", "\x1b[0m"),
    };
    writeln!(
        out,
        "{on}{:<7}{off} {:<18} {}",
        c.level.to_string(),
        c.topic,
        c.detail
    )?;
    if let Some(fix) = &c.fix {
        writeln!(out, "{:<7} {:<18} -> {fix}", "", "")?;
    }
    Ok(())
}
