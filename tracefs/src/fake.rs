//! An in-memory tracefs for tests that must run without root.
//!
//! [`FakeSys`] implements [`Sys`](crate::Sys) over a map of paths. It models
//! what xskdbg relies on: `mkdir instances/<name>` creates a buffer with its
//! control files, `trace_marker` writes become `tracing_mark_write:` entries
//! in that buffer's `trace` (rendered the way ftrace prints them), a buffer
//! whose `tracing_on` is 0 answers marker writes with EBADF like the kernel,
//! writes over 4096 bytes are cut, `trace_clock` takes only known clocks.
//! Paths can be made to answer EACCES ([`FakeSys::deny`]) or an instance
//! EBUSY on rmdir ([`FakeSys::set_busy`]) to test error handling.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{RawWriter, Sys, TRACE_MARKER_MAX_SIZE};

const CLOCKS: [&str; 8] = [
    "local", "global", "counter", "uptime", "perf", "mono", "mono_raw", "boot",
];

/// Events every fake buffer offers (a few the project uses).
const EVENTS: [(&str, &str); 5] = [
    ("xdp", "xdp_exception"),
    ("xdp", "xdp_redirect"),
    ("xdp", "xdp_redirect_err"),
    ("napi", "napi_poll"),
    ("xsk", "xsk_packet_drop"),
];

#[derive(Debug, Default)]
struct BufState {
    entries: Vec<String>,
    written: u64,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: BTreeSet<PathBuf>,
    buffers: BTreeMap<PathBuf, BufState>,
    denied: BTreeSet<PathBuf>,
    busy: BTreeSet<PathBuf>,
    clock_us: u64,
}

/// In-memory tracefs rooted at one path.
#[derive(Debug, Clone)]
pub struct FakeSys {
    root: PathBuf,
    st: Arc<Mutex<State>>,
}

