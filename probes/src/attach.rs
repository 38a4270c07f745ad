//! Attaching a backend: all or nothing. Every program is loaded and every
//! link made before [`attach`] returns; on any failure everything already
//! made is dropped again (links die with their fds, kprobe events are
//! removed, tracefs settings restored), so there is never a half-attached
//! state. [`Attached`] undoes everything on drop.

use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::Arc;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, Object, OpenObject};
use xskdbg_tracefs::{Buffer, TraceFs};

use crate::backend::{Backend, Caps, OPTIONAL_FUNCS};
use crate::btf::KernelBtf;
use crate::drain::{DrainReport, Drainer, Rings};
use crate::error::{ProbeError, Result};
use crate::filter::Filters;
use crate::kprobe_events::{self, ProbeDef, GROUP};
use crate::sys;

mod skel_tp {
    include!(concat!(env!("OUT_DIR"), "/tracepoint.skel.rs"));
}
mod skel_fe {
    include!(concat!(env!("OUT_DIR"), "/fentry.skel.rs"));
}
mod skel_kp {
    include!(concat!(env!("OUT_DIR"), "/kprobe.skel.rs"));
}

/// What to attach and where its output goes.
#[derive(Debug, Clone)]
pub struct Request {
    /// The backend (or `auto`).
    pub backend: Backend,
    /// Which sockets to record.
    pub filters: Filters,
    /// The ring buffer the events must reach (an instance or the top level).
    pub buffer: Buffer,
    /// Group for the `tracefs` backend's kprobe events (normally
    /// [`kprobe_events::GROUP`]; must start with it).
    pub group: String,
    /// Record kernel stack ids next to receive and flush lines (BPF
    /// backends); [`Attached::stack_lines`] symbolizes them.
    pub stacks: bool,
    /// How the BPF backends write their events (the `tracefs` backend's
    /// kprobe events are ftrace's own).
    pub output: Output,
}

/// How the BPF backends' events reach the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Binary records in per-CPU rings (memory-mapped arrays), formatted by
    /// the drainer threads ([`crate::drain`]): the cheap default.
    #[default]
    Ring,
    /// One `bpf_trace_printk` line per event, formatted at event time (the
    /// way before ring buffers; kept to measure against).
    Printk,
}

impl Output {
    /// The name used on the command line and in the `probe` line (`out=`).
    pub fn name(self) -> &'static str {
        match self {
            Output::Ring => "ring",
            Output::Printk => "printk",
        }
    }
}

impl std::str::FromStr for Output {
    type Err = ProbeError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ring" => Ok(Output::Ring),
            "printk" => Ok(Output::Printk),
            other => Err(ProbeError::Usage(format!(
                "unknown probe output {other:?}: use ring or printk"
            ))),
        }
    }
}

