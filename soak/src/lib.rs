//! xskdbg-soak: a real AF_XDP forwarder under load that proves every
//! injected fault is caught.
//!
//! [`run`] builds the seed story's topology in fresh namespaces
//! ([`topology`]: outer and inner veth pairs, the application ends sharing
//! one ifindex across the namespace boundary, driver-mode XDP redirecting
//! into an XSKMAP), binds an AF_XDP socket on every queue of both devices
//! sharing one UMEM, starts CPU-pinned generators in the peer namespaces and
//! runs the [`forward`]er with the recorder checking every ring operation.
//! A fault from [`config::Inject`] can be injected; the recorder (or the
//! analyzer, for leaks) must catch it. Results go to `--out`: the trace, the
//! analyzer's report as text and JSON, and a JSON summary.
//!
//! Exit: 0 clean, 1 violation or finding, 2 error (the CLI maps
//! [`SoakError`] to 2).

#![recursion_limit = "256"]

pub mod config;
pub mod forward;
pub mod kprobes;
pub mod sender;
pub mod topology;
pub mod vm;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use xskdbg_recorder as rec;
use xsknet::packet::{FrameSpec, L4};
use xsknet::traffic::{pin_to_cpu, queue_for_cpu, Generator, SendReport, TrafficPlan};
use xsknet::{SharedUmem, UmemConfig};

pub use config::{Inject, Knobs, SinkKind, SoakConfig, XdpAttach};
use forward::{Counters, Forwarder, Port};
use topology::{app_ifname, peer_ifname, Side};
/// The kernel probe backends `--probes` takes.
pub use xskdbg_probes::Backend as ProbeBackend;
pub use xskdbg_recorder::PostTrigger;
/// CPUs this process may use (the default for `--traffic-cpus`).
pub use xsknet::traffic::allowed_cpus;

