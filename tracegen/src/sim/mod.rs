//! The simulated forwarder: rings, NAPI sections, application cycles, and
//! the bugs each [`Scenario`] injects.
//!
//! Ground truth lives in plain queues (FILL, the kernel free list, RX slots,
//! COMPLETION, the application's free lists); every move of a frame writes
//! the entry the recorder or the probes would have written. A bug is armed
//! once 60% of the run is behind (after every CPU's buffer started), fires
//! at the next chance, and records the expected finding with the line it
//! happened on.
//!
//! Modules, one job each: this one holds the world (sockets, pools,
//! threads, NAPI sections), the run loop and the expectation; `kernel` is
//! what the kernel does (NAPI receives into RX, the free list), `app` what
//! the forwarder does (RX, TX, COMPLETION, FILL), `bugs` the injected bugs
//! that need more than a changed move (the veth race, the expected
//! findings), and `lines` every entry they write, in both vocabularies
//! (project lines through `xskdbg_format`'s writer).

mod app;
mod bugs;
mod kernel;
mod lines;

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::rc::Rc;

use xskdbg_format::SockKey;

use crate::emit::{Emitter, Task};
use crate::rng::Rng;
use crate::{Clock, Config, Counts, Expect, ExpectedFinding, GenError, Op, Scenario, Vocab};

/// UMEM frame size (aligned mode), as in the seed traces (0x16ce900 is
/// chunk 0x16ce800 plus the 256-byte XDP headroom).
const CHUNK: u64 = 0x800;
/// XDP_PACKET_HEADROOM: the kernel writes packets this far into the chunk.
const HEADROOM: u64 = 0x100;
const NFRAMES: u64 = 16384;
/// RX ring entries (small, so a stalled application overflows it).
const RX_SIZE: u64 = 64;
/// FILL level the application keeps per pool.
const FILL_TARGET: usize = 96;
/// Most descriptors the application handles per ring per cycle.
const BATCH: usize = 32;
/// Most frames per fill/comp line (keeps lines far below the format's
/// 1000 bytes).
const FRAMES_PER_LINE: usize = 64;
const NAPI_BUDGET: u64 = 64;
/// The value the application writes back into consumed RX slots.
const POISON: u64 = xskdbg_format::DEFAULT_POISON;
/// Marks a free-list entry that came from RX (not COMPLETION), for the
/// free-form `RX -> FILL` / `COMP -> FILL` wording.
const FROM_RX: u64 = 1 << 63;
/// COMPLETION ring entries in the kernel-comp-overrun scenario (small, so
/// a slow application lets the kernel lap it soon).
const CQ_SIZE: usize = 64;
/// Entries the kernel writes over unread ones when it overruns it.
const CQ_OVERRUN: usize = 4;
/// Fraction of the run after which the bug fires.
const ARM_AT: f64 = 0.6;

const APP_FLAGS: &[u8; 5] = b".....";
const SYSCALL_FLAGS: &[u8; 5] = b"...1.";
const SOFTIRQ_FLAGS: [&[u8; 5]; 3] = [b"..s1.", b"d.s1.", b"..s2."];

/// The ftrace event of a `trace_marker` write (the recorder's lines).
const MARK: &str = "tracing_mark_write";
/// The ftrace event of a `bpf_trace_printk` (the probes' lines).
const PRINTK: &str = "bpf_trace_printk";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SockStats {
    rx_dropped: u64,
    rx_full: u64,
    fill_empty: u64,
}

struct Sock {
    key: SockKey,
    // Rc: cloned for every line written (cheap), so closures writing the
    // line do not borrow the simulator.
    label: Rc<str>,
    xs: u64,
    pool: usize,
    peer: usize,
    thread: usize,
    slots: Vec<(u64, u64)>,
    cached_prod: u64,
    prod: u64,
    cons: u64,
    tx_idx: u64,
    napi_cpu: u16,
    napi_id: u64,
    dev: &'static str,
    stats: SockStats,
    reported: SockStats,
    /// Application cycles left during which it does not read RX.
    stall: u32,
}

