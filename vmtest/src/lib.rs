//! `xskdbg-vmtest`: run commands as root inside a qemu guest and bring back their
//! output and files.
//!
//! The host here (and many production hosts) refuses kprobes and fentry; Debian's
//! packaged 6.1 cloud kernel has both, BTF, and the veth race's fixed code. This crate
//! boots such a kernel (or any bzImage) with a throw-away initramfs and runs test
//! binaries in it:
//!
//! - [`kernel`]: Debian's `linux-image-6.1.0-NN-cloud-amd64-unsigned`, fetched once with
//!   `apt-get download` into a cache outside the repo, or a bzImage path;
//! - [`modules`]: load order of the modules the guest needs (virtio, veth) from
//!   `modules.dep`;
//! - [`initramfs`] + [`cpio`]: the guest root file system (busybox-static, iproute2's
//!   `ip`, the given binaries with their shared libraries ([`libs`]), files, modules) and
//!   its `/init`;
//! - [`qemu`]: qemu under a time limit, its console logged and watched for panics;
//! - [`results`]: each command's stdout/stderr/exit code and the files it left in
//!   `$XSKDBG_OUT`, written by the guest as a tar archive onto a raw virtio disk and
//!   unpacked on the host.
//!
//! ```no_run
//! use xskdbg_vmtest::{run, VmSpec};
//! let mut spec = VmSpec::new("/tmp/vm-out");
//! spec.binaries.push("target/debug/deps/probes-0123abcd".into());
//! spec.commands.push("probes-0123abcd --test-threads=1 kprobe".into());
//! let outcome = run(&spec)?;
//! assert!(outcome.commands[0].success());
//! # Ok::<(), xskdbg_vmtest::VmError>(())
//! ```

pub mod cpio;
mod error;
pub mod host;
pub mod initramfs;
pub mod kernel;
pub mod libs;
pub mod modules;
pub mod qemu;
pub mod results;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::VmError;
pub use initramfs::{GUEST_BIN_DIR, GUEST_HOME, GUEST_IP, GUEST_OUT_DIR};
pub use kernel::KernelSource;
pub use qemu::Accel;
pub use results::CommandResult;

use initramfs::{command_script_path, init_script, InitPlan, Initramfs};
use kernel::PreparedKernel;
use qemu::{Ending, Limits, QemuConfig, QemuRun};

/// Modules every guest loads when the kernel has them as modules: the PCI transport
/// and block driver for the result disk, and veth for AF_XDP tests.
pub const DEFAULT_MODULES: [&str; 3] = ["virtio_pci", "virtio_blk", "veth"];

/// Host tools every guest gets at `/usr/sbin/NAME` (with their libraries), and whether
/// a missing one is an error: iproute2's `ip` and `tc` (network setup of the AF_XDP
/// tests), `ethtool` (queue counts) and `bpftool` when the host has them.
pub const GUEST_TOOLS: [(&str, bool); 4] = [
    ("ip", true),
    ("tc", true),
    ("ethtool", false),
    ("bpftool", false),
];

/// A host binary to put in the guest's `/opt/xskdbg/bin` (on `PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// The file on the host.
    pub host: PathBuf,
    /// Its name in the guest; defaults to the host file name.
    pub name: Option<String>,
}

impl From<&str> for Binary {
    fn from(s: &str) -> Self {
        Binary::parse(s)
    }
}

impl From<PathBuf> for Binary {
    fn from(host: PathBuf) -> Self {
        Binary { host, name: None }
    }
}

impl Binary {
    /// Parses `PATH` or `PATH:NAME`.
    pub fn parse(s: &str) -> Self {
        match s.rsplit_once(':') {
            Some((host, name)) if !name.is_empty() && !name.contains('/') => Binary {
                host: host.into(),
                name: Some(name.to_string()),
            },
            _ => Binary {
                host: s.into(),
                name: None,
            },
        }
    }

    fn guest_name(&self) -> Result<String, VmError> {
        match &self.name {
            Some(n) => Ok(n.clone()),
            None => self
                .host
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    VmError::Spec(format!("binary {} has no file name", self.host.display()))
                }),
        }
    }
}

/// A host file or directory to copy into the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    /// The file or directory on the host (directories are copied recursively).
    pub host: PathBuf,
    /// Its absolute path in the guest.
    pub guest: String,
}

