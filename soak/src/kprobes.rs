//! `--kprobe-events FILE`: kprobe events of the user's own, e.g. the seed
//! story's `perf probe` definitions written as `kprobe_events` lines for one
//! kernel, created for the run, enabled in the soak's ftrace instance only,
//! and removed again after the trace was read (removing a kprobe event
//! resets every ring buffer of the system: docs/PROBES.md).

use xskdbg_tracefs::{Buffer, TraceFs};

use crate::config::KprobeDef;

/// The events created; disabled and removed on drop.
#[derive(Debug)]
pub struct ExtraEvents {
    tfs: TraceFs,
    buffer: Buffer,
    /// Created, in order.
    created: Vec<KprobeDef>,
    /// Enabled in `buffer`.
    enabled: Vec<KprobeDef>,
}

impl ExtraEvents {
    /// Creates every definition and enables it in `buffer`; on any failure
    /// what was made is undone and the error names the line and the
    /// kernel's reason (the tail of tracefs' `error_log`).
    pub fn add(tfs: &TraceFs, buffer: &Buffer, defs: &[KprobeDef]) -> Result<ExtraEvents, String> {
        let mut ev = ExtraEvents {
            tfs: tfs.clone(),
            buffer: buffer.clone(),
            created: Vec::new(),
            enabled: Vec::new(),
        };
        for d in defs {
            if let Err(e) = write_kprobe_events(tfs, &d.line) {
                let why = match e.raw_os_error() {
                    Some(libc::EEXIST) | Some(libc::EBUSY) => format!(
                        "{e} (an event {}/{} exists already; remove it with `echo '-:{}/{}' >> {}/kprobe_events`)",
                        d.group,
                        d.event,
                        d.group,
                        d.event,
                        tfs.root().display()
                    ),
                    _ => format!("{e}{}", error_log_tail(tfs)),
                };
                return Err(format!("kprobe_events line {:?}: {why}", d.line));
            }
            ev.created.push(d.clone());
        }
        for d in defs {
            buffer
                .enable_event(&d.group, &d.event)
                .map_err(|e| format!("enabling {}/{}: {e}", d.group, d.event))?;
            ev.enabled.push(d.clone());
        }
        Ok(ev)
    }

    /// The events, as `group/event`.
    pub fn names(&self) -> Vec<String> {
        self.created
            .iter()
            .map(|d| format!("{}/{}", d.group, d.event))
            .collect()
    }
}

impl Drop for ExtraEvents {
    fn drop(&mut self) {
        // An enabled event cannot be removed.
        for d in self.enabled.drain(..) {
            if let Err(e) = self.buffer.disable_event(&d.group, &d.event) {
                eprintln!("xskdbg soak: disabling {}/{}: {e}", d.group, d.event);
            }
        }
        for d in self.created.drain(..).rev() {
            let rm = format!("-:{}/{}", d.group, d.event);
            if let Err(e) = write_kprobe_events(&self.tfs, &rm) {
                eprintln!(
                    "xskdbg soak: removing kprobe event {}/{}: {e}",
                    d.group, d.event
                );
            }
        }
    }
}

