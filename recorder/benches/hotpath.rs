//! Hot-path cost of the recorder, per descriptor.
//!
//! - `null/*`: state machine + FIFO with the null sink (target ≤ 10 ns/desc).
//! - `memory/*`: the in-memory ring sink (formatting + copy, no system call).
//! - `marker/*`: the trace_marker sink of a real ftrace instance (root),
//!   batches of 32 (one write per batch, target ≤ 50 ns/desc) side by side
//!   with one write per descriptor (the seed story's approach), and the raw
//!   cost of one trace_marker write.
//!
//! Every benchmark runs twice: `wall/*` measures wall-clock time (criterion's
//! default) and `cpu/*` the benchmarking thread's CPU time (user + system,
//! `CLOCK_THREAD_CPUTIME_ID`), which a busy shared machine does not inflate
//! by preempting the benchmark.
//!
//! Run: `cargo bench -p xskdbg-recorder --bench hotpath`; numbers go to
//! docs/PERF.md ("Recorder").

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xskdbg_recorder::tracefs::TraceFs;
use xskdbg_recorder::{
    Pool, PoolConfig, Recorder, RecorderConfig, SinkConfig, Sock, SockConfig, SockKey, Umem,
    UmemConfig, XdpDesc,
};

const BATCH: usize = 32;

struct Rig {
    rec: Recorder,
    u: Umem,
    p: Pool,
    s: Sock,
    frames: Vec<u64>,
    descs: Vec<XdpDesc>,
}

fn rig(sink: SinkConfig) -> Rig {
    let rec = Recorder::new(RecorderConfig::new(sink)).expect("recorder");
    let u = rec.umem(UmemConfig::aligned(4096, 2048)).unwrap();
    let key = SockKey::new(1, 5, 1);
    let p = u.pool(PoolConfig::new(key)).unwrap();
    let s = p.socket(SockConfig::new(key).label("ingress q:1")).unwrap();
    // Frames spread over the UMEM like a real free list would hand them out.
    let frames: Vec<u64> = (0..BATCH as u64).map(|i| (i * 97 % 4096) * 2048).collect();
    let descs = frames.iter().map(|&a| XdpDesc::new(a + 256, 60)).collect();
    Rig {
        rec,
        u,
        p,
        s,
        frames,
        descs,
    }
}

/// FILL then RX of one batch: 2 × 32 descriptor checks.
fn fill_rx_batched(r: &Rig) {
    r.p.fill(black_box(&r.frames));
    r.s.rx(black_box(&r.descs));
}

/// The same, one call (and one line) per descriptor.
fn fill_rx_single(r: &Rig) {
    for i in 0..BATCH {
        r.p.fill(black_box(&r.frames[i..i + 1]));
        r.s.rx(black_box(&r.descs[i..i + 1]));
    }
}

/// Every ring and the free list: 6 × 32 descriptor checks.
fn full_cycle(r: &Rig) {
    r.u.hold(black_box(&r.frames));
    r.p.fill(black_box(&r.frames));
    r.s.rx(black_box(&r.descs));
    r.s.tx(black_box(&r.descs));
    r.p.comp(black_box(&r.frames));
    r.u.free(black_box(&r.frames));
}

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns"
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        if let Throughput::Elements(n) = t {
            for v in values {
                *v /= *n as f64;
            }
            "ns/desc"
        } else {
            "ns"
        }
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
}

fn null_sink<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let r = rig(SinkConfig::Null);
    let mut g = c.benchmark_group(format!("{clock}/null"));
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("fill+rx/batch32", |b| b.iter(|| fill_rx_batched(&r)));
    g.bench_function("fill+rx/per-desc", |b| b.iter(|| fill_rx_single(&r)));
    g.throughput(Throughput::Elements(6 * BATCH as u64));
    g.bench_function("full-cycle/batch32", |b| b.iter(|| full_cycle(&r)));
    g.finish();
    assert_eq!(r.rec.violations(), 0);
}

fn memory_sink<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let r = rig(SinkConfig::Memory { events: 4096 });
    let mut g = c.benchmark_group(format!("{clock}/memory"));
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("fill+rx/batch32", |b| b.iter(|| fill_rx_batched(&r)));
    g.finish();
    assert_eq!(r.rec.violations(), 0);
}

fn marker_sink<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let name = format!("xskdbg-bench-{}-{clock}", std::process::id());
    let inst = match TraceFs::find().and_then(|fs| fs.create_instance(&name)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("skipping trace_marker benchmarks: {e}");
            return;
        }
    };
    {
        let r = rig(SinkConfig::Buffer(inst.buffer()));
        let marker = inst.open_marker().unwrap();
        let line = b"xskdbg:1 rx sk=1:5:1 pool=1 idx=3c n=1 d=16ce900:4e\n";
        let mut g = c.benchmark_group(format!("{clock}/marker"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("raw-write", |b| {
            b.iter(|| marker.write(black_box(line)).unwrap())
        });
        g.throughput(Throughput::Elements(2 * BATCH as u64));
        g.bench_function("fill+rx/batch32", |b| b.iter(|| fill_rx_batched(&r)));
        g.bench_function("fill+rx/per-desc", |b| b.iter(|| fill_rx_single(&r)));
        g.throughput(Throughput::Elements(6 * BATCH as u64));
        g.bench_function("full-cycle/batch32", |b| b.iter(|| full_cycle(&r)));
        g.finish();
        assert_eq!(r.rec.violations(), 0);
        assert_eq!(r.rec.sink_errors(), 0, "{:?}", r.rec.last_sink_error());
        drop(marker);
    }
    inst.remove()
        .expect("remove the benchmark's ftrace instance");
}

fn wall(c: &mut Criterion<WallTime>) {
    null_sink(c, "wall");
    memory_sink(c, "wall");
    marker_sink(c, "wall");
}

fn cpu(c: &mut Criterion<ThreadCpu>) {
    null_sink(c, "cpu");
    memory_sink(c, "cpu");
    marker_sink(c, "cpu");
}

fn config<M: Measurement>(m: M) -> Criterion<M> {
    Criterion::default()
        .with_measurement(m)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = wall_clock;
    config = config(WallTime);
    targets = wall
}
criterion_group! {
    name = cpu_time;
    config = config(ThreadCpu);
    targets = cpu
}
criterion_main!(wall_clock, cpu_time);
