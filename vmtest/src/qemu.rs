//! Starting qemu and watching it: the console is logged and scanned line by line for
//! the init's markers and for kernel panics; qemu is killed when a time limit passes.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::host::spawn_error;
use crate::initramfs::{MARK_COMMAND, MARK_DONE, MARK_ERROR, MARK_STARTED};
use crate::VmError;

/// The qemu binary used.
pub const QEMU: &str = "qemu-system-x86_64";

/// How qemu runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation (TCG, multi-threaded): slow but works everywhere, including
    /// here, where nested KVM guests hang.
    Tcg,
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// KVM with a short boot timeout, falling back to TCG if the guest does not boot.
    Auto,
}

impl Accel {
    /// Parses `tcg`, `kvm` or `auto`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            "auto" => Ok(Accel::Auto),
            _ => Err(format!("--accel {s}: expected tcg, kvm or auto")),
        }
    }
}

/// One qemu invocation.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// `Tcg` or `Kvm` (never `Auto` here).
    pub accel: Accel,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// The bzImage.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The full kernel command line.
    pub append: String,
    /// The raw result disk (the guest's /dev/vda).
    pub disk: PathBuf,
}

/// The kernel command line: what the runner needs, then the caller's extra arguments
/// (later words win for the kernel's own parameters).
pub fn kernel_cmdline(extra: &str) -> String {
    // panic=-1 reboots at once on a panic, and -no-reboot turns that reboot into
    // qemu exiting, so a panicked guest never sits until the timeout.
    let base = "console=ttyS0 panic=-1 rdinit=/init";
    let extra = extra.trim();
    if extra.is_empty() {
        base.to_string()
    } else {
        format!("{base} {extra}")
    }
}

/// qemu's arguments (pure).
pub fn qemu_args(cfg: &QemuConfig) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |s: &str| a.push(s.into());
    match cfg.accel {
        Accel::Kvm => {
            push("-accel");
            push("kvm");
            push("-cpu");
            push("host");
        }
        Accel::Tcg | Accel::Auto => {
            push("-accel");
            push("tcg,thread=multi");
            push("-cpu");
            push("max");
        }
    }
    for s in [
        "-smp",
        &cfg.vcpus.to_string(),
        "-m",
        &cfg.memory_mb.to_string(),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ] {
        push(s);
    }
    a.push("-kernel".into());
    a.push(cfg.kernel.clone().into());
    a.push("-initrd".into());
    a.push(cfg.initrd.clone().into());
    a.push("-append".into());
    a.push(cfg.append.clone().into());
    a.push("-drive".into());
    let mut drive = OsString::from("file=");
    // qemu splits -drive options at commas; a comma in the path is written twice.
    drive.push(cfg.disk.to_string_lossy().replace(',', ",,"));
    drive.push(",format=raw,if=virtio,cache=unsafe");
    a.push(drive);
    a
}

/// Something the console said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleEvent {
    /// The guest's /init is running.
    Started,
    /// The guest ran everything and saved its results.
    Done,
    /// The guest's /init reported an error.
    GuestError(String),
    /// `Kernel panic - not syncing: ...`.
    Panic(String),
    /// The guest started command N.
    CommandStarted(usize),
    /// A kernel warning, BUG or oops line.
    KernelWarning(String),
}

/// Classifies one console line (pure).
pub fn classify(line: &str) -> Option<ConsoleEvent> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.contains(MARK_STARTED) {
        return Some(ConsoleEvent::Started);
    }
    if let Some(i) = line.find(MARK_ERROR) {
        return Some(ConsoleEvent::GuestError(
            line[i + MARK_ERROR.len()..].trim().to_string(),
        ));
    }
    if line.trim_end() == MARK_DONE || line.ends_with(MARK_DONE) {
        return Some(ConsoleEvent::Done);
    }
    if let Some(i) = line.find(MARK_COMMAND) {
        let rest = &line[i + MARK_COMMAND.len()..];
        if let Some(n) = rest.strip_suffix(" started").and_then(|n| n.parse().ok()) {
            return Some(ConsoleEvent::CommandStarted(n));
        }
    }
    if line.contains("Kernel panic - not syncing") {
        return Some(ConsoleEvent::Panic(line.trim().to_string()));
    }
    const WARN: [&str; 5] = [
        "WARNING: CPU:",
        "BUG:",
        "Oops:",
        "general protection fault",
        "UBSAN:",
    ];
    if WARN.iter().any(|w| line.contains(w)) {
        return Some(ConsoleEvent::KernelWarning(line.trim().to_string()));
    }
    None
}

