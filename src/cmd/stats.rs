//! Glue between `xskdbg analyze` and the polars tables of `xskdbg-stats`
//! (cargo feature `stats`). The same API compiles with and without the
//! feature, so `analyze.rs` needs no `cfg`:
//!
//! ```ignore
//! // Args: `--stats` (bool) and `--export DIR` (Option<PathBuf>).
//! // 1. Before opening the input: exit 2 with a clear message when the
//! //    binary was built without the feature.
//! cmd::stats::check(args.stats, args.export.as_deref())?;
//! // 2. Feed every entry in the analyzer's single pass.
//! let mut collector = cmd::stats::Collector::new(args.chunk_size, args.unaligned);
//! let result = analyze_reader_progress(
//!     input.reader, &opts, &mut |ev| collector.observe(ev), &mut |n| { /* bar */ });
//! // 3. After the report is written (tables on stdout after the human
//! //    report; on stderr with --json so stdout stays one JSON document).
//! if args.stats { cmd::stats::print(&collector, &mut out)?; }
//! if let Some(dir) = &args.export { cmd::stats::export(&collector, dir)?; }
//! ```
//!
//! Without the feature, `Collector::observe` is an empty inline function
//! (nothing costs anything) and `check` refuses `--stats`/`--export`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use xskdbg_analyzer::Event;

/// Collects the statistics in the analyzer's pass (a no-op without the
/// `stats` feature).
pub struct Collector {
    #[cfg(feature = "stats")]
    inner: xskdbg_stats::Collector,
}

impl Collector {
    /// `chunk_size` and `unaligned` as given to `xskdbg analyze`.
    pub fn new(chunk_size: Option<u64>, unaligned: bool) -> Self {
        #[cfg(feature = "stats")]
        {
            Collector { inner: xskdbg_stats::Collector::new(chunk_size, unaligned) }
        }
        #[cfg(not(feature = "stats"))]
        {
            let _ = (chunk_size, unaligned);
            Collector {}
        }
    }

    /// Takes one parsed entry (call for every entry, in trace order).
    #[inline]
    pub fn observe(&mut self, ev: &Event<'_>) {
        #[cfg(feature = "stats")]
        self.inner.observe(ev);
        #[cfg(not(feature = "stats"))]
        let _ = ev;
    }
}

/// Fails (exit 2) when `--stats` or `--export` is asked of a binary built
/// without the `stats` feature.
pub fn check(stats: bool, export: Option<&Path>) -> Result<()> {
    if cfg!(feature = "stats") || (!stats && export.is_none()) {
        return Ok(());
    }
    let flag = if stats { "--stats" } else { "--export" };
    anyhow::bail!(
        "{flag} needs the polars tables, which this xskdbg was built without; rebuild with \
         `cargo build --release --features stats` (or `cargo install --path . --features stats`)"
    )
}

/// Prints the tables (events per CPU, socket and kind; ring latencies).
pub fn print(c: &Collector, out: &mut dyn Write) -> Result<()> {
    #[cfg(feature = "stats")]
    {
        use anyhow::Context;
        let tables = c.inner.tables().context("cannot build the statistics tables")?;
        tables.print(out).context("cannot write the statistics tables")?;
        Ok(())
    }
    #[cfg(not(feature = "stats"))]
    {
        let _ = (c, out);
        check(true, None)
    }
}

/// Writes the tables as CSV files into `dir` (created if missing) and says
/// so on stderr.
pub fn export(c: &Collector, dir: &Path) -> Result<()> {
    #[cfg(feature = "stats")]
    {
        use anyhow::Context;
        let tables = c.inner.tables().context("cannot build the statistics tables")?;
        let files = tables.export(dir).with_context(|| format!("cannot export to {}", dir.display()))?;
        let names: Vec<String> =
            files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        eprintln!("xskdbg: wrote {} to {}", names.join(", "), dir.display());
        Ok(())
    }
    #[cfg(not(feature = "stats"))]
    {
        let _ = c;
        check(false, Some(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_matches_the_build() {
        assert!(check(false, None).is_ok());
        let r = check(true, None);
        if cfg!(feature = "stats") {
            assert!(r.is_ok());
        } else {
            let msg = format!("{:#}", r.unwrap_err());
            assert!(msg.contains("--features stats"), "{msg}");
            assert!(check(false, Some(Path::new("out"))).unwrap_err().to_string().contains("--export"));
        }
    }
}
