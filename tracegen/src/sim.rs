//! The simulated forwarder: rings, NAPI sections, application cycles, and
//! the bugs each [`Scenario`] injects.
//!
//! Ground truth lives in plain queues (FILL, the kernel free list, RX slots,
//! COMPLETION, the application's free lists); every move of a frame writes
//! the entry the recorder or the probes would have written. A bug is armed
//! once 60% of the run is behind (after every CPU's buffer started), fires
//! at the next chance, and records the expected finding with the line it
//! happened on.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::rc::Rc;

use crate::emit::{put_dec, put_hex, Emitter, Task};
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
/// Most frames per fill/comp line (keeps lines far below 4000 bytes).
const LINE_MAX: usize = 64;
const NAPI_BUDGET: u64 = 64;
/// The value the application writes back into consumed RX slots.
pub(crate) const POISON: u64 = 0xdead_beef_dead_beef;
/// Marks a free-list entry that came from RX (not COMPLETION), for the
/// free-form `RX -> FILL` / `COMP -> FILL` wording.
const FROM_RX: u64 = 1 << 63;
/// Fraction of the run after which the bug fires.
const ARM_AT: f64 = 0.6;

const APP_FLAGS: &[u8; 5] = b".....";
const SYSCALL_FLAGS: &[u8; 5] = b"...1.";
const SOFTIRQ_FLAGS: [&[u8; 5]; 3] = [b"..s1.", b"d.s1.", b"..s2."];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct SockStats {
    rx_dropped: u64,
    rx_full: u64,
    fill_empty: u64,
}

struct Sock {
    // Rc: cloned for every line written (cheap), so closures writing the
    // line do not borrow the simulator.
    key: Rc<str>,
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
                    key: format!("{ns:x}:5:{q:x}").into(),
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

