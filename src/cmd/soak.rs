//! `xskdbg soak`: a real AF_XDP forwarder under load on veth, with the
//! recorder checking every ring operation and faults injected on purpose.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use xskdbg_soak::config::{parse_cpu_list, KprobeDef};
use xskdbg_soak::{Inject, Knobs, SinkKind, SoakConfig, XdpAttach};

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
/// Results in --out: summary.json always; on a violation (or with
/// --keep-trace) also trace.txt, report.txt and report.json. Exit status: 0
/// clean, 1 violation or finding, 2 error. Needs root (network namespaces,
/// XDP, AF_XDP).
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
    /// the same ftrace instance, for this process's sockets. With --vm a
    /// comma-separated list runs one soak per backend in the same guest
    /// boot, each with its results in --out/BACKEND/.
    #[arg(long, value_name = "BACKEND[,...]", value_delimiter = ',')]
    probes: Vec<xskdbg_soak::ProbeBackend>,
    /// RX ring entries per socket (a power of two, 8..=16384). Small, with
    /// --consumer-sleep-us: the RX rings run full.
    #[arg(long, default_value_t = 2048, value_name = "N")]
    rx_size: u32,
    /// The forwarder sleeps this long after every RX batch it read: a
    /// consumer too slow for its traffic. The RX rings run full, the
    /// kernel's reservations fail (rx_ring_full) and the refused frame goes
    /// back to the pool's free list for the next packet. The generators then
    /// send without waiting for the forwarder.
    #[arg(long, default_value_t = 0, value_name = "US")]
    consumer_sleep_us: u64,
    /// XDP mode of the application ends: `drv` (native: veth's NAPI poll,
    /// flushed at the poll's end) or `skb` (generic: xsk_generic_rcv()
    /// reserves, writes and publishes before xdp:xdp_redirect fires).
    #[arg(long, default_value = "drv", value_name = "MODE", value_parser = XdpAttach::parse)]
    xdp_mode: XdpAttach,
    /// AF_XDP sockets per device queue (1-4). Every socket after the first
    /// is bound with XDP_SHARED_UMEM to the same device and queue (one
    /// buffer pool, one FILL and one COMPLETION ring) and sends 256 frames
    /// of its own to the peer end from a thread of its own; the forwarder
    /// reads the shared COMPLETION ring and hands their frames back.
    #[arg(long, default_value_t = 1, value_name = "N")]
    sockets_per_queue: u32,
    /// The recorder's post-trigger window: after the first violation the
    /// forwarder goes on and the recorder writes LINES more lines or for
    /// MICROS microseconds, whichever ends first, then freezes and the run
    /// stops (0:0: at the violation). $XSKDBG_POST_TRIGGER, if set,
    /// overrides it; summary.json says the window used.
    #[arg(long, default_value = "8:2000", value_name = "LINES:MICROS", value_parser = super::record::parse_post_trigger)]
    post_trigger: xskdbg_recorder::PostTrigger,
    /// Save trace.txt, report.txt and report.json even when the run is clean.
    #[arg(long)]
    keep_trace: bool,
    /// How the BPF probes write their events: `ring` (binary records in
    /// per-CPU ring buffers, written into the trace by drainer threads) or
    /// `printk` (one bpf_trace_printk line per event, formatted at event
    /// time: the old way, kept to measure against).
    #[arg(long, default_value = "ring", value_name = "ring|printk", value_parser = super::probes::parse_output)]
    probe_output: xskdbg_probes::Output,
    /// Create these kprobe events too (a file of kprobe_events lines,
    /// `p:GROUP/EVENT FUNCTION[+OFFSET] ARGS...`; # comments), enabled in the
    /// soak's instance, removed after the trace was read. E.g. the seed
    /// story's perf-probe definitions written for one kernel
    /// (fixtures/traces/real/seed-probes-debian-6.1.0-57.kprobe_events).
    #[arg(long, value_name = "FILE")]
    kprobe_events: Option<PathBuf>,
    /// Frames in the shared UMEM (a power of two).
    #[arg(long, default_value_t = 4096, value_name = "N")]
    frames: u32,
    /// ftrace buffer per CPU for the marker sink, in KiB.
    #[arg(long, default_value_t = 16384, value_name = "KB")]
    buffer_kb: u64,
    /// Run the soak inside a qemu guest (xskdbg-vmtest; TCG): this binary is
    /// copied in, runs `soak` with the other flags, and the guest's results
    /// come back into --out (with the guest's console.log).
    #[arg(long)]
    vm: bool,
    /// With --vm: the guest kernel, `debian` (Debian's 6.1 cloud kernel,
    /// fetched once), `debian:NN`, or a bzImage path with everything built in.
    #[arg(
        long,
        default_value = "debian",
        value_name = "PATH|debian",
        requires = "vm"
    )]
    kernel: String,
    /// With --vm: virtual CPUs of the guest.
    #[arg(long, default_value_t = 2, value_name = "N", requires = "vm")]
    vcpus: u32,
    /// With --vm: guest memory in MiB.
    #[arg(long, default_value_t = 1536, value_name = "MB", requires = "vm")]
    memory: u32,
    /// With --vm: extra guest kernel command line, e.g.
    /// 'veth.race_window_us=50 xsk.reserve_delay_us=30'.
    #[arg(long, default_value = "", value_name = "ARGS", requires = "vm")]
    append: String,
    /// With --vm: limit of the whole VM run in seconds (default: twice
    /// --duration plus 300 s for boot, setup and analysis under emulation).
    #[arg(long, value_name = "S", requires = "vm")]
    timeout: Option<f64>,
    /// With --vm: a shell command the guest runs after the soaks, in the same
    /// boot (repeatable; a boot under TCG costs minutes). Command N gets its
    /// own $XSKDBG_OUT (and working directory), which comes back as
    /// --out/also/N/, its output and exit status beside it
    /// (also/N.stdout, .stderr, .rc). Its exit status does not change the
    /// soak's: the caller judges it.
    #[arg(long = "vm-cmd", value_name = "SHELL", requires = "vm")]
    vm_cmd: Vec<String>,
    /// With --vm: a program for --vm-cmd, copied onto the guest's PATH
    /// (with its shared libraries), as its own name or NAME.
    #[arg(long = "vm-bin", value_name = "PATH[:NAME]", requires = "vm")]
    vm_bin: Vec<String>,
    /// With --vm: a host file or directory for --vm-cmd, copied to GUEST
    /// (an absolute guest path).
    #[arg(long = "vm-file", value_name = "HOST:GUEST", requires = "vm")]
    vm_file: Vec<String>,
}

