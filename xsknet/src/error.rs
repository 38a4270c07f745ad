//! The one error type of the crate.

use std::io;

/// What went wrong while building or using the testbed.
///
/// Every variant names the operation and carries the cause, so a failed
/// test says what to fix without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An external command (iproute2, tc, ethtool) could not run or failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line as run.
        command: String,
        /// Exit status and stderr, or the spawn error.
        detail: String,
    },
    /// A required tool is not installed (or only a busybox applet is).
    #[error("{tool} not found (looked in {searched}); install {package} (scripts/setup.sh)")]
    ToolMissing {
        /// The program name.
        tool: &'static str,
        /// The paths that were tried.
        searched: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Sys {
        /// The call and its main argument, e.g. `setns(/run/netns/x)`.
        call: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// A libbpf operation failed (open, load, attach, map update).
    #[error("{what}: {source}")]
    Bpf {
        /// What was being done.
        what: String,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// Attaching the XDP program failed; `hint` explains the usual cause.
    #[error("attaching XDP ({mode}) to {ifname} (ifindex {ifindex}) failed: {source}{hint}")]
    XdpAttach {
        /// Interface name.
        ifname: String,
        /// Interface index.
        ifindex: u32,
        /// `native` or `generic`.
        mode: &'static str,
        /// The errno from BPF_LINK_CREATE.
        #[source]
        source: io::Error,
        /// A hint for well-known errnos (ENOSPC on veth), or empty.
        hint: String,
    },
    /// An AF_XDP socket operation failed (xdpilone reports an errno).
    #[error("AF_XDP {what} on ifindex {ifindex} queue {queue} failed: {source}")]
    Xsk {
        /// What was being done: socket, fill/completion rings, bind, ...
        what: &'static str,
        /// Interface index the socket is for.
        ifindex: u32,
        /// Queue id the socket is for.
        queue: u32,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// A caller-supplied value is out of range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Output of a tool could not be understood.
    #[error("could not parse {what}: {detail}")]
    Parse {
        /// What was parsed.
        what: String,
        /// Why it did not parse.
        detail: String,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps the current `errno` for a failed system call.
    pub(crate) fn last_os(call: impl Into<String>) -> Self {
        Error::Sys {
            call: call.into(),
            source: io::Error::last_os_error(),
        }
    }

    pub(crate) fn bpf(what: impl Into<String>, source: libbpf_rs::Error) -> Self {
        Error::Bpf {
            what: what.into(),
            source,
        }
    }
}
