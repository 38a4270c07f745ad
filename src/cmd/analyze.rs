//! `xskdbg analyze`: read an ftrace trace, rebuild every descriptor's history
//! and name the culprit. Exit 0 clean, 1 findings, 2 usage/input error.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use xskdbg_analyzer::filter::{CpuList, Pattern, Seen, TsBound};
use xskdbg_analyzer::render::{self, Style};
use xskdbg_analyzer::{analyze_input, open_input, Error, Filter, Options};

/// Files at least this large get a progress bar (when stderr is a TTY).
const PROGRESS_MIN: u64 = 64 << 20;

/// When to color the human report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a TTY, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Examples of the filters, shown at the end of `xskdbg analyze --help`.
const FILTER_EXAMPLES: &str = "\
Filters restrict what is reported, never what is reasoned over: the whole trace is judged,
then only the findings inside the filters are shown (a finding whose evidence lies outside
says so). They combine (all must hold) and apply to --json, --stats/--export, --html and
--perfetto too.

Examples:
  xskdbg analyze --socket 'ingress q:1' trace.txt         # one socket (name, key, label or xs)
  xskdbg analyze --cpus 0,2 --since 609766.6985 --until 609766.699 trace.txt
  xskdbg analyze --task '^iperf2-' --json trace.txt      # findings whose moment is in that task
  xskdbg analyze --frame 0x1000900 trace.txt             # one frame's findings and its life
  xskdbg analyze --socket inner --since 14.69 --until 14.72 --perfetto race.json trace.txt";

/// Arguments of `xskdbg analyze`.
#[derive(clap::Args, Debug)]
#[command(after_help = FILTER_EXAMPLES)]
pub struct Args {
    /// The trace: a file (`/sys/kernel/tracing/trace` copy, trace_pipe capture,
    /// `trace-cmd report` text), `-` for stdin; .gz and .zst are read transparently.
    #[arg(value_name = "TRACE")]
    pub trace: PathBuf,
    /// Print the machine report (docs/JSON.md) instead of the human one.
    #[arg(long)]
    pub json: bool,
    /// Show one descriptor's whole life, per CPU (e.g. 0x16ce900).
    #[arg(long, value_name = "ADDR", value_parser = parse_u64)]
    pub history: Option<u64>,
    /// UMEM chunk (frame) size, e.g. 2048 or 0x1000; inferred when absent.
    #[arg(long, value_name = "BYTES", value_parser = parse_u64)]
    pub chunk_size: Option<u64>,
    /// Unaligned UMEM: compare frames by the low 48 bits of the address.
    #[arg(long)]
    pub unaligned: bool,
    /// The value the application writes into consumed RX slots.
    #[arg(long, value_name = "VALUE", value_parser = parse_u64)]
    pub poison: Option<u64>,
    /// Timeline events shown before each finding.
    #[arg(long, value_name = "N", default_value_t = 24)]
    pub context: usize,
    /// Color the human report.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print tables (events per CPU/socket/kind, FILL->RX, RX->TX, TX->COMP
    /// latency p50/p99/max) after the report (needs the `stats` feature).
    #[arg(long)]
    pub stats: bool,
    /// Write the tables as CSV files into DIR (needs the `stats` feature).
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// Also write a self-contained HTML report: a timeline per finding (docs/VISUAL.md).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write the trace as Chrome trace-event JSON for ui.perfetto.dev (docs/VISUAL.md).
    #[arg(long, value_name = "FILE")]
    pub perfetto: Option<PathBuf>,
    /// What --perfetto exports: `all`, `N` (entries before and after each
    /// finding), `lines:A-B`, `time:START-END` (trace seconds).
    #[arg(long, value_name = "WINDOW", default_value = "all", value_parser = parse_window)]
    pub window: xskdbg_visual::perfetto::Window,
    /// Report only findings of sockets whose name, key (`netns:ifindex:queue`),
    /// label or xs pointer matches REGEX (unanchored: `ingress` matches `ingress q:1`).
    #[arg(long, value_name = "REGEX", value_parser = Pattern::new, help_heading = "Filters")]
    pub socket: Option<Pattern>,
    /// Report only findings that happened in a task (`name-pid` as the trace
    /// prints it) matching REGEX.
    #[arg(long, value_name = "REGEX", value_parser = Pattern::new, help_heading = "Filters")]
    pub task: Option<Pattern>,
    /// Report only findings that happened on these CPUs: `0,2`, `0-3`, `1,4-7`.
    #[arg(long, value_name = "LIST", value_parser = CpuList::new, help_heading = "Filters")]
    pub cpus: Option<CpuList>,
    /// Report only findings at or after this trace timestamp (`609766.6985`).
    #[arg(long, value_name = "TS", value_parser = TsBound::new, help_heading = "Filters")]
    pub since: Option<TsBound>,
    /// Report only findings at or before this trace timestamp.
    #[arg(long, value_name = "TS", value_parser = TsBound::new, help_heading = "Filters")]
    pub until: Option<TsBound>,
    /// Report only findings that involve this descriptor's frame, with the
    /// frame's life (like --history); pictures show its entries and --context
    /// entries around each.
    #[arg(long, value_name = "ADDR", value_parser = parse_u64, help_heading = "Filters")]
    pub frame: Option<u64>,
}

impl Args {
    /// The filters given.
    fn filter(&self) -> Filter {
        Filter {
            socket: self.socket.clone(),
            task: self.task.clone(),
            cpus: self.cpus.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            frame: self.frame,
        }
    }
}

