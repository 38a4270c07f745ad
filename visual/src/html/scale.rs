//! The x axis of a figure: every entry's position on the time scale and on
//! the order scale (the page's script switches between the two), and which
//! one is shown first.

use super::events::Ev;

/// Width of the SVG's coordinate system.
pub(super) const W: f64 = 1200.0;
/// Left gutter for lane names.
pub(super) const L: f64 = 178.0;
const R: f64 = 16.0;
/// Width of the plot, right of the gutter.
pub(super) const PW: f64 = W - L - R;
/// Inner padding of the plot so marks at the ends stay whole.
pub(super) const PAD: f64 = 64.0;

/// Both x positions of a moment: on the time scale and on the order scale.
#[derive(Clone, Copy)]
pub(super) struct X {
    pub(super) t: f64,
    pub(super) o: f64,
}

/// The attributes the script reads to place a point on either scale.
pub(super) fn xattrs(x: X) -> String {
    format!("data-x=\"{:.1}\" data-o=\"{:.1}\"", x.t, x.o)
}

/// The attributes the script reads to place a span on either scale.
pub(super) fn span_attrs(a: X, b: X) -> String {
    format!(
        "data-x=\"{:.1}\" data-x2=\"{:.1}\" data-o=\"{:.1}\" data-o2=\"{:.1}\"",
        a.t, b.t, a.o, b.o
    )
}

/// The x axis of one figure.
pub(super) struct Scale {
    /// Each entry's position.
    pub(super) xs: Vec<X>,
    /// The earliest timestamp (ns), if any entry has one.
    pub(super) t0: Option<u64>,
    /// Every entry has a timestamp and they do not all coincide.
    pub(super) time_ok: bool,
    /// Nanoseconds from the first entry to the last (1 when unknown).
    pub(super) span: f64,
    /// The time scale is shown first, else event order.
    pub(super) mode_time: bool,
    /// The plot's left end: where a lifeline's unknown state starts.
    pub(super) start: X,
    /// The plot's right end: where what is still open ends.
    pub(super) end: X,
}

impl Scale {
    pub(super) fn new(evs: &[Ev]) -> Scale {
        let n = evs.len();
        let inner = PW - 2.0 * PAD;
        let ns: Vec<Option<u64>> = evs.iter().map(|e| e.ns).collect();
        let t0 = ns.iter().flatten().min().copied();
        let t1 = ns.iter().flatten().max().copied();
        let time_ok = ns.iter().all(Option::is_some) && t0 < t1;
        let span = match (t0, t1) {
            (Some(a), Some(b)) if b > a => (b - a) as f64,
            _ => 1.0,
        };
        let xo = |i: usize| {
            if n <= 1 {
                L + PW / 2.0
            } else {
                L + PAD + inner * i as f64 / (n - 1) as f64
            }
        };
        let xs: Vec<X> = (0..n)
            .map(|i| {
                let t = match (time_ok, ns[i], t0) {
                    (true, Some(v), Some(a)) => L + PAD + inner * (v - a) as f64 / span,
                    _ => xo(i),
                };
                X { t, o: xo(i) }
            })
            .collect();
        // Time scale by default, unless most marks would sit on top of each other.
        let crowded = {
            let mut t: Vec<f64> = xs.iter().map(|x| x.t).collect();
            t.sort_by(f64::total_cmp);
            t.windows(2).filter(|w| w[1] - w[0] < 2.5).count()
        };
        let mode_time = time_ok && crowded * 2 <= n;
        Scale {
            xs,
            t0,
            time_ok,
            span,
            mode_time,
            start: X {
                t: L + 6.0,
                o: L + 6.0,
            },
            end: X {
                t: L + PW - 6.0,
                o: L + PW - 6.0,
            },
        }
    }

    /// Where `x` is on the scale shown first.
    pub(super) fn cur(&self, x: X) -> f64 {
        if self.mode_time {
            x.t
        } else {
            x.o
        }
    }
}