/// A loaded skeleton, kept for its maps and so its programs stay loaded.
pub(crate) enum Loaded {
    Tp(skel_tp::TracepointSkel<'static>),
    Fe(skel_fe::FentrySkel<'static>),
    Kp(skel_kp::KprobeSkel<'static>),
}

impl Loaded {
    pub(crate) fn object(&self) -> &Object {
        match self {
            Loaded::Tp(s) => s.object(),
            Loaded::Fe(s) => s.object(),
            Loaded::Kp(s) => s.object(),
        }
    }
}

/// Restores one tracefs control file on drop.
struct Restore {
    buffer: Buffer,
    rel: String,
    old: Vec<u8>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let old = String::from_utf8_lossy(&self.old);
        let v = old.trim();
        // An empty filter file reads "none"; writing "0" clears it.
        let v = if v == "none" { "0" } else { v };
        if let Err(e) = self.buffer.write_file(&self.rel, v.as_bytes()) {
            eprintln!("xskdbg-probes: restoring {}: {e}", self.rel);
        }
    }
}

fn set_restoring(buffer: &Buffer, rel: &str, value: &[u8]) -> Result<Restore> {
    let old = buffer.read_file(rel)?;
    buffer.write_file(rel, value)?;
    Ok(Restore {
        buffer: buffer.clone(),
        rel: rel.to_string(),
        old,
    })
}

/// kprobe events created by the `tracefs` backend; removed on drop.
struct KprobeEvents {
    tfs: TraceFs,
    names: Vec<String>, // group/name
}

impl KprobeEvents {
    fn add(&mut self, line: &str, ev: String) -> std::io::Result<()> {
        write_kprobe_events(&self.tfs, line)?;
        self.names.push(ev);
        Ok(())
    }
}

fn write_kprobe_events(tfs: &TraceFs, line: &str) -> std::io::Result<()> {
    // Opened without O_TRUNC: truncating kprobe_events would delete every
    // kprobe event on the system, not only ours.
    let w = tfs.sys().open_writer(&tfs.root().join("kprobe_events"))?;
    let n = w.write_once(line.as_bytes())?;
    if n != line.len() {
        return Err(std::io::Error::other(format!(
            "short write {n}/{}",
            line.len()
        )));
    }
    Ok(())
}

impl Drop for KprobeEvents {
    fn drop(&mut self) {
        for ev in self.names.drain(..).rev() {
            if let Err(e) = write_kprobe_events(&self.tfs, &format!("-:{ev}")) {
                eprintln!("xskdbg-probes: removing kprobe event {ev}: {e}");
            }
        }
    }
}

/// Attached probes. Dropping detaches everything and restores tracefs.
pub struct Attached {
    backend: Backend,
    header: String,
    notes: Vec<String>,
    // Field order is drop order: links before their objects, event enables
    // restored before kprobe events are removed (enabled events are busy).
    links: Vec<Link>,
    // After the links: no record is made once they are gone, so the last
    // drain holds every one.
    drainer: Option<Drainer>,
    loaded: Vec<Loaded>,
    restores: Vec<Restore>,
    kprobes: Option<KprobeEvents>,
    filters: Filters,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("backend", &self.backend)
            .field("links", &self.links.len())
            .field("notes", &self.notes)
            .finish()
    }
}

impl Attached {
    /// The backend that attached.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `xskdbg:1 probe ...` header line to write into the buffer.
    pub fn header_line(&self) -> &str {
        &self.header
    }

    /// Why this backend was chosen, what was skipped, and similar remarks.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Number of BPF links or kprobe events attached.
    pub fn probe_count(&self) -> usize {
        self.links.len() + self.kprobes.as_ref().map_or(0, |k| k.names.len())
    }

    /// Re-reads the socket inodes of the `--pid` process into the BPF
    /// filter (sockets it opened since the last call start being recorded).
    /// Returns how many sockets match.
    pub fn refresh_pid_filter(&self) -> Result<usize> {
        let Some(pid) = self.filters.pid else {
            return Ok(0);
        };
        let inodes = sys::process_socket_inodes(pid);
        for l in &self.loaded {
            let obj = l.object();
            for m in obj.maps() {
                if m.name() == "socks" {
                    for ino in &inodes {
                        m.update(&ino.to_ne_bytes(), &[1u8], MapFlags::ANY)
                            .map_err(|e| refused(self.backend, "update map socks", e, ""))?;
                    }
                }
            }
        }
        Ok(inodes.len())
    }

    /// `xskdbg:1 kstackdef id=<hex> f=<fn+0xoff,...>` lines (innermost
    /// frame first) for every stack id the programs recorded, symbolized
    /// with blazesym against the running kernel. Empty without `stacks`.
    pub fn stack_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let sym = blazesym::symbolize::Symbolizer::new();
        let src = blazesym::symbolize::source::Source::Kernel(
            blazesym::symbolize::source::Kernel::default(),
        );
        for l in &self.loaded {
            for m in l.object().maps() {
                if m.name() != "stacks" || m.max_entries() <= 1 {
                    continue;
                }
                for key in m.keys() {
                    let Some(id) = key.get(..4).and_then(|b| b.try_into().ok()) else {
                        continue;
                    };
                    let id = u32::from_ne_bytes(id);
                    let Ok(Some(val)) = m.lookup(&key, MapFlags::ANY) else {
                        continue;
                    };
                    let addrs: Vec<u64> = val
                        .chunks_exact(8)
                        .filter_map(|c| c.try_into().ok().map(u64::from_ne_bytes))
                        .take_while(|a| *a != 0)
                        .collect();
                    out.push(format_stack(id, &addrs, &sym, &src));
                }
            }
        }
        out.sort();
        out
    }

