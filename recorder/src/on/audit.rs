//! The `audit` line: what each UMEM's application holds, and since when.
//!
//! A leaked frame's history goes with the oldest part of a buffer that
//! wraps; the recorder's own account of it does not. Every frame the
//! application takes (into RX, COMPLETION or HELD) is stamped with the
//! number of descriptors taken so far and the time; a return (to FILL, TX
//! or the free list) measures its hold. [`Recorder::audit`] writes, per
//! UMEM, the frames held, oldest first, with those stamps, the longest
//! returned hold and whether the application records its own free list:
//! enough for the analyzer's `frame_leak/audit` to judge without the
//! frame's history. Written on demand, every N seconds when asked
//! ([`Recorder::audit_every`]), and when the UMEM is dropped.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::frames::w_state;
use super::recorder::{RecInner, Recorder};
use super::register::UmemInner;
use super::thread::with_line;
use crate::types::State;

/// Frames listed in one `audit` line (the oldest held).
const LISTED: usize = 32;

/// Milliseconds on the coarse monotonic clock (a few ns, no syscall).
#[inline]
pub(super) fn now_ms() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000) as u32
}

/// A state in which the application holds the frame.
#[inline]
fn app_holds(s: State) -> bool {
    matches!(s, State::Rx | State::Comp | State::Held)
}

impl UmemInner {
    /// Frame `idx` moved `from` → `to`: stamp a take, measure a return.
    #[inline]
    pub(super) fn note_move(&self, idx: usize, from: State, to: State) {
        let taking = app_holds(to);
        let held = app_holds(from);
        if taking && !held {
            let t = if matches!(to, State::Rx | State::Comp) {
                self.takes.fetch_add(1, Ordering::Relaxed)
            } else {
                self.takes.load(Ordering::Relaxed)
            };
            let stamp = (t << 32) | u64::from(now_ms());
            if let Some(s) = self.taken_at.get(idx) {
                s.store(stamp, Ordering::Relaxed);
            }
        } else if held && !taking {
            let Some(s) = self.taken_at.get(idx) else {
                return;
            };
            let since = (s.load(Ordering::Relaxed) >> 32) as u32;
            let now = self.takes.load(Ordering::Relaxed) as u32;
            let hold = u64::from(now.wrapping_sub(since));
            if hold > self.hold_max.load(Ordering::Relaxed) {
                self.hold_max.fetch_max(hold, Ordering::Relaxed);
            }
        }
    }

    /// Write this UMEM's `audit` line; returns how many frames the
    /// application holds. `last`: when the UMEM is dropped (a buffer
    /// found off then is not reported).
    pub(super) fn audit(&self, last: bool) -> u64 {
        let taken = self.takes.load(Ordering::Relaxed);
        let now = now_ms();
        let mut held: Vec<(u64, u64, u32)> = Vec::new();
        let mut count = 0u64;
        for (i, w) in self.table.iter().enumerate() {
            if !app_holds(w_state(w.load(Ordering::Acquire))) {
                continue;
            }
            count += 1;
            let stamp = self.taken_at[i].load(Ordering::Relaxed);
            // The take counter's low 32 bits: as far back from `taken`.
            let back = u64::from((taken as u32).wrapping_sub((stamp >> 32) as u32));
            let since = taken.saturating_sub(back);
            let age = now.wrapping_sub(stamp as u32);
            held.push((since, self.key_of(i), age));
        }
        held.sort_unstable();
        held.truncate(LISTED);
        if !self.rec.writing() {
            return count;
        }
        with_line(|l| {
            l.start(b"audit");
            l.field_hex(b"umem", u64::from(self.id));
            l.field_hex(b"held", count);
            l.field_hex(b"taken", taken);
            l.field_hex(b"hold_max", self.hold_max.load(Ordering::Relaxed));
            l.field(
                b"freelist",
                if self.freelist.load(Ordering::Relaxed) {
                    b"1"
                } else {
                    b"0"
                },
            );
            l.field_hex(b"n", held.len() as u64);
            if !held.is_empty() {
                for (name, pick) in [
                    (b" a=".as_slice(), 0usize),
                    (b" since=".as_slice(), 1),
                    (b" age_ms=".as_slice(), 2),
                ] {
                    l.push(name);
                    for (j, &(since, key, age)) in held.iter().enumerate() {
                        if j > 0 {
                            l.byte(b',');
                        }
                        l.hex(match pick {
                            0 => key,
                            1 => since,
                            _ => u64::from(age),
                        });
                    }
                }
            }
            l.finish();
            if last {
                self.rec.write_last(l.as_bytes());
            } else {
                self.rec.write(l.as_bytes());
            }
        });
        count
    }
}