struct Pool {
    id: u64,
    kpool: u64,
    fill: VecDeque<u64>,
    /// The kernel's pool->free_list: LIFO, taken before FILL.
    free_list: Vec<u64>,
    comp: VecDeque<u64>,
}

struct Thread {
    cpu: u16,
    task: Task,
    free: VecDeque<u64>,
    socks: [usize; 2],
}

struct Napi {
    sock: usize,
    cpu: u16,
    task: usize,
    left: u64,
    work: u64,
}

struct Sim<'c, W: Write> {
    cfg: &'c Config,
    e: Emitter<W>,
    rng: Rng,
    now: u64,
    step: u64,
    socks: Vec<Sock>,
    pools: Vec<Pool>,
    threads: Vec<Thread>,
    /// Per CPU: tasks a softirq may interrupt (`<idle>`, ksoftirqd, iperf3).
    ktasks: Vec<[Task; 3]>,
    main_task: Task,
    active: Vec<Napi>,
    wrap_at: Vec<f64>,
    armed: bool,
    fired: bool,
    frozen: bool,
    poison: bool,
    /// kernel-dup: the frame the kernel pushed to its free list while it
    /// was also on RX.
    dup_frame: Option<u64>,
    /// kernel-comp-overrun: the pool whose COMPLETION ring the application
    /// stopped reading, waiting for the kernel to lap it.
    overrun_pool: Option<usize>,
    findings: Vec<ExpectedFinding>,
    free_list_reuses: u64,
    recycled_reorders: u64,
    scratch: Vec<(u64, u64)>,
}

/// Runs the simulation for `cfg`, writing to `w`. `header` holds the
/// `entries-in-buffer/entries-written` numbers (from a first run).
pub(crate) fn run<W: Write>(
    cfg: &Config,
    w: W,
    header: Option<(u64, u64)>,
) -> Result<Expect, GenError> {
    let wrapped = cfg.wrap.unwrap_or(cfg.scenario.wraps_by_default());
    let mut sim = Sim::new(cfg, w, wrapped);
    let (inbuf, written) = header.unwrap_or((0, 0));
    sim.e.header(inbuf, written, usize::from(cfg.cpus))?;
    sim.declare()?;
    sim.initial_fill()?;
    while !sim.done() {
        sim.one_step()?;
    }
    let Sim {
        e,
        socks,
        findings,
        free_list_reuses,
        recycled_reorders,
        fired,
        ..
    } = sim;
    let (_, mut counts, lines, _, complete_from) = e.finish()?;
    let keys: Vec<String> = socks.iter().map(|s| s.key.to_string()).collect();
    counts.finalize(&keys);
    if cfg.scenario != Scenario::Clean && !fired {
        return Err(GenError::Config(format!(
            "the run was too short for scenario {} to inject its bug; raise --steps or --size",
            cfg.scenario.name()
        )));
    }
    let mut e = expectation(
        cfg,
        wrapped,
        counts,
        lines,
        complete_from,
        findings,
        free_list_reuses,
        &socks,
    );
    e.recycled_reorders = recycled_reorders;
    Ok(e)
}

