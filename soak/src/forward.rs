//! The forwarder: reads RX on every socket, forwards most frames to the
//! other side's TX (same queue), bounces some back out of the device they
//! came from, drops some, recycles completions through one free list, and
//! tells the recorder about every ring operation (before producing, after
//! consuming), so a frame's ownership is checked at each step.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xskdbg_recorder as rec;
use xsknet::xsk::{UmemArea, XskSocket, XskStats};
use xsknet::XdpDesc;

use crate::config::Inject;
use crate::sender::Return;

/// Frames handled per ring operation.
const BATCH: u32 = 64;
/// Every 16th received frame is dropped (back to the free list).
const DROP_EVERY: u64 = 16;
/// Every 8th received frame (not dropped) is sent back where it came from.
const BOUNCE_EVERY: u64 = 8;

/// One AF_XDP socket and its recorder handles.
pub struct Port {
    /// The socket.
    pub sock: XskSocket,
    /// The recorder's view of its buffer pool (FILL + COMPLETION).
    pub pool: rec::Pool,
    /// The recorder's view of its RX + TX rings.
    pub rsock: rec::Sock,
    /// `outer q:0` and the like.
    pub label: String,
    /// A second mapping of the RX ring: its consumer index for the
    /// recorder's `idx=` and, with `--poison`, the slots to poison.
    rxmap: Option<xskdbg_recorder::sys::RxRingMap>,
    /// Poison written into consumed RX slots, if any.
    poison: Option<u64>,
    /// Frames on this pool's FILL ring not yet received.
    in_fill: u32,
}

impl Port {
    /// Wraps a socket with its recorder handles; `rxmap` gives real RX ring
    /// indexes, and with `poison` every consumed RX slot is overwritten with
    /// it, so a slot the kernel publishes before writing shows up.
    pub fn new(
        sock: XskSocket,
        pool: rec::Pool,
        rsock: rec::Sock,
        label: String,
        rxmap: Option<xskdbg_recorder::sys::RxRingMap>,
        poison: Option<u64>,
    ) -> Port {
        Port {
            sock,
            pool,
            rsock,
            label,
            rxmap,
            poison,
            in_fill: 0,
        }
    }
}

/// Running totals, readable while the forwarder runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames read from RX.
    pub received: AtomicU64,
    /// Frames put on the other side's TX.
    pub forwarded: AtomicU64,
    /// Frames put back on their own side's TX.
    pub bounced: AtomicU64,
    /// Frames dropped on purpose or because TX was full.
    pub dropped: AtomicU64,
    /// Completions read.
    pub completed: AtomicU64,
    /// Frames received per port: the generators' window.
    pub received_port: Vec<AtomicU64>,
}

impl Counters {
    /// Zeroed counters for `ports` ports.
    pub fn new(ports: usize) -> Counters {
        Counters {
            received_port: (0..ports).map(|_| AtomicU64::new(0)).collect(),
            ..Counters::default()
        }
    }
}

/// What the forwarder did with the injected fault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectState {
    /// The fault was carried out.
    pub done: bool,
    /// The frame it involved.
    pub addr: u64,
}

/// The forwarding loop over all ports of both sides.
pub struct Forwarder {
    /// Ports; `ports[side * queues + q]`.
    pub ports: Vec<Port>,
    queues: usize,
    /// The app's free list, first in first out so every frame keeps moving.
    free: VecDeque<u64>,
    /// Frames to report as freed (one recorder line per batch).
    freed: Vec<u64>,
    rumem: rec::Umem,
    area: Arc<UmemArea>,
    fill_target: u32,
    inject: Option<Inject>,
    inject_after: u64,
    /// What happened to the fault.
    pub injected: InjectState,
    /// Tell the recorder about ring operations (off: the uninstrumented
    /// baseline for speed comparisons).
    rec_on: bool,
    batch: Vec<u64>,
    /// Shared totals.
    pub counters: Arc<Counters>,
    /// Pause after every port whose RX gave frames (a slow consumer).
    consumer_sleep: Option<Duration>,
    /// Completed frames of the sender threads go back to them.
    returns: Vec<Return>,
    /// Completed frames per sender, collected while reaping one batch.
    returning: Vec<Vec<u64>>,
}