fn parse_window(s: &str) -> Result<xskdbg_visual::perfetto::Window, String> {
    s.parse().map_err(|e: xskdbg_visual::Error| e.to_string())
}

/// Accept `0x16ce900`, `16ce900` is ambiguous so hex needs `0x`; plain digits are decimal.
fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse::<u64>()
    };
    r.map_err(|_| format!("`{s}` is not a number: write hex with 0x (0x16ce900) or decimal (2048)"))
}

/// Run `xskdbg analyze`.
pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(c) = args.chunk_size {
        if !args.unaligned && (!c.is_power_of_two() || !(0x800..=0x10000).contains(&c)) {
            bail!(
                "--chunk-size {c:#x}: an aligned UMEM's chunk is a power of two from 0x800 to 0x10000; \
                 pass --unaligned for an unaligned UMEM"
            );
        }
    }
    #[cfg(not(feature = "stats"))]
    if args.stats || args.export.is_some() {
        bail!(
            "--stats and --export need the polars tables, which this xskdbg was built without: \
             rebuild with `cargo install --path . --features stats`"
        );
    }
    let filter = args.filter();
    filter.check().map_err(anyhow::Error::msg)?;
    let filtered = !filter.is_empty();
    let input = open_input(&args.trace).map_err(anyhow::Error::new)?;
    let name = input.name.clone();
    let opts = Options {
        chunk_size: args.chunk_size,
        unaligned: args.unaligned,
        poison: args.poison,
        // --frame also shows the frame's life, unless --history names another.
        history: args.history.or(args.frame),
        context: args.context,
        input_name: name.clone(),
    };

    let bar = match input.file_size {
        Some(size) if size >= PROGRESS_MIN && io::stderr().is_terminal() => {
            let b = indicatif::ProgressBar::new(size);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(b)
        }
        _ => None,
    };
    // The pictures need the events around each finding, known only at the end:
    // the spool keeps them on disk during the single pass.
    // Filtered tables need the report's socket names to place kernel
    // entries, known only at the end: they are built from the spool too.
    let tables = args.stats || args.export.is_some();
    let mut spool = if args.html.is_some() || args.perfetto.is_some() || (filtered && tables) {
        Some(xskdbg_visual::Spool::new()?)
    } else {
        None
    };
    #[cfg(feature = "stats")]
    let mut collector =
        tables.then(|| xskdbg_stats::Collector::new(args.chunk_size, args.unaligned));
    // --socket also matches a socket by the other name its `sock` line gave
    // it; --task is judged on every line's task, timeline or not.
    let mut seen = Seen::new(&filter);
    let learn = Seen::needed(&filter);
    let mut observe = |ev: &xskdbg_analyzer::Event<'_>| {
        #[cfg(feature = "stats")]
        if !filtered {
            if let Some(c) = collector.as_mut() {
                c.observe(ev);
            }
        }
        if let Some(s) = spool.as_mut() {
            s.observe(ev);
        }
        if learn {
            seen.observe(ev);
        }
    };
    let result = analyze_input(input, &opts, &mut observe, &mut |n| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut report = match result {
        Ok(r) => r,
        Err(e @ Error::NoEntries { .. }) => {
            return Err(anyhow::Error::new(e).context(format!("{name} is not usable")))
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    filter.apply(&mut report, &seen);
    #[cfg(feature = "stats")]
    if let (true, Some(c), Some(s)) = (filtered, collector.as_mut(), spool.as_mut()) {
        // --frame: the tables count the frame's own entries (its latencies).
        let mut sel = xskdbg_visual::filter::Selector::new(&report, &filter, s, 0)?;
        s.replay(|ev| {
            if sel.inside(ev) {
                c.observe(ev);
            }
        })?;
    }
    if let (Some(path), Some(s)) = (&args.html, spool.as_mut()) {
        let o = xskdbg_visual::html::Options {
            input_name: name.clone(),
            ..Default::default()
        };
        xskdbg_visual::html::write_with(&report, Some(s), &o, path)?;
    }
    if let (Some(path), Some(s)) = (&args.perfetto, spool.as_mut()) {
        let o = xskdbg_visual::perfetto::Options {
            window: args.window,
            input_name: name.clone(),
            filter: filtered.then(|| filter.clone()),
            neighbours: args.context as u64,
            ..Default::default()
        };
        xskdbg_visual::perfetto::write(&report, s, &o, path)?;
    }

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = if args.json {
        report.write_json(&mut out).and_then(|()| writeln!(out))
    } else {
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        render::human(&report, &name, Style { color }, &mut out)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => {}
        // `xskdbg analyze t | head`: a closed pipe is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("cannot write the report to stdout"),
    }
    #[cfg(feature = "stats")]
    if let Some(c) = collector.as_ref() {
        let tables = c.tables().context("cannot build the statistics tables")?;
        if args.stats {
            // With --json, stdout holds the JSON document: the tables go to stderr.
            let r = if args.json {
                tables.print(&mut io::stderr().lock())
            } else {
                let mut o = io::stdout().lock();
                writeln!(o)
                    .and_then(|()| tables.print(&mut o))
                    .and_then(|()| o.flush())
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(e).context("cannot write the tables"),
            }
        }
        if let Some(dir) = &args.export {
            let files = tables
                .export(dir)
                .with_context(|| format!("cannot export the tables to {}", dir.display()))?;
            for f in files {
                eprintln!("xskdbg: wrote {}", f.display());
            }
        }
    }
    Ok(ExitCode::from(report.exit_code()))
}
