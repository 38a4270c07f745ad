//! The drainer: kernel records from the probes' rings into the trace.
//!
//! With ring output (the default for the BPF backends) a probe formats
//! nothing at event time: it fills a binary [`Rec`] (stamped with
//! `bpf_ktime_get_ns()`, the instance's `mono` trace clock) in its CPU's
//! ring ([`Rings`]: per CPU, an array of records and a head the probes
//! advance, both memory-mapped here) and returns. One drainer thread per online CPU, pinned to it, wakes
//! every [`PERIOD`], renders that CPU's records as project lines (each with
//! its own `cpu=` and `t=`, read at event time, right after the op word) and
//! writes them with one `writev` into the instance's `trace_marker`, so
//! every line lands in the buffer of the CPU whose event it tells. Each drain
//! ends with a `kdrain` line: every record of that CPU stamped before its
//! `t=` is in the trace by then. The analyzer orders records by their own
//! stamps using those watermarks (`docs/TRACE-FORMAT.md` "Drained kernel
//! records").
//!
//! The freeze (`tracing_on` = 0, written by the application's recorder at
//! its first violation) is completed here: a drainer that finds the buffer
//! frozen drains what its ring holds, turns tracing on for the length of
//! one `writev`, writes the records and a `kdrain ... final=1` line, and
//! turns it off again; the recorder that froze writes nothing more, so
//! nothing else slips in. [`Drainer::finish`] does the same for the last
//! records when a session ends (`record`, `soak`), before the caller
//! freezes and reads the trace.
//!
//! [`render`] is the one place that spells a record as a line.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::libbpf_sys;
use libbpf_rs::{MapHandle, MapType, OpenObject};
use xskdbg_tracefs::Buffer;

/// Records in each CPU's ring; must equal `XSKDBG_SLOTS` in
/// `src/bpf/xskdbg.h`.
pub const SLOTS: u64 = 1 << 15;

/// How often a drainer empties its ring.
pub const PERIOD: Duration = Duration::from_millis(5);

/// An idle drainer still writes a `kdrain` line this often, so that the
/// analyzer's watermark moves on.
pub const IDLE_BEAT: Duration = Duration::from_millis(100);

/// A record stamped this long before a drain began is in the ring by then
/// (a probe stamps, reserves and commits with preemption off, in well under
/// a microsecond; the margin covers a host stealing the vCPU in between).
pub const SLACK_NS: u64 = 2_000_000;

mod render;
pub use render::*;
#[cfg(test)]
use render::{ROOM, W};

/// `CLOCK_MONOTONIC` now, the clock of `bpf_ktime_get_ns()` and of the
/// `mono` trace clock.
pub fn mono_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What the drainers did, for notes and tests.
#[derive(Debug, Default, Clone)]
pub struct DrainReport {
    /// Records written.
    pub records: u64,
    /// Records the rings refused (full) and the trace lacks.
    pub lost: u64,
    /// Drainers that ran pinned to their CPU.
    pub pinned: u32,
    /// Drainers in all.
    pub drainers: u32,
    /// A drainer found the buffer frozen and completed the freeze.
    pub completed_freeze: bool,
    /// Problems (a failed write, a refused pin), each once.
    pub problems: Vec<String>,
}

struct Shared {
    buffer: Buffer,
    /// One drainer at a time turns tracing back on to complete a freeze.
    toggle: Mutex<()>,
    stop: AtomicBool,
    report: Mutex<DrainReport>,
    /// Bytes of lines per ftrace entry ([`entry_bytes`]); drops to
    /// [`ENTRY_BYTES_OLD`] if the kernel cuts a write shorter.
    entry: AtomicUsize,
}

impl Shared {
    fn entry(&self) -> usize {
        self.entry.load(Ordering::Relaxed)
    }

    fn problem(&self, p: String) {
        if let Ok(mut r) = self.report.lock() {
            if !r.problems.contains(&p) {
                r.problems.push(p);
            }
        }
    }
}

/// The drainer threads of one attachment. [`Drainer::finish`] (or dropping)
/// writes what the rings still hold and stops them.
pub struct Drainer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Drainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drainer")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// The CPUs in `/sys/devices/system/cpu/online` (`0-3,6`).
fn online_cpus() -> Vec<u32> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    parse_cpu_list(s.trim())
}

/// A kernel CPU list (`0-3,6`).
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut v = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    v.extend(a..=b);
                }
            }
            None => v.extend(part.parse::<u32>().ok()),
        }
    }
    v
}

