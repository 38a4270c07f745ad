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
//!
//! With [`FakeSys::with_kprobe_events`] it also has `kprobe_events`: each
//! appended `p:`/`r:GROUP/NAME FUNC ...` line defines an event whose
//! `enable` and `filter` appear in every buffer, `-:GROUP/NAME` removes it
//! (EBUSY while a buffer enables it, ENOENT when undefined), a truncating
//! write removes them all, and a probe on a function marked with
//! [`FakeSys::refuse_probes_on`] is refused with ENOENT as the kernel
//! refuses an unknown symbol. A `filter` written `0` reads back `none`.

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
    /// `kprobe_events` exists.
    kprobe_events: bool,
    /// tracefs is not mounted at the root yet (a mount namespace where
    /// `ip netns exec` remounted /sys): nothing under it exists until
    /// [`Sys::mount_tracefs`] mounts it.
    unmounted: bool,
    /// [`Sys::mount_tracefs`] fails with EPERM (not root).
    mount_denied: bool,
    /// Defined kprobe events: `group/name` → their definition line.
    kprobes: BTreeMap<String, String>,
    /// Functions the kernel refuses kprobes on.
    refused_funcs: BTreeSet<String>,
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

    /// A fake whose tracefs is not mounted at `root` yet (what a process in
    /// `ip netns exec` sees): paths under `root` do not exist until
    /// [`Sys::mount_tracefs`] mounts it there.
    pub fn unmounted(root: impl Into<PathBuf>) -> FakeSys {
        let s = FakeSys::new(root);
        s.lock().unmounted = true;
        s
    }

    /// Make [`Sys::mount_tracefs`] fail with EPERM, as for a user without
    /// CAP_SYS_ADMIN.
    pub fn deny_mount(&self) {
        self.lock().mount_denied = true;
    }

    /// Put a file outside tracefs (e.g. `/proc/self/mounts`).
    pub fn put_file(&self, path: impl Into<PathBuf>, data: &[u8]) {
        self.lock().files.insert(path.into(), data.to_vec());
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

    /// The same fake with `kprobe_events` (a kernel with CONFIG_KPROBE_EVENTS).
    pub fn with_kprobe_events(self) -> FakeSys {
        {
            let mut st = self.lock();
            st.kprobe_events = true;
            st.files.insert(self.root.join("kprobe_events"), Vec::new());
        }
        self
    }

    /// Make kprobe definitions on function `func` fail with ENOENT.
    pub fn refuse_probes_on(&self, func: impl Into<String>) {
        self.lock().refused_funcs.insert(func.into());
    }

    /// The kprobe events defined now (`group/name`), sorted.
    pub fn kprobes(&self) -> Vec<String> {
        self.lock().kprobes.keys().cloned().collect()
    }

    fn is_kprobe_events(&self, path: &Path) -> bool {
        path == self.root.join("kprobe_events")
    }
}

fn kprobe_event_dir(buffer: &Path, event: &str) -> PathBuf {
    buffer.join("events").join(event)
}

fn add_kprobe_files(st: &mut State, buffer: &Path, event: &str) {
    let d = kprobe_event_dir(buffer, event);
    if let Some(group) = d.parent() {
        st.dirs.insert(group.to_path_buf());
    }
    st.dirs.insert(d.clone());
    st.files.insert(d.join("enable"), b"0\n".to_vec());
    st.files.insert(d.join("filter"), b"none\n".to_vec());
}