    /// Writes the records the ring buffers still hold into the buffer and
    /// stops the drainers (completing a freeze the application made, see
    /// [`crate::drain`]); `None` for the printk output and the `tracefs`
    /// backend. Call before freezing and reading the trace.
    pub fn finish_drain(&mut self) -> Option<DrainReport> {
        // No new record may be made after the last drain.
        self.links.clear();
        self.drainer.as_mut().map(Drainer::finish)
    }

    /// Detaches now (same as dropping).
    pub fn detach(self) {}
}

/// libbpf's messages of the current attempt (its own stderr printing is
/// replaced so the reasons end up in the error instead of scattered lines).
static LIBBPF_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn libbpf_print(_: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut v) = LIBBPF_LOG.lock() {
        if v.len() >= 64 {
            v.remove(0);
        }
        v.push(msg.trim_end().to_string());
    }
}

/// The libbpf lines that say what failed, taken out of the log: the last
/// lines of a verifier log name the refused instruction.
fn libbpf_reasons() -> String {
    let Ok(mut v) = LIBBPF_LOG.lock() else {
        return String::new();
    };
    let lines: Vec<String> = v
        .drain(..)
        .flat_map(|m| m.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let n = lines.len();
    lines[n.saturating_sub(8)..].join(" | ")
}

fn format_stack(
    id: u32,
    addrs: &[u64],
    sym: &blazesym::symbolize::Symbolizer,
    src: &blazesym::symbolize::source::Source<'_>,
) -> String {
    use blazesym::symbolize::{Input, Symbolized};
    let names: Vec<String> = match sym.symbolize(src, Input::AbsAddr(addrs)) {
        Ok(v) => v
            .iter()
            .zip(addrs)
            .map(|(s, a)| match s {
                Symbolized::Sym(s) => format!("{}+{:#x}", s.name, s.offset),
                Symbolized::Unknown(_) => format!("{a:x}"),
            })
            .collect(),
        Err(_) => addrs.iter().map(|a| format!("{a:x}")).collect(),
    };
    crate::backend::kstackdef_line(id, &names)
}

fn refused(backend: Backend, what: &str, e: impl std::fmt::Display, offers: &str) -> ProbeError {
    let why = libbpf_reasons();
    let cause = if why.is_empty() {
        e.to_string()
    } else {
        format!("{e} (libbpf: {why})")
    };
    ProbeError::Refused {
        backend,
        what: what.to_string(),
        cause,
        offers: offers.to_string(),
    }
}

/// Attaches `req.backend` (trying each backend in [`Backend::AUTO_ORDER`]
/// for `auto`), enables the output event in `req.buffer`, and returns the
/// guard. The caller writes [`Attached::header_line`] into the buffer.
pub fn attach(req: &Request) -> Result<Attached> {
    if !req.group.starts_with(GROUP) {
        return Err(ProbeError::Usage(format!(
            "kprobe group {:?} must start with {GROUP:?} so `detach --all` finds it",
            req.group
        )));
    }
    let tfs = TraceFs::find()?;
    let caps = sys::caps(&tfs);
    let btf = Path::new(sys::VMLINUX_BTF);
    let mut a =
        with_libbpf_log(|| choose(req.backend, &caps, |b| attach_one(b, req, &tfs, &caps, btf)))?;
    // The header says which clock stamps the lines: what it guarantees
    // across CPUs decides which orders the analyzer may trust
    // (docs/TRACE-FORMAT.md, "Trace clocks").
    if let Ok(raw) = req.buffer.read_file("trace_clock") {
        if let Some(c) = selected_clock(&String::from_utf8_lossy(&raw)) {
            a.header.push_str(" clock=");
            a.header.push_str(c);
        }
    }
    Ok(a)
}

/// Runs `f` with libbpf's messages going into the error of a failed step
/// instead of stderr.
pub(crate) fn with_libbpf_log<T>(f: impl FnOnce() -> T) -> T {
    let prev_print = libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, libbpf_print)));
    let r = f();
    libbpf_rs::set_print(prev_print);
    if let Ok(mut v) = LIBBPF_LOG.lock() {
        v.clear();
    }
    r
}

