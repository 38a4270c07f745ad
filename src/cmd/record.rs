//! `xskdbg record`: one command from nothing to a verdict. Prepares an ftrace
//! instance (`xskdbg-...`), attaches the kernel probes, writes the `probe`
//! header line, runs the command (or waits), stops on a freeze (tracing_on
//! went to 0), Ctrl-C, the command's exit or `--duration`, saves the trace
//! atomically, runs the analyzer on it and prints the verdict.
//! Exit 0 clean, 1 findings, 2 usage/setup error.
//!
//! The command learns where to write its own lines from the environment:
//! `XSKDBG_TRACEFS` (tracefs mount) and `XSKDBG_INSTANCE` (instance name),
//! so `$XSKDBG_TRACEFS/instances/$XSKDBG_INSTANCE/trace_marker` is its marker.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use xskdbg_analyzer::filter::reanalyze_command;
use xskdbg_analyzer::render::{self, Style};
use xskdbg_analyzer::{analyze_reader, Options};
use xskdbg_probes::session::{self, SessionOpts};
use xskdbg_probes::{Backend, Filters};
use xskdbg_recorder::PostTrigger;

use super::probes::{filters_of, stop_requested, FilterArgs, Signals};

/// Arguments of `xskdbg record`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Probe backend: auto, tracepoint, fentry, kprobe or tracefs.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Where to save the trace (written atomically).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Per-CPU ring buffer size of the instance, in KiB.
    #[arg(long, value_name = "N", default_value_t = 16384)]
    pub buffer_kb: u64,
    /// ftrace instance name (the `xskdbg-` prefix is added when missing).
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Stop after this many seconds even without freeze or exit.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// The recorder's post-trigger window in the command: after its first
    /// violation it goes on recording LINES more lines or MICROS
    /// microseconds, whichever ends first, then freezes (and recording
    /// stops). Default 8:2000; 0:0 freezes at the violation. Given to the
    /// command as XSKDBG_POST_TRIGGER, which overrides the window its own
    /// recorder configuration sets.
    #[arg(long, value_name = "LINES:MICROS", value_parser = parse_post_trigger)]
    pub post_trigger: Option<PostTrigger>,
    /// Socket filters.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// The command to run while recording (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `--post-trigger` of `record` and `soak`: [`PostTrigger::parse_spec`]'s
/// message, which clap puts after the option's name (a usage error, exit 2).
pub fn parse_post_trigger(s: &str) -> Result<PostTrigger, String> {
    PostTrigger::parse_spec(s)
}

/// The environment `--post-trigger` gives the command: none without it, so
/// a window the user exported (or the program's own) stays in force.
fn command_env(post_trigger: Option<PostTrigger>) -> Vec<(String, String)> {
    post_trigger
        .map(|w| (PostTrigger::ENV.to_string(), w.to_string()))
        .into_iter()
        .collect()
}

/// The instance name with the project prefix.
pub fn instance_name(given: Option<&str>, pid: u32) -> String {
    match given {
        Some(n) if n.starts_with("xskdbg-") => n.to_string(),
        Some(n) => format!("xskdbg-{n}"),
        None => format!("xskdbg-rec-{pid}"),
    }
}

/// Run `xskdbg record`.
pub fn run(args: Args) -> Result<ExitCode> {
    let backend: Backend = args.backend.parse()?;
    let filters: Filters = filters_of(&args.filters)?;
    if args.buffer_kb == 0 {
        bail!("--buffer-kb 0: give the per-CPU buffer size in KiB, e.g. --buffer-kb 16384");
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        PathBuf::from(format!("xskdbg-trace-{secs}.txt"))
    });
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!(
            "--out {}: directory {} does not exist",
            out.display(),
            dir.display()
        );
    }
    let opts = SessionOpts {
        backend,
        filters,
        instance: instance_name(args.instance.as_deref(), std::process::id()),
        buffer_kb: args.buffer_kb,
        out: out.clone(),
        command: args.command.clone(),
        duration: args.duration.map(Duration::from_secs),
        stacks: args.filters.stacks,
        output: args.filters.probe_output,
        env: command_env(args.post_trigger),
    };
    let signals = Signals::install()?;
    let outcome = session::record(&opts, &mut |m| eprintln!("xskdbg: {m}"), &|| {
        stop_requested(&signals)
    })?;
    drop(signals);
    eprintln!("xskdbg: stopped: {}", outcome.stop.describe());
    if let Some(st) = outcome.command_status {
        eprintln!("xskdbg: command {st}");
    }
    eprintln!("xskdbg: trace saved to {}", out.display());

    let data = std::fs::read(&out).with_context(|| format!("reading back {}", out.display()))?;
    let opts = Options {
        input_name: out.display().to_string(),
        ..Options::default()
    };
    let report =
        analyze_reader(&data[..], &opts).with_context(|| format!("analyzing {}", out.display()))?;
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    let color =
        io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let written = render::human(&report, &out.display().to_string(), Style { color }, &mut w)
        .and_then(|()| w.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("cannot write the report to stdout"),
    }
    // The narrower question to ask next: the first finding's socket and
    // the moments around it.
    if let Some(cmd) = report
        .findings
        .first()
        .and_then(|f| reanalyze_command(f, &out.display().to_string()))
    {
        eprintln!("xskdbg: re-analyze around the first finding: {cmd}");
    }
    Ok(ExitCode::from(report.exit_code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_carry_the_prefix() {
        assert_eq!(instance_name(None, 42), "xskdbg-rec-42");
        assert_eq!(instance_name(Some("run1"), 42), "xskdbg-run1");
        assert_eq!(instance_name(Some("xskdbg-x"), 42), "xskdbg-x");
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        record: Args,
    }

    #[test]
    fn post_trigger_is_an_option_with_its_help_and_a_usage_error() {
        use clap::{CommandFactory, Parser};
        let a = Cli::try_parse_from(["record", "--post-trigger", "16:5000", "--", "app"])
            .unwrap()
            .record;
        assert_eq!(
            a.post_trigger,
            Some(PostTrigger {
                batches: 16,
                micros: 5000
            })
        );
        assert_eq!(a.command, ["app"]);
        let a = Cli::try_parse_from(["record"]).unwrap().record;
        assert_eq!(a.post_trigger, None, "no flag: the command's own window");
        let Err(e) = Cli::try_parse_from(["record", "--post-trigger", "16"]) else {
            panic!("--post-trigger 16 was accepted");
        };
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("--post-trigger") && e.contains("LINES:MICROS"),
            "{e}"
        );
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("--post-trigger <LINES:MICROS>") && help.contains("XSKDBG_POST_TRIGGER"),
            "{help}"
        );
    }

    #[test]
    fn post_trigger_goes_to_the_command_as_its_variable() {
        assert!(command_env(None).is_empty());
        let w = parse_post_trigger("16:5000").unwrap();
        assert_eq!(
            command_env(Some(w)),
            [("XSKDBG_POST_TRIGGER".to_string(), "16:5000".to_string())]
        );
        assert_eq!(
            command_env(Some(parse_post_trigger("0:0").unwrap()))[0].1,
            "0:0"
        );
        let e = parse_post_trigger("2ms").unwrap_err();
        assert!(e.contains("LINES:MICROS") && e.contains("8:2000"), "{e}");
    }
}
