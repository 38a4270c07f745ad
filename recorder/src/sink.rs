//! Where lines go: nowhere, an in-memory ring of the last N lines, or the
//! `trace_marker` of an ftrace buffer.
//!
//! Opening a trace_marker sink decides where: the instance named in the
//! program's configuration wins, else `$XSKDBG_INSTANCE` (which `xskdbg
//! record` sets for the command it runs), else the top-level buffer; tracefs
//! is looked for at `$XSKDBG_TRACEFS`, the usual places and the mount table,
//! and mounted when `ip netns exec` hid it. A buffer found frozen (an earlier
//! run's violation left `tracing_on` at 0) is said so, and re-armed only when
//! asked to.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use xskdbg_tracefs::{Buffer, Located, Marker, RealSys, Sys, TraceFs, MOUNT_POINTS};

use crate::sys;
use crate::types::{Error, SinkConfig};

/// The tracefs mount `xskdbg record` passes to the command it runs.
pub const ENV_TRACEFS: &str = "XSKDBG_TRACEFS";
/// The ftrace instance `xskdbg record` passes to the command it runs.
pub const ENV_INSTANCE: &str = "XSKDBG_INSTANCE";

/// Bytes of line text the memory ring keeps per line on average.
const MEM_BYTES_PER_EVENT: usize = 512;

#[derive(Debug, Clone, Copy)]
struct Rec {
    ts_ns: u64,
    tid: u32,
    off: usize,
    len: usize,
}

/// The last N lines, in a byte ring allocated once.
#[derive(Debug)]
pub struct MemRing {
    bytes: Box<[u8]>,
    recs: VecDeque<Rec>,
    max_recs: usize,
    w: usize,
    written: u64,
}

impl MemRing {
    /// A ring for `events` lines.
    pub fn new(events: usize) -> MemRing {
        let events = events.max(1);
        MemRing {
            bytes: vec![0; (events * MEM_BYTES_PER_EVENT).max(crate::line::LINE_MAX)]
                .into_boxed_slice(),
            recs: VecDeque::with_capacity(events),
            max_recs: events,
            w: 0,
            written: 0,
        }
    }

    /// Store one line (without its newline), evicting the oldest as needed.
    pub fn push(&mut self, ts_ns: u64, tid: u32, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let len = line.len().min(self.bytes.len());
        if self.w + len > self.bytes.len() {
            // Wrap: the records past `w` are the oldest; drop them.
            while self.recs.front().is_some_and(|r| r.off >= self.w) {
                self.recs.pop_front();
            }
            self.w = 0;
        }
        let (start, end) = (self.w, self.w + len);
        while self
            .recs
            .front()
            .is_some_and(|r| r.off < end && start < r.off + r.len)
        {
            self.recs.pop_front();
        }
        if self.recs.len() == self.max_recs {
            self.recs.pop_front();
        }
        self.bytes[start..end].copy_from_slice(&line[..len]);
        self.recs.push_back(Rec {
            ts_ns,
            tid,
            off: start,
            len,
        });
        self.w = end;
        self.written += 1;
    }

    /// Lines held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    /// The lines, oldest first.
    #[cfg(test)]
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.recs.iter().map(|r| &self.bytes[r.off..r.off + r.len])
    }

    /// Render as an ftrace `trace` file: header, then one
    /// `tracing_mark_write:` entry per line, so `xskdbg analyze` reads it.
    pub fn render(&self, comm: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.recs.len() * 128 + 512);
        out.extend_from_slice(
            format!(
                "# tracer: nop\n#\n# entries-in-buffer/entries-written: {}/{}   #P:1\n#\n\
                 #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
                 #              | |         |   |||||     |         |\n",
                self.recs.len(),
                self.written
            )
            .as_bytes(),
        );
        for r in &self.recs {
            let secs = r.ts_ns / 1_000_000_000;
            let us = (r.ts_ns % 1_000_000_000) / 1000;
            out.extend_from_slice(
                format!(
                    "{:>16}-{:<7} [000] ..... {secs:>6}.{us:06}: tracing_mark_write: ",
                    comm, r.tid
                )
                .as_bytes(),
            );
            out.extend_from_slice(&self.bytes[r.off..r.off + r.len]);
            out.push(b'\n');
        }
        out
    }
}