    fn mark_event(&self) -> &'static str {
        "tracing_mark_write"
    }

    fn softirq_flags(&mut self) -> &'static [u8; 5] {
        SOFTIRQ_FLAGS[(self.rng.next() % 3) as usize]
    }

    /// Declarations the recorder writes at start-up and the probes' header.
    fn declare(&mut self) -> Result<(), GenError> {
        if !self.project() {
            return Ok(());
        }
        let ev = self.mark_event();
        let poison = self.poison;
        self.put(0, TaskRef::Main, APP_FLAGS, ev, Op::Umem, None, 0, |b| {
            b.extend_from_slice(b"xskdbg:1 umem umem=1 size=");
            put_hex(b, NFRAMES * CHUNK);
            b.extend_from_slice(b" chunk=");
            put_hex(b, CHUNK);
            b.extend_from_slice(b" mode=aligned headroom=0");
            if poison {
                b.extend_from_slice(b" poison=");
                put_hex(b, POISON);
            }
        })?;
        for i in 0..self.socks.len() {
            let (key, label, pid) = (
                self.socks[i].key.clone(),
                self.socks[i].label.clone(),
                self.pools[i].id,
            );
            self.put(0, TaskRef::Main, APP_FLAGS, ev, Op::Pool, Some(i), 0, |b| {
                b.extend_from_slice(b"xskdbg:1 pool pool=");
                put_hex(b, pid);
                b.extend_from_slice(b" umem=1 sk=");
                b.extend_from_slice(key.as_bytes());
            })?;
            self.put(0, TaskRef::Main, APP_FLAGS, ev, Op::Sock, Some(i), 0, |b| {
                b.extend_from_slice(b"xskdbg:1 sock sk=");
                b.extend_from_slice(key.as_bytes());
                b.extend_from_slice(b" pool=");
                put_hex(b, pid);
                b.extend_from_slice(b" umem=1 fd=");
                put_hex(b, 5 + i as u64);
                b.extend_from_slice(b" label=");
                b.extend_from_slice(label.as_bytes());
            })?;
        }
        self.put(
            0,
            TaskRef::Main,
            SYSCALL_FLAGS,
            "bpf_trace_printk",
            Op::Probe,
            None,
            0,
            |b| {
                b.extend_from_slice(
                    b"xskdbg:1 probe backend=kprobe kernel=6.18.0 flush=exact rxslot=1 tx=1 comp=1",
                );
            },
        )?;
        Ok(())
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

    /// Starts a NAPI section on a socket that has none, on a CPU that runs
    /// no other section. Sections move between CPUs now and then (never
    /// overlapping for one socket: that is the kernel-race bug).
    fn napi_start(&mut self) {
        let n = self.socks.len() as u64;
        let s = (self.rng.next() % n) as usize;
        if self.active.iter().any(|a| a.sock == s) {
            return;
        }
        // Mostly the queue's home CPU; now and then another one (the
        // scheduler moved the softirq), as in the seed story.
        let cpu = if self.rng.chance(1, 30) {
            self.rng.range(0, u64::from(self.cfg.cpus) - 1) as u16
        } else {
            self.socks[s].napi_cpu
        };
        if self.active.iter().any(|a| a.cpu == cpu) {
            return;
        }
        let left = self.rng.range(1, 24);
        let task = (self.rng.next() % 3) as usize;
        self.active.push(Napi {
            sock: s,
            cpu,
            task,
            left,
            work: 0,
        });
    }

    fn napi_step(&mut self, i: usize) -> Result<(), GenError> {
        let (s, cpu, task) = (self.active[i].sock, self.active[i].cpu, self.active[i].task);
        if self.active[i].left == 0 {
            let work = self.active[i].work;
            self.active.swap_remove(i);
            if work > 0 {
                self.kflush(s, cpu, task)?;
            }
            return self.kpoll(s, cpu, task, work);
        }
        self.active[i].left -= 1;
        match self.kernel_rx(s, cpu, task, true)? {
            RxOutcome::Received => self.active[i].work += 1,
            RxOutcome::Dropped => {}
            RxOutcome::NoFrame => self.active[i].left = 0,
        }
        Ok(())
    }

    /// Takes a frame for a packet the way xp_alloc does: free list first.
    fn take_frame(&mut self, p: usize) -> Option<(u64, bool)> {
        if self.pools[p].free_list.len() >= 2 {
            // Older outstanding frames sit below: this one overtakes them.
            self.recycled_reorders += 1;
        }
        if let Some(f) = self.pools[p].free_list.pop() {
            return Some((f, true));
        }
        self.pools[p].fill.pop_front().map(|f| (f, false))
    }

    /// One received packet: reserve an RX slot (`krx`) and, if `write`,
    /// write it (`krxdone`).
    fn kernel_rx(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
        write: bool,
    ) -> Result<RxOutcome, GenError> {
        let p = self.socks[s].pool;
        let sk = &self.socks[s];
        if sk.cached_prod - sk.cons >= RX_SIZE {
            // __xsk_rcv_zc: RX full. The packet's buffer was allocated from
            // FILL when the driver refilled its ring, before this; it goes
            // to the free list (LIFO) and later packets reuse it ahead of
            // FILL order.
            let Some(base) = self.pools[p]
                .fill
                .pop_front()
                .or_else(|| self.pools[p].free_list.pop())
            else {
                self.socks[s].stats.fill_empty += 1;
                return Ok(RxOutcome::NoFrame);
            };
            self.socks[s].stats.rx_full += 1;
            self.socks[s].stats.rx_dropped += 1;
            self.pools[p].free_list.push(base);
            return Ok(RxOutcome::Dropped);
        }
        let Some((base, from_free)) = self.take_frame(p) else {
            self.socks[s].stats.fill_empty += 1;
            return Ok(RxOutcome::NoFrame);
        };
        if from_free {
            self.free_list_reuses += 1;
        }
        let addr = base + HEADROOM;
        let len = self.rng.range(0x42, 0x5ea);
        let slot = self.socks[s].cached_prod;
        self.socks[s].cached_prod += 1;
        let flags = self.softirq_flags();
        let line = self.krx(s, cpu, task, flags, addr, len, slot)?;
        if self.armed && self.cfg.scenario == Scenario::KernelDup && self.dup_frame.is_none() {
            // The bug: the buffer is also released to the free list while
            // it sits on RX, so the next packet reuses it.
            self.pools[p].free_list.push(base);
            self.dup_frame = Some(base);
        } else if from_free && self.dup_frame == Some(base) && !self.fired {
            self.fired = true;
            self.armed = false;
            let ts = self.e.last_ts_text();
            let key = self.socks[s].key.to_string();
            self.findings.push(ExpectedFinding {
                kind: "duplicate_in_flight".into(),
                accept_kinds: vec!["invalid_transition".into(), "fifo_order".into()],
                verdict: "kernel".into(),
                addr: hex(addr),
                frame: Some(hex(base)),
                socket: Some(key),
                line,
                ts: Some(ts),
                cpus: vec![cpu],
                r#match: "finding".into(),
                note: "the kernel put a frame on RX a second time while the first copy was \
                       still on RX or in the application's hands; the application had put \
                       it on FILL once"
                    .into(),
            });
        }
        if write {
            self.socks[s].slots[(slot % RX_SIZE) as usize] = (addr, len);
            self.krxdone(s, cpu, task, flags, slot)?;
        }
        Ok(RxOutcome::Received)
    }

    #[allow(clippy::too_many_arguments)]
    fn krx(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
        flags: &'static [u8; 5],
        addr: u64,
        len: u64,
        slot: u64,
    ) -> Result<Option<u64>, GenError> {
        let xs = self.socks[s].xs;
        let kpool = self.pools[self.socks[s].pool].kpool;
        let tr = TaskRef::Kernel(cpu, task);
        if self.project() {
            let key = self.socks[s].key.clone();
            self.put(
                cpu,
                tr,
                flags,
                "bpf_trace_printk",
                Op::Krx,
                Some(s),
                1,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 krx xs=");
                    put_hex(b, xs);
                    b.extend_from_slice(b" sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" a=");
                    put_hex(b, addr);
                    b.extend_from_slice(b" len=");
                    put_hex(b, len);
                    b.extend_from_slice(b" slot=");
                    put_hex(b, slot);
                },
            )
        } else {
            self.put(
                cpu,
                tr,
                flags,
                "__xsk_rcv_zc_L7",
                Op::Krx,
                Some(s),
                1,
                |b| {
                    b.extend_from_slice(b"(__xsk_rcv_zc+0x9b/0x250) addr=0x");
                    put_hex(b, addr);
                    b.extend_from_slice(b" len=0x");
                    put_hex(b, len);
                    b.extend_from_slice(b" xs=0x");
                    put_hex(b, xs);
                    b.extend_from_slice(b" fq=0x");
                    put_hex(b, kpool + 0x380);
                },
            )
        }
    }

    fn krxdone(
        &mut self,
        s: usize,
        cpu: u16,
        task: usize,
        flags: &'static [u8; 5],
        slot: u64,
    ) -> Result<(), GenError> {
        if !self.project() {
            return Ok(());
        }
        let xs = self.socks[s].xs;
        self.put(
            cpu,
            TaskRef::Kernel(cpu, task),
            flags,
            "bpf_trace_printk",
            Op::Krxdone,
            Some(s),
            0,
            |b| {
                b.extend_from_slice(b"xskdbg:1 krxdone xs=");
                put_hex(b, xs);
                b.extend_from_slice(b" slot=");
                put_hex(b, slot);
            },
        )?;
        Ok(())
    }

    /// xsk_flush: publish cached_prod.
    fn kflush(&mut self, s: usize, cpu: u16, task: usize) -> Result<Option<u64>, GenError> {
        let sk = &mut self.socks[s];
        sk.prod = sk.cached_prod;
        let (xs, prod, key) = (sk.xs, sk.prod, sk.key.clone());
        let flags = self.softirq_flags();
        let tr = TaskRef::Kernel(cpu, task);
        if self.project() {
            self.put(
                cpu,
                tr,
                flags,
                "bpf_trace_printk",
                Op::Kflush,
                Some(s),
                0,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 kflush xs=");
                    put_hex(b, xs);
                    b.extend_from_slice(b" sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" prod=");
                    put_hex(b, prod);
                },
            )
        } else {
            self.put(cpu, tr, flags, "xsk_flush", Op::Kflush, Some(s), 0, |b| {
                b.extend_from_slice(b"(__xsk_map_flush+0x4e/0x180) xs=0x");
                put_hex(b, xs);
            })
        }
    }

    fn kpoll(&mut self, s: usize, cpu: u16, task: usize, work: u64) -> Result<(), GenError> {
        let (napi, dev) = (self.socks[s].napi_id, self.socks[s].dev);
        let flags = self.softirq_flags();
        let tr = TaskRef::Kernel(cpu, task);
        if self.project() {
            self.put(
                cpu,
                tr,
                flags,
                "bpf_trace_printk",
                Op::Kpoll,
                None,
                0,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 kpoll napi=");
                    put_hex(b, napi);
                    b.extend_from_slice(b" dev=");
                    b.extend_from_slice(dev.as_bytes());
                    b.extend_from_slice(b" work=");
                    put_hex(b, work);
                    b.extend_from_slice(b" budget=");
                    put_hex(b, NAPI_BUDGET);
                },
            )?;
        } else {
            // The native napi:napi_poll tracepoint (hashed pointer).
            let hashed = 0x9d3a_b5e1 ^ napi.wrapping_mul(0x2545_f491);
            self.put(cpu, tr, flags, "napi_poll", Op::Kpoll, None, 0, |b| {
                b.extend_from_slice(b"napi poll on napi struct ");
                let mut h = Vec::new();
                put_hex(&mut h, hashed & 0xffff_ffff_ffff);
                for _ in h.len()..16 {
                    b.push(b'0');
                }
                b.extend_from_slice(&h);
                b.extend_from_slice(b" for device ");
                b.extend_from_slice(dev.as_bytes());
                b.extend_from_slice(b" work ");
                put_dec(b, work);
                b.extend_from_slice(b" budget ");
                put_dec(b, NAPI_BUDGET);
            })?;
        }
        Ok(())
    }

    /// One application loop iteration for socket `s` of thread `t`:
    /// statistics, RX, forward to the peer's TX, completions, refill.
    fn app_cycle(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        self.report_stats(t, s)?;
        if self.socks[s].stall > 0 {
            self.socks[s].stall -= 1;
        } else if self.rng.chance(1, 100) {
            // A slow iteration (page fault, preemption): RX backs up.
            self.socks[s].stall = self.rng.range(20, 120) as u32;
        } else {
            let mut descs = std::mem::take(&mut self.scratch);
            descs.clear();
            let rx_line = self.app_rx(t, s, &mut descs)?;
            let mut leaked = None;
            if self.armed && self.cfg.scenario == Scenario::AppLeak && !descs.is_empty() {
                leaked = Some(descs[0]);
            }
            let mut fwd = Vec::new();
            let mut freed = Vec::new();
            for &(a, len) in &descs {
                if Some((a, len)) == leaked {
                    continue;
                }
                if self.rng.chance(7, 10) {
                    fwd.push((a, len));
                } else {
                    self.threads[t].free.push_back((a & !(CHUNK - 1)) | FROM_RX);
                    freed.push(a);
                }
            }
            if let Some((a, _)) = leaked {
                self.fire(
                    "frame_leak",
                    &[],
                    "application",
                    a,
                    Some(a & !(CHUNK - 1)),
                    Some(s),
                    rx_line,
                    vec![self.threads[t].cpu],
                    "the application received this frame and never put it on FILL or TX nor \
                     freed it; every other frame keeps cycling",
                );
            }
            self.free_line(t, &freed)?;
            self.scratch = descs;
            if !fwd.is_empty() {
                self.app_tx(t, self.socks[s].peer, fwd)?;
            }
        }
        for side in 0..2 {
            let ps = self.threads[t].socks[side];
            self.app_comp(t, ps)?;
            self.fill(t, ps)?;
        }
        Ok(())
    }

    fn report_stats(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        let sk = &self.socks[s];
        if sk.stats == sk.reported || !self.project() {
            return Ok(());
        }
        let (st, key, cpu) = (sk.stats, sk.key.clone(), self.threads[t].cpu);
        self.socks[s].reported = st;
        self.put(
            cpu,
            TaskRef::Thread(t),
            APP_FLAGS,
            "tracing_mark_write",
            Op::Stats,
            Some(s),
            0,
            |b| {
                b.extend_from_slice(b"xskdbg:1 stats sk=");
                b.extend_from_slice(key.as_bytes());
                b.extend_from_slice(b" rx_dropped=");
                put_hex(b, st.rx_dropped);
                b.extend_from_slice(b" rx_invalid=0 tx_invalid=0 rx_full=");
                put_hex(b, st.rx_full);
                b.extend_from_slice(b" fill_empty=");
                put_hex(b, st.fill_empty);
                b.extend_from_slice(b" tx_empty=0");
            },
        )?;
        Ok(())
    }

    /// Consumes what the kernel published on RX; returns the `rx` line.
    fn app_rx(
        &mut self,
        t: usize,
        s: usize,
        descs: &mut Vec<(u64, u64)>,
    ) -> Result<Option<u64>, GenError> {
        let sk = &mut self.socks[s];
        let n = (sk.prod - sk.cons).min(BATCH as u64);
        if n == 0 {
            return Ok(None);
        }
        let idx = sk.cons;
        for i in 0..n {
            let slot = &mut sk.slots[((idx + i) % RX_SIZE) as usize];
            descs.push(*slot);
            if self.poison {
                slot.0 = POISON;
            }
        }
        sk.cons += n;
        self.rx_line(t, s, idx, descs)
    }

    fn rx_line(
        &mut self,
        t: usize,
        s: usize,
        idx: u64,
        descs: &[(u64, u64)],
    ) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let (key, label, pool) = (
            self.socks[s].key.clone(),
            self.socks[s].label.clone(),
            self.pools[self.socks[s].pool].id,
        );
        if self.project() {
            self.put(
                cpu,
                TaskRef::Thread(t),
                APP_FLAGS,
                "tracing_mark_write",
                Op::Rx,
                Some(s),
                descs.len() as u64,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 rx sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" pool=");
                    put_hex(b, pool);
                    b.extend_from_slice(b" idx=");
                    put_hex(b, idx);
                    b.extend_from_slice(b" n=");
                    put_hex(b, descs.len() as u64);
                    b.extend_from_slice(b" d=");
                    put_descs(b, descs);
                },
            )
        } else {
            let mut first = None;
            for &(a, _) in descs {
                let l = self.put(
                    cpu,
                    TaskRef::Thread(t),
                    APP_FLAGS,
                    "tracing_mark_write",
                    Op::Rx,
                    Some(s),
                    1,
                    |b| {
                        b.extend_from_slice(label.as_bytes());
                        b.extend_from_slice(b" 0x");
                        put_hex(b, a);
                        b.extend_from_slice(b" FILL -> RX");
                    },
                )?;
                first = first.or(l);
            }
            Ok(first)
        }
    }

    /// Puts frames on socket `s`'s TX; the kernel sends and completes them
    /// in the same `sendto` (copy mode).
    fn app_tx(&mut self, t: usize, s: usize, mut descs: Vec<(u64, u64)>) -> Result<(), GenError> {
        let cpu = self.threads[t].cpu;
        let p = self.socks[s].pool;
        let mut bug = None;
        if self.armed && self.cfg.scenario == Scenario::AppFillTx {
            // A frame the application already gave to the kernel on FILL.
            let own = self.socks[self.threads[t].socks[0]].pool;
            if let Some(&f) = self.pools[own].fill.back() {
                let d = (f + HEADROOM, 0x42);
                descs.push(d);
                bug = Some(d);
            }
        }
        let (key, label, xs) = (
            self.socks[s].key.clone(),
            self.socks[s].label.clone(),
            self.socks[s].xs,
        );
        let idx = self.socks[s].tx_idx;
        self.socks[s].tx_idx += descs.len() as u64;
        let line = if self.project() {
            self.put(
                cpu,
                TaskRef::Thread(t),
                APP_FLAGS,
                "tracing_mark_write",
                Op::Tx,
                Some(s),
                descs.len() as u64,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 tx sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" idx=");
                    put_hex(b, idx);
                    b.extend_from_slice(b" n=");
                    put_hex(b, descs.len() as u64);
                    b.extend_from_slice(b" d=");
                    put_descs(b, &descs);
                },
            )?
        } else {
            let mut line = None;
            for &(a, _) in &descs {
                self.put(
                    cpu,
                    TaskRef::Thread(t),
                    APP_FLAGS,
                    "tracing_mark_write",
                    Op::Context,
                    None,
                    0,
                    |b| {
                        b.extend_from_slice(b"0x");
                        put_hex(b, a);
                        b.extend_from_slice(b" egress_tx_queue forward");
                    },
                )?;
                let l = self.put(
                    cpu,
                    TaskRef::Thread(t),
                    APP_FLAGS,
                    "tracing_mark_write",
                    Op::Tx,
                    Some(s),
                    1,
                    |b| {
                        b.extend_from_slice(label.as_bytes());
                        b.extend_from_slice(b" 0x");
                        put_hex(b, a);
                        b.extend_from_slice(b" RX -> TX");
                    },
                )?;
                if Some(a) == bug.map(|d| d.0) {
                    line = l;
                }
            }
            line
        };
        if let Some((a, _)) = bug {
            self.fire(
                "invalid_transition",
                &["duplicate_in_flight"],
                "application",
                a,
                Some(a & !(CHUNK - 1)),
                Some(s),
                line,
                vec![cpu],
                "the application put on TX a frame it had given to the kernel on FILL and \
                 that the kernel had not received into yet (FILL -> TX)",
            );
        }
        // The kernel transmits (xp_raw_get_data in the sendto path).
        for &(a, len) in &descs {
            if self.project() {
                self.put(
                    cpu,
                    TaskRef::Thread(t),
                    SYSCALL_FLAGS,
                    "bpf_trace_printk",
                    Op::Ktx,
                    Some(s),
                    1,
                    |b| {
                        b.extend_from_slice(b"xskdbg:1 ktx xs=");
                        put_hex(b, xs);
                        b.extend_from_slice(b" sk=");
                        b.extend_from_slice(key.as_bytes());
                        b.extend_from_slice(b" a=");
                        put_hex(b, a);
                        b.extend_from_slice(b" len=");
                        put_hex(b, len);
                    },
                )?;
            } else {
                self.put(
                    cpu,
                    TaskRef::Thread(t),
                    SYSCALL_FLAGS,
                    "xp_raw_get_data",
                    Op::Ktx,
                    Some(s),
                    1,
                    |b| {
                        b.extend_from_slice(b"(xp_raw_get_data+0x0/0x60) addr=0x");
                        put_hex(b, a);
                    },
                )?;
            }
        }
        if self.armed && self.cfg.scenario == Scenario::AppReuseBeforeComplete {
            // The bug: refill a transmitted frame before its completion.
            let (a, _) = descs[0];
            let own = self.threads[t].socks[0];
            let op = self.socks[own].pool;
            let line = self.fill_line(t, own, &[a & !(CHUNK - 1)])?;
            self.pools[op].fill.push_back(a & !(CHUNK - 1));
            self.fire(
                "invalid_transition",
                &["duplicate_in_flight"],
                "application",
                a & !(CHUNK - 1),
                Some(a & !(CHUNK - 1)),
                Some(own),
                line,
                vec![cpu],
                "the application put on FILL a frame it had just put on TX, before the \
                 kernel completed it (TX -> FILL while still on TX)",
            );
        }
        let kpool = self.pools[p].kpool;
        if self.project() {
            self.put(
                cpu,
                TaskRef::Thread(t),
                SYSCALL_FLAGS,
                "bpf_trace_printk",
                Op::Kcomp,
                Some(s),
                descs.len() as u64,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 kcomp xs=");
                    put_hex(b, xs);
                    b.extend_from_slice(b" sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" kpool=");
                    put_hex(b, kpool);
                    b.extend_from_slice(b" n=");
                    put_hex(b, descs.len() as u64);
                    b.extend_from_slice(b" a=");
                    put_addrs(b, descs.iter().map(|d| d.0));
                },
            )?;
        }
        self.pools[p].comp.extend(descs.iter().map(|d| d.0));
        Ok(())
    }

    /// Consumes socket `s`'s pool's COMPLETION ring.
    fn app_comp(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        let p = self.socks[s].pool;
        while !self.pools[p].comp.is_empty() {
            let n = self.pools[p].comp.len().min(LINE_MAX);
            let batch: Vec<u64> = self.pools[p].comp.drain(..n).collect();
            let line = self.comp_line(t, s, &batch)?;
            for &a in &batch {
                self.threads[t].free.push_back(a & !(CHUNK - 1));
            }
            self.free_line(t, &batch)?;
            if self.armed && self.cfg.scenario == Scenario::AppDoubleComplete {
                // Refill these frames now, then read the same completion
                // entries again (consumer index not advanced).
                for &a in batch.iter().rev() {
                    let f = a & !(CHUNK - 1);
                    if let Some(pos) = self.threads[t].free.iter().rposition(|&x| x == f) {
                        self.threads[t].free.remove(pos);
                    }
                    self.threads[t].free.push_front(f);
                }
                let own = self.threads[t].socks[0];
                let need = batch
                    .len()
                    .max(FILL_TARGET.saturating_sub(self.pools[self.socks[own].pool].fill.len()));
                self.fill_n(t, own, need)?;
                let again = self.comp_line(t, s, &batch)?;
                for &a in &batch {
                    self.threads[t].free.push_back(a & !(CHUNK - 1));
                }
                let _ = line;
                let a = batch[0];
                self.fire(
                    "invalid_transition",
                    &["duplicate_in_flight"],
                    "application",
                    a,
                    Some(a & !(CHUNK - 1)),
                    Some(s),
                    again,
                    vec![self.threads[t].cpu],
                    "the application consumed the same completion entries twice; the frames \
                     were already back on FILL and the kernel had not completed them again \
                     (FILL -> COMP)",
                );
                self.free_line(t, &batch)?;
            }
        }
        Ok(())
    }

    /// The recorder traces the application's own free list (`free`), so
    /// a frame the application holds and never returns is visible.
    fn free_line(&mut self, t: usize, addrs: &[u64]) -> Result<(), GenError> {
        if addrs.is_empty() || !self.project() {
            return Ok(());
        }
        let cpu = self.threads[t].cpu;
        self.put(
            cpu,
            TaskRef::Thread(t),
            APP_FLAGS,
            "tracing_mark_write",
            Op::Free,
            None,
            addrs.len() as u64,
            |b| {
                b.extend_from_slice(b"xskdbg:1 free n=");
                put_hex(b, addrs.len() as u64);
                b.extend_from_slice(b" a=");
                put_addrs(b, addrs.iter().copied());
            },
        )?;
        Ok(())
    }

    fn comp_line(&mut self, t: usize, s: usize, addrs: &[u64]) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let (key, label, pool) = (
            self.socks[s].key.clone(),
            self.socks[s].label.clone(),
            self.pools[self.socks[s].pool].id,
        );
        if self.project() {
            self.put(
                cpu,
                TaskRef::Thread(t),
                APP_FLAGS,
                "tracing_mark_write",
                Op::Comp,
                Some(s),
                addrs.len() as u64,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 comp pool=");
                    put_hex(b, pool);
                    b.extend_from_slice(b" sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" n=");
                    put_hex(b, addrs.len() as u64);
                    b.extend_from_slice(b" a=");
                    put_addrs(b, addrs.iter().copied());
                },
            )
        } else {
            let mut first = None;
            for &a in addrs {
                let l = self.put(
                    cpu,
                    TaskRef::Thread(t),
                    APP_FLAGS,
                    "tracing_mark_write",
                    Op::Comp,
                    Some(s),
                    1,
                    |b| {
                        b.extend_from_slice(label.as_bytes());
                        b.extend_from_slice(b" 0x");
                        put_hex(b, a);
                        b.extend_from_slice(b" TX -> COMP");
                    },
                )?;
                first = first.or(l);
            }
            Ok(first)
        }
    }

    /// Tops socket `s`'s pool's FILL ring up to [`FILL_TARGET`].
    fn fill(&mut self, t: usize, s: usize) -> Result<(), GenError> {
        let p = self.socks[s].pool;
        // Refill in batches, like a real loop, not one frame at a time.
        let have = self.pools[p].fill.len();
        if have + BATCH / 2 > FILL_TARGET {
            return Ok(());
        }
        self.fill_n(t, s, FILL_TARGET - have)
    }

    fn fill_n(&mut self, t: usize, s: usize, mut need: usize) -> Result<(), GenError> {
        let p = self.socks[s].pool;
        while need > 0 && !self.threads[t].free.is_empty() {
            let n = need.min(LINE_MAX).min(self.threads[t].free.len());
            need -= n;
            let mut batch: Vec<u64> = self.threads[t].free.drain(..n).collect();
            let mut bug = None;
            if self.armed && self.cfg.scenario == Scenario::AppDoubleFill {
                if let Some(&f) = self.pools[p].fill.get(self.pools[p].fill.len() / 2) {
                    batch.push(f);
                    bug = Some(f);
                }
            }
            let line = self.fill_line(t, s, &batch)?;
            self.pools[p]
                .fill
                .extend(batch.iter().map(|&f| f & !FROM_RX));
            if let Some(f) = bug {
                self.fire(
                    "duplicate_in_flight",
                    &["invalid_transition"],
                    "application",
                    f,
                    Some(f),
                    Some(s),
                    line,
                    vec![self.threads[t].cpu],
                    "the application put on FILL a frame that was already on FILL (the kernel \
                     had not received into it yet)",
                );
            }
        }
        Ok(())
    }

    fn fill_line(&mut self, t: usize, s: usize, frames: &[u64]) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let (key, label, pool) = (
            self.socks[s].key.clone(),
            self.socks[s].label.clone(),
            self.pools[self.socks[s].pool].id,
        );
        if self.project() {
            self.put(
                cpu,
                TaskRef::Thread(t),
                APP_FLAGS,
                "tracing_mark_write",
                Op::Fill,
                Some(s),
                frames.len() as u64,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 fill pool=");
                    put_hex(b, pool);
                    b.extend_from_slice(b" sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" n=");
                    put_hex(b, frames.len() as u64);
                    b.extend_from_slice(b" a=");
                    put_addrs(b, frames.iter().map(|&f| f & !FROM_RX));
                },
            )
        } else {
            let mut first = None;
            for &f in frames {
                if self.step == 0 {
                    // The start-up fill is not a transition the free-form
                    // recorder logs.
                    break;
                }
                let from: &[u8] = if f & FROM_RX != 0 {
                    b" RX -> FILL"
                } else {
                    b" COMP -> FILL"
                };
                let l = self.put(
                    cpu,
                    TaskRef::Thread(t),
                    APP_FLAGS,
                    "tracing_mark_write",
                    Op::Fill,
                    Some(s),
                    1,
                    |b| {
                        b.extend_from_slice(label.as_bytes());
                        b.extend_from_slice(b" 0x");
                        put_hex(b, (f & !FROM_RX) + HEADROOM);
                        b.extend_from_slice(from);
                    },
                )?;
                first = first.or(l);
            }
            Ok(first)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        kind: &str,
        accept: &[&str],
        verdict: &str,
        addr: u64,
        frame: Option<u64>,
        sock: Option<usize>,
        line: Option<u64>,
        cpus: Vec<u16>,
        note: &str,
    ) {
        self.armed = false;
        self.fired = true;
        let ts = self.e.last_ts_text();
        self.findings.push(ExpectedFinding {
            kind: kind.into(),
            accept_kinds: accept.iter().map(|s| s.to_string()).collect(),
            verdict: verdict.into(),
            addr: hex(addr),
            frame: frame.map(hex),
            socket: sock.map(|s| self.socks[s].key.to_string()),
            line,
            ts: Some(ts),
            cpus,
            r#match: "finding".into(),
            note: note.into(),
        });
    }

    /// The veth race of the seed story, on socket 0: CPU A receives and,
    /// after napi_complete_done, flushes; meanwhile CPU B's NAPI reserved a
    /// slot it has not written yet. The application reads that slot (the
    /// poison value, or the stale descriptor) and the recorder freezes
    /// tracing.
    fn race(&mut self) -> Result<(), GenError> {
        let s = 0;
        // Let any section on this socket finish first.
        while let Some(i) = self.active.iter().position(|a| a.sock == s) {
            self.napi_step(i)?;
        }
        // The application catches up so the race slot is the next it reads.
        let t = self.socks[s].thread;
        let mut descs = Vec::new();
        while self.socks[s].prod > self.socks[s].cons {
            descs.clear();
            self.app_rx(t, s, &mut descs)?;
            for &(a, _) in &descs {
                self.threads[t].free.push_back(a & !(CHUNK - 1));
            }
        }
        let p = self.socks[s].pool;
        if self.pools[p].fill.len() < 4 {
            self.fill(t, s)?;
        }
        self.pools[p].free_list.clear();
        let cpus = u64::from(self.cfg.cpus);
        let a_cpu = self.socks[s].napi_cpu;
        let b_cpu = ((u64::from(a_cpu) + 1 + self.rng.next() % (cpus - 1)) % cpus) as u16;
        let first_idx = self.socks[s].cons;
        for _ in 0..2 {
            self.kernel_rx(s, a_cpu, 0, true)?;
        }
        // CPU B: reserve only (cached_prod++), the write comes later.
        let Some((base, _)) = self.take_frame(p) else {
            return Err(GenError::Config("no frame on FILL for the race".into()));
        };
        let b_addr = base + HEADROOM;
        let slot = self.socks[s].cached_prod;
        self.socks[s].cached_prod += 1;
        let flags = self.softirq_flags();
        let b_line = self.krx(s, b_cpu, 2, flags, b_addr, 0x42, slot)?;
        let b_ts = self.e.last_ts_text();
        // CPU A: flush after napi_complete_done: publishes B's slot too.
        self.kflush(s, a_cpu, 0)?;
        // The application reads the three published slots.
        descs.clear();
        let sk = &mut self.socks[s];
        for i in first_idx..sk.prod {
            descs.push(sk.slots[(i % RX_SIZE) as usize]);
        }
        sk.cons = sk.prod;
        let bad = *descs.last().unwrap_or(&(POISON, 0));
        let key = self.socks[s].key.to_string();
        let app_cpu = self.threads[t].cpu;
        // The entry where the application got the bad descriptor: its `rx`
        // line, or in the free-form vocabulary the recorder's violation line.
        let (bad_line, rx_ts) = if self.project() {
            let rx = self.rx_line(t, s, first_idx, &descs)?;
            let ts = self.e.last_ts_text();
            self.violation(t, s, bad.0, base)?;
            (rx, ts)
        } else {
            let good = &descs[..descs.len().saturating_sub(1)];
            self.rx_line(t, s, first_idx, good)?;
            let v = self.violation(t, s, bad.0, base)?;
            (v, self.e.last_ts_text())
        };
        self.findings.push(ExpectedFinding {
            kind: "concurrent_producer".into(),
            accept_kinds: vec![],
            verdict: "kernel".into(),
            addr: hex(b_addr),
            frame: Some(hex(base)),
            socket: Some(key.clone()),
            line: b_line,
            ts: Some(b_ts),
            cpus: vec![a_cpu.min(b_cpu), a_cpu.max(b_cpu)],
            r#match: "finding".into(),
            note: format!(
                "CPU {b_cpu} reserved RX slot {slot:#x} inside CPU {a_cpu}'s producer section; \
                 CPU {a_cpu}'s flush then published the slot before it was written"
            ),
        });
        let (kind, accept, note) = if self.poison {
            (
                "poisoned_descriptor",
                vec![],
                "the application read the poison value from the slot the flush exposed",
            )
        } else {
            (
                "rx_mismatch",
                vec!["fifo_order".to_string(), "duplicate_in_flight".to_string()],
                "the application read the slot's previous descriptor, not the frame the \
                 kernel reserved it for",
            )
        };
        let line = bad_line;
        self.findings.push(ExpectedFinding {
            kind: kind.into(),
            accept_kinds: accept,
            verdict: "kernel".into(),
            addr: hex(bad.0),
            frame: if self.poison {
                None
            } else {
                Some(hex(bad.0 & !(CHUNK - 1)))
            },
            socket: Some(key),
            line,
            ts: Some(rx_ts),
            cpus: vec![app_cpu],
            r#match: "finding_or_also".into(),
            note: note.into(),
        });
        self.fired = true;
        self.armed = false;
        // The recorder stopped tracing right after its violation line.
        self.frozen = true;
        Ok(())
    }

    /// The recorder's in-process violation line; returns its line number.
    fn violation(
        &mut self,
        t: usize,
        s: usize,
        bad: u64,
        expected: u64,
    ) -> Result<Option<u64>, GenError> {
        let cpu = self.threads[t].cpu;
        let p = self.socks[s].pool;
        let (key, label, pool) = (
            self.socks[s].key.clone(),
            self.socks[s].label.clone(),
            self.pools[p].id,
        );
        let remaining: Vec<u64> = self.pools[p].fill.iter().copied().collect();
        let shown = remaining.len().min(40);
        let kind: &[u8] = if bad == POISON {
            b"poisoned_descriptor"
        } else {
            b"fifo_order"
        };
        if self.project() {
            self.put(
                cpu,
                TaskRef::Thread(t),
                APP_FLAGS,
                "tracing_mark_write",
                Op::Violation,
                Some(s),
                1,
                |b| {
                    b.extend_from_slice(b"xskdbg:1 violation kind=");
                    b.extend_from_slice(kind);
                    b.extend_from_slice(b" sk=");
                    b.extend_from_slice(key.as_bytes());
                    b.extend_from_slice(b" pool=");
                    put_hex(b, pool);
                    b.extend_from_slice(b" a=");
                    put_hex(b, bad);
                    b.extend_from_slice(b" frame=");
                    put_hex(b, bad & !(CHUNK - 1));
                    b.extend_from_slice(b" from=fill to=rx expected=");
                    put_hex(b, expected);
                    if shown > 0 {
                        b.extend_from_slice(b" remaining=");
                        put_addrs(b, remaining[..shown].iter().copied());
                    }
                    if remaining.len() > shown {
                        b.extend_from_slice(b" more=");
                        put_hex(b, (remaining.len() - shown) as u64);
                    }
                },
            )
        } else {
            let poison = bad == POISON;
            self.put(
                cpu,
                TaskRef::Thread(t),
                APP_FLAGS,
                "tracing_mark_write",
                Op::Violation,
                Some(s),
                1,
                |b| {
                    b.extend_from_slice(label.as_bytes());
                    b.extend_from_slice(b" 0x");
                    put_hex(b, bad);
                    b.extend_from_slice(b" FILL -> RX: expected 0x");
                    put_hex(b, expected + HEADROOM);
                    // Both spellings occur in the seed traces.
                    b.extend_from_slice(if poison {
                        b"remaining: ["
                    } else {
                        b" remaining: ["
                    });
                    for &f in &remaining[..shown] {
                        put_hex(b, f + HEADROOM);
                        b.extend_from_slice(b", ");
                    }
                    b.extend_from_slice("…,".as_bytes());
                    b.push(b']');
                },
            )
        }
    }
}

#[derive(Clone, Copy)]
enum TaskRef {
    Main,
    Thread(usize),
    Kernel(u16, usize),
}

enum RxOutcome {
    Received,
    Dropped,
    NoFrame,
}

fn put_descs(b: &mut Vec<u8>, descs: &[(u64, u64)]) {
    for (i, &(a, len)) in descs.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        put_hex(b, a);
        b.push(b':');
        put_hex(b, len);
    }
}

fn put_addrs(b: &mut Vec<u8>, addrs: impl Iterator<Item = u64>) {
    for (i, a) in addrs.enumerate() {
        if i > 0 {
            b.push(b',');
        }
        put_hex(b, a);
    }
}
