//! Streaming line reader and input opening.
//!
//! `Blocks` reads into reusable buffers and finds the lines in them (the
//! line rules live there alone); [`TraceReader`] hands those lines out one
//! at a time as slices of its buffer (decoded by
//! [`crate::parse::parse_line`]) until the next call, and the analysis
//! pipeline parses whole buffers on its reading thread. Lines longer than
//! [`MAX_LINE`] are skipped without growing the buffer, so memory stays
//! bounded whatever the input. [`open_input`] opens a path or `-` (stdin) and
//! unwraps gzip and zstd by their magic bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::parse::{parse_line, Line, MAX_LINE};
use crate::Error;

/// Input bytes per buffer fill.
pub(crate) const BATCH_BYTES: usize = 512 * 1024;
const SNIFF: usize = 8 * 1024;

/// A line reader over any `Read`, yielding decoded [`Line`]s.
pub struct TraceReader<R> {
    blocks: Blocks<R>,
    buf: Vec<u8>,
    spans: Vec<(u64, u32, u32)>,
    next: usize,
    more: bool,
}

impl<R: Read> TraceReader<R> {
    /// Wrap a reader (already decompressed; see [`open_input`]).
    pub fn new(inner: R) -> Self {
        TraceReader {
            blocks: Blocks::new(inner),
            buf: Vec::new(),
            spans: Vec::new(),
            next: 0,
            more: true,
        }
    }

    /// Bytes consumed from the inner reader so far (for progress display).
    pub fn bytes_read(&self) -> u64 {
        self.blocks.bytes_read()
    }