fn write_kprobe_events(tfs: &TraceFs, line: &str) -> std::io::Result<()> {
    // Appended, never truncated: truncating kprobe_events would delete
    // every kprobe event of the system.
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

/// The last lines of tracefs' `error_log` (why the kernel refused a
/// definition: a bad register, an offset inside an instruction, ...).
fn error_log_tail(tfs: &TraceFs) -> String {
    let Ok(log) = tfs.sys().read(&tfs.root().join("error_log")) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&log);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "; the kernel's error_log says:\n{}",
        lines[lines.len().saturating_sub(3)..].join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};
    use xskdbg_tracefs::{RawWriter, Sys};

    /// A tracefs that knows `kprobe_events` the way the kernel treats it: a
    /// definition creates `events/GROUP/EVENT/enable`, `-:GROUP/EVENT`
    /// removes it (EBUSY while enabled), a location ending in `+0x1`
    /// (inside an instruction) is refused with EINVAL and an error_log line.
    #[derive(Debug, Default)]
    struct KprobeFs {
        files: Mutex<BTreeMap<PathBuf, Vec<u8>>>,
        log: Mutex<Vec<String>>,
    }

    const ROOT: &str = "/fake/tracing";

    impl KprobeFs {
        fn new() -> Arc<KprobeFs> {
            let fs = KprobeFs::default();
            for f in ["trace", "kprobe_events", "error_log"] {
                fs.files
                    .lock()
                    .unwrap()
                    .insert(Path::new(ROOT).join(f), Vec::new());
            }
            Arc::new(fs)
        }

        fn enable(&self, ev: &str) -> Option<String> {
            let p = Path::new(ROOT).join("events").join(ev).join("enable");
            let f = self.files.lock().unwrap();
            f.get(&p).map(|v| String::from_utf8_lossy(v).into_owned())
        }

        fn kprobe_write(&self, line: &str) -> io::Result<usize> {
            self.log.lock().unwrap().push(line.to_string());
            let mut files = self.files.lock().unwrap();
            let ev_dir = |ev: &str| Path::new(ROOT).join("events").join(ev);
            if let Some(ev) = line.strip_prefix("-:") {
                let en = ev_dir(ev).join("enable");
                return match files.get(&en) {
                    None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
                    Some(v) if v == b"1" => Err(io::Error::from_raw_os_error(libc::EBUSY)),
                    Some(_) => {
                        files.remove(&en);
                        Ok(line.len())
                    }
                };
            }
            let mut w = line.split_whitespace();
            let ev = w.next().and_then(|h| h.get(2..)).unwrap_or("");
            if w.next().is_some_and(|loc| loc.ends_with("+0x1")) {
                files.insert(
                    Path::new(ROOT).join("error_log"),
                    b"[  1.0] trace_kprobe: error: Invalid probe address\n".to_vec(),
                );
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            let en = ev_dir(ev).join("enable");
            if files.contains_key(&en) {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            files.insert(en, b"0".to_vec());
            Ok(line.len())
        }
    }

    #[derive(Debug)]
    struct Writer(Arc<KprobeFs>);

    impl RawWriter for Writer {
        fn write_once(&self, data: &[u8]) -> io::Result<usize> {
            self.0.kprobe_write(&String::from_utf8_lossy(data))
        }
    }

    #[derive(Debug)]
    struct Seam(Arc<KprobeFs>);

    impl Sys for Seam {
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            let f = self.0.files.lock().unwrap();
            f.get(path)
                .cloned()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
        }
        fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            let mut f = self.0.files.lock().unwrap();
            match f.get_mut(path) {
                Some(v) => {
                    *v = data.to_vec();
                    Ok(())
                }
                None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
            }
        }
        fn open_writer(&self, path: &Path) -> io::Result<Box<dyn RawWriter>> {
            assert_eq!(path, Path::new(ROOT).join("kprobe_events"));
            Ok(Box::new(Writer(self.0.clone())))
        }
        fn mkdir(&self, _: &Path) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        }
        fn rmdir(&self, _: &Path) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        }
        fn exists(&self, path: &Path) -> bool {
            self.0.files.lock().unwrap().contains_key(path)
        }
    }

    fn seed_defs() -> Vec<KprobeDef> {
        KprobeDef::parse_file(
            "p:xskdbg_seed/__xsk_rcv_zc_L7 __xsk_rcv_zc+0x3a addr=%r8:x64\n\
             p:xskdbg_seed/xsk_flush __xsk_map_flush+0x32 xs=%bx:x64\n",
        )
        .unwrap()
    }

    #[test]
    fn events_are_enabled_in_the_buffer_and_removed_after_disabling() {
        let fs = KprobeFs::new();
        let tfs = TraceFs::at_with(Arc::new(Seam(fs.clone())), ROOT).unwrap();
        let defs = seed_defs();
        let ev = ExtraEvents::add(&tfs, &tfs.top(), &defs).unwrap();
        assert_eq!(
            ev.names(),
            ["xskdbg_seed/__xsk_rcv_zc_L7", "xskdbg_seed/xsk_flush"]
        );
        assert_eq!(fs.enable("xskdbg_seed/xsk_flush").as_deref(), Some("1"));
        drop(ev);
        // Removed (an enabled event cannot be: the fake answers EBUSY).
        assert_eq!(fs.enable("xskdbg_seed/xsk_flush"), None);
        assert_eq!(fs.enable("xskdbg_seed/__xsk_rcv_zc_L7"), None);
        assert_eq!(
            *fs.log.lock().unwrap(),
            [
                defs[0].line.clone(),
                defs[1].line.clone(),
                "-:xskdbg_seed/xsk_flush".to_string(),
                "-:xskdbg_seed/__xsk_rcv_zc_L7".to_string()
            ]
        );
    }

    #[test]
    fn a_refused_line_is_named_with_the_kernels_reason_and_nothing_is_left() {
        let fs = KprobeFs::new();
        let tfs = TraceFs::at_with(Arc::new(Seam(fs.clone())), ROOT).unwrap();
        let mut defs = seed_defs();
        defs.push(KprobeDef::parse("p:xskdbg_seed/bad xsk_generic_rcv+0x1 xs=%bx").unwrap());
        let e = ExtraEvents::add(&tfs, &tfs.top(), &defs).unwrap_err();
        assert!(e.contains("xsk_generic_rcv+0x1"), "{e}");
        assert!(e.contains("Invalid probe address"), "{e}");
        assert_eq!(fs.enable("xskdbg_seed/__xsk_rcv_zc_L7"), None);
        assert_eq!(fs.enable("xskdbg_seed/xsk_flush"), None);
        // A leftover of the same name: the error says how to remove it.
        let _first = ExtraEvents::add(&tfs, &tfs.top(), &defs[..1]).unwrap();
        let e = ExtraEvents::add(&tfs, &tfs.top(), &defs[..1]).unwrap_err();
        assert!(e.contains("echo '-:xskdbg_seed/__xsk_rcv_zc_L7'"), "{e}");
    }
}