impl FileMapping {
    /// Parses `HOST[:GUEST]`; without `GUEST`, the host path (made absolute) is used.
    pub fn parse(s: &str) -> Result<Self, VmError> {
        let (host, guest) = match s.split_once(':') {
            Some((h, g)) => (PathBuf::from(h), g.to_string()),
            None => {
                let abs = std::path::absolute(s)
                    .map_err(|e| VmError::io(format!("cannot resolve {s}"), e))?;
                (PathBuf::from(s), abs.to_string_lossy().into_owned())
            }
        };
        initramfs::guest_path(&guest)?;
        Ok(FileMapping { host, guest })
    }
}

/// One command for the guest: a shell command line run by `/bin/sh` as root in
/// `/root`, stdin from /dev/null, with `$XSKDBG_OUT` naming the directory whose
/// files come back to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCommand {
    /// The shell command line.
    pub line: String,
    /// Its own time limit (else the spec's `command_timeout`, else its `timeout`).
    pub timeout: Option<Duration>,
}

impl From<&str> for GuestCommand {
    fn from(line: &str) -> Self {
        GuestCommand {
            line: line.to_string(),
            timeout: None,
        }
    }
}

impl From<String> for GuestCommand {
    fn from(line: String) -> Self {
        GuestCommand {
            line,
            timeout: None,
        }
    }
}

/// Everything about one VM run.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// The kernel to boot (default: newest Debian 6.1 cloud kernel).
    pub kernel: KernelSource,
    /// TCG (default), KVM, or KVM-then-TCG.
    pub accel: Accel,
    /// Virtual CPUs (`-smp`).
    pub vcpus: u32,
    /// Guest memory in MiB (`-m`); the initramfs lives in it.
    pub memory_mb: u32,
    /// Extra kernel command line, e.g. `veth.race_window_us=50`; `MOD.PARAM=V` words
    /// also reach modules the guest `insmod`s.
    pub append: String,
    /// Limit of the whole run, boot included; qemu is killed after it.
    pub timeout: Duration,
    /// Default limit of each command (else `timeout`).
    pub command_timeout: Option<Duration>,
    /// Limit until the guest's init starts (default 120 s for TCG, 20 s for KVM: a working KVM guest boots in a second or two).
    pub boot_timeout: Option<Duration>,
    /// Binaries for `/opt/xskdbg/bin`, with their shared libraries.
    pub binaries: Vec<Binary>,
    /// Extra files and directories.
    pub files: Vec<FileMapping>,
    /// Modules to load besides [`DEFAULT_MODULES`] (names, dependencies resolved).
    pub modules: Vec<String>,
    /// Environment for the commands. `CI` is passed through from the host unless set here.
    pub env: Vec<(String, String)>,
    /// The commands, run in order; a failing command does not stop the next.
    pub commands: Vec<GuestCommand>,
    /// Host directory for the results (`console.log`, `guest/`); created if missing.
    pub out_dir: PathBuf,
    /// Size of the raw result disk (sparse on the host); the archive of `/results`
    /// must fit.
    pub result_disk_mb: u64,
    /// Copy the guest console to our stderr as it arrives.
    pub echo_console: bool,
    /// Gzip the initramfs. Off by default: under emulation the guest inflates slowly,
    /// and an uncompressed archive only costs host-side memory for a moment.
    pub gzip_initramfs: bool,
}

impl VmSpec {
    /// A spec with defaults: Debian kernel, TCG, 2 vCPUs, 1024 MiB, 600 s, no commands.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        VmSpec {
            kernel: KernelSource::Debian { abi: None },
            accel: Accel::Tcg,
            vcpus: 2,
            memory_mb: 1024,
            append: String::new(),
            timeout: Duration::from_secs(600),
            command_timeout: None,
            boot_timeout: None,
            binaries: Vec::new(),
            files: Vec::new(),
            modules: Vec::new(),
            env: Vec::new(),
            commands: Vec::new(),
            out_dir: out_dir.into(),
            result_disk_mb: 1024,
            echo_console: false,
            gzip_initramfs: false,
        }
    }
}