impl Drop for UmemInner {
    fn drop(&mut self) {
        self.audit(true);
    }
}

impl RecInner {
    /// Every live UMEM's `audit` line; how many frames the applications hold.
    pub(super) fn audit(&self) -> u64 {
        let umems: Vec<Arc<UmemInner>> = super::lock(&self.umems)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        umems.iter().map(|u| u.audit(false)).sum()
    }
}

impl Recorder {
    /// Write an `audit` line per UMEM: the frames the application holds
    /// (taken from RX or COMPLETION, or from its free list, and not
    /// returned), the oldest first with when each was taken, so the
    /// analyzer can judge a leak even when the buffer wrapped
    /// (`frame_leak/audit`). Call it before freezing and reading the
    /// trace. Returns how many frames the applications hold.
    pub fn audit(&self) -> u64 {
        self.inner.audit()
    }

    /// Also write the `audit` lines every `every`, from a background
    /// thread that ends with the recorder (zero: nothing).
    pub fn audit_every(&self, every: Duration) {
        if every.is_zero() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let step = Duration::from_millis(100).min(every);
        let _ = std::thread::Builder::new()
            .name("xskdbg-audit".into())
            .spawn(move || {
                let mut waited = Duration::ZERO;
                loop {
                    std::thread::sleep(step);
                    waited += step;
                    let Some(rec) = weak.upgrade() else { return };
                    if waited >= every {
                        waited = Duration::ZERO;
                        rec.audit();
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        PoolConfig, Recorder, RecorderConfig, SinkConfig, SockConfig, SockKey, UmemConfig, XdpDesc,
    };

    fn audit_lines(dump: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(dump)
            .lines()
            .filter(|l| l.contains(" audit "))
            // The sequence number differs run to run (it carries the pid).
            .map(|l| {
                l.split(' ')
                    .filter(|w| !w.starts_with("seq="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn the_audit_lists_held_frames_oldest_first_with_their_stamps() {
        let rec = Recorder::new(RecorderConfig::new(SinkConfig::Memory { events: 4096 })).unwrap();
        let umem = rec.umem(UmemConfig::aligned(64, 0x1000)).unwrap();
        let key = SockKey::new(1, 2, 0);
        let pool = umem.pool(PoolConfig::new(key)).unwrap();
        let sock = pool.socket(SockConfig::new(key)).unwrap();
        let d = |a: u64| XdpDesc {
            addr: a,
            len: 64,
            options: 0,
        };
        pool.fill(&[0x0, 0x1000, 0x2000, 0x3000]);
        sock.rx(&[d(0x0), d(0x1000)]);
        umem.free(&[0x1000]);
        sock.rx(&[d(0x2000), d(0x3000)]);
        pool.fill(&[0x2000]);
        assert_eq!(rec.audit(), 2);
        let lines = audit_lines(&rec.dump());
        assert_eq!(lines.len(), 1, "{lines:?}");
        let l = &lines[0];
        // 0x0 taken first (since 0), 0x3000 fourth (since 3); 0x1000
        // freed 1 take after it was taken, 0x2000 filled 2 after: hold_max
        // 2; the free list is recorded.
        assert!(
            l.contains(
                "audit umem=1 held=2 taken=4 hold_max=2 freelist=1 n=2 a=0,3000 since=0,3 age_ms="
            ),
            "{l}"
        );
        drop(sock);
        drop(pool);
        let rec2 = rec.clone();
        drop(umem);
        // Dropping the UMEM writes its last audit.
        assert_eq!(audit_lines(&rec2.dump()).len(), 2);
    }

    #[test]
    fn audit_every_writes_the_lines_while_the_recorder_lives() {
        let rec = Recorder::new(RecorderConfig::new(SinkConfig::Memory { events: 4096 })).unwrap();
        let _umem = rec.umem(UmemConfig::aligned(8, 0x1000)).unwrap();
        rec.audit_every(std::time::Duration::from_millis(100));
        std::thread::sleep(std::time::Duration::from_millis(650));
        let n = audit_lines(&rec.dump()).len();
        assert!((3..=7).contains(&n), "{n} audit lines in 650 ms at 100 ms");
    }
}
