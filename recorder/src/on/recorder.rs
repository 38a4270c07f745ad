//! The recorder itself: its sink, policy and counters, shared by every
//! UMEM, pool and socket registered through it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;
use super::report::{kind_index, KINDS, REPORTED_PER_KIND};
use crate::sink::Sink;
use crate::types::{
    DumpTarget, Error, Policy, PostTrigger, RecorderConfig, Violation, ViolationKind,
};

/// What every handle of one recorder shares.
pub(super) struct RecInner {
    pub(super) sink: Sink,
    pub(super) policy: Policy,
    pub(super) dump: DumpTarget,
    pub(super) freeze: bool,
    pub(super) stacks: bool,
    /// A violation froze the buffer (or someone else did): lines stop.
    pub(super) frozen: AtomicBool,
    /// This recorder froze it (not someone else).
    pub(super) froze_it: AtomicBool,
    /// The owner ended the recording ([`Recorder::end`]) while lines were
    /// still written: lines stop, and a buffer found off is expected.
    pub(super) ended: AtomicBool,
    /// The declarations were repeated before a `violation` line.
    pub(super) redeclared: AtomicBool,
    pub(super) violations: AtomicU64,
    /// Violations per kind ([`kind_index`]).
    pub(super) by_kind: [AtomicU64; KINDS.len()],
    /// The end-of-run summary was printed.
    pub(super) summarized: AtomicBool,
    /// What setup found worth saying (tracefs mounted, instance chosen,
    /// stale freeze), also printed to stderr.
    pub(super) notes: Vec<String>,
    pub(super) recycled: AtomicU64,
    /// TX descriptors the kernel refuses (never sent; maybe completed).
    pub(super) tx_rejected: AtomicU64,
    pub(super) sink_errors: AtomicU64,
    pub(super) last_sink_error: Mutex<Option<String>>,
    pub(super) last_violation: Mutex<Option<Violation>>,
    /// Numbers of the next UMEM, pool and socket in trace lines.
    pub(super) next_umem: AtomicU32,
    pub(super) next_pool: AtomicU32,
    pub(super) next_sock: AtomicU32,
    /// Every UMEM registered, for [`Recorder::audit`].
    pub(super) umems: Mutex<Vec<std::sync::Weak<super::register::UmemInner>>>,
    /// The next line's sequence number (`seq=`): the process id in the top
    /// 24 bits, so that two recorders writing into one buffer keep apart,
    /// a counter in the low 40.
    pub(super) seq: AtomicU64,
    /// The post-trigger window (`freeze` only).
    pub(super) window: PostTrigger,
    /// The first violation opened the window (once: later ones inside it
    /// do not lengthen it).
    pub(super) window_started: AtomicBool,
    /// A violation started the window: the freeze is due.
    pub(super) freeze_due: AtomicBool,
    /// Lines still written before the freeze.
    pub(super) window_left: AtomicU64,
}

impl Drop for RecInner {
    fn drop(&mut self) {
        // The app let go of its last handle inside the window: nothing
        // would freeze the buffer any more (the timer holds no handle), and
        // a buffer left running loses the evidence to later traffic.
        if self.freeze_due.load(Ordering::Acquire) {
            self.freeze_now();
        }
        self.print_summary();
    }
}

impl RecInner {
    /// Whether lines should be formatted and written at all.
    #[inline]
    pub(super) fn writing(&self) -> bool {
        !self.sink.is_null() && !self.frozen.load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn write(&self, line: &[u8]) {
        // The recorder's own order, which stamps of different CPUs cannot
        // give: the number is taken inside the ring call the line reports,
        // before the call returns and the app can act on it.
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; crate::line::LINE_MAX + 128];
        let line = with_seq(line, seq, &mut buf);
        if let Err(e) = self.sink.write(line) {
            if e.is_buffer_off() {
                self.frozen_elsewhere();
                return;
            }
            self.sink_error(e.to_string());
        }
        // Acquire: pairs with start_window's release, so the count read
        // below is the window's, not the 0 it held before.
        if self.freeze_due.load(Ordering::Acquire) {
            self.window_line();
        }
    }

    /// One more line inside the post-trigger window: the last one freezes.
    #[cold]
    fn window_line(&self) {
        let left = self.window_left.fetch_sub(1, Ordering::Relaxed);
        if left <= 1 {
            self.freeze_now();
        }
    }