/// `backend` attached with `attach_one` after its precheck, or for `auto`
/// the first backend of [`Backend::AUTO_ORDER`] that passes its precheck
/// and attaches, with notes saying what was skipped and why.
fn choose(
    backend: Backend,
    caps: &Caps,
    mut attach_one: impl FnMut(Backend) -> Result<Attached>,
) -> Result<Attached> {
    if backend != Backend::Auto {
        if let Some(why) = caps.precheck(backend) {
            return Err(refused(backend, "precheck", why, &caps.summary()));
        }
        return attach_one(backend);
    }
    let mut tried = Vec::new();
    for b in Backend::AUTO_ORDER {
        if let Some(why) = caps.precheck(b) {
            tried.push(format!("  {b}: {why}"));
            continue;
        }
        match attach_one(b) {
            Ok(mut a) => {
                let mut notes = vec![format!("auto chose {b}")];
                notes.extend(tried.iter().map(|t| format!("skipped{t}")));
                notes.append(&mut a.notes);
                a.notes = notes;
                return Ok(a);
            }
            Err(e) => tried.push(format!("  {b}: {e}")),
        }
    }
    Err(ProbeError::NoBackend {
        tried: tried.join("\n"),
        offers: caps.summary(),
    })
}

fn storage() -> &'static mut MaybeUninit<OpenObject> {
    // The skeleton borrows its object storage for its whole life; the
    // storage is a few pointers, leaked once per attach.
    Box::leak(Box::new(MaybeUninit::uninit()))
}

fn attach_one(
    backend: Backend,
    req: &Request,
    tfs: &TraceFs,
    caps: &Caps,
    btf: &Path,
) -> Result<Attached> {
    let offers = caps.summary();
    let mut a = Attached {
        backend,
        header: backend.header_line(&caps.release),
        notes: Vec::new(),
        links: Vec::new(),
        loaded: Vec::new(),
        restores: Vec::new(),
        kprobes: None,
        filters: req.filters.clone(),
        drainer: None,
    };
    let ring = req.output == Output::Ring && backend != Backend::Tracefs;
    // Created before the objects load: each takes them as its ring maps.
    let rings = if ring {
        Some(Arc::new(Rings::create().map_err(|e| {
            refused(backend, "create the rings", e, &offers)
        })?))
    } else {
        None
    };
    // Loading a program that calls bpf_trace_printk makes the kernel enable
    // the event in the top-level buffer; remember the old value to put it
    // back (and keep our lines out of the top-level buffer meanwhile).
    let printk_rel = "events/bpf_trace/bpf_trace_printk/enable";
    let top = tfs.top();
    let top_is_target = req.buffer.dir() == top.dir();
    let mut top_restore = None;
    if backend != Backend::Tracefs && !top_is_target && tfs.sys().exists(&top.path(printk_rel)) {
        top_restore = Some(Restore {
            buffer: top.clone(),
            rel: printk_rel.to_string(),
            old: top.read_file(printk_rel)?,
        });
    }
    match backend {
        Backend::Auto => return Err(ProbeError::Usage("auto is not a backend".into())),
        Backend::Tracefs => attach_tracefs(&mut a, req, tfs, caps, btf)?,
        _ => a.loaded = load_bpf(backend, caps, req.stacks, rings.as_deref(), &mut a.notes)?,
    }
    if !a.loaded.is_empty() {
        // Filters first, so nothing unfiltered is ever printed.
        let val = req.filters.to_map_value();
        for l in &a.loaded {
            for m in l.object().maps() {
                if m.name() == "filter" {
                    m.update(&0u32.to_ne_bytes(), &val, MapFlags::ANY)
                        .map_err(|e| refused(backend, "set filter map", e, &offers))?;
                }
            }
        }
        a.refresh_pid_filter()?;
        if let Some(r) = top_restore.take() {
            if String::from_utf8_lossy(&r.old).trim() == "0" {
                await_printk_switch(&top, printk_rel);
                top.write_file(printk_rel, b"0")?;
            }
            a.restores.push(r);
        }
        // bpf_trace_printk output reaches an instance only when the instance
        // enables the bpf_trace_printk event.
        a.restores
            .push(set_restoring(&req.buffer, printk_rel, b"1")?);
        if let Some(rings) = &rings {
            start_drainer(&mut a, req, rings, top_is_target, &offers)?;
        }
        for l in &a.loaded {
            for p in l.object().progs_mut() {
                if !p.autoload() {
                    continue;
                }
                let name = p.name().to_string_lossy().into_owned();
                let link = p
                    .attach()
                    .map_err(|e| refused(backend, &format!("attach {name}"), e, &offers))?;
                a.links.push(link);
            }
        }
    }
    Ok(a)
}