/// One line written to `kprobe_events`, as the kernel takes it.
fn kprobe_write(st: &mut State, line: &[u8]) -> io::Result<()> {
    let text = String::from_utf8_lossy(line).trim().to_string();
    let buffers: Vec<PathBuf> = st.buffers.keys().cloned().collect();
    if let Some(event) = text.strip_prefix("-:") {
        let event = event.trim().to_string();
        if !st.kprobes.contains_key(&event) {
            return Err(err(libc::ENOENT));
        }
        let enabled = buffers.iter().any(|b| {
            st.files
                .get(&kprobe_event_dir(b, &event).join("enable"))
                .is_some_and(|v| v.first() == Some(&b'1'))
        });
        if enabled {
            return Err(err(libc::EBUSY));
        }
        st.kprobes.remove(&event);
        for b in buffers {
            let d = kprobe_event_dir(&b, &event);
            st.dirs.retain(|p| !p.starts_with(&d));
            st.files.retain(|p, _| !p.starts_with(&d));
        }
        return Ok(());
    }
    let mut words = text.split_whitespace();
    let (Some(head), Some(func)) = (words.next(), words.next()) else {
        return Err(err(libc::EINVAL));
    };
    let Some(event) = head.strip_prefix("p:").or_else(|| head.strip_prefix("r:")) else {
        return Err(err(libc::EINVAL));
    };
    if !event.contains('/') {
        return Err(err(libc::EINVAL));
    }
    if st.refused_funcs.contains(func) {
        return Err(err(libc::ENOENT));
    }
    if st.kprobes.contains_key(event) {
        return Err(err(libc::EEXIST));
    }
    st.kprobes.insert(event.to_string(), text.clone());
    for b in buffers {
        add_kprobe_files(st, &b, event);
    }
    Ok(())
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
    st.dirs.insert(dir.join("events"));
    for (sys, ev) in EVENTS {
        st.dirs.insert(dir.join("events").join(sys));
        let d = dir.join("events").join(sys).join(ev);
        st.dirs.insert(d.clone());
        st.files.insert(d.join("enable"), b"0\n".to_vec());
    }
    let kprobes: Vec<String> = st.kprobes.keys().cloned().collect();
    for ev in kprobes {
        add_kprobe_files(st, dir, &ev);
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
        if self.is_kprobe_events(path) && st.kprobe_events {
            let text: String = st.kprobes.values().map(|l| format!("{l}\n")).collect();
            return Ok(text.into_bytes());
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
        if self.is_kprobe_events(path) {
            // Opening with O_TRUNC removes every kprobe event first.
            let all: Vec<String> = st.kprobes.keys().cloned().collect();
            for ev in all {
                kprobe_write(&mut st, format!("-:{ev}").as_bytes())?;
            }
            return if data.iter().all(u8::is_ascii_whitespace) {
                Ok(())
            } else {
                kprobe_write(&mut st, data)
            };
        }
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        let text = String::from_utf8_lossy(data).trim().to_string();
        match name {
            "filter" if text == "0" => {
                st.files.insert(path.to_path_buf(), b"none\n".to_vec());
            }
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
        if st.unmounted && path.starts_with(&self.root) {
            return false;
        }
        st.dirs.contains(path) || st.files.contains_key(path)
    }

    fn mount_tracefs(&self, at: &Path) -> io::Result<()> {
        let mut st = self.lock();
        if st.mount_denied {
            return Err(err(libc::EPERM));
        }
        if at != self.root {
            return Err(err(libc::ENOENT));
        }
        st.unmounted = false;
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = self.lock();
        if st.denied.contains(path) {
            return Err(err(libc::EACCES));
        }
        if !st.dirs.contains(path) {
            return Err(err(libc::ENOENT));
        }
        let children = st.dirs.iter().chain(st.files.keys());
        let mut names: Vec<String> = children
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
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
        if self.sys.is_kprobe_events(&self.path) {
            kprobe_write(&mut st, data)?;
            return Ok(data.len());
        }
        let dir = self.path.parent().unwrap_or(Path::new("/")).to_path_buf();
        marker_write(&mut st, &dir, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enable(sys: &FakeSys, buffer: &str, event: &str, v: &[u8]) -> io::Result<()> {
        sys.write(
            &Path::new(buffer).join("events").join(event).join("enable"),
            v,
        )
    }

    #[test]
    fn kprobe_events_define_and_remove_events_in_every_buffer() {
        let sys = FakeSys::new("/t").with_kprobe_events();
        let ke = Path::new("/t/kprobe_events");
        let w = sys.open_writer(ke).unwrap();
        w.write_once(b"p:xskdbg/a func_a x=%di:x64").unwrap();
        sys.mkdir(Path::new("/t/instances/i")).unwrap();
        // Events defined before an instance exists appear in it too.
        assert!(sys.exists(Path::new("/t/instances/i/events/xskdbg/a/enable")));
        assert_eq!(sys.read(ke).unwrap(), b"p:xskdbg/a func_a x=%di:x64\n");
        assert_eq!(
            w.write_once(b"p:xskdbg/a func_a")
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EEXIST)
        );
        sys.refuse_probes_on("nosuch");
        assert_eq!(
            w.write_once(b"p:xskdbg/b nosuch")
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENOENT)
        );
        // An enabled event is busy.
        enable(&sys, "/t/instances/i", "xskdbg/a", b"1").unwrap();
        assert_eq!(
            w.write_once(b"-:xskdbg/a").unwrap_err().raw_os_error(),
            Some(libc::EBUSY)
        );
        enable(&sys, "/t/instances/i", "xskdbg/a", b"0").unwrap();
        w.write_once(b"-:xskdbg/a").unwrap();
        assert!(sys.kprobes().is_empty());
        assert!(!sys.exists(Path::new("/t/events/xskdbg/a")));
        assert!(!sys.exists(Path::new("/t/instances/i/events/xskdbg/a")));
        // A truncating write removes every event.
        w.write_once(b"p:other/c func_c").unwrap();
        sys.write(ke, b"").unwrap();
        assert!(sys.kprobes().is_empty());
    }

    #[test]
    fn a_cleared_filter_reads_none() {
        let sys = FakeSys::new("/t").with_kprobe_events();
        sys.write(Path::new("/t/kprobe_events"), b"p:g/e f")
            .unwrap();
        let f = Path::new("/t/events/g/e/filter");
        sys.write(f, b"family == 44").unwrap();
        assert_eq!(sys.read(f).unwrap(), b"family == 44");
        sys.write(f, b"0").unwrap();
        assert_eq!(sys.read(f).unwrap(), b"none\n");
    }

    #[test]
    fn directories_list_their_children() {
        let sys = FakeSys::new("/t");
        sys.mkdir(Path::new("/t/instances/b")).unwrap();
        sys.mkdir(Path::new("/t/instances/a")).unwrap();
        assert_eq!(sys.list_dir(Path::new("/t/instances")).unwrap(), ["a", "b"]);
        assert!(sys
            .list_dir(Path::new("/t/events/xdp"))
            .unwrap()
            .contains(&"xdp_exception".to_string()));
        assert_eq!(
            sys.list_dir(Path::new("/nope")).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }
}
