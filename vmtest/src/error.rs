//! The one error type of the crate: every failure says what happened and what to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::modules::ModuleError;
use crate::VmOutcome;

/// Why a VM run failed.
///
/// Failures that happen after the guest started running commands carry the partial
/// outcome (the commands that finished, the files they wrote, the console log), so a
/// caller can still save a trace from a guest that panicked or ran out of time.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A host program the runner needs is not installed.
    #[error("`{tool}` not found: install {package}: run scripts/setup.sh")]
    ToolMissing {
        /// Program name.
        tool: String,
        /// Debian package that provides it.
        package: String,
    },
    /// A host program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    ToolFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// Reading or writing a host file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec asks for something impossible.
    #[error("invalid VM spec: {0}")]
    Spec(String),
    /// apt-cache offers no Debian 6.1 cloud kernel.
    #[error(
        "apt-cache offers no package matching {pattern} and none is cached in {cache}: \
         run `apt-get update` (scripts/setup.sh does), or pass --kernel PATH"
    )]
    NoDebianKernel {
        /// The package name pattern searched for.
        pattern: String,
        /// The cache directory looked in.
        cache: PathBuf,
    },
    /// The kernel image is unusable.
    #[error("kernel {path}: {reason}")]
    BadKernel {
        /// The image path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A kernel module could not be resolved for the guest.
    #[error("kernel modules in {dir}: {source}")]
    Module {
        /// The `/lib/modules/VER` directory used.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: ModuleError,
    },
    /// A binary for the guest links a library the host does not have.
    #[error("{binary}: shared library {library} not found on the host (ldd says `not found`)")]
    MissingLibrary {
        /// The binary.
        binary: PathBuf,
        /// The library soname.
        library: String,
    },
    /// qemu could not start the guest (bad option, no KVM, ...).
    #[error("qemu exited with {status} before the guest booted: {stderr}")]
    QemuFailed {
        /// qemu's exit status.
        status: String,
        /// qemu's standard error.
        stderr: String,
    },
    /// The guest's init never started within the boot timeout.
    #[error(
        "the guest did not reach its init within {:.1} s ({accel}){hint}; \
         console log: {console_log}; last console lines:\n{console_tail}",
        .after.as_secs_f64()
    )]
    BootTimeout {
        /// The accelerator used.
        accel: String,
        /// How long was waited.
        after: Duration,
        /// Extra advice (KVM hangs here: use TCG).
        hint: String,
        /// Where the full console log is.
        console_log: PathBuf,
        /// The last lines of the console.
        console_tail: String,
    },
    /// The guest kernel panicked.
    #[error("guest kernel panic: {line}; console log: {console_log}; last console lines:\n{console_tail}")]
    KernelPanic {
        /// The `Kernel panic - not syncing: ...` line.
        line: String,
        /// Where the full console log is.
        console_log: PathBuf,
        /// The last lines of the console.
        console_tail: String,
        /// What the guest had saved before it died.
        partial: Option<Box<VmOutcome>>,
    },
    /// The whole run exceeded its time budget; qemu was killed.
    #[error(
        "the VM run exceeded its timeout of {:.0} s and qemu was killed \
         (raise --timeout, or --cmd-timeout to bound each command); console log: {console_log}; \
         last console lines:\n{console_tail}",
        .after.as_secs_f64()
    )]
    Timeout {
        /// The overall timeout.
        after: Duration,
        /// Where the full console log is.
        console_log: PathBuf,
        /// The last lines of the console.
        console_tail: String,
        /// What the guest had saved before it was killed.
        partial: Option<Box<VmOutcome>>,
    },
    /// The guest stopped before finishing its commands, without a kernel panic.
    #[error("{reason}; console log: {console_log}; last console lines:\n{console_tail}")]
    GuestFailed {
        /// What went wrong, with the fix when known.
        reason: String,
        /// Where the full console log is.
        console_log: PathBuf,
        /// The last lines of the console.
        console_tail: String,
        /// What the guest had saved before it stopped.
        partial: Option<Box<VmOutcome>>,
    },
    /// The result disk held something that is not the runner's archive.
    #[error("result disk {disk}: {reason}")]
    Results {
        /// The disk image.
        disk: PathBuf,
        /// What could not be decoded.
        reason: String,
    },
}

impl VmError {
    /// What the guest saved before a failure that happened after boot, if anything.
    pub fn partial(&self) -> Option<&VmOutcome> {
        match self {
            VmError::KernelPanic { partial, .. }
            | VmError::Timeout { partial, .. }
            | VmError::GuestFailed { partial, .. } => partial.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        VmError::Io {
            what: what.into(),
            source,
        }
    }
}
