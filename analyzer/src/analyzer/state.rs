//! The analyzer's state: where each frame is, the sockets on both sides of
//! the rings, the pools' FILL order and each CPU's buffer, and [`At`], the
//! reference to one event that all of them keep.

use std::collections::VecDeque;

use super::NONE;
use crate::parse::Event;
use crate::report::TsRef;
use crate::timeline::Ring;

/// How to write a timestamp back as the trace did, from its ordering value:
/// 0 for a counter clock (a bare integer), 1..=9 for a time clock with that
/// many fractional digits (the value is then nanoseconds). One byte instead
/// of the text keeps [`At`], copied into every frame and queue entry, at 24
/// bytes. (Traces write seconds without leading zeros and at most 9
/// fractional digits; anything else comes back normalized.)
#[derive(Clone, Copy, Default)]
pub(super) struct TsText(u8);

impl TsText {
    pub(super) fn new(ts: &crate::parse::Timestamp<'_>) -> Self {
        let Some(ns) = ts.ns else {
            return TsText(0);
        };
        // `secs.frac`, secs without leading zeros: the digits after the dot
        // follow from the text's length and the seconds' value, without
        // reading the text (the checkers never touch a line's bytes
        // otherwise, and that first touch was a cache miss per line).
        let secs_digits = (ns / 1_000_000_000).checked_ilog10().unwrap_or(0) as usize + 1;
        let frac = ts.text.len().saturating_sub(secs_digits + 1);
        TsText(frac.clamp(1, 9) as u8)
    }
    pub(super) fn render(self, order: u64) -> String {
        if self.0 == 0 {
            return order.to_string();
        }
        let digits = u32::from(self.0);
        let frac = (order % 1_000_000_000) / 10u64.pow(9 - digits);
        format!(
            "{}.{:0w$}",
            order / 1_000_000_000,
            frac,
            w = digits as usize
        )
    }
}

/// A reference to one event.
#[derive(Clone, Copy, Default)]
pub(super) struct At {
    pub(super) line: u64,
    pub(super) order: u64,
    pub(super) cpu: u32,
    pub(super) ts: TsText,
}

impl At {
    pub(super) fn of(ev: &Event<'_>) -> At {
        At {
            line: ev.line,
            order: ev.ts.order,
            cpu: ev.cpu,
            ts: TsText::new(&ev.ts),
        }
    }
    /// Nanoseconds, when the clock is a time.
    pub(super) fn ns(&self) -> Option<u64> {
        (self.ts.0 != 0).then_some(self.order)
    }
    /// The timestamp as the trace wrote it.
    pub(super) fn ts_text(&self) -> String {
        self.ts.render(self.order)
    }
    pub(super) fn tsref(&self) -> TsRef {
        TsRef {
            ts: self.ts_text(),
            ts_ns: self.ns(),
            line: self.line,
        }
    }
    /// `line 12 (CPU 2, 542812.657026)`
    pub(super) fn cite(&self) -> String {
        format!("line {} (CPU {}, {})", self.line, self.cpu, self.ts_text())
    }
}

/// Who holds a frame on the application side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum AppHold {
    /// The app does not hold it (every copy is in a kernel-owned ring).
    No,
    Rx,
    Comp,
    Held,
    Free,
}

#[repr(align(64))]
pub(super) struct Frame {
    /// Copies on FILL (app produced, kernel not yet received).
    pub(super) fill: u16,
    /// Copies the kernel wrote to RX that the app has not read.
    pub(super) krx: u16,
    /// Copies on TX not yet completed.
    pub(super) tx: u16,
    /// Completions produced by the kernel not yet consumed by the app.
    pub(super) kcomp: u16,
    pub(super) app: AppHold,
    pub(super) last: At,
    pub(super) krx_ks: u32,
    pub(super) tx_as: u32,
    /// The app's consumption counter when the app last took the frame.
    pub(super) held_at: u64,
    /// The descriptor value the app took it as.
    pub(super) held_addr: u64,
    /// The pool whose FILL order holds it (when on FILL).
    pub(super) fill_pool: u32,
}

impl Frame {
    pub(super) fn new(at: At) -> Frame {
        Frame {
            fill: 0,
            krx: 0,
            tx: 0,
            kcomp: 0,
            app: AppHold::No,
            last: at,
            krx_ks: NONE,
            tx_as: NONE,
            held_at: 0,
            held_addr: 0,
            fill_pool: NONE,
        }
    }
    pub(super) fn kernel_copies(&self) -> u16 {
        self.fill + self.krx + self.tx + self.kcomp
    }
    /// Where the frame is, for an explanation; taken cheaply on every
    /// event, written out only when a finding needs it.
    pub(super) fn place(&self) -> Place {
        Place {
            fill: self.fill,
            krx: self.krx,
            tx: self.tx,
            kcomp: self.kcomp,
            app: self.app,
        }
    }
    pub(super) fn state_name(&self) -> &'static str {
        if self.fill > 0 {
            "FILL"
        } else if self.krx > 0 {
            "RX"
        } else if self.tx > 0 {
            "TX"
        } else if self.kcomp > 0 {
            "COMP"
        } else {
            match self.app {
                AppHold::Rx => "RX",
                AppHold::Comp => "COMP",
                AppHold::Held => "HELD",
                AppHold::Free => "FREE",
                AppHold::No => "UNKNOWN",
            }
        }
    }
}