impl Forwarder {
    /// A forwarder over `ports` (outer queues first, then inner), owning the
    /// frames in `free`, whose states `rumem` tracks.
    #[expect(clippy::too_many_arguments, reason = "one constructor, called once")]
    pub fn new(
        ports: Vec<Port>,
        queues: usize,
        free: Vec<u64>,
        rumem: rec::Umem,
        area: Arc<UmemArea>,
        inject: Option<Inject>,
        inject_after: u64,
        counters: Arc<Counters>,
    ) -> Forwarder {
        // Share the frames fairly: half of them parked on FILL rings, the
        // rest in flight on RX/TX or in the free list.
        let fill_target = ((free.len() / 2) / ports.len().max(1)).clamp(16, 2048) as u32;
        Forwarder {
            ports,
            queues,
            free: free.into(),
            freed: Vec::with_capacity(BATCH as usize),
            rumem,
            area,
            fill_target,
            inject,
            inject_after,
            injected: InjectState::default(),
            rec_on: true,
            batch: Vec::with_capacity(2048),
            counters,
            consumer_sleep: None,
            returns: Vec::new(),
            returning: Vec::new(),
        }
    }

    /// Sleep this long after every RX batch that held frames: a consumer too
    /// slow for its traffic, so the RX rings run full and the kernel's
    /// reservations fail (`rx_ring_full`), the refused frame going back to
    /// the head of the pool's free list for the next packet.
    pub fn set_consumer_sleep(&mut self, sleep: Option<Duration>) {
        self.consumer_sleep = sleep.filter(|d| !d.is_zero());
    }

    /// Frames in these ranges belong to sender threads: their completions
    /// go back to them instead of onto the free list.
    pub fn set_returns(&mut self, returns: Vec<Return>) {
        self.returning = vec![Vec::new(); returns.len()];
        self.returns = returns;
    }

    /// Turns the recorder calls off (or on again): the baseline for speed
    /// comparisons. Faults are still injected but nothing catches them.
    pub fn set_recorder(&mut self, on: bool) {
        self.rec_on = on;
    }

    fn armed(&self, kind: Inject) -> bool {
        self.inject == Some(kind)
            && !self.injected.done
            && self.counters.received.load(Ordering::Relaxed) >= self.inject_after
    }

