//! Hot-path cost of the recorder, per descriptor.
//!
//! - `null/*`: state machine + FIFO with the null sink (target ≤ 10 ns/desc).
//! - `marker/*`: the trace_marker sink of a real ftrace instance (root),
//!   batches of 32 (one write per batch, target ≤ 50 ns/desc) side by side
//!   with one write per descriptor (the seed story's approach), and the raw
//!   cost of one trace_marker write.
//!
//! Run: `cargo bench -p xskdbg-recorder --bench hotpath`; numbers go to
//! docs/PERF.md ("Recorder").

use std::hint::black_box;
use std::time::Duration;

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

fn null_sink(c: &mut Criterion) {
    let r = rig(SinkConfig::Null);
    let mut g = c.benchmark_group("null");
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("fill+rx/batch32", |b| b.iter(|| fill_rx_batched(&r)));
    g.bench_function("fill+rx/per-desc", |b| b.iter(|| fill_rx_single(&r)));
    g.throughput(Throughput::Elements(6 * BATCH as u64));
    g.bench_function("full-cycle/batch32", |b| b.iter(|| full_cycle(&r)));
    g.finish();
    assert_eq!(r.rec.violations(), 0);
}

fn marker_sink(c: &mut Criterion) {
    let name = format!("xskdbg-bench-{}", std::process::id());
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
        let mut g = c.benchmark_group("marker");
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

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = null_sink, marker_sink
}
criterion_main!(benches);
