//! One recording session, the engine of `xskdbg record`: an `xskdbg-`
//! instance, probes attached, the `probe` header line written, an optional
//! command run with `XSKDBG_TRACEFS`/`XSKDBG_INSTANCE` in its environment,
//! a wait for a stop condition (freeze, stop request, command exit,
//! duration), then freeze, detach and an atomic save of the trace. Every
//! guard (links, kprobe events, tracefs settings, the instance) is released
//! on every path, errors and panics included.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use xskdbg_tracefs::TraceFs;

use crate::attach::{attach, Output, Request};
use crate::backend::Backend;
use crate::error::{ProbeError, Result};
use crate::filter::Filters;
use crate::kprobe_events::GROUP;

/// What to record.
#[derive(Debug, Clone)]
pub struct SessionOpts {
    /// Backend (or auto).
    pub backend: Backend,
    /// Socket filters.
    pub filters: Filters,
    /// Instance name; must start with `xskdbg-`.
    pub instance: String,
    /// Per-CPU buffer size in KiB.
    pub buffer_kb: u64,
    /// Where the trace is saved (atomically).
    pub out: PathBuf,
    /// Command and arguments to run while recording (may be empty).
    pub command: Vec<String>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Record kernel stacks (`kstack`/`kstackdef` lines).
    pub stacks: bool,
    /// How the BPF backends write their events.
    pub output: Output,
    /// More environment for the command (`XSKDBG_POST_TRIGGER` from
    /// `record --post-trigger`), besides `XSKDBG_TRACEFS`/`XSKDBG_INSTANCE`.
    pub env: Vec<(String, String)>,
}

/// Why recording stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// tracing_on of the instance went to 0 (the application froze it).
    Freeze,
    /// The caller's stop check said so (Ctrl-C).
    Requested,
    /// The command exited.
    Exit,
    /// The duration elapsed.
    Duration,
}

impl Stop {
    /// A human description.
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Freeze => "tracing was frozen (tracing_on went to 0)",
            Stop::Requested => "interrupted",
            Stop::Exit => "the command exited",
            Stop::Duration => "the duration elapsed",
        }
    }
}

/// What a session did.
#[derive(Debug)]
pub struct Outcome {
    /// Why it stopped.
    pub stop: Stop,
    /// The backend that recorded.
    pub backend: Backend,
    /// Notes of the attach step (auto's choice, skipped probes).
    pub notes: Vec<String>,
    /// How the command ended, if one ran.
    pub command_status: Option<ExitStatus>,
}

/// Runs a session. `progress` gets one-line messages for the user;
/// `stop_requested` is polled every 50 ms.
pub fn record(
    opts: &SessionOpts,
    progress: &mut dyn FnMut(&str),
    stop_requested: &dyn Fn() -> bool,
) -> Result<Outcome> {
    if !opts.instance.starts_with("xskdbg-") {
        return Err(ProbeError::Usage(format!(
            "instance {:?} must start with xskdbg- (so `xskdbg probes detach --all` finds leftovers)",
            opts.instance
        )));
    }
    let tfs = TraceFs::find()?;
    let inst = tfs.create_instance(&opts.instance)?;
    let buf = inst.buffer();
    buf.set_buffer_size_kb(opts.buffer_kb)?;
    // On purpose, whatever the output: `mono` orders events of different
    // CPUs (the default `local` does not), and drained records carry its
    // stamps. Set before the first line (a change empties the buffer); the
    // instance goes away with the session, so nothing to restore.
    crate::attach::use_mono_clock(&buf)?;
    let mut probes = attach(&Request {
        backend: opts.backend,
        filters: opts.filters.clone(),
        buffer: buf.clone(),
        group: GROUP.into(),
        stacks: opts.stacks,
        output: opts.output,
    })?;
    let marker = buf.open_marker()?;
    marker.write(probes.header_line().as_bytes())?;
    progress(&format!(
        "recording into instance {} with backend {} ({} probes)",
        opts.instance,
        probes.backend(),
        probes.probe_count()
    ));
    for n in probes.notes() {
        progress(n);
    }
    let mut child = match opts.command.split_first() {
        Some((prog, rest)) => Some(
            Command::new(prog)
                .args(rest)
                .env("XSKDBG_TRACEFS", tfs.root())
                .env("XSKDBG_INSTANCE", &opts.instance)
                .envs(opts.env.iter().map(|(k, v)| (k, v)))
                .spawn()
                .map_err(|e| ProbeError::Io {
                    op: "run the command",
                    path: PathBuf::from(prog),
                    source: e,
                })?,
        ),
        None => {
            progress("no command given: recording until the trace freezes or Ctrl-C");
            None
        }
    };
    // From here on the child must be ended on every path.
    let waited = wait_stop(opts, &buf, &probes, child.as_mut(), stop_requested);
    // The kernel records still in the ring buffers go in before the freeze;
    // if the application froze the buffer, the drainers complete its freeze
    // with the records up to it (crate::drain).
    let drained = probes.finish_drain();
    // Stack definitions go into the buffer last, while it still records.
    for l in probes.stack_lines() {
        let _ = marker.write(l.as_bytes());
    }
    let freeze = buf.set_tracing_on(false);
    // Read before detaching: removing a kprobe event (tracefs backend)
    // resets every ring buffer of the system.
    let trace = buf.read_trace();
    let backend = probes.backend();
    let mut notes = probes.notes().to_vec();
    if let Some(d) = drained {
        notes.extend(d.problems);
        if d.lost > 0 {
            notes.push(format!(
                "{} kernel records were lost (a ring buffer was full; --buffer-kb does not size them)",
                d.lost
            ));
        }
    }
    drop(probes);
    let mut status = match &waited {
        Ok((_, st)) => *st,
        Err(_) => None,
    };
    if let Some(c) = child.as_mut() {
        if status.is_none() {
            status = end_child(c).ok();
        }
    }
    let (stop, _) = waited?;
    freeze?;
    drop(marker);
    save_atomically(&trace?, &opts.out)?;
    inst.remove()?;
    Ok(Outcome {
        stop,
        backend,
        notes,
        command_status: status,
    })
}