const AFTER_HELP: &str = "Fault kinds for --inject:
  fill-tx                a frame put on FILL and TX at once
  double-fill            a frame put on FILL twice
  double-complete        a completion recycled twice
  reuse-before-complete  a TX frame put back on FILL before its completion
  leak                   a received frame never returned

Results in --out: summary.json always; on a violation (or with
--keep-trace) also trace.txt, report.txt and report.json. Exit status: 0
clean, 1 violation or finding, 2 error. Needs root (network namespaces, XDP,
AF_XDP).

With --vm the same soak runs in a qemu guest (Debian's 6.1 kernel or
--kernel PATH) and its results come back into --out; a VM failure exits 2.
`--vm --probes fentry,kprobe,tracefs,tracepoint` runs one soak per backend
in one boot (results in --out/BACKEND/, exit status the worst of them).
--vm-cmd runs more in that boot after the soaks (with --vm-bin and
--vm-file for what it needs), e.g. one test of the kernel's xskxceiver:
  --vm-bin xskxceiver --vm-file scripts/corpus/guest-xsk.sh:/opt/g.sh
  --vm-cmd 'sh /opt/g.sh netns skb 0 RUN_TO_COMPLETION fentry'

Recording the real traces of fixtures/traces/real/ (README.md there):
  --rx-size 32 --consumer-sleep-us 2000   a slow consumer: RX runs full
  --xdp-mode skb                          generic XDP
  --sockets-per-queue 2                   two sockets, one pool, one queue
  --kprobe-events FILE                    e.g. the seed story's perf probes
