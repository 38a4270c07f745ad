//! The one seam between xskdbg and tracefs (the ftrace control files).
//!
//! Every read, write, mkdir and rmdir that xskdbg does in tracefs goes through
//! the [`Sys`] trait. [`RealSys`] talks to the kernel; [`fake::FakeSys`] is an
//! in-memory tracefs used by tests that must run without root (the same idea
//! as aya's `sys` module with its `cfg(test)` fake).
//!
//! - [`TraceFs`]: a mounted tracefs (found with [`TraceFs::find`], or with
//!   [`TraceFs::locate`], which also looks in the mount table and mounts it
//!   where `ip netns exec` hid it).
//! - [`Buffer`]: one ring buffer, the top-level one or an instance
//!   (`instances/<name>`), with its control files: `trace`, `tracing_on`,
//!   `buffer_size_kb`, `trace_clock`, `events/*/*/enable`.
//! - [`Instance`]: a guard for an instance this process created; dropping it
//!   removes the instance again.
//! - [`Marker`]: `trace_marker` opened once; each [`Marker::write`] is exactly
//!   one `write(2)`, which ftrace records as one entry.
//!
//! Every error names the path it concerns and, where there is one, the fix.

pub mod fake;

use std::fmt;
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest `trace_marker` write the kernel records whole (`TRACE_MARKER_MAX_SIZE`).
/// Longer writes are cut to this size.
pub const TRACE_MARKER_MAX_SIZE: usize = 4096;

/// Where tracefs is looked for, in order.
pub const MOUNT_POINTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The command that mounts tracefs, quoted in errors.
pub const MOUNT_HINT: &str = "mount -t tracefs nodev /sys/kernel/tracing";

/// The mount table [`TraceFs::locate`] reads.
pub const MOUNT_TABLE: &str = "/proc/self/mounts";

/// Errors of this crate; each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tracefs is mounted at none of [`MOUNT_POINTS`].
    #[error("tracefs is not mounted (looked for {tried}); mount it with `{MOUNT_HINT}` as root")]
    NotMounted {
        /// The `trace` files looked for.
        tried: String,
    },
    /// [`TraceFs::locate`] found no tracefs and could not mount one.
    #[error("tracefs is not mounted in this mount namespace (looked for {tried}, and in {MOUNT_TABLE}) and mounting it at {at} failed: {source}; `ip netns exec` remounts /sys without it: run as root (which mounts it), mount it with `{MOUNT_HINT}`, or enter only the network namespace with `nsenter --net=/run/netns/NAME`")]
    MountFailed {
        /// The `trace` files looked for.
        tried: String,
        /// Where the mount was tried.
        at: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The kernel refused access (EACCES/EPERM).
    #[error("permission denied to {op} {path}: {source}; run as root (tracefs needs CAP_SYS_ADMIN) or make the tracefs files accessible to this user")]
    PermissionDenied {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A named ftrace instance does not exist.
    #[error("ftrace instance {name:?} does not exist ({path}); create it with `mkdir {path}` or let xskdbg create it")]
    InstanceMissing {
        /// Instance name.
        name: String,
        /// Its directory.
        path: PathBuf,
    },
    /// An ftrace instance with that name already exists.
    #[error("ftrace instance {name:?} already exists ({path}); pick another name or remove it with `rmdir {path}`")]
    InstanceExists {
        /// Instance name.
        name: String,
        /// Its directory.
        path: PathBuf,
    },
    /// A trace event does not exist in this kernel (or this buffer).
    #[error("trace event {system}:{event} does not exist ({path}); see available_events for what this kernel offers")]
    EventMissing {
        /// Event system, e.g. `xdp`.
        system: String,
        /// Event name, e.g. `xdp_exception`.
        event: String,
        /// The `enable` file looked for.
        path: PathBuf,
    },
    /// A name given to this crate cannot be used as a tracefs path component.
    #[error("invalid {what} {name:?}: {why}")]
    InvalidName {
        /// Which kind of name.
        what: &'static str,
        /// The name.
        name: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// A control file held something this crate does not understand.
    #[error("unexpected content in {path}: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// A marker write longer than the kernel records whole.
    #[error("trace_marker write of {len} bytes is over the {TRACE_MARKER_MAX_SIZE}-byte kernel limit ({path}); split the message")]
    TooLong {
        /// Length asked for.
        len: usize,
        /// The marker file.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("failed to {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl Error {
    /// The raw OS error number, when the error came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::PermissionDenied { source, .. }
            | Error::Io { source, .. }
            | Error::MountFailed { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when a marker write failed because the buffer's `tracing_on` is 0
    /// (the kernel answers EBADF then): expected after a freeze.
    pub fn is_buffer_off(&self) -> bool {
        self.raw_os_error() == Some(libc::EBADF)
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Map an I/O error to [`Error`], singling out permission problems.
pub fn io_error(op: &'static str, path: &Path, source: io::Error) -> Error {
    match source.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
            op,
            path: path.to_path_buf(),
            source,
        },
        _ => Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        },
    }
}

/// A file opened for writing whose every write is one system call.
pub trait RawWriter: Send + Sync + fmt::Debug {
    /// One `write(2)`; returns the byte count the kernel took.
    fn write_once(&self, data: &[u8]) -> io::Result<usize>;
}

/// The system calls this crate makes, so tests can swap the kernel for a fake.
pub trait Sys: Send + Sync + fmt::Debug {
    /// Read a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Open for writing with truncation, write `data` in one call, close.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Open a file for repeated single-call writes (for `trace_marker`).
    fn open_writer(&self, path: &Path) -> io::Result<Box<dyn RawWriter>>;
    /// Create a directory (tracefs creates an instance on mkdir).
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    /// Remove a directory (tracefs removes an instance on rmdir).
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &Path) -> bool;
    /// Mount a tracefs at `at` (an existing, empty directory). Seams that
    /// cannot mount keep this default, which says so.
    fn mount_tracefs(&self, at: &Path) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this tracefs seam cannot mount {}", at.display()),
        ))
    }
    /// The names in a directory (instances, leftovers), in no set order.
    /// Seams that never list a directory may keep this default, which says so.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this tracefs seam cannot list {}", path.display()),
        ))
    }
}