/// The clock the trace must use for drained records: `bpf_ktime_get_ns()`
/// reads `CLOCK_MONOTONIC`, which is ftrace's `mono`.
pub const TRACE_CLOCK: &str = "mono";

/// Waits (at most half a second) until the kernel has turned the top-level
/// `bpf_trace_printk` event on after a program that calls the helper was
/// loaded: current kernels only schedule that switch from the verifier
/// (`bpf_get_trace_printk_proto()` -> `schedule_work(&set_printk_work)`),
/// so a restore written right after the load can come before it and be
/// undone (seen in CI: the switch on after `try_load`).
pub(crate) fn await_printk_switch(top: &Buffer, rel: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < until {
        match top.read_file(rel) {
            Ok(v) if String::from_utf8_lossy(&v).trim() != "0" => return,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
            Err(_) => return,
        }
    }
}

/// The clock `trace_clock` selects (`[local] global mono ...` → `local`).
pub fn selected_clock(trace_clock: &str) -> Option<&str> {
    let s = trace_clock.split_once('[')?.1;
    Some(s.split_once(']')?.0)
}

/// Sets `buffer`'s trace clock to [`TRACE_CLOCK`] unless it already is
/// (changing the clock empties the buffer: callers that write before
/// attaching set it first). Returns the clock it had when it was changed.
pub fn use_mono_clock(buffer: &Buffer) -> Result<Option<String>> {
    let raw = buffer.read_file("trace_clock")?;
    let text = String::from_utf8_lossy(&raw);
    let old = selected_clock(&text).unwrap_or("local").to_string();
    if old == TRACE_CLOCK {
        return Ok(None);
    }
    buffer.write_file("trace_clock", TRACE_CLOCK.as_bytes())?;
    Ok(Some(old))
}

/// Creates the per-CPU rings, hands them to the loaded objects and starts
/// the drainers (before any program is attached: each drainer's first
/// watermark precedes every record). The buffer's clock becomes `mono`.
fn start_drainer(
    a: &mut Attached,
    req: &Request,
    rings: &Arc<Rings>,
    top: bool,
    offers: &str,
) -> Result<()> {
    let backend = a.backend;
    if let Some(old) = use_mono_clock(&req.buffer)? {
        a.notes.push(format!(
            "trace clock of {} set to {TRACE_CLOCK} (was {old}): the drained records carry bpf_ktime_get_ns() stamps",
            req.buffer.dir().display()
        ));
        if top {
            a.restores.push(Restore {
                buffer: req.buffer.clone(),
                rel: "trace_clock".into(),
                old: old.into_bytes(),
            });
        }
    }
    a.drainer = Some(
        Drainer::start(rings, req.buffer.clone())
            .map_err(|e| refused(backend, "start the drainers", e, offers))?,
    );
    a.header.push_str(" out=");
    a.header.push_str(Output::Ring.name());
    Ok(())
}