/// How a qemu run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The guest printed its done marker and qemu exited.
    Done,
    /// qemu exited without the done marker (and without a panic).
    Exited,
    /// The guest kernel panicked.
    Panic(String),
    /// The guest's init never started in time; qemu was killed.
    BootTimeout,
    /// The overall time limit passed; qemu was killed.
    Timeout,
}

/// What a qemu run produced.
#[derive(Debug, Clone)]
pub struct QemuRun {
    /// How it ended.
    pub ending: Ending,
    /// qemu's exit status, if it exited by itself.
    pub status: Option<ExitStatus>,
    /// Host time from starting qemu to the init's first line.
    pub boot_time: Option<Duration>,
    /// Host time of the whole run.
    pub wall_time: Duration,
    /// Kernel warning lines seen on the console (first 50).
    pub warnings: Vec<String>,
    /// Errors the guest's init reported.
    pub guest_errors: Vec<String>,
    /// The last command the console said had started.
    pub last_started: Option<usize>,
    /// qemu's standard error (first 64 KiB).
    pub stderr: String,
}

/// Time limits of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The whole run, boot included.
    pub overall: Duration,
    /// Until the init's first line.
    pub boot: Duration,
}

/// Kills qemu if the supervisor returns early or panics.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs qemu to its end under the limits, logging the console to `console_log`
/// (and copying it to our stderr if `echo`).
pub fn supervise(
    cfg: &QemuConfig,
    limits: &Limits,
    console_log: &Path,
    echo: bool,
) -> Result<QemuRun, VmError> {
    let mut log = File::create(console_log)
        .map_err(|e| VmError::io(format!("cannot create {}", console_log.display()), e))?;
    let start = Instant::now();
    let mut cmd = Command::new(QEMU);
    cmd.args(qemu_args(cfg))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(|e| spawn_error(QEMU, e))?;
    let mut guard = ChildGuard(child);
    let mut stdout = guard
        .0
        .stdout
        .take()
        .ok_or_else(|| VmError::io("qemu stdout", std::io::Error::other("no pipe")))?;
    let mut stderr_pipe = guard
        .0
        .stderr
        .take()
        .ok_or_else(|| VmError::io("qemu stderr", std::io::Error::other("no pipe")))?;

    let (tx, rx) = mpsc::channel::<ConsoleEvent>();
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut line = Vec::new();
        loop {
            let n = match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Unbuffered: the log must be complete even if we are killed.
            let _ = log.write_all(&buf[..n]);
            if echo {
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
            for &b in &buf[..n] {
                if b == b'\n' {
                    if let Some(ev) = classify(&String::from_utf8_lossy(&line)) {
                        let _ = tx.send(ev);
                    }
                    line.clear();
                } else if line.len() < 4096 {
                    line.push(b);
                }
            }
        }
        if let Some(ev) = classify(&String::from_utf8_lossy(&line)) {
            let _ = tx.send(ev);
        }
    });
    let err_reader = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = (&mut stderr_pipe).take(64 * 1024).read_to_end(&mut text);
        // Keep draining so qemu never blocks on a full pipe.
        let _ = std::io::copy(&mut stderr_pipe, &mut std::io::sink());
        String::from_utf8_lossy(&text).into_owned()
    });

    let mut run = QemuRun {
        ending: Ending::Exited,
        status: None,
        boot_time: None,
        wall_time: Duration::ZERO,
        warnings: Vec::new(),
        guest_errors: Vec::new(),
        last_started: None,
        stderr: String::new(),
    };
    let mut done_or_panic: Option<(Ending, Instant)> = None;
    let handle = |ev: ConsoleEvent, run: &mut QemuRun, dp: &mut Option<(Ending, Instant)>| match ev
    {
        ConsoleEvent::Started => {
            run.boot_time.get_or_insert(start.elapsed());
        }
        ConsoleEvent::Done => {
            dp.get_or_insert((Ending::Done, Instant::now()));
        }
        ConsoleEvent::Panic(line) => {
            *dp = Some((Ending::Panic(line), Instant::now()));
        }
        ConsoleEvent::GuestError(e) => run.guest_errors.push(e),
        ConsoleEvent::CommandStarted(n) => {
            // Also proof of a running init, should the start marker have been garbled
            // by kernel messages on the same console line.
            run.boot_time.get_or_insert(start.elapsed());
            run.last_started = Some(n);
        }
        ConsoleEvent::KernelWarning(w) => {
            if run.warnings.len() < 50 {
                run.warnings.push(w);
            }
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) => handle(ev, &mut run, &mut done_or_panic),
            Err(mpsc::RecvTimeoutError::Timeout) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Some(status) = guard
            .0
            .try_wait()
            .map_err(|e| VmError::io("cannot wait for qemu", e))?
        {
            run.status = Some(status);
            break;
        }
        let elapsed = start.elapsed();
        // After the done marker qemu powers off in well under a second; after a panic
        // the kernel reboots at once (panic=-1). Grace periods cover slow emulation.
        if let Some((ending, at)) = &done_or_panic {
            if at.elapsed() > Duration::from_secs(20) {
                run.ending = ending.clone();
                break;
            }
        }
        if run.boot_time.is_none() && elapsed > limits.boot.min(limits.overall) {
            run.ending = Ending::BootTimeout;
            break;
        }
        if elapsed > limits.overall {
            run.ending = Ending::Timeout;
            break;
        }
    }
    if run.status.is_none() {
        let _ = guard.0.kill();
    }
    let status = guard
        .0
        .wait()
        .map_err(|e| VmError::io("cannot wait for qemu", e))?;
    run.status.get_or_insert(status);
    let _ = reader.join();
    for ev in rx.try_iter() {
        handle(ev, &mut run, &mut done_or_panic);
    }
    run.stderr = err_reader.join().unwrap_or_default();
    if matches!(run.ending, Ending::Exited) {
        if let Some((ending, _)) = done_or_panic {
            run.ending = ending;
        }
    }
    run.wall_time = start.elapsed();
    Ok(run)
}