/// A frame's whereabouts at one moment (see [`Frame::place`]).
#[derive(Clone, Copy)]
pub(super) struct Place {
    pub(super) fill: u16,
    pub(super) krx: u16,
    pub(super) tx: u16,
    pub(super) kcomp: u16,
    pub(super) app: AppHold,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.fill > 0 {
            parts.push(if self.fill > 1 {
                format!("on FILL {} times", self.fill)
            } else {
                "on FILL".into()
            });
        }
        if self.krx > 0 {
            parts.push("on RX (written by the kernel, not yet read)".into());
        }
        if self.tx > 0 {
            parts.push("on TX (not yet completed)".into());
        }
        if self.kcomp > 0 {
            parts.push("on COMPLETION (not yet consumed)".into());
        }
        match self.app {
            AppHold::No => {}
            AppHold::Rx => parts.push("held by the app after RX".into()),
            AppHold::Comp => parts.push("held by the app after COMPLETION".into()),
            AppHold::Held => parts.push("held by an app thread".into()),
            AppHold::Free => parts.push("on the app's free list".into()),
        }
        if parts.is_empty() {
            f.write_str("nowhere known")
        } else {
            f.write_str(&parts.join(" and "))
        }
    }
}

pub(super) struct ASock {
    pub(super) name: String,
    pub(super) pool: u32,
    pub(super) ks: u32,
    pub(super) ring: Ring,
    pub(super) rx: u64,
    /// Frames on TX in order: (frame, when, sequence number).
    pub(super) tx_fifo: VecDeque<(u64, At, u64)>,
    /// Highest sequence number completed.
    pub(super) tx_consumed: u64,
    pub(super) tx_seq: u64,
}

#[derive(Clone, Copy)]
pub(super) struct KRx {
    pub(super) frame: u64,
    pub(super) addr: u64,
    pub(super) slot: Option<u64>,
    pub(super) at: At,
    pub(super) written: bool,
    pub(super) published_unwritten: bool,
    /// The `krx` itself proved its slot published by another CPU
    /// (`concurrent_producer/published-before-redirect`, raw `early`).
    pub(super) early: bool,
    pub(super) early_raw: u32,
    /// The flush that published the slot while unwritten (line 0: none).
    pub(super) pub_by: At,
    /// Its `krxdone` (line 0: not seen).
    pub(super) done: At,
}

pub(super) struct Section {
    pub(super) cpu: u32,
    pub(super) start: At,
    pub(super) frames: Vec<u64>,
    /// Receives of other CPUs inside the section: when, frame, addr, slot.
    pub(super) intruders: Vec<(At, u64, u64, Option<u64>)>,
}

pub(super) struct KSock {
    pub(super) xs: u64,
    pub(super) asock: u32,
    pub(super) q: VecDeque<KRx>,
    pub(super) aligned: bool,
    /// Order of the last kernel entry a read matched.
    pub(super) anchor: Option<u64>,
    pub(super) sections: Vec<Section>,
    pub(super) racy: Vec<u64>,
    pub(super) flush_seen: bool,
    pub(super) rxdone_seen: bool,
    /// Slots reserved (`krx`) and not yet written (`krxdone`), oldest first:
    /// what a flush can publish too early. Short in any sane trace, so a
    /// flush checks these instead of the whole receive queue.
    pub(super) unwritten: VecDeque<u64>,
    pub(super) published: Option<u64>,
    /// The latest flush with a producer value, and that value.
    pub(super) last_flush: Option<(At, u64)>,
    /// Poisoned reads at a slot no `krx` had been seen for yet (the
    /// tracepoint's `krx` comes after the write, so a slot published early
    /// can be read before it): slot, raw index. A few, oldest dropped.
    pub(super) pending_poison: VecDeque<(u64, u32)>,
    pub(super) krx: u64,
    pub(super) ring: Ring,
}

pub(super) struct Pool {
    pub(super) fifo: VecDeque<(u64, u64, At)>,
    pub(super) kernel_consumes: bool,
    pub(super) seq: u64,
    pub(super) consumed_max: u64,
    pub(super) peak: usize,
}

pub(super) struct CpuState {
    pub(super) first: At,
    pub(super) last: At,
    pub(super) events: u64,
    pub(super) marker: bool,
    pub(super) ring: Ring,
    pub(super) open: Vec<u32>,
}

impl CpuState {
    pub(super) fn new(at: At) -> CpuState {
        CpuState {
            first: at,
            last: at,
            events: 0,
            marker: false,
            ring: Ring::default(),
            open: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RingId {
    K(u32),
    A(u32),
    Cpu(u32),
}