    /// The next raw line (without `\n`) and its 1-based number. Over-long
    /// lines come back as their first [`MAX_LINE`]+1 bytes so that the parser
    /// rejects them as too long. A read error comes after the complete lines
    /// read before it.
    pub fn next_raw(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        while self.next == self.spans.len() {
            if !self.more {
                return match self.blocks.take_error() {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            self.spans.clear();
            self.next = 0;
            self.more = self.blocks.fill(&mut self.buf, &mut self.spans);
        }
        let (n, s, e) = self.spans[self.next];
        self.next += 1;
        Ok(Some((n, &self.buf[s as usize..e as usize])))
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

/// The lines of `bytes` (a whole input in memory) from offset `from` on, up
/// to about a batch, by the rules of [`Blocks`]: spans relative to `from`,
/// numbered after `line_no` (which is advanced). Returns where the next
/// batch starts (`bytes.len()` after the last).
pub(crate) fn split_mapped(
    bytes: &[u8],
    from: usize,
    line_no: &mut u64,
    spans: &mut Vec<(u64, u32, u32)>,
) -> usize {
    let rest = &bytes[from.min(bytes.len())..];
    let mut start = 0;
    let mut push = |start: usize, end: usize| {
        *line_no += 1;
        // Spans fit `u32`: a batch's lines start in its first BATCH_BYTES
        // and what is handed out of one is at most MAX_LINE + 1 bytes.
        let cut = end.min(start + MAX_LINE + 1);
        spans.push((*line_no, start as u32, cut as u32));
    };
    for nl in memchr::memchr_iter(b'\n', rest) {
        push(start, nl);
        start = nl + 1;
        if start >= BATCH_BYTES {
            return from + start;
        }
    }
    if start < rest.len() {
        push(start, rest.len());
    }
    bytes.len()
}

/// Buffer size: a batch plus room for the line that straddles its end.
pub(crate) const CAP: usize = BATCH_BYTES + MAX_LINE + 2;

/// Reads into caller-owned buffers of about [`BATCH_BYTES`] and finds the
/// lines in place: the one place that knows the line rules. Lines end at
/// `\n`, a last line without one still counts, and a line longer than
/// [`MAX_LINE`] is handed out as its first `MAX_LINE + 1` bytes (which the
/// parser rejects as too long) with the rest skipped, so memory stays
/// bounded whatever the input. [`TraceReader`] hands its lines out one at a
/// time; the analysis pipeline parses a whole buffer on its reading thread.
pub(crate) struct Blocks<R> {
    inner: R,
    eof: bool,
    skipping: bool,
    line_no: u64,
    bytes: u64,
    /// The unfinished last line of the previous buffer.
    carry: Vec<u8>,
    /// A read error, reported after the complete lines read before it.
    error: Option<io::Error>,
}

impl<R: Read> Blocks<R> {
    pub(crate) fn new(inner: R) -> Self {
        Blocks {
            inner,
            eof: false,
            skipping: false,
            line_no: 0,
            bytes: 0,
            carry: Vec::new(),
            error: None,
        }
    }

    /// Fill `buf` with about a batch of input and push the spans
    /// `(line number, start, end)` of the lines in it. Returns false once
    /// the input has ended or failed (the last lines may still be in
    /// `spans`; a failure is then in `error`).
    /// Bytes read from the inner reader so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The read error that ended the input, once.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    pub(crate) fn fill(&mut self, buf: &mut Vec<u8>, spans: &mut Vec<(u64, u32, u32)>) -> bool {
        if buf.len() < CAP {
            buf.resize(CAP, 0);
        }
        let mut end = self.carry.len();
        buf[..end].copy_from_slice(&self.carry);
        self.carry.clear();
        while end < BATCH_BYTES && !self.eof {
            match self.inner.read(&mut buf[end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    end += n;
                    self.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            }
        }
        let mut start = 0;
        if self.skipping {
            match memchr::memchr(b'\n', &buf[..end]) {
                Some(p) => {
                    start = p + 1;
                    self.skipping = false;
                }
                None => return !self.eof && self.error.is_none(),
            }
        }
        let base = start;
        for nl in memchr::memchr_iter(b'\n', &buf[base..end]) {
            let e = base + nl;
            self.line_no += 1;
            spans.push((self.line_no, start as u32, e as u32));
            start = e + 1;
        }
        if self.eof {
            if start < end {
                self.line_no += 1;
                spans.push((self.line_no, start as u32, end as u32));
            }
            return false;
        }
        if self.error.is_some() {
            // The unfinished line is dropped: the error comes first.
            return false;
        }
        if end - start > MAX_LINE {
            self.line_no += 1;
            spans.push((self.line_no, start as u32, (start + MAX_LINE + 1) as u32));
            self.skipping = true;
        } else {
            self.carry.extend_from_slice(&buf[start..end]);
        }
        true
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
    /// A plain (uncompressed) regular file mapped into memory, which
    /// [`crate::analyze_input`] reads instead of `reader`: no copy of the
    /// bytes through `read`, about 5% of the analysis' CPU time.
    pub map: Option<memmap2::Mmap>,
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
            map: None,
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
    let map = if meta.is_file() && meta.len() > 0 {
        // SAFETY: the map is only read. If another process truncates the
        // file meanwhile, reading the lost pages raises SIGBUS and the
        // process dies (the documented limit: pipe such a file through
        // stdin instead); changed bytes make at worst a wrong line, never
        // undefined behaviour in this crate's own reading, which treats
        // them as plain bytes. Files in tracefs and other pseudo file
        // systems have size 0 and are read with `read`.
        unsafe { memmap2::Mmap::map(&f) }.ok()
    } else {
        None
    };
    let r = BufReader::with_capacity(SNIFF, f);
    let reader = decompress(r).map_err(|e| Error::Io {
        path: name.clone(),
        source: e,
    })?;
    // Compressed files are read through their decoder.
    let map = map.filter(|m| {
        sniff(&mut io::BufReader::new(&m[..m.len().min(SNIFF)])).ok() == Some(Compression::None)
    });
    Ok(Input {
        reader,
        map,
        file_size: Some(meta.len()),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads at most `step` bytes at a time.
    struct Dribble<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(out.len()).min(self.step);
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// (number, first 300 bytes, longer than MAX_LINE) of every line.
    type Shape = (u64, Vec<u8>, bool);

    fn shape(n: u64, raw: &[u8]) -> Shape {
        (n, raw[..raw.len().min(300)].to_vec(), raw.len() > MAX_LINE)
    }

    fn by_blocks(data: &[u8], step: usize) -> Vec<Shape> {
        let mut b = Blocks::new(Dribble { data, step });
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let mut spans = Vec::new();
        loop {
            let more = b.fill(&mut buf, &mut spans);
            for &(n, s, e) in &spans {
                out.push(shape(n, &buf[s as usize..e as usize]));
            }
            spans.clear();
            if !more {
                return out;
            }
        }
    }

    fn by_map(data: &[u8]) -> Vec<Shape> {
        let mut out = Vec::new();
        let mut from = 0;
        let mut n = 0;
        let mut spans = Vec::new();
        while from < data.len() {
            let next = split_mapped(data, from, &mut n, &mut spans);
            assert!(next > from, "no progress at {from}");
            for &(n, s, e) in &spans {
                out.push(shape(n, &data[from + s as usize..from + e as usize]));
            }
            spans.clear();
            from = next;
        }
        out
    }

    fn by_reader(data: &[u8], step: usize) -> Vec<Shape> {
        let mut r = TraceReader::new(Dribble { data, step });
        let mut out = Vec::new();
        while let Some((n, raw)) = r.next_raw().unwrap() {
            out.push(shape(n, raw));
        }
        out
    }

    /// The line rules written plainly: split at `\n`, no empty line after
    /// a final `\n`.
    fn by_rule(data: &[u8]) -> Vec<Shape> {
        let mut parts: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        if parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        (1..).zip(parts).map(|(n, p)| shape(n, p)).collect()
    }

    proptest::proptest! {
        #[test]
        fn lines_follow_the_rules_whatever_the_reads(
            pieces in proptest::collection::vec((0usize..3, 0usize..2000, 0u8..4), 0..40),
            step in 1usize..200_000,
            huge in 0usize..3,
        ) {
            let mut data = Vec::new();
            for (i, (kind, len, end)) in pieces.iter().enumerate() {
                let len = match (kind, i % 7 == huge) {
                    (_, true) => MAX_LINE + len * 200,
                    (0, _) => *len,
                    _ => len % 40,
                };
                data.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
                match end {
                    0 => data.extend_from_slice(b"\r\n"),
                    1 | 2 => data.push(b'\n'),
                    _ => {}
                }
            }
            // Over-long lines differ only in how much of them is handed
            // out, which the parser cuts to the same 256 bytes.
            let want = by_rule(&data);
            proptest::prop_assert_eq!(&by_blocks(&data, step), &want);
            proptest::prop_assert_eq!(&by_reader(&data, step), &want);
            proptest::prop_assert_eq!(&by_map(&data), &want);
        }
    }

    #[test]
    fn mapped_batches_follow_the_rules_across_their_ends() {
        let mut data = Vec::new();
        for i in 0..60_000usize {
            match i % 5_000 {
                17 => data.extend(std::iter::repeat_n(b'x', MAX_LINE + 3 * i)),
                _ => data.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, i % 97)),
            }
            if i % 11 != 3 {
                data.push(b'\n');
            }
        }
        data.extend_from_slice(b"last without newline");
        assert!(data.len() > 4 * BATCH_BYTES);
        assert_eq!(by_map(&data), by_rule(&data));
    }

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
