//! `xskdbg-analyzer`: rebuild every AF_XDP descriptor's history from an ftrace
//! trace and name the culprit when one UMEM frame ends up in two places.
//!
//! The crate is pure logic: it never touches the kernel.
//!
//! - [`parse`]: one text line → [`parse::Line`] / [`parse::Event`] with the
//!   decoded [`parse::Op`] (project ops of `docs/TRACE-FORMAT.md`, the seed
//!   story's free-form vocabulary, perf-probe kprobe events), all borrowed;
//!   the operation types are `xskdbg-format`'s, the code form of the format.
//! - [`reader`]: [`TraceReader`], a streaming line reader over one reusable
//!   buffer, and [`open_input`] (path or `-`, gzip/zstd by magic bytes).
//! - [`drained`]: kernel records the probes' drainers wrote into the trace
//!   later than they happened, put back in time order before the checkers.
//! - [`analyzer`]: [`Analyzer`], the per-frame state machine and checkers;
//!   feed it lines, then [`Analyzer::finish`] gives a [`Report`].
//! - [`report`]: [`Report`], [`Finding`], [`Summary`]: serialize to the
//!   `--json` document of `docs/JSON.md`.
//! - [`render`]: the human report (optionally colored).
//! - [`filter`]: `--socket`, `--task`, `--cpus`, `--since`, `--until`,
//!   `--frame`: what a report shows, after the whole trace was judged.
//!
//! ```no_run
//! use xskdbg_analyzer::{analyze_reader, Options};
//! let f = std::fs::File::open("trace.txt").unwrap();
//! let report = analyze_reader(f, &Options::default()).unwrap();
//! println!("{}", report.to_json());
//! ```

pub mod analyzer;
mod chunk;
pub mod drained;
pub mod filter;
mod frames;
pub mod parse;
mod pipeline;
pub mod reader;
pub mod render;
pub mod report;
mod timeline;

use std::io::Read;

pub use analyzer::{published_before_redirect, Analyzer, Options, DEFAULT_POISON};
pub use filter::Filter;
pub use parse::{Event, Line, Op};
pub use reader::{open_input, Input, TraceReader};
pub use report::{Finding, Kind, Report, Summary, TimelineEntry, Verdict};

/// Errors of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the input failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file (or `<stdin>`).
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input has no ftrace entry at all.
    #[error(
        "no ftrace entries in {lines} lines ({skipped} unparsable{first}): expected lines like \
         `task-1234 [001] ..... 5.000001: tracing_mark_write: ...` (read /sys/kernel/tracing/trace, \
         trace_pipe or `trace-cmd report` output)"
    )]
    NoEntries {
        /// Lines read.
        lines: u64,
        /// Lines skipped as unparsable.
        skipped: u64,
        /// `, first at line N` or empty.
        first: String,
    },
}

/// Analyze a whole trace from a reader (already decompressed; wrap with
/// [`reader::decompress`] for gzip/zstd).
pub fn analyze_reader(reader: impl Read + Send, opts: &Options) -> Result<Report, Error> {
    analyze_reader_with(reader, opts, &mut |_: &Event<'_>| {})
}

/// Like [`analyze_reader`], calling `observer` with every parsed entry in
/// trace order, in the same single pass (e.g. to build statistics tables).
pub fn analyze_reader_with(
    reader: impl Read + Send,
    opts: &Options,
    observer: &mut dyn FnMut(&Event<'_>),
) -> Result<Report, Error> {
    analyze_reader_progress(reader, opts, observer, &mut |_| {})
}

/// Analyze an opened input (see [`open_input`]) like
/// [`analyze_reader_progress`]: a plain regular file is read through its
/// memory map (`Input::map`), anything else through `Input::reader`.
pub fn analyze_input(
    input: Input,
    opts: &Options,
    observer: &mut dyn FnMut(&Event<'_>),
    progress: &mut dyn FnMut(u64),
) -> Result<Report, Error> {
    let Some(map) = input.map else {
        return analyze_reader_progress(input.reader, opts, observer, progress);
    };
    let mut a = Analyzer::new(opts.clone());
    let mut released = 0;
    let counts = pipeline::for_each_mapped(
        &map,
        &mut |p| a.feed_lines_observed(&p.lines, Some((&p.descs, &p.ends)), observer),
        progress,
        &mut |upto| {
            // The pages of the input already analyzed leave the process'
            // memory (they stay in the page cache), so that its size does not
            // grow with the trace's: a few madvise calls per GB.
            let upto = upto - upto % RELEASE_BYTES;
            if upto > released {
                // SAFETY: nothing refers to the bytes before `upto` any more
                // (the pipeline's contract), and for a read-only mapping of a
                // file, MADV_DONTNEED only drops this process' page table
                // entries: a later read would fault the same bytes back in
                // from the page cache.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        released,
                        upto - released,
                    )
                };
                released = upto;
            }
        },
    );
    a.finish_checked().map(|r| with_drain_notes(r, counts))
}

/// The reordering stage's counts as notes of the report.
fn with_drain_notes(mut r: Report, c: drained::Counts) -> Report {
    if c.late > 0 {
        r.summary.notes.push(format!(
            "{} drained kernel records arrived after lines stamped later had been checked (out of order by more than the drainers' watermarks allow)",
            c.late
        ));
    }
    if c.before_start > 0 {
        r.summary.notes.push(format!(
            "{} drained kernel records were dropped: stamped before the start of the CPU buffer they were written into, which wrapped (their neighbours were overwritten)",
            c.before_start
        ));
    }
    if c.lost > 0 {
        r.summary.notes.push(format!(
            "{} kernel records were lost: a probe ring buffer was full (kdrain lost=)",
            c.lost
        ));
    }
    r
}

/// How much analyzed input of a mapped file is released at a time.
const RELEASE_BYTES: usize = 8 << 20;

/// Like [`analyze_reader_with`], also calling `progress` with the number of
/// input bytes consumed so far (every half MiB or so).
///
/// Reading and parsing run on a second thread, ahead of the checkers.
pub fn analyze_reader_progress(
    reader: impl Read + Send,
    opts: &Options,
    observer: &mut dyn FnMut(&Event<'_>),
    progress: &mut dyn FnMut(u64),
) -> Result<Report, Error> {
    let mut a = Analyzer::new(opts.clone());
    let counts = pipeline::for_each_batch(
        reader,
        &mut |p| a.feed_lines_observed(&p.lines, Some((&p.descs, &p.ends)), observer),
        progress,
    )
    .map_err(|e| Error::Io {
        path: opts.input_name.clone(),
        source: e,
    })?;
    a.finish_checked().map(|r| with_drain_notes(r, counts))
}
