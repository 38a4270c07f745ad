//! Sender threads of the extra sockets of `--sockets-per-queue N`: each
//! socket shares the buffer pool of the forwarder's socket on the same
//! device and queue (XDP_SHARED_UMEM on one queue: one FILL and one
//! COMPLETION ring for both) and transmits frames it owns alone, from a
//! thread of its own, out to the peer end.
//!
//! The pool's COMPLETION ring has one consumer, the forwarder: it reads
//! every completion of the queue (and tells the recorder), and hands the
//! frames of a sender back to it through a channel ([`Return`]). The
//! sender tells the recorder about its TX before producing, so the trace
//! has two sockets with one key (netns cookie, ifindex, queue) whose TX
//! streams share one completion ring, in order per socket.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender as ChanSender};
use std::time::Duration;

use xskdbg_recorder as rec;
use xsknet::packet::{build_frame, FrameSpec};
use xsknet::{PoolMate, XdpDesc};

/// Frames a sender puts on TX per batch.
const BATCH: usize = 16;
/// Pause after every batch: the peer end and a TCG guest keep up.
const GAP: Duration = Duration::from_micros(500);

/// Where the forwarder sends completed frames of one sender.
#[derive(Debug, Clone)]
pub struct Return {
    /// The frames (chunk addresses) the sender owns.
    pub frames: Range<u64>,
    /// Its channel.
    pub to: ChanSender<Vec<u64>>,
}

/// What a sender did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderReport {
    /// The socket's label (`outer q:0 s:1`).
    pub label: String,
    /// Frames put on TX.
    pub sent: u64,
    /// Frames that came back through the completion ring.
    pub completed: u64,
    /// Frames it held at the end (free, never lost).
    pub held: Vec<u64>,
}

/// One extra socket and the frames it owns.
pub struct PoolMateSender {
    sock: PoolMate,
    rsock: rec::Sock,
    rumem: rec::Umem,
    label: String,
    free: Vec<u64>,
    back: Receiver<Vec<u64>>,
    spec: FrameSpec,
    rec_on: bool,
}

impl std::fmt::Debug for PoolMateSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMateSender")
            .field("label", &self.label)
            .field("free", &self.free.len())
            .finish()
    }
}

impl PoolMateSender {
    /// A sender on `sock` owning `frames` (every `frame_size` bytes), with
    /// the recorder's views `rsock` and `rumem` (completed frames it gets
    /// back are reported as returned to its free list, like the
    /// forwarder's); returns it and the [`Return`] the forwarder uses to
    /// give completed frames back.
    pub fn new(
        sock: PoolMate,
        rsock: rec::Sock,
        rumem: rec::Umem,
        label: String,
        frames: Range<u64>,
        frame_size: u64,
        spec: FrameSpec,
    ) -> (PoolMateSender, Return) {
        let (to, back) = std::sync::mpsc::channel();
        let free = frames.clone().step_by(frame_size as usize).collect();
        (
            PoolMateSender {
                sock,
                rsock,
                rumem,
                label,
                free,
                back,
                spec,
                rec_on: true,
            },
            Return { frames, to },
        )
    }

    /// Turns the recorder calls off (the `--sink off` baseline).
    pub fn set_recorder(&mut self, on: bool) {
        self.rec_on = on;
    }

    /// Sends until `stop` is set; the report's `held` is what it owns then.
    pub fn run(&mut self, stop: &AtomicBool) -> SenderReport {
        let area = std::sync::Arc::clone(self.sock.area());
        let mut rep = SenderReport {
            label: self.label.clone(),
            ..SenderReport::default()
        };
        let mut buf = Vec::with_capacity(2048);
        let mut descs: Vec<XdpDesc> = Vec::with_capacity(BATCH);
        let mut rdescs: Vec<rec::XdpDesc> = Vec::with_capacity(BATCH);
        let lengths = [64 + 6, 128, 333, 1000];
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for got in self.back.try_iter() {
                rep.completed += got.len() as u64;
                if self.rec_on {
                    self.rumem.free(&got);
                }
                self.free.extend(got);
            }
            let want = self.free.len().min(BATCH) as u32;
            let mut w = self.sock.tx.transmit(want);
            let n = w.capacity() as usize;
            if n == 0 {
                drop(w);
                std::thread::sleep(GAP);
                continue;
            }
            descs.clear();
            let from = self.free.len() - n;
            let mut unsent = Vec::new();
            for &addr in &self.free[from..] {
                let len = lengths[(seq % lengths.len() as u64) as usize];
                seq += 1;
                // The lengths are valid and every frame lies in the UMEM, so
                // neither step fails; a frame that did would stay free.
                if build_frame(&self.spec, seq, len, &mut buf).is_ok() && area.write(addr, &buf) {
                    descs.push(XdpDesc {
                        addr,
                        len: buf.len() as u32,
                        options: 0,
                    });
                } else {
                    unsent.push(addr);
                }
            }
            self.free.truncate(from);
            self.free.extend(unsent);
            if self.rec_on {
                rdescs.clear();
                rdescs.extend(descs.iter().map(|d| rec::XdpDesc {
                    addr: d.addr,
                    len: d.len,
                    options: d.options,
                }));
                self.rsock.tx(&rdescs);
            }
            let sent = w.insert(descs.iter().copied());
            w.commit();
            drop(w);
            self.sock.tx.wake();
            rep.sent += u64::from(sent);
            std::thread::sleep(GAP);
        }
        rep.held = std::mem::take(&mut self.free);
        rep
    }

    /// Collects the frames the forwarder gave back after [`PoolMateSender::run`]
    /// ended; call once the forwarder stopped.
    pub fn drain(&self, rep: &mut SenderReport) {
        for got in self.back.try_iter() {
            rep.completed += got.len() as u64;
            if self.rec_on {
                self.rumem.free(&got);
            }
            rep.held.extend(got);
        }
    }

    /// XDP_STATISTICS of the socket.
    pub fn stats(&self) -> Option<xsknet::XskStats> {
        self.sock.stats().ok()
    }
}
