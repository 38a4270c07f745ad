//! Learning the address → frame mapping: until the chunk size is known (no
//! `--chunk-size`, no `umem` line yet), the first lines are kept, their
//! addresses sampled, and replayed once the chunk size is decided.

use super::dispatch::for_each_addr;
use super::state::At;
use super::Analyzer;
use crate::chunk::{self, Mapping};
use crate::parse::{parse_line, AppOp, Event, Line, Meta, Op, SeedOp};

/// Lines kept at most before deciding anyway.
const MAX_BUFFERED_LINES: usize = 8192;
/// Distinct addresses that are enough to infer the chunk size.
const ENOUGH_SAMPLES: usize = 64;
/// Distinct addresses kept at most.
const MAX_SAMPLES: usize = 4096;

/// A line kept until the mapping is known.
pub(super) enum Buffered {
    /// An entry: its line number and text.
    Line(u64, Vec<u8>),
    /// A header or buffer marker.
    Meta(Meta),
}

impl Analyzer {
    /// An entry that came before the mapping was known: sample its
    /// addresses and keep it for the replay.
    pub(super) fn learn(&mut self, ev: &Event<'_>) {
        if let Op::App(AppOp::Umem {
            chunk,
            unaligned,
            poison,
            ..
        }) = &ev.op
        {
            if let Some(p) = poison {
                if self.opts.poison.is_none() {
                    self.poison = *p;
                }
            }
            if let Some(c) = chunk {
                self.umem_chunk = Some((*c, *unaligned));
            } else if *unaligned {
                self.umem_chunk = Some((0, true));
            }
        }
        let poison = self.poison;
        let samples = &mut self.samples;
        let mut add = |a: u64| {
            if a != poison && samples.len() < MAX_SAMPLES {
                samples.insert(a);
            }
        };
        for_each_addr(&ev.op, &mut add);
        // The recorder's outstanding lists are addresses too: good samples.
        match &ev.op {
            Op::Seed(SeedOp::Transition {
                expected,
                remaining,
                ..
            }) => {
                expected.iter().for_each(|&e| add(e));
                remaining
                    .iter()
                    .for_each(|r| r.iter().for_each(|d| add(d.addr)));
            }
            Op::App(AppOp::Violation {
                expected,
                remaining,
                ..
            }) => {
                expected.iter().for_each(|&e| add(e));
                remaining.iter().for_each(|d| add(d.addr));
            }
            _ => {}
        }
        self.buffered.push(Buffered::Line(ev.line, ev.raw.to_vec()));
        if self.umem_chunk.is_some()
            || self.samples.len() >= ENOUGH_SAMPLES
            || self.buffered.len() >= MAX_BUFFERED_LINES
        {
            self.decide();
        }
    }

    /// Decide the mapping (the `umem` line's chunk size, or one inferred
    /// from the samples) and replay the lines kept meanwhile.
    pub(super) fn decide(&mut self) {
        if self.mapping.is_some() {
            return;
        }
        if let Some((c, unaligned)) = self.umem_chunk {
            self.chunk_source = "umem";
            if unaligned {
                self.mapping = Some(Mapping::Unaligned);
                self.chunk_note = "unaligned mode from the recorder's umem line: frames compare by the low 48 bits".into();
            } else {
                let chunk = c.clamp(chunk::MIN_CHUNK, 1 << 32).next_power_of_two();
                self.mapping = Some(Mapping::Aligned { chunk });
                self.chunk_note = format!("chunk size {chunk:#x} from the recorder's umem line");
            }
        } else {
            let mut s: Vec<u64> = self.samples.iter().copied().collect();
            s.sort_unstable();
            let (m, inferred, note) = chunk::infer(&s);
            self.mapping = Some(m);
            self.chunk_source = if inferred { "inferred" } else { "default" };
            self.chunk_note = note;
        }
        if let Some(Mapping::Aligned { chunk }) = self.mapping {
            self.frames.set_chunk(chunk);
        }
        let buffered = std::mem::take(&mut self.buffered);
        // These lines are copies, not lines of the batch being fed.
        let batch_pos = self.batch_pos.take();
        for b in buffered {
            match b {
                Buffered::Meta(m) => self.meta(m),
                Buffered::Line(n, raw) => {
                    // Parsed again from the text: a drained record must
                    // get back its own CPU and stamp, as the reordering
                    // stage gave them (its header line would otherwise
                    // carry the drainer's, after every CPU had started).
                    if let Line::Event(ev) = parse_line(n, &raw) {
                        let ev = crate::drained::as_recorded(&ev);
                        self.process(&ev, At::of(&ev), None);
                    }
                }
            }
        }
        self.batch_pos = batch_pos;
    }
}