    /// Open the post-trigger window (the first violation's line is
    /// written): the freeze comes after [`PostTrigger::batches`] lines, or
    /// after [`PostTrigger::micros`] from a timer thread, whichever first.
    #[cold]
    pub(super) fn start_window(self: &Arc<Self>) {
        if self.window.is_none() {
            self.freeze_now();
            return;
        }
        if self.window_started.swap(true, Ordering::Relaxed) {
            return;
        }
        // The count before the flag: a writer on another thread that sees
        // the flag must not find the count still at 0 and freeze on its
        // first line.
        self.window_left
            .store(u64::from(self.window.batches), Ordering::Relaxed);
        self.freeze_due.store(true, Ordering::Release);
        // Weak: a sleeping timer must not keep the recorder alive, or its
        // Drop (which freezes a pending window and prints the summary)
        // would wait for the timer, or never run before the process exits.
        let rec = Arc::downgrade(self);
        let us = self.window.micros;
        let spawned = std::thread::Builder::new()
            .name("xskdbg-window".into())
            .spawn(move || {
                std::thread::sleep(std::time::Duration::from_micros(us));
                if let Some(rec) = rec.upgrade() {
                    rec.freeze_now();
                }
            });
        if spawned.is_err() {
            self.freeze_now();
        }
    }

    /// Stop the buffer so it keeps what led up to the violation (and its
    /// window), and dump the memory ring; once.
    #[cold]
    pub(super) fn freeze_now(&self) {
        if self.froze_it.swap(true, Ordering::Relaxed) {
            return;
        }
        self.freeze_due.store(false, Ordering::Relaxed);
        self.frozen.store(true, Ordering::Relaxed);
        if let Err(e) = self.sink.freeze() {
            self.sink_error(format!("could not freeze the trace buffer: {e}"));
        }
        self.dump_ring();
    }

    /// [`RecInner::write`] at the end of the app's life (a UMEM dropped):
    /// a buffer turned off by then is the usual end of a recording, not
    /// worth a word.
    pub(super) fn write_last(&self, line: &[u8]) {
        match self.sink.write(line) {
            Err(e) if e.is_buffer_off() => self.frozen.store(true, Ordering::Relaxed),
            Err(e) => self.sink_error(e.to_string()),
            Ok(()) => {}
        }
    }

    /// Someone else (another recorder, a user, `xskdbg record` ending)
    /// turned the buffer off: lines stop, and the app is told once, since
    /// a trace that ends here without a violation looks like a clean run.
    #[cold]
    fn frozen_elsewhere(&self) {
        // A line formatted just before the owner's `end` may reach the
        // buffer after it was turned off: that is the end, not a surprise.
        if !self.frozen.swap(true, Ordering::Relaxed)
            && !self.froze_it.load(Ordering::Relaxed)
            && !self.ended.load(Ordering::Relaxed)
        {
            eprintln!(
                "xskdbg-recorder: {} stopped recording (tracing_on is 0) though no violation froze it here: \
                 nothing more is written. Another program or an earlier run froze it; \
                 write 1 to its tracing_on to re-arm, or set the recorder's rearm option",
                self.sink.describe()
            );
        }
    }

    /// Whether a violation of `kind` would still be reported (not only counted).
    #[inline]
    pub(super) fn loud(&self, kind: ViolationKind) -> bool {
        self.by_kind[kind_index(kind)].load(Ordering::Relaxed) < REPORTED_PER_KIND
    }

    /// The counts of violations that were only counted, once: `None` when
    /// every violation was reported or the summary was already given.
    pub(super) fn summary(&self) -> Option<String> {
        let counted: Vec<(ViolationKind, u64)> = KINDS
            .iter()
            .map(|k| (*k, self.by_kind[kind_index(*k)].load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if !counted.iter().any(|(_, n)| *n > REPORTED_PER_KIND) {
            return None;
        }
        if self.summarized.swap(true, Ordering::Relaxed) {
            return None;
        }
        let parts: Vec<String> = counted
            .iter()
            .map(|(k, n)| {
                format!(
                    "{} {n} (first {} reported)",
                    k.as_str(),
                    n.min(&REPORTED_PER_KIND)
                )
            })
            .collect();
        Some(format!(
            "{} violations in all: {}",
            self.violations.load(Ordering::Relaxed),
            parts.join(", ")
        ))
    }

    /// Print the summary to stderr (once).
    #[cold]
    pub(super) fn print_summary(&self) {
        if let Some(s) = self.summary() {
            eprintln!("xskdbg-recorder: {s}");
        }
    }

    #[cold]
    pub(super) fn sink_error(&self, msg: String) {
        if self.sink_errors.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("xskdbg-recorder: {msg} (further sink errors are only counted)");
        }
        *lock(&self.last_sink_error) = Some(msg);
    }
}

/// The in-process checker; cheap to clone, shared by every thread.
#[derive(Clone)]
pub struct Recorder {
    pub(super) inner: Arc<RecInner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sink", &self.inner.sink)
            .field("violations", &self.violations())
            .finish()
    }
}

