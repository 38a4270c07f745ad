//! The self-contained HTML report.
//!
//! One file, no network: CSS, the zoom/pan script and every SVG are inline.
//! The page has the summary, an index of findings and, per finding, its
//! verdict and explanation, an SVG timeline and the table of the events
//! drawn.
//!
//! The timeline of a finding has:
//! - one lane per CPU, time left to right (trace nanoseconds when the clock
//!   is a time, else event order; a button switches between the two), every
//!   entry a mark whose shape says what it is (kernel receive ▼, flush ▮,
//!   transmit ▲, completion ◆, application ring operation ●, violation ✖)
//!   and whose hover text is the raw trace line;
//! - the socket's producer sections (from a CPU's first receive to its flush
//!   or NAPI poll end) as bands in the CPU lanes, and where two CPUs produce
//!   for the same socket at once, a red band across the lanes;
//! - a lane for the finding's socket with its receive / flush / transmit
//!   events;
//! - one lifeline per implicated descriptor (frame), coloured by the state it
//!   is in (FILL, RX, TX, COMP, HELD, FREE), joined to the CPU lane of each
//!   event that moved it;
//! - the violating moment as a red line, the finding's events ringed in red.
//!
//! Events come from the finding's own timeline in the report and, when a
//! [`Spool`] is given, from the events around the finding in the trace
//! (`before` / `after` in [`Options`]), so that the picture also shows what
//! happened after the analyzer's detection point.
//!
//! Every piece of trace text is escaped: the trace is untrusted input.

// Modules, outside in: `page` (the page shell and the summary), `finding`
// (one section per finding, and the history's), `figure` (one SVG timeline:
// its layout and paint order), the figure's parts `scale` (x axis), `lanes`,
// `sections` (producer sections and overlaps), `lifelines`, `marks`,
// `legend`; `events` (which entries a figure draws), `text` (escaping,
// class names).
mod events;
mod figure;
mod finding;
mod lanes;
mod legend;
mod lifelines;
mod marks;
mod page;
mod scale;
mod sections;
mod text;

use std::io::Write as _;
use std::path::Path;

use xskdbg_analyzer::Report;

use crate::model::{Mapping, Sockets};
use crate::{write_atomic, Error, Spool};
use events::windows_from_spool;
use page::render;

/// What the HTML report shows.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events drawn before each finding's moment, taken from the spool.
    pub before: usize,
    /// Events drawn after it.
    pub after: usize,
    /// Findings that get a timeline; later ones are listed without one.
    pub max_figures: usize,
    /// Name of the input shown in the title (`trace.txt`).
    pub input_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            before: 120,
            after: 60,
            max_figures: 200,
            input_name: String::new(),
        }
    }
}

/// Write the report of `report` to `out`, drawing each finding from the
/// events of its report timeline only.
pub fn write(report: &Report, out: &Path) -> Result<(), Error> {
    write_with(report, None, &Options::default(), out)
}

/// Write the report of `report` to `out` (atomically). With a spool, each
/// finding's picture also shows the trace's events around it.
pub fn write_with(
    report: &Report,
    spool: Option<&mut Spool>,
    opts: &Options,
    out: &Path,
) -> Result<(), Error> {
    let mut socks = Sockets::from_report(report);
    let windows = match spool {
        Some(s) => windows_from_spool(report, s, opts, &mut socks)?,
        None => Vec::new(),
    };
    let page = render(report, &windows, opts, socks);
    write_atomic(out, |w| w.write_all(page.as_bytes()))
}

/// What every figure of a report shares.
struct Ctx {
    map: Mapping,
    socks: Sockets,
    /// The trace can show where producer sections end.
    flush_known: bool,
}
