//! A writer for the `newc` cpio format the kernel unpacks as an initramfs (pure).
//!
//! Format (see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst):
//! a 110-byte ASCII header (`070701` and thirteen 8-digit hex fields), the NUL-terminated
//! name, padding to 4 bytes, the data, padding to 4 bytes; a `TRAILER!!!` entry ends the
//! archive. Device nodes are plain headers, so `/dev/console` can be made without root.

use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Streams cpio newc entries into any writer.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    /// Adds a directory. `name` is the path inside the archive, without a leading `/`.
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | (perm & 0o7777), 2, 0, 0, &[])
    }

    /// Adds a regular file with the given contents.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, 0, 0, data)
    }

    /// Adds a symbolic link pointing at `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, 1, 0, 0, target.as_bytes())
    }

    /// Adds a character device node.
    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, S_IFCHR | (perm & 0o7777), 1, major, minor, &[])
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 1, 0, 0, &[])?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev_major: u32,
        rdev_minor: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        if name.is_empty() || name.as_bytes().contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio entry name {name:?} is empty or holds a NUL byte"),
            ));
        }
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{name}: {} bytes is too big for one cpio newc entry (4 GiB max)",
                    data.len()
                ),
            )
        })?;
        let namesize = u32::try_from(name.len() + 1)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "cpio name too long"))?;
        let ino = if mode == 0 { 0 } else { self.next_ino };
        self.next_ino += 1;
        let header = format!(
            "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}\
             {maj:08x}{min:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            maj = 0,
            min = 0,
            rmaj = rdev_major,
            rmin = rdev_minor,
            check = 0,
        );
        debug_assert_eq!(header.len(), 110);
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (self.written % 4) as usize;
        if rem != 0 {
            self.put(&[0u8; 3][..4 - rem])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry decoded back from an archive.
    #[derive(Debug, PartialEq)]
    struct Entry {
        name: String,
        mode: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    /// A strict reader written from the format description, used to check the writer.
    fn read_all(mut buf: &[u8]) -> Vec<Entry> {
        let mut out = Vec::new();
        let total = buf.len();
        loop {
            let off = total - buf.len();
            assert_eq!(off % 4, 0, "entry not aligned at {off}");
            assert_eq!(&buf[..6], b"070701");
            let field = |i: usize| {
                let s = std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) =
                (field(1), field(6), field(9), field(10), field(11));
            let name_end = 110 + namesize as usize;
            assert_eq!(buf[name_end - 1], 0);
            let name = String::from_utf8(buf[110..name_end - 1].to_vec()).unwrap();
            let data_start = (off + name_end).next_multiple_of(4) - off;
            let data = buf[data_start..data_start + size as usize].to_vec();
            let next = (off + data_start + size as usize).next_multiple_of(4) - off;
            buf = &buf[next..];
            if name == "TRAILER!!!" {
                assert!(buf.is_empty());
                return out;
            }
            out.push(Entry {
                name,
                mode,
                rdev: (rmaj, rmin),
                data,
            });
        }
    }

    #[test]
    fn round_trips_every_entry_kind() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("/bin", 0o755).unwrap();
        w.file("bin/busybox", 0o755, b"\x7fELF...").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.char_dev("dev/console", 0o600, 5, 1).unwrap();
        w.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        w.file("empty", 0o644, b"").unwrap();
        let bytes = w.finish().unwrap();
        let entries = read_all(&bytes);
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev/console",
                "init",
                "empty"
            ]
        );
        assert_eq!(entries[0].mode, 0o040755);
        assert_eq!(entries[1].mode, 0o100755);
        assert_eq!(entries[1].data, b"\x7fELF...");
        assert_eq!(entries[2].mode, 0o120777);
        assert_eq!(entries[2].data, b"busybox");
        assert_eq!(entries[3].mode, 0o020600);
        assert_eq!(entries[3].rdev, (5, 1));
        assert_eq!(entries[4].data, b"#!/bin/sh\n");
    }

    #[test]
    fn header_is_byte_exact() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a", 0o644, b"xy").unwrap();
        let bytes = w.finish().unwrap();
        let fields = [
            "00000001", "000081a4", "00000000", "00000000", "00000001", "00000000", "00000002",
            "00000000", "00000000", "00000000", "00000000", "00000002", "00000000",
        ];
        let expect = format!("070701{}", fields.concat());
        assert_eq!(&bytes[..110], expect.as_bytes());
        // name "a\0" ends at 112 (already aligned), then data "xy" and 2 bytes padding.
        assert_eq!(&bytes[110..116], b"a\0xy\0\0");
    }

    #[test]
    fn rejects_bad_names() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.file("/", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
    }
}