/// What a completed run brought back.
#[derive(Debug, Clone, PartialEq)]
pub struct VmOutcome {
    /// The commands that started, in order (all of them when the run completed).
    pub commands: Vec<CommandResult>,
    /// The host results directory.
    pub out_dir: PathBuf,
    /// The files the commands left in `$XSKDBG_OUT` (= `out_dir/guest/out`).
    pub files_dir: PathBuf,
    /// The guest's serial console (`out_dir/console.log`).
    pub console_log: PathBuf,
    /// Where the kernel came from.
    pub kernel: String,
    /// `uname -r` in the guest.
    pub kernel_release: Option<String>,
    /// The accelerator that ran the guest.
    pub accel: Accel,
    /// Host time from starting qemu to the guest's init.
    pub boot_time: Option<Duration>,
    /// Guest uptime when its init started.
    pub guest_boot_uptime: Option<Duration>,
    /// Host time of the whole run.
    pub wall_time: Duration,
    /// Kernel warnings, BUGs and oopses seen on the console.
    pub kernel_warnings: Vec<String>,
    /// Modules that failed to load.
    pub module_failures: Vec<String>,
}

impl VmOutcome {
    /// Every command exited 0.
    pub fn all_succeeded(&self) -> bool {
        self.commands.iter().all(CommandResult::success)
    }
}