impl Recorder {
    /// Whether this build checks anything (`false` without feature `enabled`).
    pub const ENABLED: bool = true;

    /// Open the sink and set up. Fails with an error naming the tracefs path
    /// and the fix when a trace_marker sink cannot be opened.
    pub fn new(cfg: RecorderConfig) -> Result<Recorder, Error> {
        let ends = matches!(cfg.policy, Policy::Panic);
        Recorder::open(cfg, ends)
    }

    /// [`Recorder::new`]; `ends_process`: the policy ends the program at
    /// the violation (a panic, C's abort), so there is no window: nothing
    /// would be recorded in it, and a freeze left to a timer or to the last
    /// handle's drop may never come, leaving the buffer running after the
    /// program died.
    pub(crate) fn open(cfg: RecorderConfig, ends_process: bool) -> Result<Recorder, Error> {
        let opened = Sink::open(&cfg.sink, cfg.rearm)?;
        let (sink, mut notes) = (opened.sink, opened.notes);
        let env = std::env::var_os(PostTrigger::ENV);
        let window = if ends_process {
            if env.is_some() {
                notes.push(format!(
                    "${} ignored: the policy ends the program at the first violation, \
                     so the buffer is frozen there (use a logging or callback policy for a window)",
                    PostTrigger::ENV
                ));
            }
            PostTrigger::NONE
        } else {
            window_from_env(env.as_deref(), cfg.post_trigger, &mut notes)
        };
        for n in &notes {
            eprintln!("xskdbg-recorder: {n}");
        }
        let rec = Recorder {
            inner: Arc::new(RecInner {
                sink,
                policy: cfg.policy,
                dump: cfg.dump,
                freeze: cfg.freeze,
                stacks: cfg.stacks,
                frozen: AtomicBool::new(opened.frozen),
                froze_it: AtomicBool::new(false),
                ended: AtomicBool::new(false),
                redeclared: AtomicBool::new(false),
                violations: AtomicU64::new(0),
                by_kind: std::array::from_fn(|_| AtomicU64::new(0)),
                summarized: AtomicBool::new(false),
                notes,
                recycled: AtomicU64::new(0),
                tx_rejected: AtomicU64::new(0),
                sink_errors: AtomicU64::new(0),
                last_sink_error: Mutex::new(None),
                last_violation: Mutex::new(None),
                next_umem: AtomicU32::new(1),
                next_pool: AtomicU32::new(1),
                next_sock: AtomicU32::new(1),
                umems: Mutex::new(Vec::new()),
                seq: AtomicU64::new(u64::from(std::process::id() & 0xff_ffff) << 40),
                window,
                window_started: AtomicBool::new(false),
                freeze_due: AtomicBool::new(false),
                window_left: AtomicU64::new(0),
            }),
        };
        Ok(rec)
    }

    /// Violations seen so far (reported or only counted).
    pub fn violations(&self) -> u64 {
        self.inner.violations.load(Ordering::Relaxed)
    }

    /// Violations seen so far of one kind. Only the first few of each kind
    /// are reported (line, stack, policy); the rest are counted here.
    pub fn violations_of(&self, kind: ViolationKind) -> u64 {
        self.inner.by_kind[kind_index(kind)].load(Ordering::Relaxed)
    }

    /// The counts of violations that were only counted, once (`None` when
    /// there were none, or after the first call): printed to stderr when
    /// the last handle is dropped, unless taken here first.
    pub fn summary(&self) -> Option<String> {
        self.inner.summary()
    }

    /// Print the [`Recorder::summary`] to stderr now, if there is one (a C
    /// program may exit without dropping every handle).
    pub fn print_summary(&self) {
        self.inner.print_summary();
    }

    /// What setup had to say: how tracefs was found, which instance the
    /// lines go to and why, a buffer found frozen. Also printed to stderr.
    pub fn notes(&self) -> &[String] {
        &self.inner.notes
    }

    /// FILL→RX mismatches explained by the kernel's free-list recycling.
    pub fn recycled(&self) -> u64 {
        self.inner.recycled.load(Ordering::Relaxed)
    }