/// A sink in use.
#[derive(Debug)]
pub enum Sink {
    /// Lines are not written.
    Null,
    /// The last N lines in memory.
    Memory {
        /// The ring.
        ring: Mutex<MemRing>,
        /// Set on freeze: the ring keeps what led up to the violation.
        frozen: AtomicBool,
        /// Process name for rendering.
        comm: String,
    },
    /// `trace_marker` of an ftrace buffer.
    Marker {
        /// Opened once.
        marker: Marker,
        /// The buffer, for `tracing_on`.
        buffer: Buffer,
    },
}

fn comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim().replace(' ', "_"))
        .unwrap_or_else(|_| "app".to_string())
}

/// A sink just opened, with what opening it had to say.
#[derive(Debug)]
pub struct Opened {
    /// The sink.
    pub sink: Sink,
    /// Sentences for stderr: how tracefs was found, which instance and why,
    /// a frozen buffer.
    pub notes: Vec<String>,
    /// The buffer was frozen and stays so: nothing will be written.
    pub frozen: bool,
}

/// The instance to write to: the configuration's, else the environment's
/// (non-empty), else the top-level buffer; with a note when the two
/// disagree or the environment chose.
pub fn choose_instance(
    configured: Option<&str>,
    env: Option<&str>,
) -> (Option<String>, Option<String>) {
    let env = env.filter(|e| !e.is_empty());
    match (configured, env) {
        (Some(c), Some(e)) if c != e => (
            Some(c.to_string()),
            Some(format!(
                "writing to ftrace instance {c} as the program's configuration says, not to \
                 ${ENV_INSTANCE}={e}: a recording that reads {e} (xskdbg record) will not see these lines"
            )),
        ),
        (Some(c), _) => (Some(c.to_string()), None),
        (None, Some(e)) => (
            Some(e.to_string()),
            Some(format!("writing to ftrace instance {e} (from ${ENV_INSTANCE})")),
        ),
        (None, None) => (None, None),
    }
}

impl Sink {
    /// Open the sink a configuration names; `rearm` turns a frozen buffer
    /// back on.
    pub fn open(cfg: &SinkConfig, rearm: bool) -> Result<Opened, Error> {
        Self::open_with(cfg, rearm, &|k| std::env::var(k).ok(), Arc::new(RealSys))
    }

    /// [`Sink::open`] with the environment and the tracefs seam given.
    pub fn open_with(
        cfg: &SinkConfig,
        rearm: bool,
        env: &dyn Fn(&str) -> Option<String>,
        sys: Arc<dyn Sys>,
    ) -> Result<Opened, Error> {
        let mut notes = Vec::new();
        let buffer = match cfg {
            SinkConfig::Null => {
                return Ok(Opened {
                    sink: Sink::Null,
                    notes,
                    frozen: false,
                })
            }
            SinkConfig::Memory { events } => {
                return Ok(Opened {
                    sink: Sink::Memory {
                        ring: Mutex::new(MemRing::new(*events)),
                        frozen: AtomicBool::new(false),
                        comm: comm(),
                    },
                    notes,
                    frozen: false,
                })
            }
            SinkConfig::TraceMarker { instance } => {
                let given = env(ENV_TRACEFS).filter(|g| !g.is_empty());
                let (fs, how) =
                    TraceFs::locate_with(sys, given.as_deref().map(Path::new), &MOUNT_POINTS)?;
                let at = fs.root().display();
                match how {
                    Located::Given | Located::Usual => {}
                    Located::MountTable => {
                        notes.push(format!("tracefs found at {at} (from the mount table)"))
                    }
                    Located::MountedNow => notes.push(format!(
                        "tracefs was not mounted in this mount namespace (`ip netns exec` remounts /sys); mounted it at {at}"
                    )),
                }
                if let (Some(g), Located::Usual | Located::MountTable | Located::MountedNow) =
                    (&given, how)
                {
                    notes.push(format!(
                        "${ENV_TRACEFS}={g} holds no tracefs in this mount namespace; using {at}"
                    ));
                }
                let (chosen, note) =
                    choose_instance(instance.as_deref(), env(ENV_INSTANCE).as_deref());
                notes.extend(note);
                fs.buffer(chosen.as_deref())?
            }
            SinkConfig::Buffer(b) => b.clone(),
        };
        let mut frozen = false;
        if let Ok(false) = buffer.tracing_on() {
            let on = buffer.path("tracing_on");
            if rearm {
                buffer.set_tracing_on(true)?;
                notes.push(format!(
                    "{} was frozen (tracing_on was 0, probably by an earlier run's violation); re-armed it as configured",
                    buffer.dir().display()
                ));
            } else {
                frozen = true;
                notes.push(format!(
                    "{} is frozen (tracing_on is 0, probably by an earlier run's violation): nothing this run \
                     checks will be written to it. Save its trace if you need it, then `echo 1 > {}`, or set \
                     the recorder's rearm option",
                    buffer.dir().display(),
                    on.display()
                ));
            }
        }
        Ok(Opened {
            sink: Sink::Marker {
                marker: buffer.open_marker()?,
                buffer,
            },
            notes,
            frozen,
        })
    }