/// [`Sys`] backed by the real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

#[derive(Debug)]
struct RealWriter(std::fs::File);

impl RawWriter for RealWriter {
    fn write_once(&self, data: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        // `&File` implements Write: one write(2) per call, no buffering.
        (&self.0).write(data)
    }
}

impl Sys for RealSys {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?;
        // Control files take the whole value in one write; a short write is an error.
        let n = f.write(data)?;
        if n != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {n} of {} bytes", data.len()),
            ));
        }
        Ok(())
    }

    fn open_writer(&self, path: &Path) -> io::Result<Box<dyn RawWriter>> {
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        Ok(Box::new(RealWriter(f)))
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn mount_tracefs(&self, at: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let target = std::ffi::CString::new(at.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: NUL-terminated strings that live across the call; no data argument.
        let rc = unsafe {
            libc::mount(
                c"nodev".as_ptr(),
                target.as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    }
}

/// A mounted tracefs.
#[derive(Debug, Clone)]
pub struct TraceFs {
    root: PathBuf,
    sys: Arc<dyn Sys>,
}

impl TraceFs {
    /// Find tracefs at `/sys/kernel/tracing`, then `/sys/kernel/debug/tracing`.
    pub fn find() -> Result<TraceFs> {
        Self::find_with(Arc::new(RealSys), &MOUNT_POINTS)
    }

    /// Find tracefs among `candidates` through `sys` (tests pass a fake).
    pub fn find_with(sys: Arc<dyn Sys>, candidates: &[&str]) -> Result<TraceFs> {
        for c in candidates {
            let root = PathBuf::from(c);
            if sys.exists(&root.join("trace")) {
                return Ok(TraceFs { root, sys });
            }
        }
        let tried = candidates
            .iter()
            .map(|c| format!("{c}/trace"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(Error::NotMounted { tried })
    }

    /// Find tracefs from a process that may live in another mount namespace
    /// than the one that mounted it (`ip netns exec` remounts /sys, which
    /// hides `/sys/kernel/tracing`): `given` first (a caller's choice, e.g.
    /// `$XSKDBG_TRACEFS`), then [`MOUNT_POINTS`], then any tracefs in
    /// [`MOUNT_TABLE`]; failing those, mount one at `given` or the first
    /// mount point whose directory exists (root only). Says how it was found.
    pub fn locate(given: Option<&Path>) -> Result<(TraceFs, Located)> {
        Self::locate_with(Arc::new(RealSys), given, &MOUNT_POINTS)
    }

    /// [`TraceFs::locate`] through `sys` among `candidates`.
    pub fn locate_with(
        sys: Arc<dyn Sys>,
        given: Option<&Path>,
        candidates: &[&str],
    ) -> Result<(TraceFs, Located)> {
        let holds = |p: &Path| sys.exists(&p.join("trace"));
        if let Some(g) = given {
            if holds(g) {
                let fs = TraceFs {
                    root: g.to_path_buf(),
                    sys,
                };
                return Ok((fs, Located::Given));
            }
        }
        for c in candidates {
            if holds(Path::new(c)) {
                let fs = TraceFs {
                    root: PathBuf::from(c),
                    sys,
                };
                return Ok((fs, Located::Usual));
            }
        }
        let table = sys.read(Path::new(MOUNT_TABLE)).unwrap_or_default();
        for m in tracefs_mounts(&String::from_utf8_lossy(&table)) {
            if holds(&m) {
                return Ok((TraceFs { root: m, sys }, Located::MountTable));
            }
        }
        let mut tried: Vec<String> = given
            .iter()
            .map(|g| g.display().to_string())
            .chain(candidates.iter().map(|c| c.to_string()))
            .map(|c| format!("{c}/trace"))
            .collect();
        tried.dedup();
        let tried = tried.join(", ");
        let at = given
            .map(Path::to_path_buf)
            .into_iter()
            .chain(candidates.iter().map(PathBuf::from))
            .find(|p| sys.exists(p))
            .or_else(|| candidates.first().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(MOUNT_POINTS[0]));
        match sys.mount_tracefs(&at) {
            Ok(()) if holds(&at) => Ok((TraceFs { root: at, sys }, Located::MountedNow)),
            Ok(()) => Err(Error::MountFailed {
                tried,
                source: io::Error::other(format!("{}/trace is still missing", at.display())),
                at,
            }),
            Err(source) => Err(Error::MountFailed { tried, at, source }),
        }
    }

    /// Use tracefs mounted at `root` (checked: `root/trace` must exist).
    pub fn at(root: impl Into<PathBuf>) -> Result<TraceFs> {
        Self::at_with(Arc::new(RealSys), root)
    }

    /// Use tracefs at `root` through `sys`.
    pub fn at_with(sys: Arc<dyn Sys>, root: impl Into<PathBuf>) -> Result<TraceFs> {
        let root = root.into();
        if !sys.exists(&root.join("trace")) {
            return Err(Error::NotMounted {
                tried: root.join("trace").display().to_string(),
            });
        }
        Ok(TraceFs { root, sys })
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The system-call seam in use.
    pub fn sys(&self) -> &Arc<dyn Sys> {
        &self.sys
    }

    /// The top-level buffer.
    pub fn top(&self) -> Buffer {
        Buffer {
            dir: self.root.clone(),
            name: None,
            sys: self.sys.clone(),
        }
    }

    fn instance_dir(&self, name: &str) -> Result<PathBuf> {
        check_name("ftrace instance name", name)?;
        Ok(self.root.join("instances").join(name))
    }

    /// An existing instance `instances/<name>`.
    pub fn instance(&self, name: &str) -> Result<Buffer> {
        let dir = self.instance_dir(name)?;
        if !self.sys.exists(&dir.join("trace")) {
            return Err(Error::InstanceMissing {
                name: name.to_string(),
                path: dir,
            });
        }
        Ok(Buffer {
            dir,
            name: Some(name.to_string()),
            sys: self.sys.clone(),
        })
    }

    /// Create instance `instances/<name>`; the returned guard removes it on drop.
    pub fn create_instance(&self, name: &str) -> Result<Instance> {
        let dir = self.instance_dir(name)?;
        if let Err(e) = self.sys.mkdir(&dir) {
            if e.raw_os_error() == Some(libc::EEXIST) {
                return Err(Error::InstanceExists {
                    name: name.to_string(),
                    path: dir,
                });
            }
            return Err(io_error("create ftrace instance", &dir, e));
        }
        Ok(Instance {
            buffer: Some(Buffer {
                dir,
                name: Some(name.to_string()),
                sys: self.sys.clone(),
            }),
        })
    }

    /// The names of the ftrace instances that exist now (anyone's), sorted.
    pub fn instance_names(&self) -> Result<Vec<String>> {
        let dir = self.root.join("instances");
        let mut v = self
            .sys
            .list_dir(&dir)
            .map_err(|e| io_error("list", &dir, e))?;
        v.sort();
        Ok(v)
    }

    /// Removes instance `instances/<name>` that this process does not hold a
    /// guard for (a leftover of a killed run); a missing one is no error.
    pub fn remove_instance(&self, name: &str) -> Result<()> {
        let b = Buffer {
            dir: self.instance_dir(name)?,
            name: Some(name.to_string()),
            sys: self.sys.clone(),
        };
        remove_instance_dir(&b)
    }

    /// A buffer by optional instance name: `None` is the top-level buffer.
    pub fn buffer(&self, instance: Option<&str>) -> Result<Buffer> {
        match instance {
            None => Ok(self.top()),
            Some(n) => self.instance(n),
        }
    }
}

/// How [`TraceFs::locate`] found tracefs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    /// At the path the caller gave.
    Given,
    /// At one of the usual [`MOUNT_POINTS`].
    Usual,
    /// Elsewhere, listed in [`MOUNT_TABLE`].
    MountTable,
    /// Not mounted in this mount namespace: mounted now.
    MountedNow,
}

/// The mount points of every tracefs in a `/proc/self/mounts` text
/// (octal escapes such as `\040` for a space decoded).
pub fn tracefs_mounts(table: &str) -> Vec<PathBuf> {
    table
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_dev, at, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "tracefs").then(|| PathBuf::from(unescape_mount(at)))
        })
        .collect()
}

fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it is a relative directory")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.bytes().any(|b| b.is_ascii_whitespace() || b == 0) {
        Some("it contains whitespace or NUL")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::InvalidName {
            what,
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// One ftrace ring buffer: the top-level one or an instance.
#[derive(Debug, Clone)]
pub struct Buffer {
    dir: PathBuf,
    name: Option<String>,
    sys: Arc<dyn Sys>,
}

impl Buffer {
    /// The buffer's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance name; `None` for the top-level buffer.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Path of a control file of this buffer.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Read a control file of this buffer.
    pub fn read_file(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.path(rel);
        self.sys.read(&p).map_err(|e| io_error("read", &p, e))
    }

    /// Write a control file of this buffer (one write, truncating).
    pub fn write_file(&self, rel: &str, data: &[u8]) -> Result<()> {
        let p = self.path(rel);
        self.sys
            .write(&p, data)
            .map_err(|e| io_error("write", &p, e))
    }

    fn read_trimmed(&self, rel: &str) -> Result<String> {
        let raw = self.read_file(rel)?;
        Ok(String::from_utf8_lossy(&raw).trim().to_string())
    }

    /// Open `trace_marker` once for repeated writes.
    pub fn open_marker(&self) -> Result<Marker> {
        let path = self.path("trace_marker");
        let w = self
            .sys
            .open_writer(&path)
            .map_err(|e| io_error("open", &path, e))?;
        Ok(Marker { w, path })
    }

    /// Read the whole `trace` file (what is in the buffer now).
    pub fn read_trace(&self) -> Result<Vec<u8>> {
        self.read_file("trace")
    }

    /// Copy the `trace` file to `dest` atomically (temporary file, then rename).
    pub fn save_trace(&self, dest: &Path) -> Result<()> {
        let data = self.read_trace()?;
        let tmp = dest.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, &data).map_err(|e| io_error("write", &tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error("rename into place", dest, e)
        })
    }

    /// Empty the buffer (opening `trace` with truncation clears it).
    pub fn clear(&self) -> Result<()> {
        self.write_file("trace", b"")
    }

    /// Whether the buffer records (`tracing_on`).
    pub fn tracing_on(&self) -> Result<bool> {
        let s = self.read_trimmed("tracing_on")?;
        match s.as_str() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(Error::Parse {
                path: self.path("tracing_on"),
                what: format!("expected 0 or 1, found {other:?}"),
            }),
        }
    }

    /// Start or stop recording (`tracing_on`); 0 freezes the buffer's contents.
    pub fn set_tracing_on(&self, on: bool) -> Result<()> {
        self.write_file("tracing_on", if on { b"1" } else { b"0" })
    }

    /// Per-CPU buffer size in KiB (`buffer_size_kb`).
    pub fn buffer_size_kb(&self) -> Result<u64> {
        let s = self.read_trimmed("buffer_size_kb")?;
        // Before first use the kernel prints e.g. "7 (expanded: 1408)".
        let num = s
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok());
        num.ok_or_else(|| Error::Parse {
            path: self.path("buffer_size_kb"),
            what: format!("expected a number, found {s:?}"),
        })
    }

    /// Set the per-CPU buffer size in KiB.
    pub fn set_buffer_size_kb(&self, kb: u64) -> Result<()> {
        self.write_file("buffer_size_kb", kb.to_string().as_bytes())
    }

    /// The selected trace clock (the bracketed entry of `trace_clock`).
    pub fn trace_clock(&self) -> Result<String> {
        let s = self.read_trimmed("trace_clock")?;
        s.split_whitespace()
            .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')))
            .map(str::to_string)
            .ok_or_else(|| Error::Parse {
                path: self.path("trace_clock"),
                what: format!("no [selected] clock in {s:?}"),
            })
    }

    /// Select a trace clock (`local`, `global`, `mono`, `boot`, ...).
    pub fn set_trace_clock(&self, clock: &str) -> Result<()> {
        check_name("trace clock", clock)?;
        self.write_file("trace_clock", clock.as_bytes())
    }

    fn event_enable_path(&self, system: &str, event: &str) -> Result<PathBuf> {
        check_name("event system", system)?;
        check_name("event name", event)?;
        let p = self
            .dir
            .join("events")
            .join(system)
            .join(event)
            .join("enable");
        if !self.sys.exists(&p) {
            return Err(Error::EventMissing {
                system: system.to_string(),
                event: event.to_string(),
                path: p,
            });
        }
        Ok(p)
    }

    /// Whether trace event `system:event` exists in this buffer.
    pub fn has_event(&self, system: &str, event: &str) -> bool {
        self.event_enable_path(system, event).is_ok()
    }

    /// Enable or disable trace event `system:event` in this buffer.
    pub fn set_event(&self, system: &str, event: &str, on: bool) -> Result<()> {
        let p = self.event_enable_path(system, event)?;
        self.sys
            .write(&p, if on { b"1" } else { b"0" })
            .map_err(|e| io_error("write", &p, e))
    }

    /// Enable trace event `system:event`.
    pub fn enable_event(&self, system: &str, event: &str) -> Result<()> {
        self.set_event(system, event, true)
    }

    /// Disable trace event `system:event`.
    pub fn disable_event(&self, system: &str, event: &str) -> Result<()> {
        self.set_event(system, event, false)
    }
}