#[allow(clippy::too_many_arguments)]
fn expectation(
    cfg: &Config,
    wrapped: bool,
    counts: Counts,
    lines: u64,
    complete_from: Option<u64>,
    findings: Vec<ExpectedFinding>,
    free_list_reuses: u64,
    socks: &[Sock],
) -> Expect {
    let verdict = match findings.first() {
        None => "clean".to_string(),
        Some(f) => f.verdict.clone(),
    };
    Expect {
        schema_version: 1,
        scenario: cfg.scenario.name().to_string(),
        seed: cfg.seed,
        vocab: match cfg.vocab {
            Vocab::Project => "project",
            Vocab::Freeform => "freeform",
        }
        .to_string(),
        clock: match cfg.clock {
            Clock::Local => "local",
            Clock::Counter => "counter",
            Clock::X86Tsc => "x86-tsc",
        }
        .to_string(),
        exit_code: i32::from(!findings.is_empty()),
        verdict,
        findings,
        chunk_size: format!("{CHUNK:#x}"),
        wrapped,
        complete_from_ns: complete_from,
        free_list_reuses,
        recycled_reorders: 0,
        lines,
        bytes: 0,
        sockets: socks
            .iter()
            .map(|s| (s.key.to_string(), s.label.to_string()))
            .collect::<BTreeMap<_, _>>(),
        counts,
    }
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

impl<'c, W: Write> Sim<'c, W> {
    fn new(cfg: &'c Config, w: W, wrapped: bool) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let cpus = cfg.cpus;
        let busy = cpus - 1;
        let mut socks = Vec::new();
        let mut pools = Vec::new();
        let mut threads = Vec::new();
        for q in 0..cfg.queues {
            let t = usize::from(q);
            let letters: String = (0..4)
                .map(|_| char::from(b'a' + (rng.next() % 26) as u8))
                .collect();
            threads.push(Thread {
                cpu: 1 + q % busy,
                task: Task::new(&format!("xskfwd-{letters}"), 209_120 + u32::from(q) * 7),
                free: VecDeque::new(),
                socks: [2 * t, 2 * t + 1],
            });
            for (side, (ns, dev)) in [(1u64, "veth-out"), (2u64, "veth-in")]
                .into_iter()
                .enumerate()
            {
                let i = socks.len();
                let name = if side == 0 { "ingress" } else { "egress" };
                socks.push(Sock {
                    // Both devices have ifindex 5, in different namespaces:
                    // only the netns cookie tells them apart.
                    key: SockKey::new(ns, 5, u32::from(q)),
                    label: format!("{name} q:{q}").into(),
                    xs: 0xffff_9b2c_4a1e_8000 + (i as u64) * 0x1400,
                    pool: i,
                    peer: if side == 0 { i + 1 } else { i - 1 },
                    thread: t,
                    slots: vec![(0, 0); RX_SIZE as usize],
                    cached_prod: 0,
                    prod: 0,
                    cons: 0,
                    tx_idx: 0,
                    napi_cpu: 1 + ((i as u16) + 1) % busy,
                    napi_id: 0x2001 + i as u64,
                    dev,
                    stats: SockStats::default(),
                    reported: SockStats::default(),
                    stall: 0,
                });
                pools.push(Pool {
                    id: i as u64 + 1,
                    kpool: 0xffff_9b2c_03d6_6000 + (i as u64) * 0x400,
                    fill: VecDeque::new(),
                    free_list: Vec::new(),
                    comp: VecDeque::new(),
                });
            }
        }
        let ktasks = (0..cpus)
            .map(|c| {
                [
                    Task::new("<idle>", 0),
                    Task::new(&format!("ksoftirqd/{c}"), 15 + u32::from(c) * 8),
                    Task::new("iperf3", 1217 + u32::from(c)),
                ]
            })
            .collect();
        // Buffers wrap later on quieter CPUs: CPU 0 never, the last CPU
        // (the busiest) starts a quarter into the run.
        let wrap_at = (0..cpus)
            .map(|c| match c {
                _ if !wrapped => 0.0,
                0 => 0.0,
                c if c == cpus - 1 => 0.25,
                c => 0.02 * f64::from(c),
            })
            .collect();
        let poison = cfg.scenario != Scenario::KernelRaceStale;
        let mut sim = Sim {
            cfg,
            e: Emitter::new(w, cfg.clock, usize::from(cpus), wrapped),
            rng,
            now: 657_026_000,
            step: 0,
            socks,
            pools,
            threads,
            ktasks,
            main_task: Task::new("xskfwd", 209_100),
            active: Vec::new(),
            wrap_at,
            armed: false,
            fired: false,
            frozen: false,
            poison,
            dup_frame: None,
            overrun_pool: None,
            findings: Vec::new(),
            free_list_reuses: 0,
            recycled_reorders: 0,
            scratch: Vec::new(),
        };
        if sim.poison {
            for s in &mut sim.socks {
                for slot in &mut s.slots {
                    slot.0 = POISON;
                }
            }
        }
        sim.update_wrap();
        sim
    }

    fn progress(&self) -> f64 {
        match self.cfg.size {
            Some(size) => self.e.body_bytes as f64 / size.max(1) as f64,
            None => self.step as f64 / self.cfg.steps as f64,
        }
    }

    fn done(&self) -> bool {
        self.frozen
            || match self.cfg.size {
                Some(size) => self.e.body_bytes >= size,
                None => self.step >= self.cfg.steps,
            }
    }

    fn update_wrap(&mut self) {
        let p = self.progress();
        for (c, &at) in self.wrap_at.iter().enumerate() {
            if p >= at {
                self.e.started[c] = true;
            }
        }
        if !self.fired && !self.armed && self.cfg.scenario != Scenario::Clean && p >= ARM_AT {
            self.armed = true;
        }
    }

    fn tick(&mut self) -> u64 {
        self.now += self.rng.range(300, 3000);
        self.now
    }

    /// Writes one entry. `body` writes the text after `EVENT: `.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        cpu: u16,
        task: TaskRef,
        flags: &[u8; 5],
        event: &str,
        op: Op,
        sock: Option<usize>,
        descs: u64,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Option<u64>, GenError> {
        let ts = self.tick();
        let kernel = matches!(
            op,
            Op::Probe | Op::Krx | Op::Krxdone | Op::Kflush | Op::Ktx | Op::Kcomp | Op::Kpoll
        );
        if kernel && !self.cfg.probes {
            // A recorder-only trace: the kernel still moves the frames.
            return Ok(None);
        }
        let task = match task {
            TaskRef::Main => &self.main_task,
            TaskRef::Thread(t) => &self.threads[t].task,
            TaskRef::Kernel(c, k) => &self.ktasks[usize::from(c)][k],
        };
        Ok(self
            .e
            .entry(cpu, task, flags, ts, event, op, sock, descs, body)?)
    }

    fn project(&self) -> bool {
        self.cfg.vocab == Vocab::Project
    }

    fn softirq_flags(&mut self) -> &'static [u8; 5] {
        SOFTIRQ_FLAGS[(self.rng.next() % 3) as usize]
    }

    /// Shuffles the UMEM's frames over the threads and fills every pool.
    fn initial_fill(&mut self) -> Result<(), GenError> {
        let mut frames: Vec<u64> = (0..NFRAMES).map(|i| i * CHUNK).collect();
        for i in (1..frames.len()).rev() {
            let j = (self.rng.next() % (i as u64 + 1)) as usize;
            frames.swap(i, j);
        }
        let nt = self.threads.len();
        for (i, f) in frames.into_iter().enumerate() {
            self.threads[i % nt].free.push_back(f);
        }
        for t in 0..nt {
            for side in 0..2 {
                let s = self.threads[t].socks[side];
                self.fill(t, s)?;
            }
        }
        Ok(())
    }

    fn one_step(&mut self) -> Result<(), GenError> {
        self.step += 1;
        self.update_wrap();
        if self.armed
            && matches!(
                self.cfg.scenario,
                Scenario::KernelRace | Scenario::KernelRaceStale
            )
        {
            return self.race();
        }
        let r = self.rng.next() % 100;
        if r < 45 && !self.active.is_empty() {
            let i = (self.rng.next() % self.active.len() as u64) as usize;
            self.napi_step(i)
        } else if r < 60 && self.active.len() < 2 {
            self.napi_start();
            Ok(())
        } else {
            let t = (self.rng.next() % self.threads.len() as u64) as usize;
            let s = self.threads[t].socks[(self.rng.next() % 2) as usize];
            self.app_cycle(t, s)
        }
    }
}

#[derive(Clone, Copy)]
/// Which task an entry is written by.
enum TaskRef {
    Main,
    Thread(usize),
    Kernel(u16, usize),
}

/// What became of one packet the kernel tried to receive.
enum RxOutcome {
    Received,
    Dropped,
    NoFrame,
}