fn wait_stop(
    opts: &SessionOpts,
    buf: &xskdbg_tracefs::Buffer,
    probes: &crate::attach::Attached,
    mut child: Option<&mut Child>,
    stop_requested: &dyn Fn() -> bool,
) -> Result<(Stop, Option<ExitStatus>)> {
    let start = Instant::now();
    let mut last_refresh = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if stop_requested() {
            return Ok((Stop::Requested, None));
        }
        if !buf.tracing_on()? {
            return Ok((Stop::Freeze, None));
        }
        if let Some(c) = child.as_deref_mut() {
            let st = c.try_wait().map_err(|e| ProbeError::Io {
                op: "wait for the command",
                path: PathBuf::from(opts.command.first().map(String::as_str).unwrap_or("")),
                source: e,
            })?;
            if let Some(st) = st {
                return Ok((Stop::Exit, Some(st)));
            }
        }
        if opts.duration.is_some_and(|d| start.elapsed() >= d) {
            return Ok((Stop::Duration, None));
        }
        if last_refresh.elapsed() >= Duration::from_millis(200) {
            probes.refresh_pid_filter()?;
            last_refresh = Instant::now();
        }
    }
}

/// Asks the command to stop (SIGTERM), then kills it after 5 s.
fn end_child(c: &mut Child) -> std::io::Result<ExitStatus> {
    if let Ok(pid) = libc::pid_t::try_from(c.id()) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Some(st) = c.try_wait()? {
            return Ok(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.kill()?;
    c.wait()
}

/// Writes `data` to a temporary file next to `out`, then renames it over.
pub fn save_atomically(data: &[u8], out: &Path) -> Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |op, path: &Path, source| ProbeError::Io {
        op,
        path: path.to_path_buf(),
        source,
    };
    let file = out
        .file_name()
        .ok_or_else(|| ProbeError::Usage(format!("--out {}: not a file name", out.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, data).map_err(|e| io("write", &tmp, e))?;
    std::fs::rename(&tmp, out).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("rename into place", out, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_is_atomic() {
        let d = std::env::temp_dir().join(format!("xskdbg-probes-save-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("t.txt");
        save_atomically(b"abc", &p).unwrap();
        save_atomically(b"abcd", &p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "temp file left");
        assert!(save_atomically(b"x", &d.join("missing/t.txt")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn instance_prefix_is_required() {
        let o = SessionOpts {
            backend: Backend::Tracepoint,
            filters: Filters::default(),
            instance: "mine".into(),
            buffer_kb: 1024,
            out: "/tmp/x".into(),
            command: vec![],
            duration: None,
            stacks: false,
            output: Output::Ring,
            env: Vec::new(),
        };
        let e = record(&o, &mut |_| {}, &|| true).unwrap_err().to_string();
        assert!(e.contains("xskdbg-"), "{e}");
    }
}