    /// Sink writes that failed (other than after a freeze).
    pub fn sink_errors(&self) -> u64 {
        self.inner.sink_errors.load(Ordering::Relaxed)
    }

    /// TX descriptors put on TX that the kernel refuses to send (an address
    /// past the UMEM, a packet crossing its chunk, unknown option bits:
    /// `xskdbg_format::reject`). They are left out of the frame's history
    /// (the frame stays the application's) instead of being taken for a
    /// send; the kernel counts them in `tx_invalid_descs`.
    pub fn tx_rejected(&self) -> u64 {
        self.inner.tx_rejected.load(Ordering::Relaxed)
    }

    /// The last sink error message.
    pub fn last_sink_error(&self) -> Option<String> {
        lock(&self.inner.last_sink_error).clone()
    }

    /// The most recent violation.
    pub fn last_violation(&self) -> Option<Violation> {
        lock(&self.inner.last_violation).clone()
    }

    /// Whether the buffer was frozen: by a violation, found so at start,
    /// or turned off by someone else; not by [`Recorder::end`].
    pub fn is_frozen(&self) -> bool {
        let i = &self.inner;
        i.froze_it.load(Ordering::Relaxed)
            || (i.frozen.load(Ordering::Relaxed) && !i.ended.load(Ordering::Relaxed))
    }

    /// Ends the recording: call it after the last line that belongs in the
    /// trace and before turning the buffer off to read it (`xskdbg soak`
    /// does, after its audit). Ring operations after it are still checked,
    /// counted and given to the policy, but no longer written nor frozen
    /// on, and the buffer found off later
    /// (sockets closing, say) is not reported as stopped by someone else.
    /// Idempotent; nothing to do when the buffer is already frozen.
    pub fn end(&self) {
        let i = &self.inner;
        if !i.frozen.load(Ordering::Relaxed) {
            i.ended.store(true, Ordering::Relaxed);
            i.frozen.store(true, Ordering::Relaxed);
        }
    }

    /// The post-trigger window in force: the configured one, or the one
    /// [`PostTrigger::ENV`] put in its place.
    pub fn post_trigger(&self) -> PostTrigger {
        self.inner.window
    }

    /// The memory ring as an ftrace `trace` text (empty for other sinks).
    pub fn dump(&self) -> Vec<u8> {
        self.inner.sink.dump()
    }
}

/// The window [`PostTrigger::ENV`] asks for, else the configured one. Said
/// in the notes either way when the variable is set: a value from the
/// environment is easy to forget, and a bad one must not pass in silence.
fn window_from_env(
    env: Option<&std::ffi::OsStr>,
    configured: PostTrigger,
    notes: &mut Vec<String>,
) -> PostTrigger {
    let Some(v) = env else {
        return configured;
    };
    let v = v.to_string_lossy();
    match PostTrigger::parse_spec(&v) {
        Ok(w) => {
            notes.push(format!(
                "post-trigger window {w} from ${}: {}",
                PostTrigger::ENV,
                describe_window(w)
            ));
            w
        }
        Err(e) => {
            notes.push(format!(
                "${}: {e}; using the configured window {configured} ({})",
                PostTrigger::ENV,
                describe_window(configured)
            ));
            configured
        }
    }
}

fn describe_window(w: PostTrigger) -> String {
    if w.is_none() {
        "freeze at the first violation".into()
    } else {
        format!(
            "freeze {} lines or {} us after the first violation, whichever comes first",
            w.batches, w.micros
        )
    }
}

/// `line` with ` seq=<hex>` after its operation word (`xskdbg:1 rx seq=2a sk=...`):
/// readers that match a line's head skip it there in one step.
fn with_seq<'a>(line: &'a [u8], seq: u64, buf: &'a mut [u8]) -> &'a [u8] {
    let prefix = xskdbg_format::PREFIX.len();
    if !line.starts_with(xskdbg_format::PREFIX) || line.len() + 22 > buf.len() {
        return line;
    }
    let end = line[prefix..]
        .iter()
        .position(|&b| b == b' ' || b == b'\n')
        .map_or(line.len(), |p| prefix + p);
    let mut n = 0;
    let mut put = |bytes: &[u8], n: &mut usize| {
        buf[*n..*n + bytes.len()].copy_from_slice(bytes);
        *n += bytes.len();
    };
    put(&line[..end], &mut n);
    put(b" seq=", &mut n);
    let digits = (((64 - seq.leading_zeros()) as usize).max(1)).div_ceil(4);
    for i in (0..digits).rev() {
        put(
            &[b"0123456789abcdef"[((seq >> (4 * i)) & 0xf) as usize]],
            &mut n,
        );
    }
    put(&line[end..], &mut n);
    &buf[..n]
}