See docs/SOAK.md (nightly jobs) and docs/VETH-RACE.md.";

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
    let kprobe_events = match &args.kprobe_events {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading --kprobe-events {}", path.display()))?;
            KprobeDef::parse_file(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("--kprobe-events {}", path.display()))?
        }
        None => Vec::new(),
    };
    if args.vm {
        return run_vm(&args);
    }
    if args.probes.len() > 1 {
        anyhow::bail!(
            "--probes: one backend, or a list together with --vm (one soak per backend in one guest boot)"
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
        probes: args.probes.first().copied(),
        frames: args.frames,
        buffer_kb: args.buffer_kb,
        knobs: Knobs {
            rx_size: args.rx_size,
            consumer_sleep: (args.consumer_sleep_us > 0)
                .then(|| Duration::from_micros(args.consumer_sleep_us)),
            xdp_mode: args.xdp_mode,
            sockets_per_queue: args.sockets_per_queue,
            keep_trace: args.keep_trace,
            kprobe_events,
            probe_output: args.probe_output,
        },
        post_trigger: args.post_trigger,
    };
    let keep_trace = cfg.knobs.keep_trace;
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
    let what = if outcome.exit_code == 0 && !keep_trace {
        "summary"
    } else {
        "trace, report and summary"
    };
    msg += &format!("{what} in {}\n", outcome.out.display());
    // Only a run with findings wrote this run's report (not a stale one).
    if let Some(cmd) = (outcome.exit_code == 1)
        .then(|| reanalyze_line(&outcome.out))
        .flatten()
    {
        msg += &format!("re-analyze around the first finding: {cmd}\n");
    }
    // A closed pipe (`| head`) is not an error worth a panic: the results
    // are in --out anyway.
    let _ = std::io::stdout().write_all(msg.as_bytes());
    Ok(ExitCode::from(outcome.exit_code))
}

/// The `xskdbg analyze` command that shows the first finding of the soak's
/// report (`report.json` next to `trace.txt` in `out`) with filters that
/// fit it: its socket and a window around its evidence. `None` without a
/// finding or a kept trace.
fn reanalyze_line(out: &std::path::Path) -> Option<String> {
    use xskdbg_analyzer::filter::{around, reanalyze_with, REANALYZE_PAD_NS};
    let trace = out.join("trace.txt");
    if !trace.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(out.join("report.json")).ok()?;
    let report: serde_json::Value = serde_json::from_str(&text).ok()?;
    let f = report["findings"].as_array()?.first()?;
    let ns = |v: &serde_json::Value| v["ts_ns"].as_u64();
    let list = |k: &str| f[k].as_array().cloned().unwrap_or_default();
    let evidence: Vec<u64> = list("timeline")
        .iter()
        .filter(|e| e["highlighted"].as_bool() == Some(true))
        .chain(list("consequences").iter())
        .filter_map(ns)
        .collect();
    let a = around(f["socket"].as_str(), ns(f), evidence, REANALYZE_PAD_NS)?;
    Some(reanalyze_with(&a, &trace.display().to_string()))
}

fn sink_word(s: SinkKind) -> &'static str {
    match s {
        SinkKind::Marker => "marker",
        SinkKind::Memory => "memory",
        SinkKind::Null => "null",
        SinkKind::Off => "off",
    }
}

/// Where `--kprobe-events` is copied in the guest.
const GUEST_KPROBE_EVENTS: &str = "/opt/xskdbg/kprobe_events.txt";