fn validate(spec: &VmSpec) -> Result<(), VmError> {
    if spec.commands.is_empty() {
        return Err(VmError::Spec("no commands to run".into()));
    }
    if spec.vcpus == 0 || spec.vcpus > 64 {
        return Err(VmError::Spec(format!(
            "vcpus {} is not in 1..=64",
            spec.vcpus
        )));
    }
    if spec.memory_mb < 256 {
        return Err(VmError::Spec(format!(
            "memory {} MiB is too small: the kernel and the initramfs need at least 256",
            spec.memory_mb
        )));
    }
    if spec.timeout < Duration::from_secs(1) {
        return Err(VmError::Spec("timeout must be at least 1 s".into()));
    }
    if spec.result_disk_mb == 0 {
        return Err(VmError::Spec(
            "result disk size must be at least 1 MiB".into(),
        ));
    }
    Ok(())
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Boots the guest, runs the commands, and brings back their results.
///
/// Errors: a missing host tool or package (with the package to install), a bad kernel
/// or module, qemu failing to start, a boot timeout, a kernel panic, the overall
/// timeout, or a guest that stopped early; the last three carry the partial outcome
/// ([`VmError::partial`]). A command that fails or times out is not an error: see
/// [`CommandResult`].
pub fn run(spec: &VmSpec) -> Result<VmOutcome, VmError> {
    validate(spec)?;
    if !qemu::in_path(qemu::QEMU) {
        return Err(VmError::ToolMissing {
            tool: qemu::QEMU.into(),
            package: host::package_for(qemu::QEMU).into(),
        });
    }
    let kernel = kernel::prepare(&spec.kernel)?;
    fs::create_dir_all(&spec.out_dir)
        .map_err(|e| VmError::io(format!("cannot create {}", spec.out_dir.display()), e))?;
    sweep_stale_work_dirs(&std::env::temp_dir());
    let work = tempfile::Builder::new()
        .prefix(&format!("{WORK_PREFIX}{}-", std::process::id()))
        .tempdir()
        .map_err(|e| VmError::io("cannot create a temporary directory", e))?;
    let initrd = work.path().join("initrd.cpio");
    let timeouts = build_initramfs(spec, &kernel, &initrd)?;

    let accels: &[Accel] = match spec.accel {
        Accel::Auto if Path::new("/dev/kvm").exists() => &[Accel::Kvm, Accel::Tcg],
        Accel::Auto | Accel::Tcg => &[Accel::Tcg],
        Accel::Kvm => &[Accel::Kvm],
    };
    let console_log = spec.out_dir.join("console.log");
    let mut last_err = None;
    for &accel in accels {
        let disk = work.path().join("results.img");
        create_disk(&disk, spec.result_disk_mb)?;
        let cfg = QemuConfig {
            accel,
            vcpus: spec.vcpus,
            memory_mb: spec.memory_mb,
            kernel: kernel.image.clone(),
            initrd: initrd.clone(),
            append: qemu::kernel_cmdline(&spec.append),
            disk: disk.clone(),
        };
        let boot = spec.boot_timeout.unwrap_or(match accel {
            Accel::Kvm => Duration::from_secs(20),
            _ => Duration::from_secs(120),
        });
        let limits = Limits {
            overall: spec.timeout,
            boot,
        };
        let qrun = qemu::supervise(&cfg, &limits, &console_log, spec.echo_console)?;
        match finish(spec, &kernel, accel, &qrun, &disk, &console_log, &timeouts) {
            Err(e @ (VmError::BootTimeout { .. } | VmError::QemuFailed { .. }))
                if accel == Accel::Kvm && spec.accel == Accel::Auto =>
            {
                last_err = Some(e);
            }
            other => return other,
        }
    }
    Err(last_err.unwrap_or_else(|| VmError::Spec("no accelerator to try".into())))
}

/// Prefix of the per-run work directories (`xskdbg-vm-PID-XXXX` in the temp dir).
const WORK_PREFIX: &str = "xskdbg-vm-";

/// The PID in a work directory's name, if it is one of ours.
fn work_dir_pid(name: &str) -> Option<u32> {
    name.strip_prefix(WORK_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Removes work directories (initramfs, result disk) left by runs that were killed
/// before they could clean up (SIGKILL skips destructors).
fn sweep_stale_work_dirs(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = work_dir_pid(&name) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn create_disk(path: &Path, mb: u64) -> Result<(), VmError> {
    let f = fs::File::create(path)
        .map_err(|e| VmError::io(format!("cannot create {}", path.display()), e))?;
    f.set_len(mb.saturating_mul(1024 * 1024))
        .map_err(|e| VmError::io(format!("cannot size {}", path.display()), e))
}

/// The guest's root file system lives in its RAM, and a debug build of a test
/// binary is mostly debug info (the xskdbg command with polars: 750 MB), so
/// binaries go in without it. Falls back to the original when `strip` is
/// missing or fails: a bigger initramfs still works when memory allows.
fn stripped_copy(host: &Path, dest: &Path) -> std::path::PathBuf {
    let ok = dest.parent().is_some_and(|d| fs::create_dir_all(d).is_ok())
        && std::process::Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(dest)
            .arg(host)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        dest.to_path_buf()
    } else {
        host.to_path_buf()
    }
}

/// Assembles the initramfs; returns each command's timeout in seconds.
fn build_initramfs(
    spec: &VmSpec,
    kernel: &PreparedKernel,
    dest: &Path,
) -> Result<Vec<u64>, VmError> {
    let mut fs = Initramfs::new();

    // busybox: /bin/busybox and a link per applet, except the tools copied from the
    // host (busybox's shell still runs its own `ip` applet first: call /usr/sbin/ip).
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| VmError::ToolMissing {
            tool: "busybox".into(),
            package: host::package_for("busybox").into(),
        })?;
    fs.add_binary("/bin/busybox", busybox)?;
    let list = host::run_tool(&busybox.to_string_lossy(), ["--list"], None, false)?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        let shadowed = GUEST_TOOLS.iter().any(|(tool, _)| *tool == applet);
        if applet.is_empty() || applet == "busybox" || shadowed || applet.contains('/') {
            continue;
        }
        fs.add_symlink(&format!("/bin/{applet}"), "busybox")?;
    }

    for (tool, required) in GUEST_TOOLS {
        let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .into_iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file());
        match found {
            Some(host_path) => fs.add_binary(&format!("/usr/sbin/{tool}"), &host_path)?,
            None if required => {
                return Err(VmError::ToolMissing {
                    tool: tool.into(),
                    package: host::package_for(tool).into(),
                })
            }
            None => {}
        }
    }

    if let (Some(config), Some(release)) = (&kernel.config, &kernel.release) {
        fs.add_host_path(&format!("/boot/config-{release}"), config)?;
    }

    let strip_dir = dest.parent().unwrap_or(Path::new(".")).join("stripped");
    for bin in &spec.binaries {
        let name = bin.guest_name()?;
        let host = stripped_copy(&bin.host, &strip_dir.join(&name));
        fs.add_binary(&format!("{GUEST_BIN_DIR}/{name}"), &host)?;
    }
    for file in &spec.files {
        fs.add_host_path(&file.guest, &file.host)?;
    }

    let mut modules = Vec::new();
    match (&kernel.modules, &kernel.modules_dir) {
        (Some(index), Some(dir)) => {
            let mut wanted: Vec<&str> = Vec::new();
            for m in DEFAULT_MODULES {
                // A self-built kernel given with its modules may lack some defaults
                // entirely (neither module nor built in): only ask for those it has.
                if index.resolve(&[m]).is_ok() {
                    wanted.push(m);
                }
            }
            wanted.extend(spec.modules.iter().map(String::as_str));
            let order = index.resolve(&wanted).map_err(|source| VmError::Module {
                dir: dir.clone(),
                source,
            })?;
            let release = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "modules".into());
            for rel in order {
                if !rel.ends_with(".ko") {
                    return Err(VmError::Spec(format!(
                        "module {rel} is compressed; busybox insmod needs plain .ko files \
                         (build the kernel with CONFIG_MODULE_COMPRESS_NONE)"
                    )));
                }
                let guest = format!("/lib/modules/{release}/{rel}");
                fs.add_host_path(&guest, &dir.join(&rel))?;
                modules.push((guest, modules::module_name(&rel)));
            }
        }
        _ if !spec.modules.is_empty() => {
            return Err(VmError::Spec(format!(
                "modules {:?} asked for, but the kernel {} comes without a modules directory \
                 (give its /lib/modules/VER with --modules-dir, or build them in)",
                spec.modules, kernel.description
            )));
        }
        _ => {}
    }

    let default_timeout = spec.command_timeout.unwrap_or(spec.timeout);
    let mut timeouts = Vec::new();
    for (i, cmd) in spec.commands.iter().enumerate() {
        let t = secs_ceil(cmd.timeout.unwrap_or(default_timeout)).max(1);
        timeouts.push(t);
        fs.add_bytes(
            &command_script_path(i),
            0o755,
            format!("{}\n", cmd.line).into_bytes(),
        )?;
    }
    let mut env = spec.env.clone();
    if !env.iter().any(|(k, _)| k == "CI") {
        if let Ok(ci) = std::env::var("CI") {
            env.push(("CI".into(), ci));
        }
    }
    let plan = InitPlan {
        modules,
        command_timeouts: timeouts.clone(),
        env,
    };
    fs.add_bytes("/init", 0o755, init_script(&plan)?.into_bytes())?;
    fs.write(dest, spec.gzip_initramfs)?;
    Ok(timeouts)
}

