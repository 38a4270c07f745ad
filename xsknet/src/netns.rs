//! Network namespace guards: create a uniquely named namespace with iproute2,
//! run code inside it, delete it on drop (also while unwinding from a panic).

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::sys::{self, Tool};

/// Prefix of every namespace this crate creates; `remove_stale` keys on it.
pub const NETNS_PREFIX: &str = "xsknet-";
const NETNS_DIR: &str = "/run/netns";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A named network namespace (`ip netns add`) that is deleted on drop.
///
/// The name is `xsknet-<pid>-<n>-<tag>`, unique across parallel tests and
/// processes. The guard keeps a file descriptor on the namespace for
/// [`NetNs::enter`] and [`NetNs::spawn`].
#[derive(Debug)]
pub struct NetNs {
    name: String,
    // Closed by hand in Drop, before `ip netns del`, so the namespace dies
    // with its last user.
    fd: ManuallyDrop<OwnedFd>,
    cookie: u64,
}

impl NetNs {
    /// Creates a fresh namespace; `tag` (letters, digits, `-`) makes its
    /// purpose readable in `ip netns list`. Loopback is brought up.
    pub fn new(tag: &str) -> Result<Self> {
        if tag.is_empty()
            || tag.len() > 32
            || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Error::Invalid(format!(
                "netns tag {tag:?}: use 1-32 of [A-Za-z0-9-]"
            )));
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NETNS_PREFIX}{}-{n}-{tag}", std::process::id());
        sys::run(Tool::Ip, &["netns", "add", &name])?;
        let fd = match sys::open_ns(&Path::new(NETNS_DIR).join(&name)) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = sys::run(Tool::Ip, &["netns", "del", &name]);
                return Err(e);
            }
        };
        // From here on the guard owns the name: an error below still deletes it.
        let mut ns = NetNs {
            name,
            fd: ManuallyDrop::new(fd),
            cookie: 0,
        };
        sys::run(Tool::Ip, &["-n", &ns.name, "link", "set", "lo", "up"])?;
        // No IPv6 on new interfaces: router solicitations and MLD reports
        // would otherwise reach the AF_XDP sockets next to the test frames.
        // /proc/sys/net is per namespace, resolved by the opening thread.
        ns.run(|| {
            let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
            let _ = std::fs::write("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
        })?;
        ns.cookie = ns.run(sys::current_netns_cookie)??;
        Ok(ns)
    }

    /// The namespace's name, as `ip -n NAME` and `ip netns exec NAME` take it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// The namespace cookie (what `SO_NETNS_COOKIE` returns for any socket
    /// created inside it).
    pub fn cookie(&self) -> u64 {
        self.cookie
    }

    /// A descriptor of the namespace (for `setns`, or `IFLA_NET_NS_FD`).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Moves the calling thread into the namespace until the returned guard
    /// drops (the guard cannot leave the thread).
    pub fn enter(&self) -> Result<NsGuard> {
        let orig = sys::open_ns(Path::new("/proc/thread-self/ns/net"))?;
        sys::setns_net(self.fd(), &self.name)?;
        Ok(NsGuard {
            orig,
            _not_send: PhantomData,
        })
    }

    /// Runs `f` on the calling thread inside the namespace, then returns to
    /// the previous namespace (also when `f` panics).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let _guard = self.enter()?;
        Ok(f())
    }

    /// Starts a named thread that lives inside the namespace.
    pub fn spawn<F, R>(&self, thread_name: &str, f: F) -> Result<JoinHandle<Result<R>>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let fd = self
            .fd()
            .try_clone_to_owned()
            .map_err(|source| Error::Sys {
                call: format!("dup({})", self.name),
                source,
            })?;
        let ns_name = self.name.clone();
        std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn(move || {
                sys::setns_net(fd.as_fd(), &ns_name)?;
                drop(fd);
                Ok(f())
            })
            .map_err(|source| Error::Sys {
                call: "spawn thread".into(),
                source,
            })
    }

    /// Runs `ip -n NAME args...`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        sys::run(Tool::Ip, &all)
    }

    /// Runs a tool inside the namespace (`ip netns exec NAME tool args...`).
    pub fn exec(&self, tool: Tool, args: &[&str]) -> Result<String> {
        let path = sys::tool_path(tool)?;
        let path = path.to_string_lossy();
        let mut all = vec!["netns", "exec", self.name.as_str(), path.as_ref()];
        all.extend_from_slice(args);
        sys::run(Tool::Ip, &all)
    }

    /// Whether a namespace of this name is registered in /run/netns.
    pub fn exists(name: &str) -> bool {
        Path::new(NETNS_DIR).join(name).exists()
    }

    /// Deletes namespaces left by `xsknet` processes that no longer run
    /// (e.g. killed with SIGKILL, which skips every Drop). Returns the names
    /// removed.
    pub fn remove_stale() -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
            return Ok(removed);
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(NETNS_PREFIX) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                sys::run(Tool::Ip, &["netns", "del", &name])?;
                removed.push(name);
            }
        }
        Ok(removed)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // SAFETY: `fd` is never used again after this point.
        unsafe { ManuallyDrop::drop(&mut self.fd) };
        if let Err(e) = sys::run(Tool::Ip, &["netns", "del", &self.name]) {
            eprintln!("xsknet: could not delete netns {}: {e}", self.name);
        }
    }
}

/// Returned by [`NetNs::enter`]: puts the thread back into its previous
/// network namespace on drop.
#[derive(Debug)]
pub struct NsGuard {
    orig: OwnedFd,
    // setns acts on the calling thread, so the guard must stay on it.
    _not_send: PhantomData<*const ()>,
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        if let Err(e) = sys::setns_net(self.orig.as_fd(), "previous netns") {
            // Continuing in the wrong namespace would silently misdirect
            // every later operation of this thread.
            eprintln!("xsknet: {e}; aborting");
            std::process::abort();
        }
    }
}
