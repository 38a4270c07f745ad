//! Without RX slots (the seed story's perf-probe vocabulary) reads are
//! matched to kernel receives in FIFO order. A wrapped trace starts with
//! receives whose reads are lost (the app's CPU buffer started later) and
//! with reads whose receives are lost (a kernel CPU started later still).
//! Entries the app took at a read the queue could not line up with must
//! not stay in front: every later read would then be compared with an
//! older cycle's receive, and a clean run reported thousands of
//! `rx_mismatch/position` against the kernel (seen on 20 MB and larger
//! `xskdbg-tracegen --vocab freeform --wrap` traces, seeds 1 to 4).

use xskdbg_analyzer::{analyze_reader, Options};

const XS: &str = "0xffff9b2c4a1e8000";
const FQ: &str = "0xffff9b2c03d66380";
/// Frames on the ring: more than the 256 entries a read looks ahead.
const N: u64 = 600;

fn addr(f: u64) -> u64 {
    0x10_0000 + f * 0x800 + 0x100
}

struct Trace {
    text: String,
    us: u64,
}

impl Trace {
    fn at(&mut self, s: u64) {
        self.us = self.us.max(s * 1_000_000);
    }
    fn ts(&mut self) -> String {
        self.us += 1;
        format!("{}.{:06}", self.us / 1_000_000, self.us % 1_000_000)
    }
    fn krx(&mut self, cpu: u32, f: u64) {
        let ts = self.ts();
        self.text.push_str(&format!(
            "     ksoftirqd/{cpu}-15      [{cpu:03}] ..s1. {ts}: __xsk_rcv_zc_L7: (__xsk_rcv_zc+0x9b/0x250) \
             addr={:#x} len=0x40 xs={XS} fq={FQ}\n",
            addr(f)
        ));
    }
    fn app(&mut self, f: u64, what: &str) {
        let ts = self.ts();
        self.text.push_str(&format!(
            "         xskfwd-20  [001] ..... {ts}: tracing_mark_write: ingress q:0 {:#x} {what}\n",
            addr(f)
        ));
    }
    /// One cycle: the kernel receives `order` on `cpu` (printed when
    /// `kernel`), the app reads each right after it (printed when `app`),
    /// then puts them back on FILL in `refill` order.
    fn cycle(&mut self, cpu: u32, order: &[u64], refill: &[u64], kernel: bool, app: bool) {
        for &f in order {
            if kernel {
                self.krx(cpu, f);
            } else {
                self.ts();
            }
            if app {
                self.app(f, "FILL -> RX");
            } else {
                self.ts();
            }
        }
        for &f in refill {
            if app {
                self.app(f, "RX -> FILL");
            } else {
                self.ts();
            }
        }
    }
}

#[test]
fn reads_the_queue_could_not_line_up_do_not_leave_stale_receives_in_front() {
    let mut t = Trace {
        text: String::from(
            "# tracer: nop\n#\n# entries-in-buffer/entries-written: 9000/90000   #P:3\n#\n",
        ),
        us: 0,
    };
    let ident: Vec<u64> = (0..N).collect();
    let rev: Vec<u64> = (0..N).rev().collect();
    // The order cycle 2 receives in: frame 0 first, then the half the
    // look-ahead cannot reach, then the rest.
    let odd: Vec<u64> = std::iter::once(0).chain(N / 2..N).chain(1..N / 2).collect();

    // Cycle 1: CPU 0 (complete) receives; the app's reads and refills are
    // lost with CPU 1's early buffer.
    t.at(1);
    t.cycle(0, &ident, &odd, true, false);
    // Cycle 2: the app's CPU 1 has started; the kernel received on CPU 2,
    // which starts later still. The first read lines up with cycle 1's
    // receive of frame 0 (its newest visible one), and the reads of the
    // frames past the look-ahead find nothing: their cycle 1 receives stay.
    t.at(2);
    t.text.push_str("##### CPU 1 buffer started ####\n");
    t.cycle(2, &odd, &ident, false, true);
    // Cycle 3: every CPU traced. Cycle 4 receives in reverse: a queue left
    // a cycle behind compares each read with the wrong receive.
    t.at(3);
    t.text.push_str("##### CPU 2 buffer started ####\n");
    t.cycle(2, &ident, &rev, true, true);
    t.at(4);
    t.cycle(2, &rev, &ident, true, true);

    let r = analyze_reader(t.text.as_bytes(), &Options::default()).expect("analyze");
    let rules: Vec<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    let mismatches = rules
        .iter()
        .filter(|r| r.starts_with("rx_mismatch"))
        .count();
    assert!(
        r.findings.is_empty(),
        "a clean run got {} finding(s), {mismatches} of them rx_mismatch; first: {:?}",
        rules.len(),
        r.findings.first().map(|f| &f.explanation)
    );
}