/// The guest's `soak` arguments: every soak flag as given (defaults
/// included, so host and guest agree), none of the VM flags, no --out, and
/// `probes` for --probes.
fn guest_args(args: &Args, probes: Option<xskdbg_soak::ProbeBackend>) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "soak".into(),
        "--duration".into(),
        args.duration.to_string(),
        "--packets".into(),
        args.packets.to_string(),
        "--queues".into(),
        args.queues.to_string(),
        "--inject-after".into(),
        args.inject_after.to_string(),
        "--sink".into(),
        sink_word(args.sink).into(),
        "--frames".into(),
        args.frames.to_string(),
        "--buffer-kb".into(),
        args.buffer_kb.to_string(),
        "--rx-size".into(),
        args.rx_size.to_string(),
        "--consumer-sleep-us".into(),
        args.consumer_sleep_us.to_string(),
        "--xdp-mode".into(),
        args.xdp_mode.name().into(),
        "--sockets-per-queue".into(),
        args.sockets_per_queue.to_string(),
        "--post-trigger".into(),
        args.post_trigger.to_string(),
    ];
    if args.keep_trace {
        v.push("--keep-trace".into());
    }
    v.extend(["--probe-output".into(), args.probe_output.name().into()]);
    if args.kprobe_events.is_some() {
        v.extend(["--kprobe-events".into(), GUEST_KPROBE_EVENTS.into()]);
    }
    if let Some(k) = args.inject {
        v.extend(["--inject".into(), k.name().into()]);
    }
    if args.poison {
        v.push("--poison".into());
    }
    if let Some(c) = &args.traffic_cpus {
        v.extend(["--traffic-cpus".into(), c.clone()]);
    }
    if let Some(c) = args.forwarder_cpu {
        v.extend(["--forwarder-cpu".into(), c.to_string()]);
    }
    if let Some(p) = probes {
        v.extend(["--probes".into(), p.name().into()]);
    }
    v
}

/// The soaks of one guest boot: one per `--probes` backend (named after
/// it), or one unnamed soak.
fn guest_runs(args: &Args) -> Vec<xskdbg_soak::vm::GuestRun> {
    if args.probes.len() <= 1 {
        return vec![xskdbg_soak::vm::GuestRun {
            name: String::new(),
            args: guest_args(args, args.probes.first().copied()),
        }];
    }
    args.probes
        .iter()
        .map(|&p| xskdbg_soak::vm::GuestRun {
            name: p.name().into(),
            args: guest_args(args, Some(p)),
        })
        .collect()
}

