//! The kernel-facing seam: external tools (iproute2, tc, ethtool) and the few
//! raw system calls the crate makes. Everything else is built on these.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// `SO_NETNS_COOKIE` from <asm-generic/socket.h> (not in every libc release).
const SO_NETNS_COOKIE: libc::c_int = 71;
/// Capability numbers from <linux/capability.h>.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// A command-line tool the testbed drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// iproute2's `ip`.
    Ip,
    /// iproute2's `tc`.
    Tc,
    /// `ethtool`.
    Ethtool,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ip => "ip",
            Tool::Tc => "tc",
            Tool::Ethtool => "ethtool",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Tool::Ip | Tool::Tc => "iproute2",
            Tool::Ethtool => "ethtool",
        }
    }
}

/// Finds `tool` by full path. Busybox's applets are skipped on purpose: in a
/// busybox guest `ip` on PATH is busybox's, which lacks `netns` and veth
/// options, so only the real binaries are accepted.
pub fn tool_path(tool: Tool) -> Result<PathBuf> {
    let name = tool.name();
    let dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    for dir in dirs {
        let path = Path::new(dir).join(name);
        let Ok(real) = std::fs::canonicalize(&path) else {
            continue;
        };
        let is_busybox = real
            .file_name()
            .is_some_and(|f| f.to_string_lossy().contains("busybox"));
        if !is_busybox {
            return Ok(path);
        }
    }
    Err(Error::ToolMissing {
        tool: name,
        searched: dirs.map(|d| format!("{d}/{name}")).join(", "),
        package: tool.package(),
    })
}

/// Runs `tool args...`, returning stdout; a non-zero exit is an error that
/// quotes the command and its stderr.
pub fn run(tool: Tool, args: &[&str]) -> Result<String> {
    let path = tool_path(tool)?;
    let command = format!("{} {}", path.display(), args.join(" "));
    let out = Command::new(&path)
        .args(args)
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            command,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Opens a namespace file (`/run/netns/NAME`, `/proc/thread-self/ns/net`).
pub fn open_ns(path: &Path) -> Result<OwnedFd> {
    let file = File::open(path).map_err(|source| Error::Sys {
        call: format!("open({})", path.display()),
        source,
    })?;
    Ok(OwnedFd::from(file))
}

/// Moves the calling thread into the network namespace `fd` refers to.
/// Only this thread moves: network namespaces are per thread.
pub fn setns_net(fd: BorrowedFd<'_>, what: &str) -> Result<()> {
    // SAFETY: setns only reads the fd; CLONE_NEWNET limits it to the net ns.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(Error::last_os(format!("setns({what}, CLONE_NEWNET)")));
    }
    Ok(())
}

/// `if_nametoindex` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = CString::new(name).map_err(|_| Error::Invalid(format!("interface name {name:?}")))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Error::last_os(format!("if_nametoindex({name})")));
    }
    Ok(idx)
}

/// `SO_NETNS_COOKIE` (Linux 5.14+) of a socket: the identity of the network
/// namespace the socket lives in, unique for the boot (unlike an ifindex).
pub fn netns_cookie(fd: BorrowedFd<'_>) -> Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: cookie/len point to valid memory of the advertised size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(Error::last_os("getsockopt(SO_NETNS_COOKIE)"));
    }
    Ok(cookie)
}

/// A throw-away UDP socket in the calling thread's namespace, used to read
/// that namespace's cookie.
pub fn current_netns_cookie() -> Result<u64> {
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(Error::last_os("socket(AF_INET, SOCK_DGRAM)"));
    }
    // SAFETY: `raw` is a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    netns_cookie(fd.as_fd())
}

/// `struct sockaddr_xdp` from <linux/if_xdp.h>.
#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

/// `XDP_SHARED_UMEM` bind flag (<linux/if_xdp.h>).
const XDP_SHARED_UMEM: u16 = 1 << 0;
/// `AF_XDP` (<linux/socket.h>).
const AF_XDP: u16 = 44;

/// Binds AF_XDP socket `fd` to (`ifindex`, `queue`) with XDP_SHARED_UMEM
/// and `shared_fd` as the socket whose UMEM it shares. When `shared_fd` is
/// bound to the same device and queue, the kernel gives `fd` that socket's
/// buffer pool (one FILL and one COMPLETION ring for both); `fd` must then
/// have no FILL or COMPLETION ring of its own (else EINVAL).
pub fn bind_shared_umem(fd: RawFd, ifindex: u32, queue: u32, shared_fd: RawFd) -> io::Result<()> {
    let addr = SockaddrXdp {
        family: AF_XDP,
        flags: XDP_SHARED_UMEM,
        ifindex,
        queue_id: queue,
        shared_umem_fd: shared_fd as u32,
    };
    // SAFETY: `addr` is a valid sockaddr_xdp of the size passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&addr as *const SockaddrXdp).cast(),
            std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until `fd` is readable or `timeout_ms` passed; returns whether it is.
pub fn poll_readable(fd: RawFd, timeout_ms: i32) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(Error::Sys {
            call: "poll".into(),
            source: e,
        });
    }
    Ok(rc > 0 && pfd.revents & libc::POLLIN != 0)
}

/// Whether the process has CAP_SYS_ADMIN and CAP_NET_ADMIN in effect (what
/// netns, veth and XDP setup need), read from /proc/self/status.
pub fn has_admin_caps() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let Some(line) = status.lines().find(|l| l.starts_with("CapEff:")) else {
        return false;
    };
    let Ok(eff) = u64::from_str_radix(line["CapEff:".len()..].trim(), 16) else {
        return false;
    };
    let need = (1u64 << CAP_SYS_ADMIN) | (1u64 << CAP_NET_ADMIN);
    eff & need == need
}