/// Turns a finished qemu run into an outcome or an error.
fn finish(
    spec: &VmSpec,
    kernel: &PreparedKernel,
    accel: Accel,
    qrun: &QemuRun,
    disk: &Path,
    console_log: &Path,
    timeouts: &[u64],
) -> Result<VmOutcome, VmError> {
    let console_tail = || {
        let text = fs::read(console_log).unwrap_or_default();
        host::tail(&String::from_utf8_lossy(&text), 30)
    };
    if qrun.boot_time.is_none() {
        return Err(match &qrun.ending {
            Ending::Panic(line) => VmError::KernelPanic {
                line: line.clone(),
                console_log: console_log.to_path_buf(),
                console_tail: console_tail(),
                partial: None,
            },
            Ending::BootTimeout | Ending::Timeout => VmError::BootTimeout {
                accel: format!("{accel:?}"),
                after: qrun.wall_time,
                hint: if accel == Accel::Kvm {
                    "; KVM guests hang on hosts without working nested virtualization: use --accel tcg".into()
                } else {
                    String::new()
                },
                console_log: console_log.to_path_buf(),
                console_tail: console_tail(),
            },
            _ => VmError::QemuFailed {
                status: qrun
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "no status".into()),
                stderr: {
                    let mut text = if qrun.stderr.trim().is_empty() {
                        format!("(no stderr); last console lines:\n{}", console_tail())
                    } else {
                        qrun.stderr.trim().to_string()
                    };
                    if accel == Accel::Kvm {
                        text.push_str("\n(KVM does not work on this host: use --accel tcg, or --accel auto to fall back)");
                    }
                    text
                },
            },
        });
    }

    let dest = spec.out_dir.join("guest");
    if dest.exists() {
        fs::remove_dir_all(&dest)
            .map_err(|e| VmError::io(format!("cannot replace {}", dest.display()), e))?;
    }
    let unpacked = match results::unpack_disk(disk, &dest) {
        Ok(unpacked) => unpacked,
        // A guest that could not write its archive says why on the console.
        Err(e) if !qrun.guest_errors.is_empty() => {
            return Err(VmError::GuestFailed {
                reason: format!("{e} (guest errors: {})", qrun.guest_errors.join("; ")),
                console_log: console_log.to_path_buf(),
                console_tail: console_tail(),
                partial: None,
            })
        }
        Err(e) => return Err(e),
    };
    let lines: Vec<String> = spec.commands.iter().map(|c| c.line.clone()).collect();
    let mut guest = if unpacked {
        results::decode(&dest, &lines, timeouts)
    } else {
        results::GuestResults::default()
    };
    // The guest saves after each command; the one running when it died is known only
    // from the console.
    if let Some(n) = qrun.last_started {
        if !guest.done && n == guest.commands.len() && n < lines.len() {
            guest.commands.push(CommandResult {
                index: n,
                command: lines[n].clone(),
                exit_code: None,
                timed_out: false,
                elapsed: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
            });
        }
    }
    let outcome = VmOutcome {
        commands: guest.commands,
        out_dir: spec.out_dir.clone(),
        files_dir: dest.join("out"),
        console_log: console_log.to_path_buf(),
        kernel: kernel.description.clone(),
        kernel_release: guest.kernel_release.or_else(|| kernel.release.clone()),
        accel,
        boot_time: qrun.boot_time,
        guest_boot_uptime: guest.boot_uptime.map(Duration::from_secs_f64),
        wall_time: qrun.wall_time,
        kernel_warnings: qrun.warnings.clone(),
        module_failures: guest.module_failures,
    };
    if guest.done && qrun.ending != Ending::Timeout && guest.save_error.is_none() {
        return Ok(outcome);
    }
    let partial = Some(Box::new(outcome));
    if let Some(why) = guest.save_error {
        return Err(VmError::GuestFailed {
            reason: format!(
                "{why}: raise the result disk ({} MiB now; result_disk_mb, --result-disk-mb)",
                spec.result_disk_mb
            ),
            console_log: console_log.to_path_buf(),
            console_tail: console_tail(),
            partial,
        });
    }
    Err(match &qrun.ending {
        Ending::Panic(line) => VmError::KernelPanic {
            line: line.clone(),
            console_log: console_log.to_path_buf(),
            console_tail: console_tail(),
            partial,
        },
        Ending::Timeout | Ending::BootTimeout => VmError::Timeout {
            after: spec.timeout,
            console_log: console_log.to_path_buf(),
            console_tail: console_tail(),
            partial,
        },
        Ending::Done | Ending::Exited => {
            let mut reason = if !unpacked {
                "the guest wrote no results to its disk".to_string()
            } else {
                "the guest stopped before finishing its commands".to_string()
            };
            if !qrun.guest_errors.is_empty() {
                reason.push_str(&format!(
                    " (guest errors: {})",
                    qrun.guest_errors.join("; ")
                ));
            }
            if qrun
                .guest_errors
                .iter()
                .any(|e| e.contains("No space left"))
            {
                reason.push_str(&format!(
                    "; the results do not fit the {} MiB result disk: raise result_disk_mb (--result-disk-mb)",
                    spec.result_disk_mb
                ));
            }
            VmError::GuestFailed {
                reason,
                console_log: console_log.to_path_buf(),
                console_tail: console_tail(),
                partial,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_file_forms() {
        assert_eq!(
            Binary::parse("target/debug/deps/probes-12ab:probes"),
            Binary {
                host: "target/debug/deps/probes-12ab".into(),
                name: Some("probes".into())
            }
        );
        assert_eq!(Binary::parse("/usr/sbin/bpftool").name, None);
        let f = FileMapping::parse("fixtures:/work/fixtures").unwrap();
        assert_eq!(f.guest, "/work/fixtures");
        assert!(FileMapping::parse("a:relative").is_err());
        let f = FileMapping::parse("/etc/hostname").unwrap();
        assert_eq!(f.guest, "/etc/hostname");
    }

    #[test]
    fn stale_work_dirs_are_swept_live_ones_kept() {
        assert_eq!(work_dir_pid("xskdbg-vm-1234-abcd"), Some(1234));
        assert_eq!(work_dir_pid("xskdbg-vm.1234"), None);
        assert_eq!(work_dir_pid("other-1234-x"), None);
        let tmp = tempfile::tempdir().unwrap();
        // PID 0 never names a live process in /proc; our own PID does.
        let dead = tmp.path().join("xskdbg-vm-0-aaaa");
        let live = tmp
            .path()
            .join(format!("xskdbg-vm-{}-bbbb", std::process::id()));
        let other = tmp.path().join("xskdbg-vm.out");
        for d in [&dead, &live, &other] {
            fs::create_dir(d).unwrap();
        }
        sweep_stale_work_dirs(tmp.path());
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists());
    }

    #[test]
    fn specs_are_validated() {
        let mut spec = VmSpec::new("/tmp/x");
        assert!(matches!(validate(&spec), Err(VmError::Spec(_))));
        spec.commands.push("true".into());
        assert!(validate(&spec).is_ok());
        spec.vcpus = 0;
        assert!(validate(&spec).is_err());
        spec.vcpus = 2;
        spec.memory_mb = 64;
        assert!(validate(&spec).is_err());
    }
}