/// Makes the kernel kill qemu if this thread dies (SIGKILL of the test or of `xskdbg`),
/// so no emulated guest keeps running unsupervised.
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl,
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Whether `prog` is an executable on `PATH`.
pub fn in_path(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(prog);
            p.is_file()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_classified() {
        assert_eq!(
            classify("xskdbg-vm: init started (kernel 6.1.0-56-cloud-amd64, uptime 3.4 s)\r"),
            Some(ConsoleEvent::Started)
        );
        assert_eq!(classify("xskdbg-vm: done"), Some(ConsoleEvent::Done));
        assert_eq!(
            classify("xskdbg-vm: error: insmod veth failed: bad"),
            Some(ConsoleEvent::GuestError("insmod veth failed: bad".into()))
        );
        assert_eq!(
            classify("[    4.1] Kernel panic - not syncing: VFS: Unable to mount root fs"),
            Some(ConsoleEvent::Panic(
                "[    4.1] Kernel panic - not syncing: VFS: Unable to mount root fs".into()
            ))
        );
        assert!(matches!(
            classify("[   9.0] WARNING: CPU: 1 PID: 0 at net/core/dev.c:1 x+0x1/0x2"),
            Some(ConsoleEvent::KernelWarning(_))
        ));
        assert_eq!(classify("xskdbg-vm: command 000 exited 0"), None);
        assert_eq!(
            classify("xskdbg-vm: command 012 started"),
            Some(ConsoleEvent::CommandStarted(12))
        );
        assert_eq!(classify("[    0.000000] Linux version 6.1.0"), None);
    }

    #[test]
    fn args_for_tcg_and_kvm() {
        let cfg = QemuConfig {
            accel: Accel::Tcg,
            vcpus: 3,
            memory_mb: 1024,
            kernel: "/k/bzImage".into(),
            initrd: "/w/initrd.gz".into(),
            append: kernel_cmdline(" veth.race_window_us=50 "),
            disk: "/w/a,b.img".into(),
        };
        let args: Vec<String> = qemu_args(&cfg)
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(after("-accel"), "tcg,thread=multi");
        assert_eq!(after("-smp"), "3");
        assert_eq!(after("-m"), "1024");
        assert_eq!(
            after("-append"),
            "console=ttyS0 panic=-1 rdinit=/init veth.race_window_us=50"
        );
        assert_eq!(
            after("-drive"),
            "file=/w/a,,b.img,format=raw,if=virtio,cache=unsafe"
        );
        assert!(args.contains(&"-no-reboot".to_string()));
        let kvm = qemu_args(&QemuConfig {
            accel: Accel::Kvm,
            ..cfg
        });
        assert_eq!(kvm[1], "kvm");
        assert_eq!(kvm[3], "host");
    }
}
