//! Traffic: an AF_PACKET generator that sends test frames from a peer
//! namespace into a chosen rx queue of the receiving veth, and a receive
//! loop over an AF_XDP socket.
//!
//! Queue selection: veth delivers a frame to the rx queue whose number is the
//! sender's tx queue (`veth_xmit` uses `skb_get_queue_mapping`). With
//! `PACKET_QDISC_BYPASS`, AF_PACKET picks the tx queue in
//! `packet_pick_tx_queue`: with no XPS map and no `ndo_select_queue` (veth has
//! neither) that is `sending CPU % real_num_tx_queues`. So a generator pinned
//! to CPU `c` feeds rx queue `c % queues` ([`queue_for_cpu`]). tc's
//! `skbedit queue_mapping` would allow any queue, but kernels without
//! CONFIG_NET_ACT_SKBEDIT (like the 6.18 test host) lack it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xdpilone::xdp::XdpDesc;

use crate::error::{Error, Result};
use crate::netns::NetNs;
use crate::packet::{build_frame, FrameSpec};
use crate::sys;
use crate::xsk::XskSocket;

/// From <linux/if_packet.h>.
const PACKET_QDISC_BYPASS: libc::c_int = 20;

/// The rx queue of the receiving veth that frames from a generator pinned
/// to `cpu` reach, when the sending end has `tx_queues` tx queues.
pub fn queue_for_cpu(cpu: usize, tx_queues: u32) -> u32 {
    (cpu % tx_queues.max(1) as usize) as u32
}

/// CPUs this process may run on, in order.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    // SAFETY: zeroed cpu_set_t is valid; the call fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid set of its own size.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(Error::last_os("sched_getaffinity"));
    }
    // SAFETY: CPU_ISSET reads the set within its size.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(Error::Invalid(format!("cpu {cpu} out of range")));
    }
    // SAFETY: zeroed cpu_set_t is valid; CPU_SET writes within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: valid set of its own size; 0 = calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(Error::last_os(format!("sched_setaffinity(cpu {cpu})")));
    }
    Ok(())
}

/// What to send.
#[derive(Debug, Clone)]
pub struct TrafficPlan {
    /// Flows, used round-robin: frame `i` belongs to `flows[i % len]`.
    pub flows: Vec<FrameSpec>,
    /// Frame lengths, cycled: frame `i` is `lengths[i % len]` bytes.
    pub lengths: Vec<usize>,
    /// Stop after this many frames.
    pub count: u64,
    /// Stop after this long, if set.
    pub duration: Option<Duration>,
    /// Keep at most this many frames in flight (sent but not yet counted by
    /// the receiver in `received`): veth drops frames when its 256-entry
    /// per-queue ring is full, so a test that wants every frame paces itself.
    pub window: Option<u64>,
    /// Give up waiting for the receiver after this long without progress.
    pub stall: Duration,
    /// Sequence number of the first frame (frame `i` carries `first_seq + i`).
    pub first_seq: u64,
    /// Pin the sending thread to this CPU (selects the rx queue, see the
    /// module docs); the thread stays pinned afterwards.
    pub cpu: Option<usize>,
    /// Sleep this long after every frame handed to the kernel. A veth queue
    /// fed faster than it drains never completes its NAPI poll (every poll
    /// uses its whole budget and repolls on the same CPU), so frames from
    /// other CPUs only join that CPU's poll; paced frames let each poll
    /// drain the queue and complete, and the next frame starts a poll on
    /// whichever CPU sent it.
    pub gap: Option<Duration>,
}

/// What a generator run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Frames handed to the kernel.
    pub sent: u64,
    /// send() calls refused with ENOBUFS/EAGAIN (retried).
    pub retries: u64,
    /// The window wait gave up because the receiver made no progress.
    pub stalled: bool,
    /// Wall time in microseconds.
    pub elapsed_us: u64,
}

