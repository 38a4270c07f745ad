//! The lanes of a figure, top to bottom: one per CPU, the socket's, one per
//! implicated frame (the lifelines). Where each lane is, and its background
//! and name in the gutter (outside the plot's clip).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::events::Ev;
use super::figure::Fig;
use super::scale::W;
use super::text::{ellipsize, esc};

/// Height of the axis row above the lanes.
pub(super) const AXIS_H: f64 = 34.0;
/// Height of a CPU lane.
pub(super) const CPU_H: f64 = 62.0;
const SOCK_H: f64 = 50.0;
/// Height of a lifeline lane.
pub(super) const LIFE_H: f64 = 42.0;

/// Where each lane of one figure is.
pub(super) struct Lanes {
    /// Top of each CPU's lane, by CPU.
    pub(super) cpu_y: BTreeMap<u32, f64>,
    /// Top of the socket's lane, when it has entries.
    pub(super) sock_y: Option<f64>,
    /// Top of the first lifeline's lane.
    pub(super) life_y0: f64,
    /// The SVG's height.
    pub(super) height: f64,
}

impl Lanes {
    /// A lane for every CPU of `evs` and of `cpus`, then the socket's lane
    /// when `sock_lane`, then `lifelines` lifelines.
    pub(super) fn new(evs: &[Ev], cpus: &[u32], sock_lane: bool, lifelines: usize) -> Lanes {
        let mut all: BTreeSet<u32> = evs.iter().map(|e| e.cpu).collect();
        all.extend(cpus.iter().copied());
        let mut y = AXIS_H;
        let mut cpu_y = BTreeMap::new();
        for c in &all {
            cpu_y.insert(*c, y);
            y += CPU_H;
        }
        let sock_y = if sock_lane {
            let v = y;
            y += SOCK_H;
            Some(v)
        } else {
            None
        };
        let life_y0 = y;
        y += LIFE_H * lifelines as f64;
        Lanes {
            cpu_y,
            sock_y,
            life_y0,
            height: y + 8.0,
        }
    }

    /// Top of lifeline `k`'s lane.
    pub(super) fn life_y(&self, k: usize) -> f64 {
        self.life_y0 + LIFE_H * k as f64
    }
}

/// The time origin's caption, then every lane's background and name.
pub(super) fn draw(o: &mut String, fig: &Fig) {
    let t0 = fig.x.t0;
    let t0_text = fig
        .evs
        .iter()
        .find(|e| e.ns == t0 && t0.is_some())
        .map(|e| e.ts.clone());
    let _ = write!(
        o,
        "<text class=\"t0\" x=\"8\" y=\"20\">{}</text>",
        esc(&match t0_text {
            Some(t) => format!("t0 = {t} s"),
            None => "event order".to_string(),
        })
    );
    for (k, (c, cy)) in fig.lanes.cpu_y.iter().enumerate() {
        let _ = write!(
            o,
            "<g class=\"lane cpu\" data-cpu=\"{c}\"><rect class=\"lanebg {}\" x=\"0\" y=\"{cy:.0}\" width=\"{W}\" height=\"{CPU_H}\"/><text class=\"lname\" x=\"8\" y=\"{:.0}\">CPU {c}</text></g>",
            if k % 2 == 0 { "even" } else { "odd" },
            cy + 24.0
        );
    }
    if let (Some(sy), Some(sname)) = (fig.lanes.sock_y, &fig.sock) {
        let _ = write!(
            o,
            "<g class=\"lane sock\"><rect class=\"lanebg sockbg\" x=\"0\" y=\"{sy:.0}\" width=\"{W}\" height=\"{SOCK_H}\"/><text class=\"lname\" x=\"8\" y=\"{:.0}\">socket</text><text class=\"lsub\" x=\"8\" y=\"{:.0}\">{}</text></g>",
            sy + 20.0,
            sy + 35.0,
            esc(&ellipsize(sname, 26))
        );
    }
    for (k, life) in fig.lives.iter().enumerate() {
        let ly = fig.lanes.life_y(k);
        let _ = write!(
            o,
            "<g class=\"lane life\"><rect class=\"lanebg lifebg\" x=\"0\" y=\"{ly:.0}\" width=\"{W}\" height=\"{LIFE_H}\"/><text class=\"lname\" x=\"8\" y=\"{:.0}\">frame {:#x}</text><text class=\"lsub\" x=\"8\" y=\"{:.0}\">descriptor lifeline</text></g>",
            ly + 18.0,
            life.frame,
            ly + 32.0
        );
    }
}