/// Why a soak could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// A bad option.
    #[error("{0}")]
    Usage(String),
    /// The machine lacks something (root, tools, BPF).
    #[error("cannot run the soak here: {0}")]
    Environment(String),
    /// Building the testbed failed.
    #[error("testbed: {0}")]
    Net(#[from] xsknet::Error),
    /// The recorder could not start.
    #[error("recorder: {0}")]
    Recorder(#[from] rec::Error),
    /// tracefs failed.
    #[error("tracefs: {0}")]
    TraceFs(#[from] xskdbg_tracefs::Error),
    /// Kernel probes could not attach.
    #[error("probes: {0}")]
    Probes(String),
    /// The analyzer could not read the trace.
    #[error("analyzer: {0}")]
    Analyzer(String),
    /// Writing results failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A worker thread panicked.
    #[error("{0} thread panicked")]
    Panic(&'static str),
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// 0 clean, 1 violation or analyzer finding.
    pub exit_code: u8,
    /// The JSON summary (also written to `summary.json`).
    pub summary: serde_json::Value,
    /// Finding kinds the analyzer reported, in order.
    pub finding_kinds: Vec<String>,
    /// Their verdicts, in the same order.
    pub finding_verdicts: Vec<String>,
    /// What the recorder caught first, as its violation line.
    pub recorder_violation: Option<String>,
    /// Frames the end-of-run audit found lost by the application.
    pub leaked_frames: Vec<String>,
    /// The directory holding the results.
    pub out: PathBuf,
}

/// Lengths the generators cycle through.
const LENGTHS: [usize; 5] = [64 + 6, 128, 333, 1000, 1514];

/// Pause of each generator after every frame when several generators feed
/// one rx queue (`--traffic-cpus` with more CPUs than `--queues`). Unpaced,
/// they keep the queue full: every NAPI poll ends with its budget used up
/// and repolls on the CPU that has it (ksoftirqd there), so the other
/// CPUs' frames only join that poll and no second CPU ever produces into
/// the socket, the opposite of what sharing a queue is for. Measured in the
/// eval-kernel guest (docs/VETH-RACE.md): all 1,263 polls of a 40 s run
/// took exactly 64 frames, all on CPU 0. With a pause each poll drains the
/// queue and completes, and the next frame starts a poll on the CPU that
/// sent it.
pub const SHARED_QUEUE_GAP: Duration = Duration::from_micros(300);

/// The per-frame pause of the generators of `cpus` feeding `queues` queues:
/// [`SHARED_QUEUE_GAP`] when two of them feed the same queue, else none.
pub fn traffic_gap(cpus: &[usize], queues: u32) -> Option<Duration> {
    let mut seen = std::collections::HashSet::new();
    let shared = cpus.iter().any(|&c| !seen.insert(queue_for_cpu(c, queues)));
    shared.then_some(SHARED_QUEUE_GAP)
}

/// Waits until the recorder froze its buffer after a violation: the end of
/// its post-trigger window, at most the window's time and a margin (a
/// window that counts lines the forwarder no longer writes ends by time).
fn wait_for_freeze(recorder: &rec::Recorder) {
    let window = Duration::from_micros(recorder.post_trigger().micros);
    let until = Instant::now() + window.min(Duration::from_secs(600)) + Duration::from_millis(500);
    while !recorder.is_frozen() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs one soak as configured.
pub fn run(cfg: &SoakConfig) -> Result<Outcome, SoakError> {
    cfg.validate().map_err(SoakError::Usage)?;
    if let Some(why) = xsknet::testenv::missing_requirements() {
        return Err(SoakError::Environment(why));
    }
    let queues = cfg.queues as usize;
    // What an earlier run killed with SIGKILL left behind (namespaces and
    // ftrace instances named after a process that no longer runs).
    let _ = xsknet::NetNs::remove_stale();
    remove_stale_instances();
    let xdp_mode = match cfg.knobs.xdp_mode {
        XdpAttach::Drv => xsknet::XdpMode::Native,
        XdpAttach::Skb => xsknet::XdpMode::Generic,
    };
    let outer = Side::build("outer", cfg.queues, xdp_mode)?;
    let inner = Side::build("inner", cfg.queues, xdp_mode)?;
    let sides = [&outer, &inner];

    // The recorder: every ring operation becomes a trace line; the first
    // violation freezes the buffer and stops the run.
    let stop = Arc::new(AtomicBool::new(false));
    // Unique per run, so runs in one process (tests) do not collide.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run_id = RUNS.fetch_add(1, Ordering::Relaxed);
    let instance = match cfg.sink {
        SinkKind::Marker => {
            let fs = xskdbg_tracefs::TraceFs::find()?;
            let inst =
                fs.create_instance(&format!("xskdbg-soak-{}-{run_id}", std::process::id()))?;
            inst.set_buffer_size_kb(cfg.buffer_kb)?;
            // On purpose, with or without probes: `mono` orders events of
            // different CPUs (an instance starts with `local`, per CPU,
            // even where the guest switched its top buffer to `global`), and
            // drained kernel records carry its stamps. Set before the first
            // line (a clock change empties it); the instance is removed at
            // the end, so nothing to restore.
            xskdbg_probes::attach::use_mono_clock(&inst.buffer())
                .map_err(|e| SoakError::Probes(e.to_string()))?;
            Some(inst)
        }
        SinkKind::Memory | SinkKind::Null | SinkKind::Off => None,
    };
    let sink = match &instance {
        Some(inst) => rec::SinkConfig::Buffer(inst.buffer()),
        None if cfg.sink == SinkKind::Memory => rec::SinkConfig::Memory { events: 1 << 20 },
        None => rec::SinkConfig::Null,
    };
    // Set by the first violation; the run stops at the recorder's freeze,
    // after the post-trigger window, so the trace holds what followed it.
    let violated = Arc::new(AtomicBool::new(false));
    let violated_cb = Arc::clone(&violated);
    let first_violation: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let first_cb = Arc::clone(&first_violation);
    let policy = rec::Policy::Callback(Arc::new(move |v: &rec::Violation| {
        if let Ok(mut f) = first_cb.lock() {
            f.get_or_insert_with(|| v.line.clone());
        }
        violated_cb.store(true, Ordering::Relaxed);
    }));
    let recorder = rec::Recorder::new(
        rec::RecorderConfig::new(sink)
            .policy(policy)
            .post_trigger(cfg.post_trigger),
    )?;
    let ucfg = UmemConfig {
        frames: cfg.frames,
        rx_size: cfg.knobs.rx_size,
        ..UmemConfig::default()
    };
    let mut rcfg = rec::UmemConfig::aligned(ucfg.frames, ucfg.frame_size);
    if cfg.poison {
        rcfg = rcfg.with_poison(rec::DEFAULT_POISON);
    }
    let rumem = recorder.umem(rcfg)?;

    let mut umem = SharedUmem::new(ucfg)?;
    let mut ports = Vec::new();
    // The extra sockets of --sockets-per-queue: (side, socket, recorder view, label).
    let mut mates = Vec::new();
    for (si, side) in sides.iter().enumerate() {
        for q in 0..cfg.queues {
            let sock = umem.socket(Some(&side.app), &app_ifname(side.name), q)?;
            side.xdp.register(q, sock.fd())?;
            let k = sock.key();
            let key = rec::SockKey::new(k.netns_cookie, k.ifindex, k.queue);
            let label = format!("{} q:{q}", side.name);
            let pool = rumem.pool(rec::PoolConfig::new(key))?;
            let rsock = pool.socket(
                rec::SockConfig::new(key)
                    .label(label.clone())
                    .fd(sock.fd_raw()),
            )?;
            for k in 1..cfg.knobs.sockets_per_queue {
                let mate = umem.socket_sharing_pool(Some(&side.app), &sock)?;
                let mlabel = format!("{label} s:{k}");
                let mrsock = pool.socket(
                    rec::SockConfig::new(key)
                        .label(mlabel.clone())
                        .fd(mate.fd_raw()),
                )?;
                mates.push((si, mate, mrsock, mlabel));
            }
            // SAFETY: on kernels that refuse a second mapping after bind
            // (the 6.1 guest) this is `sock`'s own ring mapping; the Port
            // keeps `sock` next to the map and reads it only while both live.
            let rxmap = unsafe {
                xskdbg_recorder::sys::RxRingMap::map_or_reuse(sock.fd_raw(), ucfg.rx_size)
            }
            .map_err(|source| {
                SoakError::Environment(format!("mapping the RX ring of {label}: {source}"))
            })?;
            let poison = cfg.poison.then_some(rec::DEFAULT_POISON);
            if let Some(p) = poison {
                // Every slot poisoned before the first frame, not only the
                // consumed ones: a slot published before its write on the
                // ring's first lap then reads 0xdeadbeefdeadbeef (the seed
                // story's signature, `poisoned_descriptor`) instead of the
                // fresh ring's zeros, which read as frame 0 out of turn.
                // No frame can arrive yet: FILL is still empty.
                rxmap.poison(0, ucfg.rx_size, p);
            }
            ports.push(Port::new(sock, pool, rsock, label, Some(rxmap), poison));
        }
    }
    // Kernel probes into the same instance, for this process's sockets.
    let mut probes = match (cfg.probes, &instance) {
        (Some(backend), Some(inst)) => {
            let req = xskdbg_probes::Request {
                backend,
                filters: xskdbg_probes::Filters {
                    pid: Some(std::process::id()),
                    ..Default::default()
                },
                buffer: inst.buffer(),
                group: format!(
                    "{}_soak{}_{run_id}",
                    xskdbg_probes::kprobe_events::GROUP,
                    std::process::id()
                ),
                stacks: false,
                output: cfg.knobs.probe_output,
            };
            let attached =
                xskdbg_probes::attach(&req).map_err(|e| SoakError::Probes(e.to_string()))?;
            inst.open_marker()?
                .write(attached.header_line().as_bytes())?;
            Some(attached)
        }
        _ => None,
    };
    // --kprobe-events: the user's own kprobe events into the same instance.
    let extra_events = match &instance {
        Some(inst) if !cfg.knobs.kprobe_events.is_empty() => Some(
            kprobes::ExtraEvents::add(
                &xskdbg_tracefs::TraceFs::find()?,
                &inst.buffer(),
                &cfg.knobs.kprobe_events,
            )
            .map_err(SoakError::Probes)?,
        ),
        _ => None,
    };
    // The senders of the extra sockets own the last frames of the UMEM,
    // SENDER_FRAMES each; the forwarder all the others.
    let sender_frames = mates.len() as u64 * u64::from(config::SENDER_FRAMES);
    let fwd_frames = u64::from(cfg.frames) - sender_frames;
    let frame_size = u64::from(ucfg.frame_size);
    let mut senders = Vec::new();
    let mut returns = Vec::new();
    for (i, (si, mate, mrsock, mlabel)) in mates.into_iter().enumerate() {
        let side = sides[si];
        let first = (fwd_frames + i as u64 * u64::from(config::SENDER_FRAMES)) * frame_size;
        let spec = FrameSpec {
            src_mac: side.veth.a.mac,
            dst_mac: side.veth.b.mac,
            src_ip: std::net::Ipv4Addr::new(10, 200 + si as u8, 0, 1),
            dst_ip: std::net::Ipv4Addr::new(10, 200 + si as u8, 0, 2),
            src_port: 40000 + i as u16,
            dst_port: 9000,
            l4: L4::Udp,
            flow: 0x8000 + i as u16,
        };
        let (mut s, r) = sender::PoolMateSender::new(
            mate,
            mrsock,
            rumem.clone(),
            mlabel,
            first..first + u64::from(config::SENDER_FRAMES) * frame_size,
            frame_size,
            spec,
        );
        s.set_recorder(cfg.sink != SinkKind::Off);
        senders.push(s);
        returns.push(r);
    }
    let free: Vec<u64> = umem.frame_addrs().take(fwd_frames as usize).collect();
    let counters = Arc::new(Counters::new(ports.len()));
    let mut fwd = Forwarder::new(
        ports,
        queues,
        free,
        rumem.clone(),
        Arc::clone(umem.area()),
        cfg.inject,
        cfg.inject_after,
        Arc::clone(&counters),
    );
    fwd.set_recorder(cfg.sink != SinkKind::Off);
    fwd.set_consumer_sleep(cfg.knobs.consumer_sleep);
    fwd.set_returns(returns);

    let start = Instant::now();
    let deadline = start + cfg.duration;
    let gens = sides.len() * cfg.traffic_cpus.len();
    let gap = traffic_gap(&cfg.traffic_cpus, cfg.queues);
    // (side, CPU, queue) of every generator, in spawn order.
    let mut gen_info: Vec<(&str, usize, u32)> = Vec::new();
    let per_gen = if cfg.packets == 0 {
        u64::MAX
    } else {
        cfg.packets.div_ceil(gens as u64)
    };
    let (sent, fwd, mut sender_reports) = std::thread::scope(
        |sc| -> Result<(Vec<SendReport>, Forwarder, Vec<sender::SenderReport>), SoakError> {
            // The senders stop with the generators, so their last frames
            // complete while the forwarder drains.
            let senders_stop = Arc::new(AtomicBool::new(false));
            let sh: Vec<_> = senders
                .iter_mut()
                .map(|s| {
                    let stop_s = Arc::clone(&senders_stop);
                    sc.spawn(move || s.run(&stop_s))
                })
                .collect();
            let stop_f = Arc::clone(&stop);
            let forwarder_cpu = cfg.forwarder_cpu;
            let fh = sc.spawn(move || {
                if let Some(c) = forwarder_cpu {
                    // A failed pin only costs speed; the soak still means something.
                    let _ = pin_to_cpu(c);
                }
                fwd.run(&stop_f);
                fwd
            });
            let mut gh = Vec::new();
            for (si, side) in sides.iter().enumerate() {
                for (gi, &cpu) in cfg.traffic_cpus.iter().enumerate() {
                    let q = queue_for_cpu(cpu, cfg.queues) as usize;
                    let flows = [L4::Udp, L4::Tcp].map(|l4| FrameSpec {
                        src_mac: side.veth.b.mac,
                        dst_mac: side.veth.a.mac,
                        src_ip: std::net::Ipv4Addr::new(10, 200 + si as u8, 0, 2),
                        dst_ip: std::net::Ipv4Addr::new(10, 200 + si as u8, 0, 1),
                        src_port: 30000 + gi as u16,
                        dst_port: 9000,
                        l4,
                        flow: (si * 256 + gi) as u16,
                    });
                    let plan = TrafficPlan {
                        flows: flows.to_vec(),
                        lengths: LENGTHS.to_vec(),
                        count: per_gen,
                        duration: Some(deadline.saturating_duration_since(Instant::now())),
                        // A slow consumer's full RX ring drops frames that
                        // are never received: a window would stall on them.
                        window: cfg.knobs.consumer_sleep.is_none().then_some(192),
                        stall: Duration::from_secs(2),
                        first_seq: 0,
                        cpu: Some(cpu),
                        gap,
                    };
                    let mut gen = Generator::new(Some(&side.peer), &peer_ifname(side.name))?;
                    gen_info.push((side.name, cpu, q as u32));
                    let counters = Arc::clone(&counters);
                    let port = si * queues + q;
                    let stop_g = Arc::clone(&stop);
                    gh.push(sc.spawn(move || -> xsknet::Result<SendReport> {
                        let rep = gen.run(&plan, &counters.received_port[port]);
                        // A generator that stalls (e.g. the forwarder stopped on a
                        // violation) ends; the others go on.
                        let _ = &stop_g;
                        rep
                    }));
                }
            }
            // Wait for the deadline, a violation, or all generators done.
            while Instant::now() < deadline
                && !stop.load(Ordering::Relaxed)
                && !gh.iter().all(|h| h.is_finished())
            {
                if violated.load(Ordering::Relaxed) {
                    // Traffic goes on through the post-trigger window: the
                    // decisive sign often comes a batch after the first.
                    wait_for_freeze(&recorder);
                    stop.store(true, Ordering::Relaxed);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            senders_stop.store(true, Ordering::Relaxed);
            // Let in-flight frames drain and complete before stopping: until
            // the forwarder has read nothing new for 100 ms (at least 300 ms,
            // at most 3 s). A fixed pause left the last frame the kernel had
            // received unread on a loaded machine, so a count of kernel
            // receives and application reads could differ by one.
            let started = Instant::now();
            let mut last = counters.received.load(Ordering::Acquire);
            let mut quiet_since = started;
            while !stop.load(Ordering::Relaxed) {
                if violated.load(Ordering::Relaxed) {
                    wait_for_freeze(&recorder);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                let now = counters.received.load(Ordering::Acquire);
                if now != last {
                    last = now;
                    quiet_since = Instant::now();
                }
                let waited = started.elapsed();
                if waited >= Duration::from_secs(3)
                    || (waited >= Duration::from_millis(300)
                        && quiet_since.elapsed() >= Duration::from_millis(100))
                {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            let mut sent = Vec::new();
            for h in gh {
                sent.push(h.join().map_err(|_| SoakError::Panic("generator"))??);
            }
            let fwd = fh.join().map_err(|_| SoakError::Panic("forwarder"))?;
            let mut reps = Vec::new();
            for h in sh {
                reps.push(h.join().map_err(|_| SoakError::Panic("sender"))?);
            }
            Ok((sent, fwd, reps))
        },
    )?;
    // Completions the forwarder read after a sender stopped.
    for (s, r) in senders.iter().zip(&mut sender_reports) {
        s.drain(r);
    }
    let elapsed = start.elapsed();

    // The trace, then the analyzer's verdict on it.
    let probe_backend = probes.as_ref().map(|p| p.backend().name());
    // The kernel records still in the probes' ring buffers go into the
    // trace before it is frozen and read; after the recorder's freeze the
    // drainers have completed it with the records up to it.
    // The recorder's account of the frames the application holds goes in
    // first: a leak is judged from it even when the buffer wrapped.
    recorder.audit();
    // The sockets still close after the buffer is off; their lines are not
    // the run's, and the recorder must not call the buffer's end a surprise.
    recorder.end();
    let drained = probes.as_mut().and_then(|p| p.finish_drain());
    let trace = match &instance {
        Some(inst) => {
            inst.set_tracing_on(false)?;
            // Read before detaching: removing a kprobe event (the tracefs
            // backend's, --kprobe-events) resets every ring buffer of the
            // system, this instance's included (docs/PROBES.md).
            let trace = inst.read_trace()?;
            drop(probes);
            drop(extra_events);
            trace
        }
        None => recorder.dump(),
    };
    // Null and off sinks leave no trace to analyze.
    let has_trace = matches!(cfg.sink, SinkKind::Marker | SinkKind::Memory);
    let report = if has_trace {
        let opts = xskdbg_analyzer::Options {
            input_name: "trace.txt".into(),
            ..Default::default()
        };
        Some(
            xskdbg_analyzer::analyze_reader(&trace[..], &opts)
                .map_err(|e| SoakError::Analyzer(e.to_string()))?,
        )
    } else {
        None
    };
    let mut text = Vec::new();
    if let Some(report) = &report {
        xskdbg_analyzer::render::human(
            report,
            "trace.txt",
            xskdbg_analyzer::render::Style::default(),
            &mut text,
        )
        .map_err(|e| SoakError::Analyzer(e.to_string()))?;
    }
    let findings: &[xskdbg_analyzer::Finding] = report.as_ref().map_or(&[], |r| &r.findings);

    // The application's own audit after the run: frames the recorder holds
    // as the app's (rx, comp, held, free) must all be on the forwarder's
    // free list; any other is a frame the app lost.
    let held: std::collections::HashSet<u64> = fwd
        .free_frames()
        .chain(sender_reports.iter().flat_map(|r| r.held.iter().copied()))
        .collect();
    let leaked: Vec<String> = umem
        .frame_addrs()
        .filter(|&f| {
            matches!(
                rumem.state(f),
                Some(rec::State::Rx | rec::State::Comp | rec::State::Held | rec::State::Free)
            ) && !held.contains(&f)
        })
        .map(|f| format!("{f:#x}"))
        .collect();
    // How much of the kernel side the trace holds (the probes' receives),
    // which CPUs produced into the sockets (with several traffic CPUs on one
    // queue, more than one CPU here is the precondition of the veth race),
    // and how many receives found their slot already published.
    let (mut kernel_rx_events, mut published_early) = (0usize, 0usize);
    let mut kernel_rx_cpus = std::collections::BTreeMap::<String, u64>::new();
    for (cpu, early) in trace.split(|&b| b == b'\n').filter_map(kernel_rx) {
        kernel_rx_events += 1;
        published_early += usize::from(early);
        *kernel_rx_cpus.entry(cpu.to_string()).or_default() += 1;
    }
    let generators: Vec<_> = gen_info
        .iter()
        .zip(&sent)
        .map(|(&(side, cpu, queue), r)| {
            json!({"side": side, "cpu": cpu, "queue": queue, "sent": r.sent,
                "retries": r.retries, "stalled": r.stalled, "elapsed_s": r.elapsed_us as f64 / 1e6})
        })
        .collect();
    let c = &fwd.counters;
    let total_sent: u64 = sent.iter().map(|s| s.sent).sum();
    let received = c.received.load(Ordering::Relaxed);
    let violations = recorder.violations();
    let recorder_violation = first_violation.lock().ok().and_then(|v| v.clone());
    let finding_kinds: Vec<String> = findings.iter().map(|f| f.kind.name().to_string()).collect();
    let finding_verdicts: Vec<String> = findings
        .iter()
        .map(|f| f.verdict.name().to_string())
        .collect();
    let ring_stats: Vec<_> = fwd
        .stats()
        .into_iter()
        .chain(
            senders
                .iter()
                .zip(&sender_reports)
                .map(|(s, r)| (r.label.clone(), s.stats())),
        )
        .map(|(label, s)| match s {
            Some(s) => json!({"socket": label, "rx_dropped": s.rx_dropped, "rx_invalid_descs": s.rx_invalid_descs,
                "tx_invalid_descs": s.tx_invalid_descs, "rx_ring_full": s.rx_ring_full,
                "rx_fill_ring_empty_descs": s.rx_fill_ring_empty_descs, "tx_ring_empty_descs": s.tx_ring_empty_descs}),
            None => json!({"socket": label}),
        })
        .collect();
    let arrivals: Vec<_> = sides
        .iter()
        .map(|s| json!({"side": s.name, "peer_arrivals": s.peer_xdp.verdicts().map(|v| v.passed).unwrap_or(0)}))
        .collect();
    // Ring output: kernel records written by the drainers, records a full
    // ring refused (missing from the trace), whether a drainer completed
    // the recorder's freeze, and any drainer problem.
    let drain_summary = drained.as_ref().map(|d| {
        json!({"records": d.records, "lost": d.lost, "completed_freeze": d.completed_freeze,
            "problems": d.problems, "drainers": d.drainers, "pinned": d.pinned})
    });
    let summary = json!({
        "probe_output": cfg.knobs.probe_output.name(),
        // The window in force (--post-trigger, or $XSKDBG_POST_TRIGGER in
        // its place), LINES:MICROS.
        "post_trigger": recorder.post_trigger().to_string(),
        "result": if violations > 0 || !findings.is_empty() || !leaked.is_empty() { "violation" } else { "clean" },
        "app_audit_leaked_frames": leaked,
        "inject": cfg.inject.map(|k| k.name()),
        "injected_addr": fwd.injected.done.then(|| format!("{:#x}", fwd.injected.addr)),
        "duration_s": elapsed.as_secs_f64(),
        "queues": cfg.queues,
        "packets_sent": total_sent,
        "generators": generators,
        "traffic_gap_us": gap.map(|g| g.as_micros() as u64),
        "packets_received": received,
        "packets_per_second": if elapsed.as_secs_f64() > 0.0 { received as f64 / elapsed.as_secs_f64() } else { 0.0 },
        "forwarded": c.forwarded.load(Ordering::Relaxed),
        "bounced": c.bounced.load(Ordering::Relaxed),
        "dropped": c.dropped.load(Ordering::Relaxed),
        "completed": c.completed.load(Ordering::Relaxed),
        "violations": violations,
        "recycled_explained": recorder.recycled(),
        "recorder_sink_errors": recorder.sink_errors(),
        "recorder_violation": recorder_violation,
        "analyzer_findings": finding_kinds,
        "analyzer_verdicts": finding_verdicts,
        // The verdict over the whole trace (`kernel`, `inconclusive`, ...).
        "analyzer_verdict": report.as_ref().map(|r| json!(r.summary.verdict)),
        // ftrace's entries-in-buffer/entries-written: below written, a CPU's
        // buffer wrapped and its oldest events are gone (the analyzer judges
        // only from where every CPU's buffer had started).
        "trace_entries_in_buffer": report.as_ref().and_then(|r| r.summary.entries_in_buffer),
        "trace_entries_written": report.as_ref().and_then(|r| r.summary.entries_written),
        "ring_stats": ring_stats,
        "peers": arrivals,
        "poison": cfg.poison,
        "probes": probe_backend,
        "kernel_rx_events": kernel_rx_events,
        "kernel_rx_cpus": kernel_rx_cpus,
        // Tracepoint backend only: receives whose slot another CPU had
        // already published when this CPU's redirect returned (see
        // `published_before_redirect`); 0 on a kernel with one producer.
        "kernel_rx_published_before_redirect": published_early,
        "kernel_drain": drain_summary,
        "rx_size": cfg.knobs.rx_size,
        "consumer_sleep_us": cfg.knobs.consumer_sleep.map(|d| d.as_micros() as u64),
        "xdp_mode": cfg.knobs.xdp_mode.name(),
        "sockets_per_queue": cfg.knobs.sockets_per_queue,
        // The extra sockets' sender threads (--sockets-per-queue).
        "senders": sender_reports
            .iter()
            .map(|r| json!({"socket": r.label, "sent": r.sent, "completed": r.completed}))
            .collect::<Vec<_>>(),
        "kprobe_events": cfg.knobs.kprobe_events.iter().map(|d| format!("{}/{}", d.group, d.event)).collect::<Vec<_>>(),
        "sink": match cfg.sink {
            SinkKind::Marker => "trace_marker",
            SinkKind::Memory => "memory",
            SinkKind::Null => "null",
            SinkKind::Off => "off",
        },
    });
    let exit_code = u8::from(violations > 0 || !findings.is_empty() || !leaked.is_empty());
    std::fs::create_dir_all(&cfg.out).map_err(|source| SoakError::Write {
        path: cfg.out.clone(),
        source,
    })?;
    if exit_code == 1 || cfg.knobs.keep_trace {
        if has_trace {
            write_atomic(&cfg.out.join("trace.txt"), &trace)?;
        }
        if let Some(report) = &report {
            write_atomic(&cfg.out.join("report.txt"), &text)?;
            write_atomic(&cfg.out.join("report.json"), report.to_json().as_bytes())?;
        }
    }
    let pretty = serde_json::to_string_pretty(&summary).unwrap_or_default();
    write_atomic(&cfg.out.join("summary.json"), pretty.as_bytes())?;
    // The recorder's handles keep the instance's trace_marker open; close
    // them before removing the instance.
    drop(fwd);
    drop(senders);
    drop(rumem);
    drop(recorder);
    drop(instance);
    Ok(Outcome {
        exit_code,
        summary,
        finding_kinds,
        finding_verdicts,
        recorder_violation,
        leaked_frames: leaked,
        out: cfg.out.clone(),
    })
}

/// Removes `xskdbg-soak-<pid>-<n>` ftrace instances whose process is gone.
fn remove_stale_instances() {
    if let Ok(fs) = xskdbg_tracefs::TraceFs::find() {
        remove_stale_instances_in(&fs, |pid| Path::new(&format!("/proc/{pid}")).exists());
    }
}

/// Removes from `fs` the soak instances of processes that `alive` says are
/// gone (through the tracefs seam, so it is tested on the fake); returns
/// their names.
fn remove_stale_instances_in(
    fs: &xskdbg_tracefs::TraceFs,
    alive: impl Fn(u32) -> bool,
) -> Vec<String> {
    let mut removed = Vec::new();
    for name in fs.instance_names().unwrap_or_default() {
        let pid = name
            .strip_prefix("xskdbg-soak-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) && fs.remove_instance(&name).is_ok() {
            removed.push(name);
        }
    }
    removed
}

#[cfg(test)]
mod stale_instance_tests {
    use std::sync::Arc;

    use xskdbg_tracefs::fake::FakeSys;
    use xskdbg_tracefs::TraceFs;

    #[test]
    fn only_soak_instances_of_dead_processes_are_removed() {
        let fs = TraceFs::at_with(Arc::new(FakeSys::new("/t")), "/t").unwrap();
        for n in [
            "xskdbg-soak-100-0",
            "xskdbg-soak-100-1",
            "xskdbg-soak-200-0",
            "xskdbg-soak-x-0",
            "xskdbg-rec-100",
        ] {
            fs.create_instance(n).unwrap().keep();
        }
        let removed = super::remove_stale_instances_in(&fs, |pid| pid == 200);
        assert_eq!(removed, ["xskdbg-soak-100-0", "xskdbg-soak-100-1"]);
        assert_eq!(
            fs.instance_names().unwrap(),
            ["xskdbg-rec-100", "xskdbg-soak-200-0", "xskdbg-soak-x-0"]
        );
    }
}

/// A kernel receive line of the trace (the probes' `krx`): its CPU, and
/// whether it found its own slot already published (tracepoint backend,
/// native or zero-copy mode: another CPU's flush published it; see
/// [`xskdbg_analyzer::published_before_redirect`]). `None` for other lines.
fn kernel_rx(line: &[u8]) -> Option<(u32, bool)> {
    match xskdbg_analyzer::parse::parse_line(0, line) {
        // A drained record's CPU is its own, not the drainer's.
        xskdbg_analyzer::Line::Event(ev) => match &xskdbg_analyzer::drained::as_recorded(&ev).op {
            xskdbg_analyzer::Op::Kernel(op @ xskdbg_analyzer::parse::KernelOp::Rx { .. }) => {
                Some((
                    xskdbg_analyzer::drained::as_recorded(&ev).cpu,
                    xskdbg_analyzer::published_before_redirect(op).is_some(),
                ))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Writes `data` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), SoakError> {
    let err = |source| SoakError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(data).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_sharing_a_queue_are_paced_the_others_not() {
        // --queues 1 --traffic-cpus 0,1: both feed queue 0.
        assert_eq!(traffic_gap(&[0, 1], 1), Some(SHARED_QUEUE_GAP));
        // One generator per queue: full speed.
        assert_eq!(traffic_gap(&[0, 1], 2), None);
        assert_eq!(traffic_gap(&[3], 1), None);
        // CPUs 0 and 2 both feed queue 0 of two.
        assert_eq!(traffic_gap(&[0, 1, 2], 2), Some(SHARED_QUEUE_GAP));
    }

    /// Whether `line` (a whole trace line, or a `krx` body given a line
    /// head) is a receive that found its slot already published.
    fn published_before_redirect(line: &[u8]) -> bool {
        let whole = if line.starts_with(b"xskdbg:1") {
            [
                b"  t-1 [000] ..... 1.000000: bpf_trace_printk: ".as_slice(),
                line,
            ]
            .concat()
        } else {
            line.to_vec()
        };
        kernel_rx(&whole).is_some_and(|(_, early)| early)
    }

    #[test]
    fn a_slot_published_before_its_redirect_returned() {
        // Real lines of the eval kernel (tracepoint backend).
        let early = b"xskdbg-133 [001] .Ns3. 13.352313: bpf_trace_printk: xskdbg:1 krx xs=ff1afedac138f800 sk=1001:1267:0 a=f6100 len=80 slot=ec kpool=ff1afedac23c5300 prod=ed fcons=ed mode=drv";
        let normal = b"xskdbg-132 [000] ..s3. 13.351582: bpf_trace_printk: xskdbg:1 krx xs=ff1afedac138f800 sk=1001:1267:0 a=f5900 len=5ea slot=eb kpool=ff1afedac23c5300 prod=eb fcons=ec mode=drv";
        assert!(published_before_redirect(early));
        assert!(!published_before_redirect(normal));
        // Generic XDP flushes before the tracepoint: never counted.
        let skb = b"xskdbg:1 krx xs=1 sk=1:2:0 a=100 len=40 slot=4 prod=5 mode=skb";
        assert!(!published_before_redirect(skb));
        // fentry's krx has no mode= (and is printed before reserving).
        let fentry = b"xskdbg:1 krx xs=1 sk=1:2:0 a=100 len=40 slot=4 kpool=9 prod=5 fcons=5";
        assert!(!published_before_redirect(fentry));
        // Counters wrap.
        let wrap = b"xskdbg:1 krx xs=1 a=100 len=40 slot=ffffffff prod=1 mode=drv";
        assert!(published_before_redirect(wrap));
        let behind = b"xskdbg:1 krx xs=1 a=100 len=40 slot=1 prod=ffffffff mode=drv";
        assert!(!published_before_redirect(behind));
        assert!(!published_before_redirect(
            b"xskdbg:1 krx slot=zz prod=1 mode=drv"
        ));
    }

    #[test]
    fn the_cpu_column_of_ftrace_lines() {
        let cpu = |l: &[u8]| kernel_rx(l).map(|(c, _)| c);
        let l =
            b"  ksoftirqd/0-14  [000] ..s11  20.927526: bpf_trace_printk: xskdbg:1 krx xs=1 a=100";
        assert_eq!(cpu(l), Some(0));
        let l =
            b" flowtrackd-p9zw-209120 [012] d.s.. 1.0: bpf_trace_printk: xskdbg:1 krx xs=1 a=100";
        assert_eq!(cpu(l), Some(12));
        assert_eq!(cpu(b"no cpu here"), None);
        assert_eq!(cpu(b"[x]"), None);
        assert_eq!(
            cpu(b"kworker[x]-7 [001] .... 2.5: bpf_trace_printk: xskdbg:1 krx xs=1 a=100"),
            Some(1)
        );
    }
}
