//! The recorder itself: its sink, policy and counters, shared by every
//! UMEM, pool and socket registered through it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lock;
use crate::sink::Sink;
use crate::types::{DumpTarget, Error, Policy, RecorderConfig, Violation};

/// What every handle of one recorder shares.
pub(super) struct RecInner {
    pub(super) sink: Sink,
    pub(super) policy: Policy,
    pub(super) dump: DumpTarget,
    pub(super) freeze: bool,
    pub(super) stacks: bool,
    /// A violation froze the buffer (or someone else did): lines stop.
    pub(super) frozen: AtomicBool,
    pub(super) violations: AtomicU64,
    pub(super) recycled: AtomicU64,
    pub(super) sink_errors: AtomicU64,
    pub(super) last_sink_error: Mutex<Option<String>>,
    pub(super) last_violation: Mutex<Option<Violation>>,
    /// Numbers of the next UMEM, pool and socket in trace lines.
    pub(super) next_umem: AtomicU32,
    pub(super) next_pool: AtomicU32,
    pub(super) next_sock: AtomicU32,
}

impl RecInner {
    /// Whether lines should be formatted and written at all.
    #[inline]
    pub(super) fn writing(&self) -> bool {
        !self.sink.is_null() && !self.frozen.load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn write(&self, line: &[u8]) {
        if let Err(e) = self.sink.write(line) {
            if e.is_buffer_off() {
                // Someone (another recorder, a user) froze the buffer: stop writing.
                self.frozen.store(true, Ordering::Relaxed);
                return;
            }
            self.sink_error(e.to_string());
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
        let sink = Sink::open(&cfg.sink)?;
        Ok(Recorder {
            inner: Arc::new(RecInner {
                sink,
                policy: cfg.policy,
                dump: cfg.dump,
                freeze: cfg.freeze,
                stacks: cfg.stacks,
                frozen: AtomicBool::new(false),
                violations: AtomicU64::new(0),
                recycled: AtomicU64::new(0),
                sink_errors: AtomicU64::new(0),
                last_sink_error: Mutex::new(None),
                last_violation: Mutex::new(None),
                next_umem: AtomicU32::new(1),
                next_pool: AtomicU32::new(1),
                next_sock: AtomicU32::new(1),
            }),
        })
    }

    /// Violations seen so far.
    pub fn violations(&self) -> u64 {
        self.inner.violations.load(Ordering::Relaxed)
    }

    /// FILL→RX mismatches explained by the kernel's free-list recycling.
    pub fn recycled(&self) -> u64 {
        self.inner.recycled.load(Ordering::Relaxed)
    }

    /// Sink writes that failed (other than after a freeze).
    pub fn sink_errors(&self) -> u64 {
        self.inner.sink_errors.load(Ordering::Relaxed)
    }

    /// The last sink error message.
    pub fn last_sink_error(&self) -> Option<String> {
        lock(&self.inner.last_sink_error).clone()
    }

    /// The most recent violation.
    pub fn last_violation(&self) -> Option<Violation> {
        lock(&self.inner.last_violation).clone()
    }

    /// Whether the buffer was frozen by a violation.
    pub fn is_frozen(&self) -> bool {
        self.inner.frozen.load(Ordering::Relaxed)
    }

    /// The memory ring as an ftrace `trace` text (empty for other sinks).
    pub fn dump(&self) -> Vec<u8> {
        self.inner.sink.dump()
    }
}