/// Sends raw frames out of one interface through an AF_PACKET socket.
#[derive(Debug)]
pub struct Generator {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Generator {
    /// Opens an AF_PACKET socket bound to `ifname` in `netns` (the calling
    /// thread's namespace when `None`), with PACKET_QDISC_BYPASS so the tx
    /// queue follows the sending CPU. Protocol 0: it only sends.
    pub fn new(netns: Option<&NetNs>, ifname: &str) -> Result<Self> {
        let open = || -> Result<OwnedFd> {
            let ifindex = sys::ifindex(ifname)?;
            // SAFETY: plain socket(2).
            let raw =
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            if raw < 0 {
                return Err(Error::last_os("socket(AF_PACKET, SOCK_RAW)"));
            }
            // SAFETY: fresh fd we own.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: zeroed sockaddr_ll is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            // SAFETY: valid sockaddr_ll of its own size.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(Error::last_os(format!("bind(AF_PACKET, {ifname})")));
            }
            let one: libc::c_int = 1;
            // SAFETY: valid int option.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    PACKET_QDISC_BYPASS,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(Error::last_os("setsockopt(PACKET_QDISC_BYPASS)"));
            }
            Ok(fd)
        };
        let fd = match netns {
            Some(ns) => ns.run(open)??,
            None => open()?,
        };
        Ok(Generator {
            fd,
            buf: Vec::with_capacity(2048),
        })
    }

    /// Sends one frame; `Ok(false)` when the kernel said ENOBUFS/EAGAIN.
    pub fn send_frame(&self, frame: &[u8]) -> Result<bool> {
        // SAFETY: valid buffer and length.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
                _ => Err(Error::Sys {
                    call: "send(AF_PACKET)".into(),
                    source: e,
                }),
            };
        }
        Ok(true)
    }

    /// Runs `plan` on the calling thread; `received` is the receiver's
    /// running count of this plan's frames, read only when `plan.window` is
    /// set.
    pub fn run(&mut self, plan: &TrafficPlan, received: &AtomicU64) -> Result<SendReport> {
        if plan.flows.is_empty() || plan.lengths.is_empty() {
            return Err(Error::Invalid(
                "traffic plan needs at least one flow and one length".into(),
            ));
        }
        if let Some(cpu) = plan.cpu {
            pin_to_cpu(cpu)?;
        }
        let start = Instant::now();
        let mut rep = SendReport::default();
        let mut seq = 0u64;
        while seq < plan.count {
            if plan.duration.is_some_and(|d| start.elapsed() >= d) {
                break;
            }
            if let Some(window) = plan.window {
                let mut last = received.load(Ordering::Acquire);
                let mut since = Instant::now();
                while seq.saturating_sub(received.load(Ordering::Acquire)) >= window {
                    let now = received.load(Ordering::Acquire);
                    if now != last {
                        (last, since) = (now, Instant::now());
                    } else if since.elapsed() >= plan.stall {
                        rep.stalled = true;
                        rep.elapsed_us = start.elapsed().as_micros() as u64;
                        return Ok(rep);
                    }
                    std::thread::yield_now();
                }
            }
            let i = seq as usize;
            let spec = &plan.flows[i % plan.flows.len()];
            let len = plan.lengths[i % plan.lengths.len()];
            let wire_seq = plan.first_seq.wrapping_add(seq);
            build_frame(spec, wire_seq, len, &mut self.buf)
                .map_err(|e| Error::Invalid(format!("frame {wire_seq}: {e}")))?;
            let buf = std::mem::take(&mut self.buf);
            let sent = self.send_frame(&buf);
            self.buf = buf;
            if sent? {
                seq += 1;
                rep.sent += 1;
                if let Some(gap) = plan.gap {
                    // A sleep, not a spin: the CPU goes idle, which under
                    // emulation also leaves host time to the receiver.
                    std::thread::sleep(gap);
                }
            } else {
                rep.retries += 1;
                std::thread::yield_now();
            }
        }
        rep.elapsed_us = start.elapsed().as_micros() as u64;
        Ok(rep)
    }
}

/// Receives on `sock` until `expected` frames arrived or nothing came for
/// `idle`; every received frame is copied out and given to `on_frame` with
/// its descriptor, and its chunk goes back on FILL. `free` holds the frame
/// addresses the socket may put on FILL. `received` is bumped per frame (the
/// generator's window reads it). Returns the number received.
///
/// Stock FILL ([`XskSocket::fill_from`]) before the first frame is sent:
/// a frame that arrives while FILL is empty is dropped by the kernel
/// (`rx_fill_ring_empty_descs`, `rx_dropped`), and this loop only fills once
/// it runs.
pub fn receive_loop(
    sock: &mut XskSocket,
    free: &mut Vec<u64>,
    expected: u64,
    idle: Duration,
    received: &AtomicU64,
    mut on_frame: impl FnMut(&XdpDesc, &[u8]),
) -> Result<u64> {
    let area = std::sync::Arc::clone(sock.area());
    let mut descs = Vec::with_capacity(256);
    let mut bytes = Vec::with_capacity(2048);
    let mut total = 0u64;
    let mut last = Instant::now();
    sock.fill_from(free);
    while total < expected {
        descs.clear();
        if sock.receive(256, &mut descs) == 0 {
            if last.elapsed() >= idle {
                break;
            }
            sock.wait_rx(10)?;
            continue;
        }
        last = Instant::now();
        for d in &descs {
            if area.read_into(d.addr, d.len, &mut bytes) {
                on_frame(d, &bytes);
            } else {
                on_frame(d, &[]);
            }
            free.push(area.chunk_of(d.addr));
            total += 1;
            received.fetch_add(1, Ordering::Release);
        }
        sock.fill_from(free);
    }
    Ok(total)
}