#[cfg(test)]
mod seq_tests {
    #[test]
    fn the_sequence_number_follows_the_operation_word() {
        let mut buf = [0u8; 200];
        assert_eq!(
            super::with_seq(b"xskdbg:1 rx sk=1:2:3 n=1\n", 0x2a, &mut buf),
            b"xskdbg:1 rx seq=2a sk=1:2:3 n=1\n"
        );
        let mut buf = [0u8; 200];
        assert_eq!(
            super::with_seq(b"xskdbg:1 free\n", 0, &mut buf),
            b"xskdbg:1 free seq=0\n"
        );
        let mut buf = [0u8; 200];
        assert_eq!(super::with_seq(b"other", 1, &mut buf), b"other");
    }
}

#[cfg(test)]
mod window_tests {
    use std::sync::Arc;

    use super::window_from_env;
    use crate::types::{DumpTarget, Policy, PostTrigger, RecorderConfig, SinkConfig, UmemConfig};
    use crate::Recorder;

    fn recorder(window: PostTrigger, dump: DumpTarget) -> Recorder {
        Recorder::new(RecorderConfig {
            sink: SinkConfig::Memory { events: 256 },
            policy: Policy::Callback(Arc::new(|_| {})),
            dump,
            post_trigger: window,
            ..RecorderConfig::default()
        })
        .unwrap()
    }

