//! The XSKMAP redirect program: loaded from the skeleton built by build.rs,
//! attached to one device through a BPF link (detached when the link's fd
//! closes: on drop, and also when the process dies).

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::error::{Error, Result};
use crate::netns::NetNs;

mod skel {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    include!(concat!(env!("OUT_DIR"), "/redirect.skel.rs"));
}

/// Where the XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Driver (native) mode: veth runs the program in its NAPI poll, the
    /// path of the seed story. Needs rx queues >= peer tx queues.
    Native,
    /// Generic (SKB) mode: any device, after the skb is built.
    Generic,
}

impl XdpMode {
    /// `native` / `generic`.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        }
    }

    fn link_flags(self) -> u32 {
        match self {
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        }
    }
}

// From <linux/if_link.h>.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Verdict counters kept by the program (summed over CPUs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// Frames handed to `bpf_redirect_map` successfully (a socket was
    /// registered for the queue; delivery can still fail, see XDP_STATISTICS).
    pub redirected: u64,
    /// Frames passed to the stack (no socket registered for the queue).
    pub passed: u64,
}

/// The redirect program attached to one device. Detaches on drop.
#[derive(Debug)]
pub struct XdpProgram {
    // Field order is drop order: the link goes first (detach), then the
    // program and maps.
    link: OwnedFd,
    prog: OwnedFd,
    xsks: MapHandle,
    verdicts: MapHandle,
    ifindex: u32,
    ifname: String,
    mode: XdpMode,
}

impl XdpProgram {
    /// Loads a fresh copy of the program and attaches it to `ifname` in
    /// `netns` (the calling thread's namespace when `None`).
    ///
    /// Each device gets its own program and XSKMAP, because the map is keyed
    /// by rx queue index, which repeats across devices.
    pub fn attach(netns: Option<&NetNs>, ifname: &str, mode: XdpMode) -> Result<Self> {
        let mut storage = MaybeUninit::uninit();
        let open = skel::RedirectSkelBuilder::default()
            .open(&mut storage)
            .map_err(|e| Error::bpf("opening the redirect skeleton", e))?;
        let loaded = open
            .load()
            .map_err(|e| Error::bpf("loading the redirect program", e))?;
        // Own duplicates, so the program outlives the skeleton's borrow of
        // `storage` and this struct needs no lifetime.
        let prog = dup(loaded.progs.xsk_redirect.as_fd(), "program")?;
        let xsks = MapHandle::try_from(&loaded.maps.xsks_map)
            .map_err(|e| Error::bpf("duplicating xsks_map", e))?;
        let verdicts = MapHandle::try_from(&loaded.maps.verdicts)
            .map_err(|e| Error::bpf("duplicating verdicts", e))?;
        drop(loaded);

        let link_in_ns = || -> Result<(u32, OwnedFd)> {
            let ifindex = crate::sys::ifindex(ifname)?;
            let link =
                link_create(prog.as_fd(), ifindex, mode).map_err(|source| Error::XdpAttach {
                    ifname: ifname.to_string(),
                    ifindex,
                    mode: mode.as_str(),
                    hint: attach_hint(&source, mode),
                    source,
                })?;
            Ok((ifindex, link))
        };
        let (ifindex, link) = match netns {
            Some(ns) => ns.run(link_in_ns)??,
            None => link_in_ns()?,
        };
        Ok(XdpProgram {
            link,
            prog,
            xsks,
            verdicts,
            ifindex,
            ifname: ifname.to_string(),
            mode,
        })
    }

    /// Registers the AF_XDP socket `xsk_fd` for rx queue `queue`.
    pub fn register(&self, queue: u32, xsk_fd: BorrowedFd<'_>) -> Result<()> {
        let fd = xsk_fd.as_raw_fd() as u32;
        self.xsks
            .update(&queue.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| Error::bpf(format!("xsks_map[{queue}] = fd {fd} on {}", self.ifname), e))
    }

    /// Removes the socket of rx queue `queue` (its frames go to the stack).
    pub fn unregister(&self, queue: u32) -> Result<()> {
        self.xsks
            .delete(&queue.to_ne_bytes())
            .map_err(|e| Error::bpf(format!("deleting xsks_map[{queue}] on {}", self.ifname), e))
    }

    /// The program's verdict counters, summed over CPUs.
    pub fn verdicts(&self) -> Result<Verdicts> {
        let sum = |key: u32| -> Result<u64> {
            let per_cpu = self
                .verdicts
                .lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| Error::bpf("reading verdicts", e))?
                .unwrap_or_default();
            Ok(per_cpu
                .iter()
                .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                .map(u64::from_ne_bytes)
                .sum())
        };
        Ok(Verdicts {
            redirected: sum(0)?,
            passed: sum(1)?,
        })
    }

    /// Interface index the program is attached to (in its namespace).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The attach mode.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// The program's fd (e.g. to query its id).
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        self.prog.as_fd()
    }

    /// The BPF link's fd; closing it detaches the program.
    pub fn link_fd(&self) -> BorrowedFd<'_> {
        self.link.as_fd()
    }
}

fn dup(fd: BorrowedFd<'_>, what: &str) -> Result<OwnedFd> {
    fd.try_clone_to_owned().map_err(|source| Error::Sys {
        call: format!("dup({what})"),
        source,
    })
}

/// BPF_LINK_CREATE for BPF_XDP in the calling thread's namespace.
fn link_create(prog: BorrowedFd<'_>, ifindex: u32, mode: XdpMode) -> std::io::Result<OwnedFd> {
    let opts = libbpf_rs::libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_link_create_opts>() as _,
        flags: mode.link_flags(),
        ..Default::default()
    };
    let ifindex =
        i32::try_from(ifindex).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid prog fd and a fully initialised opts struct of its own size.
    let rc = unsafe {
        libbpf_rs::libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            ifindex,
            libbpf_rs::libbpf_sys::BPF_XDP,
            &opts,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::from_raw_os_error(-rc));
    }
    // SAFETY: a non-negative return is a fresh link fd we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

fn attach_hint(e: &std::io::Error, mode: XdpMode) -> String {
    match (e.raw_os_error(), mode) {
        (Some(libc::ENOSPC), XdpMode::Native) => "; veth needs rx queues >= the peer's tx queues \
             (recreate the pair with more numrxqueues, or use generic mode)"
            .into(),
        (Some(libc::EBUSY), _) => "; another XDP program or mode is already attached".into(),
        (Some(libc::EOPNOTSUPP), XdpMode::Native) => {
            "; the driver has no native XDP: use generic mode".into()
        }
        (Some(libc::EPERM), _) => "; needs CAP_NET_ADMIN and CAP_BPF (run as root)".into(),
        _ => String::new(),
    }
}
