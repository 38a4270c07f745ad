//! No allocation on the hot path after setup: a counting global allocator
//! around every ring call, for the null, memory and trace_marker sinks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::path::Path;
use std::sync::Arc;

use xskdbg_recorder::tracefs::{RawWriter, Sys, TraceFs};
use xskdbg_recorder::{
    Policy, PoolConfig, Recorder, RecorderConfig, SinkConfig, SockConfig, SockKey, UmemConfig,
    XdpDesc,
};

struct Counting;

thread_local! {
    // Count only the test thread's allocations (the harness has its own threads).
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only adds a thread-local counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs() -> u64 {
    COUNT.with(Cell::get)
}

/// A tracefs whose trace_marker is /dev/null: the recorder's marker path
/// (one write(2) per line) without needing root.
#[derive(Debug)]
struct DevNullFs;

#[derive(Debug)]
struct DevNull(std::fs::File);

impl RawWriter for DevNull {
    fn write_once(&self, data: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        (&self.0).write(data)
    }
}

impl Sys for DevNullFs {
    fn read(&self, _: &Path) -> io::Result<Vec<u8>> {
        Ok(b"1\n".to_vec())
    }
    fn write(&self, _: &Path, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn open_writer(&self, _: &Path) -> io::Result<Box<dyn RawWriter>> {
        Ok(Box::new(DevNull(
            std::fs::OpenOptions::new().write(true).open("/dev/null")?,
        )))
    }
    fn mkdir(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn rmdir(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
    fn exists(&self, _: &Path) -> bool {
        true
    }
}

fn hot_loop_allocations(sink: SinkConfig) -> u64 {
    let rec = Recorder::new(RecorderConfig::new(sink).policy(Policy::Log)).unwrap();
    let u = rec.umem(UmemConfig::aligned(4096, 2048)).unwrap();
    let key = SockKey::new(1, 5, 1);
    let p = u.pool(PoolConfig::new(key)).unwrap();
    let s = p.socket(SockConfig::new(key).label("ingress q:1")).unwrap();
    let frames: Vec<u64> = (0..256u64).map(|i| i * 2048).collect();
    let descs: Vec<XdpDesc> = frames.iter().map(|&a| XdpDesc::new(a + 256, 60)).collect();
    let cycle = || {
        for (f, d) in frames.chunks(32).zip(descs.chunks(32)) {
            u.hold(f);
            p.fill(f);
            s.rx(d);
            s.tx(d);
            p.comp(f);
            u.free(f);
        }
    };
    // Warm-up: per-thread ids and buffers.
    cycle();
    let before = allocs();
    for _ in 0..100 {
        cycle();
    }
    let n = allocs() - before;
    assert_eq!(rec.violations(), 0);
    n
}

#[test]
fn null_sink_hot_path_does_not_allocate() {
    assert_eq!(hot_loop_allocations(SinkConfig::Null), 0);
}

#[test]
fn memory_sink_hot_path_does_not_allocate() {
    assert_eq!(hot_loop_allocations(SinkConfig::Memory { events: 1024 }), 0);
}

#[test]
fn trace_marker_sink_hot_path_does_not_allocate() {
    let fs = TraceFs::at_with(Arc::new(DevNullFs), "/devnull").unwrap();
    assert_eq!(hot_loop_allocations(SinkConfig::Buffer(fs.top())), 0);
}

#[test]
fn the_counter_does_count() {
    // Guards against a counter that never moves.
    let before = allocs();
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(64));
    drop(std::hint::black_box(v));
    assert!(allocs() > before);
}
