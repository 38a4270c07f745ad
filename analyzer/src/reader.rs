//! Streaming line reader and input opening.
//!
//! [`TraceReader`] reads through one reusable buffer and splits lines with
//! `memchr`; a line is handed out as a slice of that buffer (and decoded by
//! [`crate::parse::parse_line`]) until the next call. Lines longer than
//! [`MAX_LINE`] are skipped without growing the buffer, so memory stays
//! bounded whatever the input. [`open_input`] opens a path or `-` (stdin) and
//! unwraps gzip and zstd by their magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::parse::{parse_line, Line, MAX_LINE};
use crate::Error;

const BUF: usize = 256 * 1024;
const SNIFF: usize = 8 * 1024;

/// A line reader over any `Read`, yielding decoded [`Line`]s.
pub struct TraceReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    line_no: u64,
    bytes: u64,
    /// Skipping the rest of an over-long line.
    skipping: bool,
}

impl<R: Read> TraceReader<R> {
    /// Wrap a reader (already decompressed; see [`open_input`]).
    pub fn new(inner: R) -> Self {
        TraceReader {
            inner,
            buf: vec![0; BUF.max(MAX_LINE * 2)],
            start: 0,
            end: 0,
            eof: false,
            line_no: 0,
            bytes: 0,
            skipping: false,
        }
    }

    /// Bytes consumed from the inner reader so far (for progress display).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next raw line (without `\n`) and its 1-based number. Over-long
    /// lines come back as their first [`MAX_LINE`]+1 bytes so that the parser
    /// rejects them as too long.
    pub fn next_raw(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let s = self.start;
                self.start += nl + 1;
                if self.skipping {
                    self.skipping = false;
                    continue;
                }
                self.line_no += 1;
                return Ok(Some((self.line_no, &self.buf[s..s + nl])));
            }
            let pending = self.end - self.start;
            if self.eof {
                if pending == 0 || self.skipping {
                    return Ok(None);
                }
                // A last line without `\n` (truncated trace).
                let s = self.start;
                self.start = self.end;
                self.line_no += 1;
                return Ok(Some((self.line_no, &self.buf[s..self.end])));
            }
            if pending > MAX_LINE {
                // Hand out the head of the long line once, then drop the rest.
                let s = self.start;
                self.start = self.end;
                if self.skipping {
                    continue;
                }
                self.skipping = true;
                self.line_no += 1;
                return Ok(Some((self.line_no, &self.buf[s..s + MAX_LINE + 1])));
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end = pending;
                self.start = 0;
            }
            let n = loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
            self.bytes += n as u64;
        }
    }

    /// The next decoded line.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        // A plain match lets the decoded line be built in the caller's slot;
        // `Option::map` with a closure copied the ~250-byte line twice.
        match self.next_raw()? {
            Some((n, raw)) => Ok(Some(parse_line(n, raw))),
            None => Ok(None),
        }
    }
}

/// Input kinds recognised by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
}

/// Look at the first bytes of a buffered reader and say how it is compressed.
pub fn sniff<R: BufRead>(r: &mut R) -> io::Result<Compression> {
    let head = r.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// Wrap a buffered reader so that gzip/zstd input comes out decompressed.
pub fn decompress<R: BufRead + Send + 'static>(mut r: R) -> io::Result<Box<dyn Read + Send>> {
    Ok(match sniff(&mut r)? {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

/// An opened input: the decompressed stream plus what is known about it.
pub struct Input {
    /// The decompressed byte stream.
    pub reader: Box<dyn Read + Send>,
    /// Size of the file on disk (compressed), `None` for stdin.
    pub file_size: Option<u64>,
    /// The name to use in messages (`<stdin>` for `-`).
    pub name: String,
}

/// Open `path` (or `-` for stdin), unwrapping gzip/zstd transparently.
pub fn open_input(path: &Path) -> Result<Input, Error> {
    if path.as_os_str() == "-" {
        // A small BufReader: enough to sniff the magic bytes; larger reads
        // bypass it and go straight into the TraceReader's buffer.
        let r = BufReader::with_capacity(SNIFF, io::stdin());
        let reader = decompress(r).map_err(|e| Error::Io {
            path: "<stdin>".into(),
            source: e,
        })?;
        return Ok(Input {
            reader,
            file_size: None,
            name: "<stdin>".into(),
        });
    }
    let name = path.display().to_string();
    let f = File::open(path).map_err(|e| Error::Io {
        path: name.clone(),
        source: e,
    })?;
    let meta = f.metadata().map_err(|e| Error::Io {
        path: name.clone(),
        source: e,
    })?;
    if meta.is_dir() {
        return Err(Error::Io {
            path: name,
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory, not a trace file",
            ),
        });
    }
    let r = BufReader::with_capacity(SNIFF, f);
    let reader = decompress(r).map_err(|e| Error::Io {
        path: name.clone(),
        source: e,
    })?;
    Ok(Input {
        reader,
        file_size: Some(meta.len()),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut r = TraceReader::new(data);
        let mut out = Vec::new();
        while let Some((n, l)) = r.next_raw().unwrap() {
            out.push((n, l.to_vec()));
        }
        out
    }

    #[test]
    fn splits_lines_and_keeps_truncated_last() {
        let v = lines(b"a\nbb\r\n\nccc");
        assert_eq!(v.len(), 4);
        assert_eq!(v[1], (2, b"bb\r".to_vec()));
        assert_eq!(v[3], (4, b"ccc".to_vec()));
    }

    #[test]
    fn long_line_is_cut_and_counted_once() {
        let mut data = vec![b'x'; 3 * 1024 * 1024];
        data.push(b'\n');
        data.extend_from_slice(b"after\n");
        let v = lines(&data);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1.len(), MAX_LINE + 1);
        assert_eq!(v[1], (2, b"after".to_vec()));
    }

    #[test]
    fn gzip_is_unwrapped() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello\nworld\n").unwrap();
        let gz = enc.finish().unwrap();
        let mut s = String::new();
        decompress(io::Cursor::new(gz))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hello\nworld\n");
        let z = zstd::stream::encode_all(&b"zz\n"[..], 1).unwrap();
        let mut s = String::new();
        decompress(io::Cursor::new(z))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "zz\n");
    }
}
