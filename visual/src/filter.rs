//! Which trace entries a filtered picture (or table) shows.
//!
//! The analyzer's [`Filter`] decides which findings a report keeps; this
//! module applies the same filter entry by entry, with what only the views
//! know: the socket an entry belongs to ([`classify`], with kernel `xs`
//! pointers joined to the report's socket names by [`Sockets`]) and the
//! frames it touches ([`Mapping`]).
//!
//! An entry is inside when it passes every filter given: `--task`,
//! `--cpus`, `--since`/`--until` on its own columns; `--socket` when the
//! socket it names (by name, key, label or `xs`) matches, so entries that
//! name no socket (NAPI polls, declarations) are left out; `--frame` when it
//! touches the frame or is one of the `neighbours` entries before or after
//! an entry that does.

use xskdbg_analyzer::filter::Filter;
use xskdbg_analyzer::{Event, Report, DEFAULT_POISON};

use crate::model::{classify, Mapping, SockId, Sockets};
use crate::{Error, Spool};

/// Decides, entry by entry in trace order, what a filtered view shows.
pub struct Selector<'a> {
    filter: &'a Filter,
    socks: Sockets,
    map: Mapping,
    frame: Option<u64>,
    /// Entry index ranges (inclusive) around the frame's entries.
    ranges: Vec<(u64, u64)>,
    next_range: usize,
    idx: u64,
}

impl<'a> Selector<'a> {
    /// A selector for `filter` over the spooled entries of `report`. With
    /// `--frame`, the spool is read once first to find the frame's entries
    /// and their `neighbours`.
    pub fn new(
        report: &Report,
        filter: &'a Filter,
        spool: &mut Spool,
        neighbours: u64,
    ) -> Result<Selector<'a>, Error> {
        let map = Mapping::from_report(report);
        let frame = filter.frame.map(|a| map.frame(a));
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        if let Some(fr) = frame {
            let mut i = 0u64;
            spool.replay(|ev| {
                if touches(&map, ev, fr) {
                    let (a, b) = (i.saturating_sub(neighbours), i.saturating_add(neighbours));
                    match ranges.last_mut() {
                        Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                        _ => ranges.push((a, b)),
                    }
                }
                i += 1;
            })?;
        }
        Ok(Selector {
            filter,
            socks: Sockets::from_report(report),
            map,
            frame,
            ranges,
            next_range: 0,
            idx: 0,
        })
    }

    /// Whether the next entry (call once per spooled entry, in order) is
    /// inside the filter.
    pub fn inside(&mut self, ev: &Event<'_>) -> bool {
        let idx = self.idx;
        self.idx += 1;
        // Socket names are learned from every entry, inside or not.
        self.socks.learn(&ev.op);
        if self.frame.is_some() {
            while self.next_range < self.ranges.len() && self.ranges[self.next_range].1 < idx {
                self.next_range += 1;
            }
            let near = self
                .ranges
                .get(self.next_range)
                .is_some_and(|r| (r.0..=r.1).contains(&idx));
            if !near {
                return false;
            }
        }
        if !self.filter.entry_inside(ev) {
            return false;
        }
        if self.filter.socket.is_some() {
            let Some(id) = classify(&ev.op, ev.name).sock else {
                return false;
            };
            let name = self.socks.name(&id);
            let raw = match &id {
                SockId::Xs(x) => format!("{x:#x}"),
                other => other.to_string(),
            };
            if !self.filter.socket_matches([name.as_str(), raw.as_str()]) {
                return false;
            }
        }
        true
    }

    /// The frame `--frame` names, under the report's chunk mapping.
    pub fn frame(&self) -> Option<u64> {
        self.frame
    }

    /// The chunk mapping in use.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }
}

/// Whether `ev` moves or mentions frame `fr`.
fn touches(map: &Mapping, ev: &Event<'_>, fr: u64) -> bool {
    classify(&ev.op, ev.name)
        .moves
        .iter()
        .any(|&(a, _)| a != DEFAULT_POISON && map.frame(a) == fr)
}

/// The `otherData.filters` object of a Perfetto export and the like: the
/// report's `summary.filters` as JSON, `null` without filters.
pub fn summary_json(report: &Report) -> String {
    match &report.summary.filters {
        Some(f) => serde_json::to_string(f).unwrap_or_else(|_| "null".into()),
        None => "null".into(),
    }
}
