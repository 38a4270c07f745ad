//! `xskdbg-visual`: pictures of what `xskdbg analyze` found.
//!
//! A race between two CPUs is easier to see than to read. This crate turns an
//! analyzer [`Report`](xskdbg_analyzer::Report) (plus, optionally, the trace's
//! event stream) into:
//!
//! - [`html`]: one self-contained HTML file (inline CSS, JS and SVG; nothing
//!   is fetched from the network) with the summary, every finding with its
//!   verdict and explanation, and per finding an SVG timeline: one lane per
//!   CPU, time left to right, the socket's receive / flush / transmit events
//!   as marks, the implicated descriptors as lifelines through their states
//!   (FILL, RX, TX, COMP, HELD), the violating moment highlighted, the raw
//!   trace line as hover text, zoom and pan.
//! - [`perfetto`]: the trace in the Chrome trace-event JSON format that
//!   ui.perfetto.dev and `chrome://tracing` open: a track per CPU, per socket
//!   and per descriptor, a slice per descriptor state, flow arrows following
//!   a descriptor across CPUs, and an instant event per finding.
//!
//! Both read the event stream through a [`Spool`]: an observer for
//! [`xskdbg_analyzer::analyze_reader_with`] that copies every entry to an
//! anonymous temporary file during the analyzer's single pass, so that the
//! pictures can be drawn once the findings are known, with memory bounded
//! whatever the trace size. [`model`] holds what both views share: how an
//! entry is classified (mark kind, socket, descriptor state changes);
//! [`filter`] applies `xskdbg analyze`'s filters entry by entry.
//!
//! Output files are written atomically (temporary file in the target
//! directory, then rename): a reader never sees half a report.
//!
//! ```no_run
//! use std::path::Path;
//! use xskdbg_analyzer::{analyze_reader_with, Options};
//! use xskdbg_visual::{html, perfetto, Spool};
//!
//! let f = std::fs::File::open("trace.txt").unwrap();
//! let mut spool = Spool::new().unwrap();
//! let report = analyze_reader_with(f, &Options::default(), &mut |ev| spool.observe(ev)).unwrap();
//! html::write_with(&report, Some(&mut spool), &html::Options::default(), Path::new("report.html")).unwrap();
//! perfetto::write(&report, &mut spool, &perfetto::Options::default(), Path::new("trace.json")).unwrap();
//! ```

pub mod filter;
pub mod html;
pub mod model;
pub mod perfetto;
mod spool;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use spool::Spool;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, writing or renaming the output file failed.
    // The cause is in the message and not chained as a source, so that
    // `{:#}` printing (anyhow) does not say it twice.
    #[error("cannot write {path}: {cause} (check that the directory exists and is writable)")]
    Write {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        cause: io::Error,
    },
    /// The temporary spool of the event stream could not be written or read.
    #[error("cannot spool the trace's entries to a temporary file: {cause} (set TMPDIR to a directory with room)")]
    Spool {
        /// The I/O error.
        cause: io::Error,
    },
    /// A `--window` value that does not parse.
    #[error("invalid --window {value:?}: {why}; expected `all`, `N` (N events around each finding), `lines:A-B` or `time:START-END` (trace seconds, e.g. `time:609766.6985-609766.6990`)")]
    Window {
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Write `out` atomically: `fill` writes into a temporary file in the same
/// directory, which is then renamed over `out` (so a reader sees either the
/// old file or the whole new one).
pub(crate) fn write_atomic(
    out: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut tempfile::NamedTempFile>) -> io::Result<()>,
) -> Result<(), Error> {
    // Name the output, not the temporary file, whatever step failed.
    let err = |e: io::Error| Error::Write {
        path: out.to_path_buf(),
        cause: match e.to_string().split_once(" at path ") {
            // tempfile appends the temporary path to its errors.
            Some((msg, _)) => io::Error::new(e.kind(), msg.to_string()),
            None => e,
        },
    };
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(err)?;
    {
        let mut w = BufWriter::with_capacity(256 * 1024, &mut tmp);
        fill(&mut w).map_err(err)?;
        w.flush().map_err(err)?;
    }
    // A report is for reading: not the temporary file's private 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(out).map_err(|e| err(e.error))?;
    Ok(())
}