impl FakeSys {
    /// A fake tracefs mounted at `root` with a top-level buffer.
    pub fn new(root: impl Into<PathBuf>) -> FakeSys {
        let root = root.into();
        let s = FakeSys {
            root: root.clone(),
            st: Arc::new(Mutex::new(State {
                clock_us: 1_000_000_001,
                ..State::default()
            })),
        };
        {
            let mut st = s.lock();
            make_buffer(&mut st, &root);
            st.dirs.insert(root.join("instances"));
        }
        s
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable state.
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make every access to `path` fail with EACCES.
    pub fn deny(&self, path: impl Into<PathBuf>) {
        self.lock().denied.insert(path.into());
    }

    /// Make rmdir of `path` fail with EBUSY (an open file inside) or not.
    pub fn set_busy(&self, path: impl Into<PathBuf>, busy: bool) {
        let p = path.into();
        let mut st = self.lock();
        if busy {
            st.busy.insert(p);
        } else {
            st.busy.remove(&p);
        }
    }

    /// The root this fake is mounted at.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn make_buffer(st: &mut State, dir: &Path) {
    st.dirs.insert(dir.to_path_buf());
    for (f, v) in [
        ("trace", &b""[..]),
        ("trace_marker", b""),
        ("tracing_on", b"1\n"),
        ("buffer_size_kb", b"1408\n"),
        (
            "trace_clock",
            b"[local] global counter uptime perf mono mono_raw boot\n",
        ),
    ] {
        st.files.insert(dir.join(f), v.to_vec());
    }
    for (sys, ev) in EVENTS {
        let d = dir.join("events").join(sys).join(ev);
        st.dirs.insert(d.clone());
        st.files.insert(d.join("enable"), b"0\n".to_vec());
    }
    st.buffers.insert(dir.to_path_buf(), BufState::default());
}

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn render_trace(st: &State, dir: &Path) -> Vec<u8> {
    let b = st.buffers.get(dir);
    let (n, w) = b.map_or((0, 0), |b| (b.entries.len(), b.written));
    let mut out = format!(
        "# tracer: nop\n#\n# entries-in-buffer/entries-written: {n}/{w}   #P:1\n#\n\
         #                                _-----=> irqs-off/BH-disabled\n\
         #                               / _----=> need-resched\n\
         #                              | / _---=> hardirq/softirq\n\
         #                              || / _--=> preempt-depth\n\
         #                              ||| / _-=> migrate-disable\n\
         #                              |||| /     delay\n\
         #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
         #              | |         |   |||||     |         |\n"
    );
    if let Some(b) = b {
        for e in &b.entries {
            out.push_str(e);
        }
    }
    out.into_bytes()
}

fn tracing_on(st: &State, dir: &Path) -> bool {
    st.files
        .get(&dir.join("tracing_on"))
        .is_some_and(|v| v.first() == Some(&b'1'))
}

fn marker_write(st: &mut State, dir: &Path, data: &[u8]) -> io::Result<usize> {
    if !tracing_on(st, dir) {
        return Err(err(libc::EBADF));
    }
    let n = data.len().min(TRACE_MARKER_MAX_SIZE);
    let mut msg = String::from_utf8_lossy(&data[..n]).into_owned();
    if msg.ends_with('\n') {
        msg.pop();
    }
    st.clock_us += 1;
    let (s, us) = (st.clock_us / 1_000_000, st.clock_us % 1_000_000);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let line = format!(
        "            fake-{tid:<7} [000] ..... {s:>5}.{us:06}: tracing_mark_write: {msg}\n"
    );
    let b = st.buffers.entry(dir.to_path_buf()).or_default();
    b.entries.push(line);
    b.written += 1;
    Ok(n)
}

impl Sys for FakeSys {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let st = self.lock();
        if st.denied.contains(path) {
            return Err(err(libc::EACCES));
        }
        if path.file_name().is_some_and(|f| f == "trace") {
            if let Some(dir) = path.parent() {
                if st.buffers.contains_key(dir) {
                    return Ok(render_trace(&st, dir));
                }
            }
        }
        st.files.get(path).cloned().ok_or_else(|| err(libc::ENOENT))
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        if st.denied.contains(path) {
            return Err(err(libc::EACCES));
        }
        if !st.files.contains_key(path) {
            return Err(err(libc::ENOENT));
        }
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        let text = String::from_utf8_lossy(data).trim().to_string();
        match name {
            "trace" if st.buffers.contains_key(&dir) => {
                if let Some(b) = st.buffers.get_mut(&dir) {
                    b.entries.clear();
                }
            }
            "trace_marker" if st.buffers.contains_key(&dir) => {
                marker_write(&mut st, &dir, data)?;
            }
            "trace_clock" => {
                if !CLOCKS.contains(&text.as_str()) {
                    return Err(err(libc::EINVAL));
                }
                let line = CLOCKS
                    .iter()
                    .map(|c| {
                        if *c == text {
                            format!("[{c}]")
                        } else {
                            c.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                st.files
                    .insert(path.to_path_buf(), format!("{line}\n").into_bytes());
            }
            "tracing_on" | "enable" => {
                if text != "0" && text != "1" {
                    return Err(err(libc::EINVAL));
                }
                st.files.insert(path.to_path_buf(), data.to_vec());
            }
            "buffer_size_kb" => {
                if text.parse::<u64>().is_err() {
                    return Err(err(libc::EINVAL));
                }
                st.files.insert(path.to_path_buf(), data.to_vec());
            }
            _ => {
                st.files.insert(path.to_path_buf(), data.to_vec());
            }
        }
        Ok(())
    }

    fn open_writer(&self, path: &Path) -> io::Result<Box<dyn RawWriter>> {
        let st = self.lock();
        if st.denied.contains(path) {
            return Err(err(libc::EACCES));
        }
        if !st.files.contains_key(path) {
            return Err(err(libc::ENOENT));
        }
        Ok(Box::new(FakeWriter {
            sys: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if st.denied.contains(path) {
            return Err(err(libc::EACCES));
        }
        if st.dirs.contains(path) {
            return Err(err(libc::EEXIST));
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        if !st.dirs.contains(parent) {
            return Err(err(libc::ENOENT));
        }
        if parent == self.root.join("instances") {
            make_buffer(&mut st, path);
        } else {
            st.dirs.insert(path.to_path_buf());
        }
        Ok(())
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if st.denied.contains(path) {
            return Err(err(libc::EACCES));
        }
        if !st.dirs.contains(path) {
            return Err(err(libc::ENOENT));
        }
        if st.busy.contains(path) {
            return Err(err(libc::EBUSY));
        }
        st.dirs.retain(|d| !d.starts_with(path));
        st.files.retain(|f, _| !f.starts_with(path));
        st.buffers.remove(path);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.lock();
        st.dirs.contains(path) || st.files.contains_key(path)
    }
}

#[derive(Debug)]
struct FakeWriter {
    sys: FakeSys,
    path: PathBuf,
}

impl RawWriter for FakeWriter {
    fn write_once(&self, data: &[u8]) -> io::Result<usize> {
        let mut st = self.sys.lock();
        if !st.files.contains_key(&self.path) {
            // The instance was removed under us.
            return Err(err(libc::ENODEV));
        }
        let dir = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        marker_write(&mut st, &dir, data)
    }
}