    /// The project lines in the memory ring, ftrace prefix and `seq=` off.
    fn lines(rec: &Recorder) -> Vec<String> {
        String::from_utf8_lossy(&rec.dump())
            .lines()
            .filter_map(|l| l.split_once("tracing_mark_write: "))
            .map(|(_, b)| {
                b.split(' ')
                    .filter(|w| !w.starts_with("seq="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// A frame held twice: the second hold is a violation.
    fn violate(u: &crate::Umem) {
        u.hold(&[0]);
        u.hold(&[0]);
    }

    #[test]
    fn the_window_counts_lines_after_the_violation_then_freezes() {
        // 3 lines; the timer alone would take a minute.
        let w = PostTrigger {
            batches: 3,
            micros: 60_000_000,
        };
        let rec = recorder(w, DumpTarget::None);
        let u = rec.umem(UmemConfig::aligned(16, 2048)).unwrap();
        violate(&u);
        assert_eq!(rec.violations(), 1);
        assert!(
            !rec.is_frozen(),
            "froze at the violation despite the window"
        );
        let before = lines(&rec);
        let v = before.last().unwrap();
        assert!(
            v.starts_with("xskdbg:1 violation kind=duplicate_in_flight window=3:3938700 "),
            "{v}"
        );
        u.hold(&[0x800]);
        u.hold(&[0x1000]);
        assert!(!rec.is_frozen(), "froze before the window's last line");
        u.hold(&[0x1800]);
        assert!(rec.is_frozen(), "the window's last line did not freeze");
        // After the freeze nothing more is written.
        u.hold(&[0x2000]);
        let after = lines(&rec);
        assert_eq!(
            &after[before.len()..],
            [
                "xskdbg:1 hold umem=1 n=1 a=800",
                "xskdbg:1 hold umem=1 n=1 a=1000",
                "xskdbg:1 hold umem=1 n=1 a=1800"
            ],
            "{after:#?}"
        );
    }

    #[test]
    fn a_second_violation_inside_the_window_is_one_of_its_lines() {
        let w = PostTrigger {
            batches: 3,
            micros: 60_000_000,
        };
        let rec = recorder(w, DumpTarget::None);
        let u = rec.umem(UmemConfig::aligned(16, 2048)).unwrap();
        violate(&u);
        // The decisive second sign: two lines of the window (the hold, its
        // violation), then one more.
        u.hold(&[0]);
        assert_eq!(rec.violations(), 2);
        assert!(!rec.is_frozen(), "froze before the window's last line");
        u.hold(&[0x800]);
        assert!(rec.is_frozen(), "a second violation lengthened the window");
        let l = lines(&rec);
        let firsts: Vec<_> = l.iter().filter(|l| l.contains(" window=3:")).collect();
        assert_eq!(
            firsts.len(),
            2,
            "both violation lines say the window: {l:#?}"
        );
        assert_eq!(l.last().unwrap(), "xskdbg:1 hold umem=1 n=1 a=800");
    }

    #[test]
    fn a_zero_window_freezes_at_the_violation_and_says_no_window() {
        for w in [
            PostTrigger::NONE,
            PostTrigger {
                batches: 8,
                micros: 0,
            },
            PostTrigger {
                batches: 0,
                micros: 2000,
            },
        ] {
            let rec = recorder(w, DumpTarget::None);
            let u = rec.umem(UmemConfig::aligned(16, 2048)).unwrap();
            violate(&u);
            assert!(rec.is_frozen(), "{w}: not frozen at the violation");
            let l = lines(&rec);
            assert!(
                l.last().unwrap().starts_with("xskdbg:1 violation ")
                    && !l.last().unwrap().contains("window="),
                "{w}: {l:#?}"
            );
        }
    }

    #[test]
    fn the_timer_freezes_a_window_no_line_ends() {
        let w = PostTrigger {
            batches: 1000,
            micros: 20_000,
        };
        let rec = recorder(w, DumpTarget::None);
        let u = rec.umem(UmemConfig::aligned(16, 2048)).unwrap();
        violate(&u);
        assert!(!rec.is_frozen());
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !rec.is_frozen() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(rec.is_frozen(), "the timer never froze the buffer");
    }

    #[test]
    fn dropping_the_recorder_inside_the_window_freezes_it() {
        let dir = std::env::temp_dir().join(format!("xskdbg-window-drop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ring.txt");
        let w = PostTrigger {
            batches: 1000,
            micros: 60_000_000,
        };
        {
            let rec = recorder(w, DumpTarget::File(path.clone()));
            let u = rec.umem(UmemConfig::aligned(16, 2048)).unwrap();
            violate(&u);
            assert!(!path.exists(), "dumped before the freeze");
        }
        // The freeze dumps the memory ring: the drop froze it.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(" kind=duplicate_in_flight window=3e8:3938700 "),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn end_stops_the_lines_without_calling_it_a_freeze() {
        let rec = recorder(PostTrigger::NONE, DumpTarget::None);
        let u = rec.umem(UmemConfig::aligned(16, 2048)).unwrap();
        u.hold(&[0]);
        rec.end();
        rec.end();
        assert!(!rec.is_frozen(), "the owner's end is not a freeze");
        // Still checked and counted after the end, but not written.
        u.hold(&[0]);
        u.hold(&[0x800]);
        assert_eq!(rec.violations(), 1);
        let l = lines(&rec);
        assert_eq!(l.last().unwrap(), "xskdbg:1 hold umem=1 n=1 a=0", "{l:?}");
        assert!(!l.iter().any(|l| l.contains("violation")), "{l:?}");
        assert!(!rec.is_frozen(), "an ended recording has nothing to freeze");
        assert_eq!(rec.sink_errors(), 0);
    }

    #[test]
    fn a_panicking_policy_freezes_at_the_violation() {
        let rec = Recorder::new(
            RecorderConfig::new(SinkConfig::Memory { events: 64 })
                .policy(Policy::Panic)
                .post_trigger(PostTrigger::DEFAULT),
        )
        .unwrap();
        assert_eq!(rec.post_trigger(), PostTrigger::NONE);
        let u = rec.umem(UmemConfig::aligned(16, 2048)).unwrap();
        u.hold(&[0]);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| u.hold(&[0])));
        assert!(panicked.is_err());
        assert!(
            rec.is_frozen(),
            "the program may be gone before a window ends"
        );
        assert!(!lines(&rec).last().unwrap().contains("window="));
    }

    #[test]
    fn the_environment_overrides_and_a_bad_value_is_said() {
        let mut notes = Vec::new();
        let cfg = PostTrigger::DEFAULT;
        assert_eq!(window_from_env(None, cfg, &mut notes), cfg);
        assert!(notes.is_empty());
        let got = window_from_env(Some("0:0".as_ref()), cfg, &mut notes);
        assert_eq!(got, PostTrigger::NONE);
        assert!(
            notes[0].contains("$XSKDBG_POST_TRIGGER") && notes[0].contains("at the first"),
            "{notes:?}"
        );
        let got = window_from_env(Some("8ms".as_ref()), cfg, &mut notes);
        assert_eq!(got, cfg);
        assert!(
            notes[1].starts_with("$XSKDBG_POST_TRIGGER: \"8ms\" is not LINES:MICROS")
                && notes[1].contains("using the configured window 8:2000"),
            "{notes:?}"
        );
    }
}