/// Loads the BPF objects of `backend` (tracepoint, fentry or kprobe) into
/// the kernel without attaching anything: programs of optional functions
/// this kernel lacks are left out (with a note), and the function backends
/// also load the XDP error tracepoints. [`crate::try_load`] stops here.
pub(crate) fn load_bpf(
    backend: Backend,
    caps: &Caps,
    stacks: bool,
    rings: Option<&Rings>,
    notes: &mut Vec<String>,
) -> Result<Vec<Loaded>> {
    let ring = rings.is_some();
    let offers = caps.summary();
    let missing_opt: Vec<&str> = OPTIONAL_FUNCS
        .iter()
        .copied()
        .filter(|f| caps.funcs_missing.iter().any(|m| m == f))
        .collect();
    let mut loaded = Vec::new();
    match backend {
        Backend::Auto | Backend::Tracefs => {
            return Err(ProbeError::Usage(format!(
                "{backend} has no BPF objects to load"
            )))
        }
        Backend::Tracepoint => {
            let (s, note) = load_tp(false, stacks, rings, &offers)?;
            notes.extend(note);
            loaded.push(Loaded::Tp(s));
        }
        Backend::Fentry | Backend::Kprobe => {
            // Programs of missing optional functions are not loaded (an
            // fentry on a missing function fails the whole object load).
            let skip: Vec<String> = missing_opt
                .iter()
                .flat_map(|f| prog_for(backend, f))
                .collect();
            for f in &missing_opt {
                notes.push(format!("{f} not in /proc/kallsyms (inlined?): not probed"));
            }
            let new_tx = sys::version_of(&caps.release).is_some_and(|v| v >= (6, 6));
            if backend == Backend::Fentry {
                let b = skel_fe::FentrySkelBuilder::default();
                let mut open = b
                    .open(storage())
                    .map_err(|e| refused(backend, "open BPF object", e, &offers))?;
                if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
                    ro.destructor_arg_is_addr = !new_tx;
                    ro.want_stacks = stacks;
                    ro.out_ring = ring;
                }
                size_stacks(open.open_object_mut(), stacks)?;
                give_rings(open.open_object_mut(), rings)?;
                set_autoload(open.open_object_mut(), &skip);
                let s = open
                    .load()
                    .map_err(|e| refused(backend, "load fentry programs", e, &offers))?;
                loaded.push(Loaded::Fe(s));
            } else {
                let b = skel_kp::KprobeSkelBuilder::default();
                let mut open = b
                    .open(storage())
                    .map_err(|e| refused(backend, "open BPF object", e, &offers))?;
                if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
                    ro.destructor_arg_is_addr = !new_tx;
                    ro.want_stacks = stacks;
                    ro.out_ring = ring;
                }
                size_stacks(open.open_object_mut(), stacks)?;
                give_rings(open.open_object_mut(), rings)?;
                set_autoload(open.open_object_mut(), &skip);
                let s = open
                    .load()
                    .map_err(|e| refused(backend, "load kprobe programs", e, &offers))?;
                loaded.push(Loaded::Kp(s));
            }
            // The XDP error tracepoints go with every backend.
            let (tp, note) = load_tp(true, false, rings, &offers)?;
            notes.extend(note);
            loaded.push(Loaded::Tp(tp));
        }
    }
    Ok(loaded)
}

/// The program names of `backend` that probe function `f`.
fn prog_for(backend: Backend, f: &str) -> Vec<String> {
    let (fe, kp): (&[&str], &[&str]) = match f {
        "xp_raw_get_data" => (&["fe_raw_get_data"], &["kp_raw_get_data"]),
        "xsk_tx_peek_desc" => (&["fx_peek"], &["kp_peek", "kr_peek"]),
        "xsk_tx_completed" => (&["fe_tx_completed"], &["kp_tx_completed"]),
        "xsk_destruct_skb" => (&["fe_destruct_skb"], &["kp_destruct_skb"]),
        _ => (&[], &[]),
    };
    let v = if backend == Backend::Fentry { fe } else { kp };
    v.iter().map(|s| s.to_string()).collect()
}

/// The stack map costs memory only when `--stacks` asked for it.
fn size_stacks(obj: &mut OpenObject, stacks: bool) -> Result<()> {
    for mut m in obj.maps_mut() {
        if m.name() == "stacks" && !stacks {
            m.set_max_entries(1)
                .map_err(|e| refused(Backend::Tracepoint, "size map stacks", e, ""))?;
        }
    }
    Ok(())
}

/// The session's rings become the object's ring maps.
fn give_rings(obj: &mut OpenObject, rings: Option<&Rings>) -> Result<()> {
    if let Some(r) = rings {
        r.give(obj)
            .map_err(|e| refused(Backend::Tracepoint, "give the rings to the object", e, ""))?;
    }
    Ok(())
}