    /// Runs until `stop` is set. Every step goes through the recorder.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut addrs: Vec<u64> = Vec::with_capacity(BATCH as usize);
        let mut descs: Vec<XdpDesc> = Vec::with_capacity(BATCH as usize);
        let mut rdescs: Vec<rec::XdpDesc> = Vec::with_capacity(BATCH as usize);
        let mut out: Vec<Vec<XdpDesc>> = vec![Vec::new(); self.ports.len()];
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut work = 0u64;
            for p in 0..self.ports.len() {
                work += self.reap(p, &mut addrs);
                self.refill(p);
                let got = self.receive(p, &mut descs, &mut rdescs, &mut out, &mut seq);
                work += got;
                for (t, slot) in out.iter_mut().enumerate() {
                    if !slot.is_empty() {
                        // Taken out and put back so its allocation is reused.
                        let mut batch = std::mem::take(slot);
                        self.transmit(p, t, &batch, &mut rdescs);
                        batch.clear();
                        *slot = batch;
                    }
                }
                if let (Some(d), true) = (self.consumer_sleep, got > 0) {
                    std::thread::sleep(d);
                }
            }
            for port in &mut self.ports {
                // Copy mode sends from sendto(); kick while TX holds frames.
                if port.sock.tx.pending() > 0 {
                    port.sock.tx.wake();
                }
            }
            if work == 0 {
                std::thread::yield_now();
            }
        }
    }

    /// COMPLETION → free list.
    fn reap(&mut self, p: usize, addrs: &mut Vec<u64>) -> u64 {
        addrs.clear();
        let port = &mut self.ports[p];
        let n = port.sock.complete(BATCH, addrs);
        if n == 0 {
            return 0;
        }
        if self.rec_on {
            port.pool.comp(addrs);
        }
        self.counters
            .completed
            .fetch_add(u64::from(n), Ordering::Relaxed);
        let mine = self.route_completions(addrs);
        self.release();
        if let Some(a) = mine.filter(|_| self.armed(Inject::DoubleComplete)) {
            // The bug: the same completion recycled twice.
            self.freed.push(a);
            self.release();
            self.injected = InjectState {
                done: true,
                addr: a,
            };
        }
        u64::from(n)
    }

    /// Completed frames onto `freed`, or back to the sender thread owning
    /// them. Returns the first frame that stays with the forwarder.
    fn route_completions(&mut self, addrs: &[u64]) -> Option<u64> {
        let mut mine = None;
        for &a in addrs {
            let c = self.area.chunk_of(a);
            match self.returns.iter().position(|r| r.frames.contains(&c)) {
                Some(i) => self.returning[i].push(c),
                None => {
                    mine.get_or_insert(c);
                    self.freed.push(c);
                }
            }
        }
        for (r, v) in self.returns.iter().zip(&mut self.returning) {
            if !v.is_empty() {
                // The receiving end lives until the run is over (drained
                // after the forwarder stopped), so nothing is lost here.
                let _ = r.to.send(std::mem::take(v));
            }
        }
        mine
    }

    /// `freed` → free list, told to the recorder first.
    fn release(&mut self) {
        if self.freed.is_empty() {
            return;
        }
        if self.rec_on {
            self.rumem.free(&self.freed);
        }
        self.free.extend(self.freed.drain(..));
    }

    /// free list → FILL, up to this pool's share, at most [`BATCH`] frames
    /// per call, like every other ring operation of the forwarder (the
    /// recorder splits its lines below the 1024-byte marker limit of older
    /// kernels itself).
    fn refill(&mut self, p: usize) {
        let want = self.ports[p]
            .fill_target_gap(self.fill_target)
            .min(self.free.len() as u32)
            .min(BATCH);
        if want == 0 {
            return;
        }
        let armed = self.armed(Inject::DoubleFill);
        let port = &mut self.ports[p];
        let mut w = port.sock.fill.fill(want);
        let cap = w.capacity() as usize;
        if cap == 0 {
            return;
        }
        // Reuses one allocation across calls.
        let mut batch = std::mem::take(&mut self.batch);
        batch.extend(self.free.drain(..cap));
        if armed && cap >= 2 {
            // The bug: one frame put on FILL twice in one batch (the frame
            // it displaces goes back to the free list).
            let last = cap - 1;
            self.free.push_front(batch[last]);
            batch[last] = batch[last - 1];
            self.injected = InjectState {
                done: true,
                addr: batch[last],
            };
        }
        if self.rec_on {
            port.pool.fill(&batch);
        }
        let n = w.insert(batch.iter().copied());
        w.commit();
        port.in_fill += n;
        batch.clear();
        self.batch = batch;
    }

    /// RX → decide per frame: forward, bounce or drop.
    fn receive(
        &mut self,
        p: usize,
        descs: &mut Vec<XdpDesc>,
        rdescs: &mut Vec<rec::XdpDesc>,
        out: &mut [Vec<XdpDesc>],
        seq: &mut u64,
    ) -> u64 {
        descs.clear();
        let port = &mut self.ports[p];
        let first = port.rxmap.as_ref().map(|m| m.consumer());
        // The producer before the peek: every slot below it was published
        // to us (logged as `prod=`, the proof a poisoned read there is the
        // kernel's).
        let before = port.rxmap.as_ref().map(|m| m.producer());
        let (rxmap, poison) = (&port.rxmap, port.poison);
        let n = port.sock.receive_then(BATCH, descs, |n| {
            if let (Some(map), Some(first), Some(poison)) = (rxmap, first, poison) {
                map.poison(first, n, poison);
            }
        });
        if n == 0 {
            return 0;
        }
        port.in_fill = port.in_fill.saturating_sub(n);
        rdescs.clear();
        rdescs.extend(descs.iter().map(|d| rec::XdpDesc {
            addr: d.addr,
            len: d.len,
            options: d.options,
        }));
        match (self.rec_on, first) {
            (false, _) => {}
            (true, Some(idx)) => {
                // At least the batch's end: the ring hands out only
                // published slots.
                let end = idx.wrapping_add(n);
                let prod = match before {
                    Some(p) if p.wrapping_sub(idx) >= n => p,
                    _ => end,
                };
                port.rsock.rx_at_prod(idx, prod, rdescs)
            }
            (true, None) => port.rsock.rx(rdescs),
        }
        // Same queue on the other side: ports are [outer q0.., inner q0..].
        let other = (p + self.queues) % (2 * self.queues);
        self.counters
            .received
            .fetch_add(u64::from(n), Ordering::Relaxed);
        if let Some(c) = self.counters.received_port.get(p) {
            c.fetch_add(u64::from(n), Ordering::Release);
        }
        for d in descs.iter() {
            *seq += 1;
            if *seq % DROP_EVERY == 0 {
                if self.armed(Inject::Leak) {
                    // The bug: this frame is forgotten, never returned.
                    self.injected = InjectState {
                        done: true,
                        addr: d.addr,
                    };
                } else {
                    self.freed.push(self.area.chunk_of(d.addr));
                }
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            } else if *seq % BOUNCE_EVERY == 0 {
                out[p].push(*d);
            } else {
                out[other].push(*d);
            }
        }
        self.release();
        u64::from(n)
    }

    /// Frames received on port `from` → TX of port `to`.
    fn transmit(
        &mut self,
        from: usize,
        to: usize,
        batch: &[XdpDesc],
        rdescs: &mut Vec<rec::XdpDesc>,
    ) {
        let fill_tx = self.armed(Inject::FillTx);
        let reuse = self.armed(Inject::ReuseBeforeComplete);
        if fill_tx {
            // The bug: the frame also goes on FILL while it is sent.
            let a = self.area.chunk_of(batch[0].addr);
            let port = &mut self.ports[from];
            let mut w = port.sock.fill.fill(1);
            port.pool.fill(&[a]);
            if w.insert_once(a) {
                port.in_fill += 1;
            }
            w.commit();
            self.injected = InjectState {
                done: true,
                addr: a,
            };
        }
        let port = &mut self.ports[to];
        let mut w = port.sock.tx.transmit(batch.len() as u32);
        let cap = (w.capacity() as usize).min(batch.len());
        rdescs.clear();
        rdescs.extend(batch[..cap].iter().map(|d| rec::XdpDesc {
            addr: d.addr,
            len: d.len,
            options: d.options,
        }));
        if cap > 0 && self.rec_on {
            port.rsock.tx(rdescs);
        }
        w.insert(batch[..cap].iter().copied());
        w.commit();
        drop(w);
        if cap > 0 {
            port.sock.tx.wake();
        }
        let (fwd, bounced) = if from == to { (0, cap) } else { (cap, 0) };
        self.counters
            .forwarded
            .fetch_add(fwd as u64, Ordering::Relaxed);
        self.counters
            .bounced
            .fetch_add(bounced as u64, Ordering::Relaxed);
        // TX full: the rest is dropped back to the free list.
        for d in &batch[cap..] {
            self.freed.push(self.area.chunk_of(d.addr));
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.release();
        if reuse && cap > 0 {
            // The bug: a frame just put on TX goes back on FILL before its
            // completion came.
            let a = self.area.chunk_of(batch[0].addr);
            let port = &mut self.ports[from];
            let mut w = port.sock.fill.fill(1);
            port.pool.fill(&[a]);
            if w.insert_once(a) {
                port.in_fill += 1;
            }
            w.commit();
            self.injected = InjectState {
                done: true,
                addr: a,
            };
        }
    }

    /// XDP_STATISTICS of every port, labelled.
    pub fn stats(&self) -> Vec<(String, Option<XskStats>)> {
        self.ports
            .iter()
            .map(|p| (p.label.clone(), p.sock.stats().ok()))
            .collect()
    }

    /// Frames in the free list now.
    pub fn free_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.free.iter().copied()
    }

    /// Elapsed-time helper for rates.
    pub fn rate(count: u64, since: Instant) -> f64 {
        let s = since.elapsed().as_secs_f64();
        if s > 0.0 {
            count as f64 / s
        } else {
            0.0
        }
    }
}

impl Port {
    fn fill_target_gap(&self, target: u32) -> u32 {
        target.saturating_sub(self.in_fill)
    }
}
