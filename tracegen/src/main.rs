//! `xskdbg-tracegen`: write a generated AF_XDP ftrace trace and, with
//! `--expect`, the findings `xskdbg analyze` must report on it.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use xskdbg_tracegen::{
    generate, write_file, write_json_atomic, Clock, Compression, Config, Scenario, Vocab,
};

/// Generate a realistic AF_XDP ftrace `trace` file (clean run, application
/// bug or kernel race) for tests and benchmarks.
#[derive(Parser)]
#[command(name = "xskdbg-tracegen", version, about, long_about = None)]
struct Args {
    /// Scenario: clean, app-fill-tx, app-double-fill, app-double-complete,
    /// app-reuse-before-complete, app-leak, kernel-race, kernel-race-stale,
    /// kernel-dup, kernel-comp-overrun.
    #[arg(short, long, default_value = "clean")]
    scenario: String,
    /// Same seed, same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop once the trace body reaches this size (e.g. 1G, 200M, 64K;
    /// binary units). Streams: memory does not grow with the size.
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Without --size: simulation steps (a step is one NAPI packet or one
    /// application loop iteration).
    #[arg(long, default_value_t = 4000)]
    steps: u64,
    /// CPUs in the traced machine (at least 3).
    #[arg(long, default_value_t = 4)]
    cpus: u16,
    /// Queues per device (two devices, so twice as many sockets).
    #[arg(long, default_value_t = 2)]
    queues: u16,
    /// Line vocabulary.
    #[arg(long, value_enum, default_value_t = VocabArg::Project)]
    vocab: VocabArg,
    /// Trace clock of the timestamps.
    #[arg(long, value_enum, default_value_t = ClockArg::Local)]
    clock: ClockArg,
    /// Force wrapped per-CPU buffers (late starts, annotations).
    #[arg(long, conflicts_with = "no_wrap")]
    wrap: bool,
    /// Force a complete trace (no buffer wrapped).
    #[arg(long)]
    no_wrap: bool,
    /// Leave out the probes' kernel lines (`probe`, `krx`, `ktx`, `kcomp`,
    /// ...): the recorder's lines alone.
    #[arg(long)]
    no_probes: bool,
    /// Write the trace here (atomically; .gz/.zst compress) instead of stdout.
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Write the expected findings (JSON) here.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum VocabArg {
    /// `xskdbg:1 ...` lines (docs/TRACE-FORMAT.md).
    Project,
    /// The seed story's free-form lines and kprobe events.
    Freeform,
}

#[derive(Clone, Copy, ValueEnum)]
enum ClockArg {
    /// seconds.microseconds
    Local,
    /// an entry counter
    Counter,
    /// TSC ticks
    #[value(name = "x86-tsc")]
    X86Tsc,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (s, 1u64),
        Some((i, _)) => {
            let unit = s[i..]
                .trim_end_matches(['B', 'b', 'i'])
                .to_ascii_uppercase();
            let m = match unit.as_str() {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => return Err(format!("unknown size unit in {s:?}; use K, M or G")),
            };
            (&s[..i], m)
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 1G or 500M"))?;
    n.checked_mul(mult)
        .filter(|&v| v > 0)
        .ok_or_else(|| format!("size {s:?} out of range"))
}

fn run(args: Args) -> Result<()> {
    if args.list {
        for sc in Scenario::ALL {
            println!("{}", sc.name());
        }
        return Ok(());
    }
    let Some(scenario) = Scenario::from_name(&args.scenario) else {
        let names: Vec<_> = Scenario::ALL.iter().map(|s| s.name()).collect();
        bail!(
            "unknown scenario {:?}; choose one of: {}",
            args.scenario,
            names.join(", ")
        );
    };
    let cfg = Config {
        scenario,
        seed: args.seed,
        size: args.size,
        steps: args.steps,
        cpus: args.cpus,
        queues: args.queues,
        vocab: match args.vocab {
            VocabArg::Project => Vocab::Project,
            VocabArg::Freeform => Vocab::Freeform,
        },
        clock: match args.clock {
            ClockArg::Local => Clock::Local,
            ClockArg::Counter => Clock::Counter,
            ClockArg::X86Tsc => Clock::X86Tsc,
        },
        wrap: if args.wrap {
            Some(true)
        } else if args.no_wrap {
            Some(false)
        } else {
            None
        },
        probes: !args.no_probes,
    };
    let expect = match &args.out {
        Some(path) => write_file(&cfg, path, Compression::from_path(path))
            .with_context(|| format!("cannot generate {}", path.display()))?,
        None => {
            let stdout = io::stdout().lock();
            let mut w = io::BufWriter::with_capacity(1 << 20, stdout);
            let e = generate(&cfg, &mut w).context("cannot write the trace to stdout")?;
            w.flush().context("cannot write the trace to stdout")?;
            e
        }
    };
    if let Some(path) = &args.expect {
        write_json_atomic(&expect, path)
            .with_context(|| format!("cannot write the expectation to {}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    xskdbg_cli::main(|args: Args| run(args).map(|()| ExitCode::SUCCESS))
}