fn set_autoload(obj: &mut OpenObject, skip: &[String]) {
    for mut p in obj.progs_mut() {
        let name = p.name().to_string_lossy().into_owned();
        if skip.contains(&name) {
            p.set_autoload(false);
        }
    }
}

/// Loads the tracepoint object: with tp_btf programs, or, when the kernel
/// refuses those (before ~6.3 tp_btf cannot read a `void *` argument), with
/// their raw_tp twins. `errors_only` loads just the XDP error programs (for
/// the function backends). Returns a note when the fallback was used.
fn load_tp(
    errors_only: bool,
    stacks: bool,
    rings: Option<&Rings>,
    offers: &str,
) -> Result<(skel_tp::TracepointSkel<'static>, Option<String>)> {
    let try_load = |raw: bool| -> Result<skel_tp::TracepointSkel<'static>> {
        let backend = Backend::Tracepoint;
        let mut skip: Vec<String> = Vec::new();
        let (keep_redirect, drop_redirect) = if raw {
            ("rtp_", "tp_")
        } else {
            ("tp_", "rtp_")
        };
        skip.push(format!("{drop_redirect}xdp_redirect"));
        skip.push(format!("{drop_redirect}xdp_redirect_err"));
        if errors_only {
            skip.push(format!("{keep_redirect}xdp_redirect"));
            skip.push("tp_napi_poll".into());
        }
        let b = skel_tp::TracepointSkelBuilder::default();
        let mut open = b
            .open(storage())
            .map_err(|e| refused(backend, "open BPF object", e, offers))?;
        set_autoload(open.open_object_mut(), &skip);
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.want_stacks = stacks;
            ro.out_ring = rings.is_some();
            // Plain loads instead of a helper call per field (xskdbg.h
            // KREAD): where tp_btf takes the `void *` argument, the kernel
            // also has bpf_rdonly_cast (6.2, before tp_btf did, ~6.3).
            ro.direct_reads = !raw;
        }
        size_stacks(open.open_object_mut(), stacks)?;
        give_rings(open.open_object_mut(), rings)?;
        open.load().map_err(|e| {
            refused(
                backend,
                if raw {
                    "load raw_tp programs"
                } else {
                    "load tp_btf programs"
                },
                e,
                offers,
            )
        })
    };
    match try_load(false) {
        Ok(s) => Ok((s, None)),
        Err(first) => match try_load(true) {
            Ok(s) => {
                // The verifier's reason is the line naming the argument.
                let text = first.to_string();
                let why = text
                    .split(" | ")
                    .find(|l| l.contains("is not a struct") || l.contains("invalid bpf_context"))
                    .unwrap_or("refused")
                    .to_string();
                Ok((
                    s,
                    Some(format!(
                        "tp_btf refused on this kernel ({why}): xdp_redirect(_err) attached as raw_tp"
                    )),
                ))
            }
            Err(_) => Err(first),
        },
    }
}

