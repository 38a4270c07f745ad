//! The polars tables: built column by column from the [`Collector`]'s
//! counters (`from_vec`, never row by row), printed, and exported as CSV.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::{Collector, Stage};

/// Building or writing the tables failed.
#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    /// polars refused a table (columns of different lengths: a bug here).
    #[error("cannot build the {table} table: {source}")]
    Polars {
        /// Which table.
        table: &'static str,
        /// polars' error.
        #[source]
        source: PolarsError,
    },
    /// Writing an exported file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The statistics as polars `DataFrame`s.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `cpu, events, first_ts_<unit>, last_ts_<unit>`.
    pub per_cpu: DataFrame,
    /// `socket, label, events`: entries naming each socket (by key, kernel
    /// pointer, pool or label, joined when the trace links them).
    pub per_socket: DataFrame,
    /// `kind, events, descriptors`.
    pub per_kind: DataFrame,
    /// `socket, label, stage, samples, p50_<unit>, p99_<unit>, max_<unit>,
    /// mean_<unit>`: one row per socket and ring stage that had samples.
    pub latency: DataFrame,
    /// `ns` when timestamps are times, `clock` for raw clock units.
    pub unit: &'static str,
    /// Whether every percentile is exact (no histogram spill).
    pub exact: bool,
}

fn u64_col(name: &str, v: Vec<u64>) -> Column {
    UInt64Chunked::from_vec(name.into(), v).into_column()
}

fn u32_col(name: &str, v: Vec<u32>) -> Column {
    UInt32Chunked::from_vec(name.into(), v).into_column()
}

fn str_col(name: &str, v: Vec<String>) -> Column {
    StringChunked::from_iter_values(name.into(), v.iter().map(String::as_str)).into_column()
}

fn frame(table: &'static str, cols: Vec<Column>) -> Result<DataFrame, TablesError> {
    DataFrame::new_infer_height(cols).map_err(|source| TablesError::Polars { table, source })
}

/// Builds the tables.
pub(crate) fn build(c: &Collector) -> Result<Tables, TablesError> {
    let unit = c.unit();
    let (mut cpu, mut ev, mut first, mut last) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, n, f, l) in c.cpu_rows() {
        cpu.push(i);
        ev.push(n);
        first.push(f);
        last.push(l);
    }
    let per_cpu = frame(
        "per-CPU",
        vec![
            u32_col("cpu", cpu),
            u64_col("events", ev),
            u64_col(&format!("first_ts_{unit}"), first),
            u64_col(&format!("last_ts_{unit}"), last),
        ],
    )?;

    let rows = c.sock_rows();
    let per_socket = frame(
        "per-socket",
        vec![
            str_col("socket", rows.iter().map(|r| r.socket.clone()).collect()),
            str_col("label", rows.iter().map(|r| r.label.clone()).collect()),
            u64_col("events", rows.iter().map(|r| r.events).collect()),
        ],
    )?;

    let (mut kind, mut kev, mut kd) = (Vec::new(), Vec::new(), Vec::new());
    for (k, n, d) in c.kind_rows() {
        kind.push(k.to_string());
        kev.push(n);
        kd.push(d);
    }
    let per_kind = frame(
        "per-kind",
        vec![
            str_col("kind", kind),
            u64_col("events", kev),
            u64_col("descriptors", kd),
        ],
    )?;

    let mut exact = true;
    let (mut sock, mut label, mut stage) = (Vec::new(), Vec::new(), Vec::new());
    let (mut n, mut p50, mut p99, mut max, mut mean) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in &rows {
        for st in Stage::ALL {
            let h = &r.lat[st as usize];
            let (Some(a), Some(b)) = (h.quantile(0.5), h.quantile(0.99)) else {
                continue;
            };
            exact &= h.is_exact();
            sock.push(r.socket.clone());
            label.push(r.label.clone());
            stage.push(st.name().to_string());
            n.push(h.count());
            p50.push(a);
            p99.push(b);
            max.push(h.max());
            mean.push(h.mean());
        }
    }
    let latency = frame(
        "latency",
        vec![
            str_col("socket", sock),
            str_col("label", label),
            str_col("stage", stage),
            u64_col("samples", n),
            u64_col(&format!("p50_{unit}"), p50),
            u64_col(&format!("p99_{unit}"), p99),
            u64_col(&format!("max_{unit}"), max),
            u64_col(&format!("mean_{unit}"), mean),
        ],
    )?;
    Ok(Tables {
        per_cpu,
        per_socket,
        per_kind,
        latency,
        unit,
        exact,
    })
}

/// polars reads its display settings from the environment; show every row
/// and no dtype/shape noise unless the user chose otherwise.
fn display_defaults() {
    for (k, v) in [
        ("POLARS_FMT_MAX_ROWS", "-1"),
        ("POLARS_FMT_MAX_COLS", "-1"),
        ("POLARS_FMT_STR_LEN", "64"),
        ("POLARS_FMT_TABLE_HIDE_COLUMN_DATA_TYPES", "1"),
        ("POLARS_FMT_TABLE_HIDE_DATAFRAME_SHAPE_INFORMATION", "1"),
    ] {
        if std::env::var_os(k).is_none() {
            // Called from the single-threaded command before polars starts
            // its thread pool for anything else.
            std::env::set_var(k, v);
        }
    }
}

impl Tables {
    /// The tables with a title each, as `xskdbg analyze --stats` prints them.
    pub fn print(&self, w: &mut dyn Write) -> io::Result<()> {
        display_defaults();
        writeln!(w, "Events per CPU")?;
        writeln!(w, "{}", self.per_cpu)?;
        writeln!(w, "\nEvents per socket (queue)")?;
        writeln!(w, "{}", self.per_socket)?;
        writeln!(w, "\nEvents per kind")?;
        writeln!(w, "{}", self.per_kind)?;
        let how = if self.exact {
            "exact"
        } else {
            "histogram, within 1.6%"
        };
        writeln!(
            w,
            "\nRing latency per socket ({}, percentiles {how})",
            self.unit
        )?;
        if self.latency.height() == 0 {
            writeln!(
                w,
                "(no frame made a FILL->RX, RX->TX or TX->COMP move the trace shows both ends of)"
            )?;
        } else {
            writeln!(w, "{}", self.latency)?;
        }
        Ok(())
    }

    /// Writes `per_cpu.csv`, `per_socket.csv`, `per_kind.csv` and
    /// `latency.csv` into `dir` (created if missing), each atomically.
    /// Returns the paths written.
    pub fn export(&self, dir: &Path) -> Result<Vec<PathBuf>, TablesError> {
        fs::create_dir_all(dir).map_err(|source| TablesError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut out = Vec::new();
        for (name, df) in [
            ("per_cpu.csv", &self.per_cpu),
            ("per_socket.csv", &self.per_socket),
            ("per_kind.csv", &self.per_kind),
            ("latency.csv", &self.latency),
        ] {
            let path = dir.join(name);
            let io_err = |source| TablesError::Io {
                path: path.clone(),
                source,
            };
            let mut tmp = tempfile::Builder::new()
                .prefix(".xskdbg-stats-")
                .tempfile_in(dir)
                .map_err(io_err)?;
            let mut df = df.clone();
            CsvWriter::new(&mut tmp)
                .include_header(true)
                .finish(&mut df)
                .map_err(|source| TablesError::Polars {
                    table: "CSV",
                    source,
                })?;
            tmp.as_file().sync_all().map_err(io_err)?;
            tmp.persist(&path).map_err(|e| TablesError::Io {
                path: path.clone(),
                source: e.error,
            })?;
            out.push(path);
        }
        Ok(out)
    }
}
