//! [`Spool`]: the trace's entries, kept on disk during the analyzer's pass.
//!
//! The findings (and so the windows worth drawing) are only known once the
//! analyzer has read the whole trace, and the input may be a pipe that cannot
//! be read twice. The spool copies every entry (`LINE\tRAW\n`) to an anonymous
//! temporary file as the analyzer streams it, and replays them afterwards:
//! memory stays bounded whatever the trace size; disk use is about the size of
//! the trace's entries.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Seek, SeekFrom, Write};

use xskdbg_analyzer::parse::{parse_line, Line};
use xskdbg_analyzer::{Event, TraceReader};

use crate::Error;

/// An on-disk copy of a trace's entries, filled by [`Spool::observe`] and read
/// back by [`Spool::replay`].
pub struct Spool {
    w: BufWriter<File>,
    events: u64,
    /// The first write error; later writes are skipped and replay reports it.
    failed: Option<io::Error>,
}

impl Spool {
    /// A spool in an anonymous temporary file (in `$TMPDIR`), removed when
    /// the spool is dropped.
    pub fn new() -> Result<Spool, Error> {
        let f = tempfile::tempfile().map_err(|cause| Error::Spool { cause })?;
        Ok(Spool {
            w: BufWriter::with_capacity(256 * 1024, f),
            events: 0,
            failed: None,
        })
    }

    /// Record one entry. Use as the observer of
    /// [`xskdbg_analyzer::analyze_reader_with`]. An I/O error is kept and
    /// returned by the next [`Spool::replay`].
    pub fn observe(&mut self, ev: &Event<'_>) {
        if self.failed.is_some() {
            return;
        }
        let r = write!(self.w, "{}\t", ev.line)
            .and_then(|()| self.w.write_all(ev.raw))
            .and_then(|()| self.w.write_all(b"\n"));
        match r {
            Ok(()) => self.events += 1,
            Err(e) => self.failed = Some(e),
        }
    }

    /// Entries recorded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Call `f` with every recorded entry, in the order recorded, decoded
    /// again with the analyzer's parser (so line numbers and operations are
    /// exactly what the analyzer saw). May be called more than once.
    pub fn replay(&mut self, mut f: impl FnMut(&Event<'_>)) -> Result<(), Error> {
        if let Some(e) = self.failed.take() {
            return Err(Error::Spool { cause: e });
        }
        let err = |cause| Error::Spool { cause };
        self.w.flush().map_err(err)?;
        let file = self.w.get_mut();
        file.seek(SeekFrom::Start(0)).map_err(err)?;
        {
            let mut r = TraceReader::new(BufReader::with_capacity(256 * 1024, &*file));
            while let Some((_, rec)) = r.next_raw().map_err(err)? {
                let Some(tab) = rec.iter().position(|&b| b == b'\t') else {
                    continue;
                };
                let Some(line) = std::str::from_utf8(&rec[..tab])
                    .ok()
                    .and_then(|s| s.parse().ok())
                else {
                    continue;
                };
                if let Line::Event(ev) = parse_line(line, &rec[tab + 1..]) {
                    f(&ev);
                }
            }
        }
        // Later observe() calls append.
        file.seek(SeekFrom::End(0)).map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_entries_with_their_line_numbers() {
        let trace = "# tracer: nop\n\
                     a-1 [000] ..... 5.000001: tracing_mark_write: ingress q:1 0x1000 FILL -> RX\n\
                     garbage\n\
                     b-2 [001] ..... 5.000002: xsk_flush: (x) xs=0xffff1\n";
        let mut s = Spool::new().unwrap();
        let mut r = TraceReader::new(trace.as_bytes());
        while let Some(l) = r.next_line().unwrap() {
            if let Line::Event(ev) = l {
                s.observe(&ev);
            }
        }
        assert_eq!(s.events(), 2);
        for _ in 0..2 {
            let mut got = Vec::new();
            s.replay(|ev| {
                got.push((
                    ev.line,
                    ev.cpu,
                    String::from_utf8_lossy(ev.name).into_owned(),
                ))
            })
            .unwrap();
            assert_eq!(
                got,
                vec![
                    (2, 0, "tracing_mark_write".to_string()),
                    (4, 1, "xsk_flush".to_string())
                ]
            );
        }
    }
}
