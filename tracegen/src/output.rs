//! Writing a trace file atomically (temporary file in the target directory,
//! then rename), optionally compressed.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::{generate, Config, Expect, GenError};

/// Output compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// zstd (`.zst`).
    Zstd,
}

impl Compression {
    /// Chosen from a file name's extension.
    pub fn from_path(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst") | Some("zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Writing a trace file failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Generation failed.
    #[error(transparent)]
    Gen(#[from] GenError),
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// This build lacks the compression the file name asks for.
    #[error("{0} output needs the `{0}` cargo feature of xskdbg-tracegen")]
    Unsupported(&'static str),
}

/// Generates `cfg` into `path` atomically: a temporary file next to it is
/// written, flushed and renamed over `path`, so a reader never sees half a
/// trace. Returns the expectation, with `bytes` set to the uncompressed size.
pub fn write_file(
    cfg: &Config,
    path: &Path,
    compression: Compression,
) -> Result<Expect, OutputError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io_err = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| OutputError::Io {
            op,
            path: p,
            source,
        }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tracegen-")
        .tempfile_in(&dir)
        .map_err(io_err("cannot create a temporary file in", &dir))?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(io_err("cannot open", tmp.path()))?;
    let counter = CountingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        bytes: 0,
    };
    let expect = match compression {
        Compression::None => {
            let mut w = counter;
            let e = generate(cfg, &mut w)?;
            w.flush().map_err(io_err("cannot write", path))?;
            let mut e = e;
            e.bytes = w.bytes;
            e
        }
        Compression::Gzip => gzip(cfg, counter.inner, path)?,
        Compression::Zstd => zstd(cfg, counter.inner, path)?,
    };
    tmp.as_file()
        .sync_all()
        .map_err(io_err("cannot sync", tmp.path()))?;
    // tempfile creates 0600; a trace is an ordinary shareable file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err("cannot set permissions of", tmp.path()))?;
    }
    tmp.persist(path).map_err(|e| OutputError::Io {
        op: "cannot rename the trace to",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(expect)
}

#[cfg(feature = "gzip")]
fn gzip<W: Write>(cfg: &Config, w: W, path: &Path) -> Result<Expect, OutputError> {
    let enc = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
    let mut counter = CountingWriter {
        inner: enc,
        bytes: 0,
    };
    let mut e = generate(cfg, &mut counter)?;
    e.bytes = counter.bytes;
    let mut inner = counter.inner.finish().map_err(|source| OutputError::Io {
        op: "cannot write",
        path: path.to_path_buf(),
        source,
    })?;
    inner.flush().map_err(|source| OutputError::Io {
        op: "cannot write",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(e)
}

#[cfg(not(feature = "gzip"))]
fn gzip<W: Write>(_: &Config, _: W, _: &Path) -> Result<Expect, OutputError> {
    Err(OutputError::Unsupported("gzip"))
}

#[cfg(feature = "zstd")]
fn zstd<W: Write>(cfg: &Config, w: W, path: &Path) -> Result<Expect, OutputError> {
    let err = |source| OutputError::Io {
        op: "cannot write",
        path: path.to_path_buf(),
        source,
    };
    let enc = zstd::stream::write::Encoder::new(w, 3).map_err(err)?;
    let mut counter = CountingWriter {
        inner: enc,
        bytes: 0,
    };
    let mut e = generate(cfg, &mut counter)?;
    e.bytes = counter.bytes;
    let mut inner = counter.inner.finish().map_err(err)?;
    inner.flush().map_err(err)?;
    Ok(e)
}

#[cfg(not(feature = "zstd"))]
fn zstd<W: Write>(_: &Config, _: W, _: &Path) -> Result<Expect, OutputError> {
    Err(OutputError::Unsupported("zstd"))
}

/// Counts the uncompressed bytes going through.
pub(crate) struct CountingWriter<W> {
    pub(crate) inner: W,
    pub(crate) bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json_atomic<T: serde::Serialize>(value: &T, path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tracegen-")
        .tempfile_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, value).map_err(io::Error::other)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    let _ = fs::metadata(path)?;
    Ok(())
}