/// An ftrace instance created by this process; removed again on drop.
#[derive(Debug)]
pub struct Instance {
    // `None` once removed or kept.
    buffer: Option<Buffer>,
}

impl Deref for Instance {
    type Target = Buffer;
    fn deref(&self) -> &Buffer {
        // Invariant: `buffer` is Some until `remove`/`keep` consume self.
        self.buffer
            .as_ref()
            .expect("instance buffer present until consumed")
    }
}

impl Instance {
    /// The instance's buffer (a cheap handle; the guard still owns removal).
    pub fn buffer(&self) -> Buffer {
        (**self).clone()
    }

    /// Keep the instance after this guard is gone.
    pub fn keep(mut self) -> Buffer {
        self.buffer
            .take()
            .expect("instance buffer present until consumed")
    }

    /// Remove the instance now and report failure (drop only tries).
    pub fn remove(mut self) -> Result<()> {
        match self.buffer.take() {
            Some(b) => remove_instance_dir(&b),
            None => Ok(()),
        }
    }
}

fn remove_instance_dir(b: &Buffer) -> Result<()> {
    // rmdir answers EBUSY while a file of the instance is still open (a
    // trace_marker held by a recorder being dropped on another thread):
    // retry briefly before giving up.
    let mut last = None;
    for _ in 0..50 {
        match b.sys.rmdir(&b.dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(io_error("remove ftrace instance", &b.dir, e)),
        }
    }
    Err(io_error(
        "remove ftrace instance (still busy: close its trace_marker first)",
        &b.dir,
        last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
    ))
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            if let Err(e) = remove_instance_dir(&b) {
                eprintln!("xskdbg-tracefs: {e}");
            }
        }
    }
}

/// `trace_marker` of one buffer, opened once.
#[derive(Debug)]
pub struct Marker {
    w: Box<dyn RawWriter>,
    path: PathBuf,
}

impl Marker {
    /// The marker file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write one entry with exactly one `write(2)`.
    ///
    /// Messages over [`TRACE_MARKER_MAX_SIZE`] are refused (the kernel would
    /// cut them); when the buffer is off the kernel answers EBADF
    /// ([`Error::is_buffer_off`]).
    pub fn write(&self, msg: &[u8]) -> Result<()> {
        if msg.len() > TRACE_MARKER_MAX_SIZE {
            return Err(Error::TooLong {
                len: msg.len(),
                path: self.path.clone(),
            });
        }
        match self.w.write_once(msg) {
            Ok(n) if n == msg.len() => Ok(()),
            Ok(n) => Err(Error::Io {
                op: "write",
                path: self.path.clone(),
                source: io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {n} of {} bytes", msg.len()),
                ),
            }),
            Err(e) => Err(io_error("write", &self.path, e)),
        }
    }
}

#[cfg(test)]
mod tests;