/// A shared mapping of a `BPF_F_MMAPABLE` array map, unmapped on drop.
struct Mapping {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access goes through
// atomics (positions) or reads of records the producer no longer writes.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(map: &MapHandle, len: usize, write: bool) -> io::Result<Mapping> {
        let prot = libc::PROT_READ | if write { libc::PROT_WRITE } else { 0 };
        // SAFETY: a fresh shared mapping of the map's fd; the kernel checks
        // the length against the map.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        std::ptr::NonNull::new(ptr.cast())
            .map(|ptr| Mapping { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned NULL"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped, once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Bytes of a CPU's positions (`struct xskdbg_pos`): the producer's cache
/// line (head, lost, busy), then the consumer's (tail).
const POS_BYTES: usize = 128;
const HEAD_AT: usize = 0;
const LOST_AT: usize = 8;
const TAIL_AT: usize = 64;

/// The per-CPU rings of one session, created once and given to every
/// object loaded (the function backends load two objects that share them):
/// `ring_recs`, [`SLOTS`] records per possible CPU, and `ring_pos`, each
/// CPU's head (records its probes committed), tail (records its drainer
/// read) and lost count. Plain arrays mapped into this process, not BPF
/// ring buffers: the probes fill a slot and move the head past it, where a
/// ring buffer costs two helper calls and a spinlock per record
/// (src/bpf/xskdbg.h).
pub struct Rings {
    pos: MapHandle,
    recs: MapHandle,
    pos_map: Mapping,
    recs_map: Mapping,
    cpus: usize,
}

/// Page-rounded length of `n` bytes.
fn pages(n: usize) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    n.div_ceil(page) * page
}

impl Rings {
    /// One ring per possible CPU, mapped.
    pub fn create() -> io::Result<Rings> {
        let cpus = libbpf_rs::num_possible_cpus().map_err(io::Error::other)?;
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            map_flags: libbpf_sys::BPF_F_MMAPABLE,
            ..Default::default()
        };
        let array = |name: &str, value: usize, n: usize| {
            MapHandle::create(MapType::Array, Some(name), 4, value as u32, n as u32, &opts)
                .map_err(|e| io::Error::other(format!("create map {name}: {e}")))
        };
        let pos = array("ring_pos", POS_BYTES, cpus)?;
        let recs = array("ring_recs", Rec::SIZE, cpus * SLOTS as usize)?;
        let pos_map = Mapping::new(&pos, pages(cpus * POS_BYTES), true)
            .map_err(|e| io::Error::other(format!("map ring_pos: {e}")))?;
        let recs_map = Mapping::new(&recs, pages(cpus * SLOTS as usize * Rec::SIZE), false)
            .map_err(|e| io::Error::other(format!("map ring_recs: {e}")))?;
        Ok(Rings {
            pos,
            recs,
            pos_map,
            recs_map,
            cpus,
        })
    }

    /// Number of rings (possible CPUs).
    pub fn len(&self) -> usize {
        self.cpus
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.cpus == 0
    }

    /// Makes `obj` (opened, not loaded) use these rings for its `ring_pos`
    /// and `ring_recs` maps.
    pub fn give(&self, obj: &mut OpenObject) -> libbpf_rs::Result<()> {
        for mut m in obj.maps_mut() {
            let name = m.name().to_string_lossy().into_owned();
            match name.as_str() {
                "ring_pos" => m.reuse_fd(self.pos.as_fd())?,
                "ring_recs" => m.reuse_fd(self.recs.as_fd())?,
                _ => {}
            }
        }
        Ok(())
    }

    /// A 64-bit field of CPU `cpu`'s positions.
    fn word(&self, cpu: usize, at: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(cpu < self.cpus);
        // SAFETY: inside the mapping (cpu < cpus), 8-aligned (the mapping
        // is page-aligned, POS_BYTES and `at` multiples of 8), and only
        // ever accessed atomically here.
        unsafe {
            &*self
                .pos_map
                .ptr
                .as_ptr()
                .add(cpu * POS_BYTES + at)
                .cast::<std::sync::atomic::AtomicU64>()
        }
    }

    /// Records CPU `cpu`'s ring refused so far.
    pub fn lost(&self, cpu: usize) -> u64 {
        self.word(cpu, LOST_AT).load(Ordering::Relaxed)
    }

    /// Calls `f` with every record CPU `cpu`'s probes committed since the
    /// last call, in order, then hands their slots back to the probes.
    /// Returns how many there were. One consumer per CPU.
    pub fn consume(&self, cpu: usize, mut f: impl FnMut(&[u8])) -> u64 {
        let head = self.word(cpu, HEAD_AT).load(Ordering::Acquire);
        let tail_w = self.word(cpu, TAIL_AT);
        let mut tail = tail_w.load(Ordering::Relaxed);
        let n = head.wrapping_sub(tail);
        let base = cpu * SLOTS as usize;
        while tail != head {
            let i = base + (tail % SLOTS) as usize;
            // SAFETY: inside the mapping (i < cpus * SLOTS); the probes do
            // not write this slot again before the tail passes it, which
            // the store below does only after `f` is done with it.
            let rec = unsafe {
                std::slice::from_raw_parts(self.recs_map.ptr.as_ptr().add(i * Rec::SIZE), Rec::SIZE)
            };
            f(rec);
            tail = tail.wrapping_add(1);
        }
        tail_w.store(tail, Ordering::Release);
        n
    }
}

impl Drainer {
    /// Starts one drainer per online CPU writing `rings` into `buffer`'s
    /// trace_marker. Each writes its first `kdrain` line before this
    /// returns, so every record the probes make later comes after one.
    pub fn start(rings: &Arc<Rings>, buffer: Buffer) -> io::Result<Drainer> {
        let shared = Arc::new(Shared {
            buffer,
            toggle: Mutex::new(()),
            stop: AtomicBool::new(false),
            report: Mutex::new(DrainReport::default()),
            entry: AtomicUsize::new(entry_bytes(&crate::sys::kernel_release())),
        });
        let mut cpus = online_cpus();
        cpus.retain(|&c| (c as usize) < rings.len());
        if cpus.is_empty() {
            cpus = (0..rings.len() as u32).collect();
        }
        let of = cpus.len() as u32;
        let mut threads = Vec::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
        for &cpu in &cpus {
            let rings_t = Arc::clone(rings);
            let shared_t = Arc::clone(&shared);
            let ready = ready_tx.clone();
            let h = std::thread::Builder::new()
                .name(format!("xskdbg-drain{cpu}"))
                .spawn(move || drain_cpu(cpu, of, &rings_t, &shared_t, ready))?;
            threads.push(h);
        }
        drop(ready_tx);
        let mut first_err = None;
        for r in ready_rx.iter().take(cpus.len()) {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        let d = Drainer { shared, threads };
        if let Some(e) = first_err {
            drop(d);
            return Err(e);
        }
        if let Ok(mut r) = d.shared.report.lock() {
            r.drainers = of;
        }
        Ok(d)
    }

    /// Writes what the rings hold (completing a freeze if the buffer is
    /// frozen), stops the drainers and says what they did.
    pub fn finish(&mut self) -> DrainReport {
        self.shared.stop.store(true, Ordering::Relaxed);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.shared
            .report
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for Drainer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: u32) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity on
    // the calling thread (pid 0) with a properly sized set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Bytes of one `trace_marker` write on kernels that cut a write at 1024
/// bytes (before 6.10; `/work/shared/KERNEL-NOTES.md`).
pub const ENTRY_BYTES_OLD: usize = 1000;

/// Bytes of one `trace_marker` write on 6.10+ kernels (cut at
/// `TRACE_MARKER_MAX_SIZE`, 4096, less the entry's header: 4054 bytes
/// written on 6.18).
pub const ENTRY_BYTES_NEW: usize = 3900;

/// How many bytes of lines one ftrace entry may carry on kernel `release`.
pub fn entry_bytes(release: &str) -> usize {
    match crate::sys::version_of(release) {
        Some(v) if v >= (6, 10) => ENTRY_BYTES_NEW,
        _ => ENTRY_BYTES_OLD,
    }
}

/// Lines waiting to be written, each ended by its newline.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Where each line ends (after its newline).
    ends: Vec<usize>,
}

impl Pending {
    fn end_line(&mut self) {
        self.bytes.push(b'\n');
        self.ends.push(self.bytes.len());
    }
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// The line after the last one of the entry that starts with line `first`:
/// whole lines up to `limit` bytes, at least one.
fn entry_end(p: &Pending, first: usize, limit: usize) -> usize {
    let s = if first == 0 { 0 } else { p.ends[first - 1] };
    let mut e = first + 1;
    while e < p.ends.len() && p.ends[e] - s <= limit {
        e += 1;
    }
    e
}

/// Writes every pending line, as many whole lines per ftrace entry as fit
/// in `limit` bytes: `writev` makes one `trace_marker` write per iovec, and
/// a write costs about as much as the lines it carries (0.5 us per entry,
/// 50 ns per line packed, on the 6.18 host), so one system call carries a
/// whole drain in a few entries. The lines after an entry's first are
/// printed without an ftrace header; each carries its own `cpu=` and `t=`,
/// which is all a reader needs (docs/TRACE-FORMAT.md). Returns how many
/// lines were written before an error (a cut entry counts its whole lines).
fn write_lines(marker: &File, p: &Pending, limit: usize) -> (usize, Option<io::Error>) {
    // (iovec, lines in it)
    let mut iov: Vec<libc::iovec> = Vec::with_capacity(64);
    let mut per: Vec<usize> = Vec::with_capacity(64);
    let mut line = 0;
    while line < p.ends.len() {
        iov.clear();
        per.clear();
        let first_line = line;
        while line < p.ends.len() && iov.len() < 1024 {
            let s = if line == 0 { 0 } else { p.ends[line - 1] };
            let e = entry_end(p, line, limit);
            iov.push(libc::iovec {
                iov_base: p.bytes[s..].as_ptr() as *mut libc::c_void,
                iov_len: p.ends[e - 1] - s,
            });
            per.push(e - line);
            line = e;
        }
        // SAFETY: every iovec points into `p.bytes`, alive for the call.
        let n = unsafe { libc::writev(marker.as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
        if n < 0 {
            return (first_line, Some(io::Error::last_os_error()));
        }
        let mut written = n as usize;
        let mut done = first_line;
        for (v, &k) in iov.iter().zip(&per) {
            if written >= v.iov_len {
                written -= v.iov_len;
                done += k;
                continue;
            }
            // Cut inside this entry: its whole lines are in the trace.
            let base = if done == 0 { 0 } else { p.ends[done - 1] };
            while done < line && p.ends[done] - base <= written {
                done += 1;
            }
            return (
                done,
                Some(io::Error::other(format!(
                    "short write to trace_marker ({} of {} bytes of an entry)",
                    written, v.iov_len
                ))),
            );
        }
    }
    (p.ends.len(), None)
}

/// [`write_lines`], dropping what was written. A kernel that cuts entries
/// shorter than [`entry_bytes`] expected gets entries of
/// [`ENTRY_BYTES_OLD`] from then on (said once), and the rest again.
fn write_pending(marker: &File, p: &mut Pending, shared: &Shared, cpu: u32) -> Option<io::Error> {
    let (done, err) = write_lines(marker, p, shared.entry());
    drop_lines(p, done);
    let e = err?;
    if e.kind() != io::ErrorKind::Other || shared.entry() <= ENTRY_BYTES_OLD {
        return Some(e);
    }
    shared.entry.store(ENTRY_BYTES_OLD, Ordering::Relaxed);
    shared.problem(format!(
        "drainer of CPU {cpu}: {e}: this kernel cuts trace_marker writes shorter than its version suggests; entries of {ENTRY_BYTES_OLD} bytes from now on (the cut line is in the trace)"
    ));
    let (done, err) = write_lines(marker, p, ENTRY_BYTES_OLD);
    drop_lines(p, done);
    err
}

/// Drops the first `n` lines of `p`.
fn drop_lines(p: &mut Pending, n: usize) {
    if n == 0 {
        return;
    }
    if n >= p.ends.len() {
        p.clear();
        return;
    }
    let cut = p.ends[n - 1];
    p.bytes.drain(..cut);
    p.ends.drain(..n);
    for e in &mut p.ends {
        *e -= cut;
    }
}

/// One CPU's drainer.
fn drain_cpu(
    cpu: u32,
    of: u32,
    rings: &Rings,
    shared: &Shared,
    ready: std::sync::mpsc::Sender<io::Result<()>>,
) {
    let pinned = pin(cpu);
    if let Err(e) = &pinned {
        shared.problem(format!(
            "drainer of CPU {cpu} not pinned ({e}): its lines land in another CPU's buffer; the analyzer places them by their cpu= field"
        ));
    }
    let marker = match std::fs::OpenOptions::new()
        .write(true)
        .open(shared.buffer.path("trace_marker"))
    {
        Ok(f) => f,
        Err(e) => {
            let _ = ready.send(Err(io::Error::other(format!(
                "open {}: {e}",
                shared.buffer.path("trace_marker").display()
            ))));
            return;
        }
    };
    // Read every drain: kept open (an open per read was a tenth of an idle
    // drainer's time).
    let on_file = std::fs::File::open(shared.buffer.path("tracing_on")).ok();
    let tracing_on = || match &on_file {
        Some(f) => {
            let mut b = [0u8; 4];
            // SAFETY: reading up to 4 bytes into a local buffer.
            let n = unsafe { libc::pread(f.as_raw_fd(), b.as_mut_ptr().cast(), b.len(), 0) };
            if n > 0 {
                b[0] != b'0'
            } else {
                shared.buffer.tracing_on().unwrap_or(true)
            }
        }
        None => shared.buffer.tracing_on().unwrap_or(true),
    };
    let ring = cpu as usize;
    let mut p = Pending::default();
    let mut memo = Memo::default();
    // The lines of the records in the ring; how many.
    let mut consume = |p: &mut Pending| {
        let mut n = 0;
        rings.consume(ring, |data| {
            if let Some(rec) = Rec::decode(data) {
                for r in rec.lines().iter().flatten() {
                    if render_with(&mut p.bytes, &mut memo, r) {
                        p.end_line();
                        n += 1;
                    }
                }
            }
        });
        n
    };
    // The first watermark, before any record can exist.
    {
        drain_line(&mut p.bytes, cpu, mono_now(), 0, 0, of, false);
        p.end_line();
        let (_, err) = write_lines(&marker, &p, shared.entry());
        p.clear();
        if let Some(e) = err {
            let _ = ready.send(Err(io::Error::other(format!(
                "write {}: {e}",
                shared.buffer.path("trace_marker").display()
            ))));
            return;
        }
    }
    if let Ok(mut r) = shared.report.lock() {
        r.pinned += u32::from(pinned.is_ok());
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    let mut last_beat = std::time::Instant::now();
    let mut records = 0u64;
    loop {
        let stopping = shared.stop.load(Ordering::Relaxed);
        if !stopping {
            std::thread::sleep(PERIOD);
        }
        let stopping = stopping || shared.stop.load(Ordering::Relaxed);
        // Every record stamped before `upto` was committed before this drain.
        let start = mono_now();
        let n = consume(&mut p);
        records += n;
        let frozen = !tracing_on();
        let fin = stopping || frozen;
        // An idle drainer writes a watermark now and then, not every period.
        if n == 0 && !fin && last_beat.elapsed() < IDLE_BEAT {
            continue;
        }
        last_beat = std::time::Instant::now();
        let upto = if fin {
            start
        } else {
            start.saturating_sub(SLACK_NS)
        };
        drain_line(&mut p.bytes, cpu, upto, n, rings.lost(ring), of, fin);
        p.end_line();
        if frozen {
            complete_freeze(&marker, &mut p, shared, cpu);
        } else {
            let err = write_pending(&marker, &mut p, shared, cpu);
            if err.is_some() && !tracing_on() {
                // Frozen while this drain was being written.
                complete_freeze(&marker, &mut p, shared, cpu);
            } else if let Some(e) = err {
                shared.problem(format!("drainer of CPU {cpu}: writing the trace: {e}"));
            }
        }
        p.clear();
        if fin {
            break;
        }
    }
    if let Ok(mut r) = shared.report.lock() {
        r.records += records;
        r.lost += rings.lost(ring);
    }
}

/// The buffer is frozen: write the drained lines while tracing is on for
/// the length of one `writev`, and freeze it again.
fn complete_freeze(marker: &File, p: &mut Pending, shared: &Shared, cpu: u32) {
    let Ok(_one) = shared.toggle.lock() else {
        return;
    };
    if let Err(e) = shared.buffer.set_tracing_on(true) {
        shared.problem(format!(
            "drainer of CPU {cpu}: could not reopen the frozen buffer: {e}"
        ));
        return;
    }
    let err = write_pending(marker, p, shared, cpu);
    let refreeze = shared.buffer.set_tracing_on(false);
    if let Some(e) = err {
        shared.problem(format!(
            "drainer of CPU {cpu}: writing after the freeze: {e}"
        ));
    }
    if let Err(e) = refreeze {
        shared.problem(format!(
            "drainer of CPU {cpu}: could not freeze the buffer again: {e}"
        ));
    }
    if let Ok(mut r) = shared.report.lock() {
        r.completed_freeze = true;
    }
}

#[cfg(test)]
mod tests;