    /// Where lines go, for messages.
    pub fn describe(&self) -> String {
        match self {
            Sink::Null => "the null sink".into(),
            Sink::Memory { .. } => "the memory ring".into(),
            Sink::Marker { buffer, .. } => format!("the ftrace buffer {}", buffer.dir().display()),
        }
    }

    /// Whether lines are dropped anyway (then they are not even formatted).
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self, Sink::Null)
    }

    /// Write one line; the error is a message for the error counter.
    #[inline]
    pub fn write(&self, line: &[u8]) -> Result<(), xskdbg_tracefs::Error> {
        match self {
            Sink::Null => Ok(()),
            Sink::Memory { ring, frozen, .. } => {
                if !frozen.load(Ordering::Relaxed) {
                    let ts = sys::monotonic_ns();
                    let tid = crate::on::os_tid();
                    ring.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(ts, tid, line);
                }
                Ok(())
            }
            Sink::Marker { marker, .. } => marker.write(line),
        }
    }

    /// Stop recording so the buffer keeps what led up to now.
    pub fn freeze(&self) -> Result<(), xskdbg_tracefs::Error> {
        match self {
            Sink::Null => Ok(()),
            Sink::Memory { frozen, .. } => {
                frozen.store(true, Ordering::Relaxed);
                Ok(())
            }
            Sink::Marker { buffer, .. } => buffer.set_tracing_on(false),
        }
    }

    /// The memory ring rendered as an ftrace trace (empty for other sinks).
    pub fn dump(&self) -> Vec<u8> {
        match self {
            Sink::Memory { ring, comm, .. } => {
                ring.lock().unwrap_or_else(|p| p.into_inner()).render(comm)
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xskdbg_tracefs::fake::FakeSys;

    #[test]
    fn the_configured_instance_wins_then_the_environment() {
        assert_eq!(choose_instance(None, None), (None, None));
        assert_eq!(choose_instance(None, Some("")).0, None);
        let (i, note) = choose_instance(None, Some("xskdbg-rec-7"));
        assert_eq!(i.as_deref(), Some("xskdbg-rec-7"));
        assert!(note.unwrap().contains("XSKDBG_INSTANCE"));
        let (i, note) = choose_instance(Some("mine"), Some("xskdbg-rec-7"));
        assert_eq!(i.as_deref(), Some("mine"));
        let note = note.unwrap();
        assert!(
            note.contains("will not see") && note.contains("xskdbg-rec-7"),
            "{note}"
        );
        assert_eq!(
            choose_instance(Some("mine"), Some("mine")),
            (Some("mine".into()), None)
        );
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn written(sys: &FakeSys, buffer: &str) -> String {
        String::from_utf8(sys.read(&Path::new(buffer).join("trace")).unwrap()).unwrap()
    }

    #[test]
    fn a_marker_sink_follows_xskdbg_record_into_its_instance() {
        let sys = FakeSys::unmounted("/sys/kernel/tracing");
        sys.mkdir(Path::new("/sys/kernel/tracing/instances/xskdbg-rec-9"))
            .unwrap();
        let env = env_of(&[
            (ENV_TRACEFS, "/sys/kernel/tracing"),
            (ENV_INSTANCE, "xskdbg-rec-9"),
        ]);
        let cfg = SinkConfig::TraceMarker { instance: None };
        let o = Sink::open_with(&cfg, false, &env, Arc::new(sys.clone())).unwrap();
        assert!(!o.frozen);
        assert!(
            o.notes
                .iter()
                .any(|n| n.contains("mounted it at /sys/kernel/tracing")),
            "{:?}",
            o.notes
        );
        assert!(
            o.notes.iter().any(|n| n.contains("xskdbg-rec-9")),
            "{:?}",
            o.notes
        );
        o.sink.write(b"xskdbg:1 hold n=1 a=1000").unwrap();
        let t = written(&sys, "/sys/kernel/tracing/instances/xskdbg-rec-9");
        assert!(t.contains("xskdbg:1 hold n=1 a=1000"), "{t}");
        assert!(!written(&sys, "/sys/kernel/tracing").contains("hold"));
    }

    #[test]
    fn a_frozen_buffer_is_said_and_rearmed_only_when_asked() {
        let sys = FakeSys::new("/t");
        let fs = TraceFs::at_with(Arc::new(sys.clone()), "/t").unwrap();
        let b = fs.top();
        b.set_tracing_on(false).unwrap();
        let none = |_: &str| None;
        let cfg = SinkConfig::Buffer(b.clone());
        let o = Sink::open_with(&cfg, false, &none, Arc::new(sys.clone())).unwrap();
        assert!(o.frozen);
        let n = o.notes.join(" ");
        assert!(
            n.contains("is frozen") && n.contains("echo 1 > /t/tracing_on") && n.contains("rearm"),
            "{n}"
        );
        assert!(!b.tracing_on().unwrap());
        let o = Sink::open_with(&cfg, true, &none, Arc::new(sys.clone())).unwrap();
        assert!(!o.frozen);
        assert!(o.notes.join(" ").contains("re-armed"), "{:?}", o.notes);
        assert!(b.tracing_on().unwrap());
    }

    #[test]
    fn ring_keeps_the_last_lines_across_wraps() {
        let mut r = MemRing::new(4);
        for i in 0..1000u32 {
            let line = format!(
                "xskdbg:1 hold n=1 a={i:x} pad={}",
                "x".repeat((i % 300) as usize)
            );
            r.push(u64::from(i) * 1000, 7, line.as_bytes());
            assert!(r.len() <= 4);
            let last = r.lines().last().unwrap();
            assert_eq!(last, line.as_bytes());
        }
        let lines: Vec<String> = r
            .lines()
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect();
        // Consecutive, ending with the last one written.
        assert!(lines
            .last()
            .unwrap()
            .starts_with("xskdbg:1 hold n=1 a=3e7 "));
        for w in lines.windows(2) {
            let num = |l: &str| {
                u32::from_str_radix(l.split(' ').nth(3).unwrap().strip_prefix("a=").unwrap(), 16)
                    .unwrap()
            };
            let (a, b) = (num(&w[0]), num(&w[1]));
            assert_eq!(a + 1, b, "{lines:?}");
        }
    }

    #[test]
    fn render_looks_like_ftrace() {
        let mut r = MemRing::new(8);
        r.push(1_234_567_890_123, 42, b"xskdbg:1 hold n=1 a=1000\n");
        let s = String::from_utf8(r.render("fwd")).unwrap();
        assert!(s.starts_with("# tracer: nop\n"));
        assert!(
            s.contains("             fwd-42      [000] .....   1234.567890: tracing_mark_write: xskdbg:1 hold n=1 a=1000\n"),
            "{s}"
        );
    }
}