/// `--vm`: the same soak in a qemu guest; exit status is the guest soak's.
fn run_vm(args: &Args) -> anyhow::Result<ExitCode> {
    let kernel = xskdbg_soak::vm::KernelSource::parse(&args.kernel).map_err(anyhow::Error::msg)?;
    if let Some(c) = &args.traffic_cpus {
        // Checked here too: a typo should not cost a boot.
        let cpus = parse_cpu_list(c)
            .map_err(anyhow::Error::msg)
            .context("--traffic-cpus")?;
        if let Some(bad) = cpus.iter().find(|&&c| c >= args.vcpus as usize) {
            anyhow::bail!(
                "--traffic-cpus {c}: CPU {bad} does not exist in a guest with --vcpus {}",
                args.vcpus
            );
        }
    }
    if let Some(f) = args.forwarder_cpu.filter(|&f| f >= args.vcpus as usize) {
        anyhow::bail!(
            "--forwarder-cpu {f}: the guest has CPUs 0..{} (--vcpus {})",
            args.vcpus.saturating_sub(1),
            args.vcpus
        );
    }
    let runs = guest_runs(args);
    let timeout = match args.timeout {
        Some(t) if t.is_finite() && t >= 1.0 => t,
        Some(t) => anyhow::bail!("--timeout {t}: give at least 1 second"),
        None => {
            150.0
                + runs.len() as f64 * (2.0 * args.duration + 150.0)
                + 300.0 * args.vm_cmd.len() as f64
        }
    };
    let program = std::env::current_exe().context("finding this program to copy into the guest")?;
    let mut files = match &args.kprobe_events {
        Some(p) => vec![xskdbg_soak::vm::FileMapping {
            host: p.clone(),
            guest: GUEST_KPROBE_EVENTS.into(),
        }],
        None => Vec::new(),
    };
    for f in &args.vm_file {
        if !f.contains(':') {
            anyhow::bail!("--vm-file {f}: give HOST:GUEST (GUEST an absolute path in the guest)");
        }
        let m = xskdbg_soak::vm::FileMapping::parse(f)
            .map_err(|e| anyhow::anyhow!("--vm-file {f}: {e}"))?;
        if !m.host.exists() {
            anyhow::bail!("--vm-file {f}: {} does not exist", m.host.display());
        }
        files.push(m);
    }
    let mut binaries = Vec::new();
    for b in &args.vm_bin {
        let b = xskdbg_soak::vm::Binary::parse(b);
        if !b.host.is_file() {
            anyhow::bail!("--vm-bin: {} is not a file", b.host.display());
        }
        binaries.push(b);
    }
    let spec = xskdbg_soak::vm::VmSoak {
        program,
        runs,
        files,
        binaries,
        also: args.vm_cmd.clone(),
        kernel,
        vcpus: args.vcpus,
        memory_mb: args.memory,
        append: args.append.clone(),
        timeout: Duration::from_secs_f64(timeout),
        out: args.out.clone(),
    };
    let o = xskdbg_soak::vm::run_in_vm(&spec).with_context(|| {
        format!(
            "soak in a qemu guest (kernel {}); whatever came back is in {}",
            args.kernel,
            args.out.display()
        )
    })?;
    let mut msg = format!(
        "guest: kernel {} ({}), {} vCPUs, {:.0} s in qemu\n",
        o.kernel_release.as_deref().unwrap_or("?"),
        o.kernel,
        args.vcpus,
        o.wall_time.as_secs_f64()
    );
    for w in &o.kernel_warnings {
        msg += &format!("guest kernel warning: {w}\n");
    }
    for r in &o.runs {
        if !r.name.is_empty() {
            msg += &format!("== {} (exit {})\n", r.name, r.exit_code);
        }
        // The guest soak names its own --out; the files are in the host's now.
        msg += &r.stdout.replace(
            &format!(
                "{}/{}",
                xskdbg_soak::vm::GUEST_OUT,
                xskdbg_soak::vm::GUEST_SUBDIR
            ),
            &args.out.display().to_string(),
        );
        if r.exit_code == 2 {
            msg += &format!("guest soak error:\n{}", r.stderr);
        }
    }
    for a in &o.also {
        let how = match (a.exit_code, a.timed_out) {
            (_, true) => "timed out".to_string(),
            (Some(c), false) => format!("exit {c}"),
            (None, false) => "never ended".to_string(),
        };
        msg += &format!(
            "== also {} ({how}): its files in {}\n",
            a.number,
            args.out.join("also").join(a.number.to_string()).display()
        );
    }
    msg += &format!(
        "results (and the guest's console.log) in {}\n",
        args.out.display()
    );
    let _ = std::io::stdout().write_all(msg.as_bytes());
    Ok(ExitCode::from(o.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        soak: Args,
    }

    fn parse(words: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("soak").chain(words.iter().copied())).map(|c| c.soak)
    }

    #[test]
    fn the_reanalyze_line_fits_the_first_finding_of_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let trace =
            std::fs::read(root.join("fixtures/traces/tracepoint-early-publish.txt")).unwrap();
        let report = xskdbg_analyzer::analyze_reader(&trace[..], &Default::default()).unwrap();
        std::fs::write(dir.path().join("report.json"), report.to_json()).unwrap();
        // No trace kept: nothing to re-analyze.
        assert_eq!(reanalyze_line(dir.path()), None);
        std::fs::write(dir.path().join("trace.txt"), &trace).unwrap();
        let line = reanalyze_line(dir.path()).unwrap();
        let f = &report.findings[0];
        assert_eq!(
            Some(line),
            xskdbg_analyzer::filter::reanalyze_command(
                f,
                &dir.path().join("trace.txt").display().to_string()
            )
        );
    }

    #[test]
    fn guest_gets_the_soak_flags_and_none_of_the_vm_flags() {
        let a = parse(&[
            "--vm",
            "--kernel",
            "/k/bzImage",
            "--vcpus",
            "3",
            "--append",
            "veth.race_window_us=50",
            "--vm-cmd",
            "echo also",
            "--vm-bin",
            "/bin/true",
            "--queues",
            "1",
            "--traffic-cpus",
            "0,1",
            "--forwarder-cpu",
            "2",
            "--poison",
            "--probes",
            "auto",
            "--duration",
            "90",
            "--out",
            "/tmp/x",
        ])
        .unwrap();
        let runs = guest_runs(&a);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].name, "");
        let g = runs[0].args.join(" ");
        assert!(g.starts_with("soak --duration 90 "), "{g}");
        for want in [
            "--queues 1",
            "--traffic-cpus 0,1",
            "--forwarder-cpu 2",
            "--poison",
            "--probes auto",
            "--sink marker",
        ] {
            assert!(g.contains(want), "{want} missing in {g}");
        }
        for vm_only in [
            "--vm",
            "--kernel",
            "--vcpus",
            "--append",
            "--timeout",
            "--out",
            "--memory",
            "echo also",
            "/bin/true",
        ] {
            assert!(!g.contains(vm_only), "{vm_only} leaked into {g}");
        }
        let b = parse(&["--inject", "double-fill"]).unwrap();
        assert!(guest_args(&b, None)
            .join(" ")
            .contains("--inject double-fill"));
    }

    #[test]
    fn the_knobs_reach_the_guest() {
        let a = parse(&[
            "--vm",
            "--rx-size",
            "32",
            "--consumer-sleep-us",
            "2000",
            "--xdp-mode",
            "skb",
            "--sockets-per-queue",
            "2",
            "--keep-trace",
            "--kprobe-events",
            "/host/seed.txt",
        ])
        .unwrap();
        let g = guest_runs(&a)[0].args.join(" ");
        for want in [
            "--rx-size 32",
            "--consumer-sleep-us 2000",
            "--xdp-mode skb",
            "--sockets-per-queue 2",
            "--keep-trace",
            "--kprobe-events /opt/xskdbg/kprobe_events.txt",
        ] {
            assert!(g.contains(want), "{want} missing in {g}");
        }
        assert!(!g.contains("/host/seed.txt"), "{g}");
    }

    #[test]
    fn a_list_of_backends_is_one_soak_each_in_one_boot() {
        let a = parse(&["--vm", "--probes", "fentry,kprobe,tracefs,tracepoint"]).unwrap();
        let runs = guest_runs(&a);
        let names: Vec<_> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["fentry", "kprobe", "tracefs", "tracepoint"]);
        for r in &runs {
            let g = r.args.join(" ");
            assert!(g.ends_with(&format!("--probes {}", r.name)), "{g}");
            assert_eq!(g.matches("--probes").count(), 1, "{g}");
        }
        assert!(parse(&["--probes", "fentry,nope"]).is_err());
    }

    #[test]
    fn the_post_trigger_window_reaches_the_soak_and_the_guest() {
        // The default is the recorder's own.
        let a = parse(&["--vm"]).unwrap();
        assert_eq!(a.post_trigger, xskdbg_recorder::PostTrigger::DEFAULT);
        let g = guest_runs(&a)[0].args.join(" ");
        assert!(g.contains("--post-trigger 8:2000"), "{g}");
        let a = parse(&["--vm", "--post-trigger", "0:0"]).unwrap();
        assert_eq!(a.post_trigger, xskdbg_recorder::PostTrigger::NONE);
        let g = guest_runs(&a)[0].args.join(" ");
        assert!(g.contains("--post-trigger 0:0"), "{g}");
        // A bad spec is a usage error naming the option and the fix.
        let Err(e) = parse(&["--post-trigger", "2ms"]) else {
            panic!("--post-trigger 2ms was accepted");
        };
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        assert!(
            e.contains("--post-trigger") && e.contains("LINES:MICROS") && e.contains("0:0"),
            "{e}"
        );
    }

    #[test]
    fn vm_flags_need_vm() {
        assert!(parse(&["--vcpus", "3"]).is_err());
        assert!(parse(&["--kernel", "debian"]).is_err());
        assert!(parse(&["--vm", "--kernel", "debian"]).is_ok());
    }
}