fn attach_tracefs(
    a: &mut Attached,
    req: &Request,
    tfs: &TraceFs,
    caps: &Caps,
    btf: &Path,
) -> Result<()> {
    let offers = caps.summary();
    let btf = KernelBtf::open(btf)?;
    let offs = kprobe_events::Offsets::from_btf(&btf)?;
    if offs.xskb_orig_addr.is_none() && offs.handle.is_none() {
        a.notes.push(
            "struct xdp_buff_xsk has neither orig_addr nor the fields of xp_get_handle() on this kernel: __xsk_rcv_zc_L7 events carry no frame address".into(),
        );
    }
    if req.filters.pid.is_some()
        || req.filters.queue.is_some()
        || req.filters.netns_cookie.is_some()
    {
        a.notes.push("the tracefs backend cannot filter by pid, queue or netns: recording every AF_XDP socket".into());
    }
    let mut ke = KprobeEvents {
        tfs: tfs.clone(),
        names: Vec::new(),
    };
    let defs: Vec<ProbeDef> = kprobe_events::defs(&offs, &req.group);
    let mut enables = Vec::new();
    for d in &defs {
        if caps.funcs_missing.contains(&d.func) {
            if d.required {
                return Err(refused(
                    Backend::Tracefs,
                    &format!("kprobe on {}", d.func),
                    "function not in /proc/kallsyms",
                    &offers,
                ));
            }
            a.notes.push(format!(
                "{} not in /proc/kallsyms (inlined?): not probed",
                d.func
            ));
            continue;
        }
        let ev = format!("{}/{}", req.group, d.name);
        ke.add(&d.line, ev).map_err(|e| {
            refused(
                Backend::Tracefs,
                &format!("write kprobe_events {:?}", d.line),
                e,
                &offers,
            )
        })?;
        enables.push(d.clone());
    }
    a.kprobes = Some(ke);
    for d in &enables {
        let base = format!("events/{}/{}", req.group, d.name);
        if let Some(f) = &d.filter {
            a.restores.push(set_restoring(
                &req.buffer,
                &format!("{base}/filter"),
                f.as_bytes(),
            )?);
        }
        a.restores
            .push(set_restoring(&req.buffer, &format!("{base}/enable"), b"1")?);
    }
    // The native XDP error tracepoints, which the analyzer reads as ftrace prints them.
    for ev in ["xdp_exception", "xdp_redirect_err"] {
        if req.buffer.has_event("xdp", ev) {
            let rel = format!("events/xdp/{ev}/enable");
            a.restores.push(set_restoring(&req.buffer, &rel, b"1")?);
        }
    }
    Ok(())
}

/// Removes leftovers of earlier runs that could not clean up (SIGKILL):
/// kprobe events whose group starts with `xskdbg`, and ftrace instances
/// whose name starts with `xskdbg-`. Returns what was removed.
pub fn detach_all() -> Result<Vec<String>> {
    detach_all_in(&TraceFs::find()?)
}

/// [`detach_all`] in `tfs`.
pub fn detach_all_in(tfs: &TraceFs) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let instances = project_instances(tfs);
    let ke_path = tfs.root().join("kprobe_events");
    let events = kprobe_events::leftovers(&read_kprobe_events(tfs), GROUP);
    // Disable our events everywhere first: an enabled event cannot be removed.
    for ev in &events {
        let mut bufs = vec![tfs.top()];
        for i in &instances {
            if let Ok(b) = tfs.instance(i) {
                bufs.push(b);
            }
        }
        for b in bufs {
            let rel = format!("events/{ev}/enable");
            if tfs.sys().exists(&b.path(&rel)) {
                let _ = b.write_file(&rel, b"0");
            }
        }
    }
    for ev in events {
        write_kprobe_events(tfs, &format!("-:{ev}")).map_err(|e| ProbeError::Io {
            op: "remove kprobe event (write -:EVENT to)",
            path: ke_path.clone(),
            source: e,
        })?;
        removed.push(format!("kprobe event {ev}"));
    }
    for i in instances {
        tfs.remove_instance(&i)?;
        removed.push(format!("instance {i}"));
    }
    Ok(removed)
}

/// Leftovers [`detach_all`] would remove, without removing them.
pub fn leftovers() -> Result<Vec<String>> {
    Ok(leftovers_in(&TraceFs::find()?))
}

/// [`leftovers`] in `tfs`.
pub fn leftovers_in(tfs: &TraceFs) -> Vec<String> {
    let mut v: Vec<String> = project_instances(tfs)
        .into_iter()
        .map(|n| format!("instance {n}"))
        .collect();
    v.extend(
        kprobe_events::leftovers(&read_kprobe_events(tfs), GROUP)
            .into_iter()
            .map(|e| format!("kprobe event {e}")),
    );
    v.sort();
    v
}

/// The `xskdbg-*` ftrace instances, sorted (none when they cannot be listed).
fn project_instances(tfs: &TraceFs) -> Vec<String> {
    let mut v = tfs.instance_names().unwrap_or_default();
    v.retain(|n| n.starts_with("xskdbg-"));
    v
}

/// `kprobe_events` (empty on a kernel without it).
fn read_kprobe_events(tfs: &TraceFs) -> String {
    let raw = tfs.top().read_file("kprobe_events").unwrap_or_default();
    String::from_utf8_lossy(&raw).into_owned()
}

#[cfg(test)]
mod tests;
