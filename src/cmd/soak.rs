//! `xskdbg soak`: a real AF_XDP forwarder under load on veth, with the
//! recorder checking every ring operation and faults injected on purpose.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use xskdbg_soak::{config::parse_cpu_list, Inject, SinkKind, SoakConfig};

/// Run a real AF_XDP forwarder under load and prove every fault is caught.
///
/// Builds an "outer" and an "inner" veth pair in fresh network namespaces
/// (the application ends share one ifindex across the namespace boundary),
/// attaches a driver-mode XDP program that redirects into an XSKMAP, binds
/// an AF_XDP socket on every queue of both devices sharing one UMEM, sends
/// UDP and TCP-shaped frames from the peer namespaces and forwards RX to the
/// other side's TX, bouncing and dropping some, with the recorder checking
/// every ring operation. At the end the analyzer reads the trace.
///
/// Fault kinds for --inject:
///   fill-tx                a frame put on FILL and TX at once
///   double-fill            a frame put on FILL twice
///   double-complete        a completion recycled twice
///   reuse-before-complete  a TX frame put back on FILL before its completion
///   leak                   a received frame never returned
///
/// Results in --out: summary.json always; on a violation also trace.txt,
/// report.txt and report.json. Exit status: 0 clean, 1 violation or
/// finding, 2 error. Needs root (network namespaces, XDP, AF_XDP).
#[derive(clap::Args)]
#[command(verbatim_doc_comment, after_help = AFTER_HELP)]
pub struct Args {
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    duration: f64,
    /// Stop after this many frames were sent in total (0: only --duration).
    #[arg(long, default_value_t = 0, value_name = "N")]
    packets: u64,
    /// Queues per veth end (driver-mode XDP needs as many rx as peer tx).
    #[arg(long, default_value_t = 2, value_name = "N")]
    queues: u32,
    /// Inject one fault (see the list above).
    #[arg(long, value_name = "KIND", value_parser = parse_inject)]
    inject: Option<Inject>,
    /// Inject after this many frames were received.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    inject_after: u64,
    /// Poison every consumed RX slot; a descriptor carrying the poison means
    /// the kernel published a slot before writing it (the veth race).
    #[arg(long)]
    poison: bool,
    /// CPUs the traffic generators run on; CPU c feeds rx queue c % queues
    /// (default: every CPU this process may use).
    #[arg(long, value_name = "LIST")]
    traffic_cpus: Option<String>,
    /// Pin the forwarder to this CPU.
    #[arg(long, value_name = "N")]
    forwarder_cpu: Option<usize>,
    /// Directory for the results.
    #[arg(long, default_value = "xskdbg-soak-out", value_name = "DIR")]
    out: PathBuf,
    /// Where the recorder writes: `marker` (trace_marker of a fresh ftrace
    /// instance), `memory` (an in-process ring; no tracefs needed), `null`
    /// (checks only, no trace) or `off` (no recorder: the speed baseline).
    #[arg(long, default_value = "marker", value_parser = SinkKind::parse)]
    sink: SinkKind,
    /// Attach kernel probes (auto, tracepoint, fentry, kprobe, tracefs) into
    /// the same ftrace instance, for this process's sockets.
    #[arg(long, value_name = "BACKEND")]
    probes: Option<xskdbg_soak::ProbeBackend>,
    /// Frames in the shared UMEM (a power of two).
    #[arg(long, default_value_t = 4096, value_name = "N")]
    frames: u32,
    /// ftrace buffer per CPU for the marker sink, in KiB.
    #[arg(long, default_value_t = 16384, value_name = "KB")]
    buffer_kb: u64,
}

const AFTER_HELP: &str = "Fault kinds for --inject:
  fill-tx                a frame put on FILL and TX at once
  double-fill            a frame put on FILL twice
  double-complete        a completion recycled twice
  reuse-before-complete  a TX frame put back on FILL before its completion
  leak                   a received frame never returned

Results in --out: summary.json always; on a violation also trace.txt,
report.txt and report.json. Exit status: 0 clean, 1 violation or finding,
2 error. Needs root (network namespaces, XDP, AF_XDP).";

fn parse_inject(s: &str) -> Result<Inject, String> {
    Inject::parse(s)
}

/// Runs the soak and prints where the results are.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.duration.is_finite() && args.duration > 0.0) {
        anyhow::bail!(
            "--duration {}: give a positive number of seconds",
            args.duration
        );
    }
    let traffic_cpus = match &args.traffic_cpus {
        Some(list) => parse_cpu_list(list)
            .map_err(anyhow::Error::msg)
            .context("--traffic-cpus")?,
        None => xskdbg_soak::allowed_cpus().context("reading this process's CPU affinity")?,
    };
    let cfg = SoakConfig {
        duration: Duration::from_secs_f64(args.duration),
        packets: args.packets,
        queues: args.queues,
        inject: args.inject,
        inject_after: args.inject_after,
        poison: args.poison,
        traffic_cpus,
        forwarder_cpu: args.forwarder_cpu,
        out: args.out,
        sink: args.sink,
        probes: args.probes,
        frames: args.frames,
        buffer_kb: args.buffer_kb,
    };
    let outcome = xskdbg_soak::run(&cfg)?;
    let s = &outcome.summary;
    let mut msg = format!(
        "soak: {} frames received, {} forwarded, {} bounced, {} dropped, {:.0} packets/s, {} violation(s)\n",
        s["packets_received"],
        s["forwarded"],
        s["bounced"],
        s["dropped"],
        s["packets_per_second"].as_f64().unwrap_or(0.0),
        s["violations"]
    );
    if let Some(v) = &outcome.recorder_violation {
        msg += &format!("recorder: {v}\n");
    }
    if !outcome.leaked_frames.is_empty() {
        msg += &format!(
            "audit: frames lost by the application: {}\n",
            outcome.leaked_frames.join(", ")
        );
    }
    for (k, v) in outcome.finding_kinds.iter().zip(&outcome.finding_verdicts) {
        msg += &format!("analyzer: {k} (verdict {v})\n");
    }
    let what = if outcome.exit_code == 0 {
        "summary"
    } else {
        "trace, report and summary"
    };
    msg += &format!("{what} in {}\n", outcome.out.display());
    // A closed pipe (`| head`) is not an error worth a panic: the results
    // are in --out anyway.
    let _ = std::io::stdout().write_all(msg.as_bytes());
    Ok(ExitCode::from(outcome.exit_code))
}
